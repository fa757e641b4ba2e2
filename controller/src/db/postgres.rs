//! The controller's schema on PostgreSQL.
//!
//! The PostgreSQL backend is being built domain by domain behind the storage boundary
//! (`storefleet-storage`); until every domain runs on it, `[database]` cannot select it and
//! this schema is not released, so its one migration still grows in place. Types follow
//! the SQLite schema ([`super::migrations`]): BIGINT for INTEGER, BYTEA for BLOB, DOUBLE
//! PRECISION for REAL.

/// The migrations, in order (see [`storefleet_storage::postgres::Pool::migrate`]).
pub const MIGRATIONS: &[&str] = &[
    // 1: people and their access (so far).
    r"
CREATE TABLE users (
    name        TEXT PRIMARY KEY,
    pw_hash     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    role        TEXT NOT NULL DEFAULT 'viewer',
    disabled_at BIGINT
);

CREATE TABLE sessions (
    token_hash BYTEA PRIMARY KEY,
    user_name  TEXT NOT NULL REFERENCES users(name),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_name);

CREATE TABLE api_tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    token_hash BYTEA NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_used  BIGINT,
    revoked_at BIGINT,
    user_name  TEXT NOT NULL DEFAULT 'admin',
    role       TEXT NOT NULL DEFAULT 'admin'
);
",
];
