//! Storefleet's storage boundary.
//!
//! The controller's repositories are written once, against [`Sql`]: a connection (inside a
//! transaction) that runs a statement with [`Value`] parameters and returns [`Row`]s read
//! by column name. SQLite ([`sqlite`], rusqlite) and PostgreSQL ([`postgres`], the
//! synchronous client of rust-postgres on a small pool) implement it, so every rule a
//! repository enforces (the last admin, a token's role, a ticket's lifecycle) exists once
//! and both backends run the same shared tests. SQL is written in the subset both speak:
//! `?N` parameters (rewritten to `$N` for PostgreSQL), `ON CONFLICT`, `RETURNING`,
//! `coalesce`; integers are 64-bit, booleans are parameters of either kind; a parameter
//! only tested with `IS NULL` is given its type (`CAST(?1 AS TEXT) IS NULL`), which
//! PostgreSQL needs. Where a backend
//! has a faster way (PostgreSQL's `unnest` for batched telemetry), a repository asks
//! [`Sql::dialect`].
//!
//! Failures are one storage-neutral [`Error`]: callers see "not found", "invalid",
//! "conflict", "busy" or "unavailable", never a driver's type.

pub mod many;
pub mod postgres;
mod sql;
pub mod sqlite;
mod value;

pub use sql::{Dialect, Sql, SqlExt};
pub use value::{Row, Value};

/// Why a storage operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The database failed (I/O, full disk, corruption, a lost connection, a bug in a
    /// query); the message names the backend and what it said.
    #[error("database: {0}")]
    Backend(String),
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request is not acceptable (bad value, wrong state).
    #[error("{0}")]
    Invalid(String),
    /// The request clashes with what is there (duplicate key, a rule such as the last
    /// enabled admin).
    #[error("{0}")]
    Conflict(String),
    /// The database cannot be reached now (a lost connection, a server restarting); the
    /// same request may work later.
    #[error("the database is not available: {0}")]
    Unavailable(String),
    /// The transaction collided with another writer (a deadlock or a serialization
    /// failure) and was rolled back; running it again as it is should work, at once.
    #[error("database: {0} (collided with another writer; it can run again)")]
    Collision(String),
    /// The database refused the data itself (a value it cannot hold, such as a NUL
    /// character in PostgreSQL text, or a broken constraint other than a duplicate key);
    /// the same data will be refused again, whatever the database's state.
    #[error("the database refused the data: {0}")]
    Refused(String),
    /// The storage has stopped (the controller is stopping); nothing more will work.
    #[error("the database has stopped")]
    Closed,
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        // A duplicate key is the caller's conflict, on both backends.
        if let rusqlite::Error::SqliteFailure(f, _) = &e {
            if matches!(
                f.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            ) {
                return Error::Conflict(format!("already there: {e}"));
            }
            if matches!(
                f.code,
                rusqlite::ErrorCode::ConstraintViolation
                    | rusqlite::ErrorCode::TooBig
                    | rusqlite::ErrorCode::TypeMismatch
            ) {
                return Error::Refused(format!("sqlite: {e}"));
            }
        }
        Error::Backend(format!("sqlite: {e}"))
    }
}

impl From<::postgres::Error> for Error {
    fn from(e: ::postgres::Error) -> Self {
        // The server's own message (with its detail) says most; the driver's otherwise.
        match e.as_db_error() {
            Some(d) if *d.code() == ::postgres::error::SqlState::UNIQUE_VIOLATION => {
                Error::Conflict(format!(
                    "already there: {}",
                    d.detail().unwrap_or_else(|| d.message())
                ))
            }
            Some(d)
                if matches!(
                    *d.code(),
                    ::postgres::error::SqlState::T_R_DEADLOCK_DETECTED
                        | ::postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
                ) =>
            {
                Error::Collision(format!("postgresql: {}", d.message()))
            }
            // Class 22 (data exception) and 23 (integrity constraint) are about the data.
            Some(d) if d.code().code().starts_with("22") || d.code().code().starts_with("23") => {
                Error::Refused(match d.detail() {
                    Some(detail) => format!("postgresql: {} ({detail})", d.message()),
                    None => format!("postgresql: {}", d.message()),
                })
            }
            Some(d) => Error::Backend(match d.detail() {
                Some(detail) => format!("postgresql: {} ({detail})", d.message()),
                None => format!("postgresql: {}", d.message()),
            }),
            None if e.is_closed() => Error::Unavailable(format!("postgresql: {e}")),
            None => Error::Backend(format!("postgresql: {e}")),
        }
    }
}
