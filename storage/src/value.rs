//! Parameters and results in a form both backends understand.

use std::sync::Arc;

use crate::Error;

/// A parameter or a column's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A 64-bit integer (SQLite INTEGER, PostgreSQL BIGINT; converted to the smaller
    /// integer types and to booleans where the statement wants them).
    Int(i64),
    /// A double.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes (SQLite BLOB, PostgreSQL BYTEA).
    Blob(Vec<u8>),
    /// A boolean (SQLite stores 0 or 1).
    Bool(bool),
}

impl Value {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Int(_) => "integer",
            Value::Real(_) => "real",
            Value::Text(_) => "text",
            Value::Blob(_) => "bytes",
            Value::Bool(_) => "boolean",
        }
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::Int(i64::from(v))
            }
        }
    )*};
}
from_int!(i64, i32, u32, u16, u8);

impl From<u64> for Value {
    /// Counters and sizes stay far below 2^63; a larger one is stored as the largest.
    fn from(v: u64) -> Self {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::from(v as u64)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}

impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Value::Blob(v.to_vec())
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Parameters for a statement: `args![name, now, role.as_str()]`.
#[macro_export]
macro_rules! args {
    () => { &[] as &[$crate::Value] };
    ($($v:expr),+ $(,)?) => { &[$($crate::Value::from($v)),+] as &[$crate::Value] };
}

/// One result row; columns are read by name, so a query's column order is free to change.
#[derive(Debug, Clone)]
pub struct Row {
    pub(crate) names: Arc<[String]>,
    pub(crate) values: Vec<Value>,
}

impl Row {
    /// The raw value of a column.
    pub fn value(&self, name: &str) -> Result<&Value, Error> {
        self.names
            .iter()
            .position(|n| n == name)
            .and_then(|i| self.values.get(i))
            .ok_or_else(|| Error::Backend(format!("no column {name:?} in the result")))
    }

    fn wrong(name: &str, want: &str, got: &Value) -> Error {
        Error::Backend(format!(
            "column {name:?}: expected {want}, found {}",
            got.kind()
        ))
    }

    /// An integer column (a boolean reads as 0 or 1).
    pub fn i64(&self, name: &str) -> Result<i64, Error> {
        match self.value(name)? {
            Value::Int(v) => Ok(*v),
            Value::Bool(b) => Ok(i64::from(*b)),
            other => Err(Self::wrong(name, "integer", other)),
        }
    }

    /// An integer column as a narrower integer type; a value out of its range is an error
    /// naming the column.
    pub fn int<T: TryFrom<i64>>(&self, name: &str) -> Result<T, Error> {
        let v = self.i64(name)?;
        T::try_from(v).map_err(|_| {
            Error::Backend(format!(
                "column {name:?}: {v} is out of range for {}",
                std::any::type_name::<T>()
            ))
        })
    }

    /// An integer column that may be NULL.
    pub fn opt_i64(&self, name: &str) -> Result<Option<i64>, Error> {
        match self.value(name)? {
            Value::Null => Ok(None),
            _ => self.i64(name).map(Some),
        }
    }

    /// A number column (an integer reads as a double).
    pub fn f64(&self, name: &str) -> Result<f64, Error> {
        match self.value(name)? {
            Value::Real(v) => Ok(*v),
            Value::Int(v) => Ok(*v as f64),
            other => Err(Self::wrong(name, "number", other)),
        }
    }

    /// A number column that may be NULL.
    pub fn opt_f64(&self, name: &str) -> Result<Option<f64>, Error> {
        match self.value(name)? {
            Value::Null => Ok(None),
            _ => self.f64(name).map(Some),
        }
    }

    /// A boolean column (an integer is true when not 0).
    pub fn bool(&self, name: &str) -> Result<bool, Error> {
        match self.value(name)? {
            Value::Bool(b) => Ok(*b),
            Value::Int(v) => Ok(*v != 0),
            other => Err(Self::wrong(name, "boolean", other)),
        }
    }

    /// A text column.
    pub fn text(&self, name: &str) -> Result<String, Error> {
        match self.value(name)? {
            Value::Text(s) => Ok(s.clone()),
            other => Err(Self::wrong(name, "text", other)),
        }
    }

    /// A text column that may be NULL.
    pub fn opt_text(&self, name: &str) -> Result<Option<String>, Error> {
        match self.value(name)? {
            Value::Null => Ok(None),
            _ => self.text(name).map(Some),
        }
    }

    /// A bytes column.
    pub fn blob(&self, name: &str) -> Result<Vec<u8>, Error> {
        match self.value(name)? {
            Value::Blob(b) => Ok(b.clone()),
            other => Err(Self::wrong(name, "bytes", other)),
        }
    }
}
