//! The connection interface both backends implement.

use crate::{Error, Row, Value};

/// Which database a connection talks to, for the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (rusqlite).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A connection inside a transaction (a write) or a read-only snapshot (a read).
///
/// Statements use `?1`, `?2`, ... for parameters on both backends.
pub trait Sql {
    /// Runs a statement; returns how many rows it changed.
    fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, Error>;
    /// Runs a query; returns its rows.
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, Error>;
    /// The backend.
    fn dialect(&self) -> Dialect;
}

/// Conveniences over [`Sql`].
pub trait SqlExt: Sql {
    /// The first row, if any.
    fn one(&self, sql: &str, params: &[Value]) -> Result<Option<Row>, Error> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// Every row, each made into a `T`.
    fn all<T>(
        &self,
        sql: &str,
        params: &[Value],
        f: impl Fn(&Row) -> Result<T, Error>,
    ) -> Result<Vec<T>, Error> {
        self.query(sql, params)?.iter().map(f).collect()
    }

    /// Makes this transaction take turns, until it ends, with every other transaction that
    /// calls this with the same `topic`, so that a check-then-act rule (the last admin
    /// kept, the first start's admin made once) holds with several writers: on PostgreSQL
    /// a transaction-level advisory lock, after which the transaction's next statements see
    /// what the previous holder committed. SQLite has one writer: nothing to do.
    fn take_turn(&self, topic: &str) -> Result<(), Error> {
        if self.dialect() == Dialect::Postgres {
            self.execute(
                "SELECT pg_advisory_xact_lock(hashtext(?1))",
                &[Value::Text(format!("storefleet:{topic}"))],
            )?;
        }
        Ok(())
    }

    /// The integer in the first column named `name` of the first row (a count).
    fn int(&self, sql: &str, params: &[Value], name: &str) -> Result<i64, Error> {
        match self.one(sql, params)? {
            Some(r) => r.i64(name),
            None => Err(Error::Backend(format!("no row from {sql:?}"))),
        }
    }
}

impl<S: Sql + ?Sized> SqlExt for S {}

/// `?N` parameters as PostgreSQL's `$N`, outside quoted text and identifiers.
pub(crate) fn dollar_params(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
                out.push(c);
            }
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    out.push(c);
                }
                '?' if chars.peek().is_some_and(char::is_ascii_digit) => out.push('$'),
                _ => out.push(c),
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::dollar_params;

    #[test]
    fn parameters_become_dollars_outside_quotes_only() {
        assert_eq!(
            dollar_params("SELECT '?1', \"a?2\" FROM t WHERE a = ?1 AND b = ?12 AND c ? 'x'"),
            "SELECT '?1', \"a?2\" FROM t WHERE a = $1 AND b = $12 AND c ? 'x'"
        );
        assert_eq!(
            dollar_params("x = 'it''s' AND y = ?3"),
            "x = 'it''s' AND y = $3"
        );
    }
}
