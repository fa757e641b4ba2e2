//! People and programs: UI users with passwords and sessions, and API bearer tokens.
//!
//! Passwords are stored as argon2id ([`password`]); sign-in attempts are limited per user
//! and per address ([`limit`]); session cookies and API tokens are random 256-bit values of
//! which only the SHA-256 is stored. Nothing here logs a secret.

pub mod limit;
pub mod password;

pub use password::{check_password, hash_password, Checked};

use base64::Engine as _;
use rand::RngCore as _;
use rusqlite::{params, Connection, OptionalExtension as _};
use serde::{Deserialize, Serialize};

use crate::db::DbError;

/// Prefix of API tokens, so that a leaked one is recognisable.
pub const API_TOKEN_PREFIX: &str = "sft_";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A random secret of 32 bytes, base64url.
pub fn random_secret() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    b64(&b)
}

fn sha256(s: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
        .as_ref()
        .to_vec()
}

/// Creates or replaces a user's password.
pub fn set_user(c: &Connection, name: &str, password: &str, now: i64) -> Result<(), DbError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
    {
        return Err(DbError::Invalid(
            "user name: 1 to 64 letters, digits, '-', '_', '.' or '@'".into(),
        ));
    }
    if password.len() < 8 {
        return Err(DbError::Invalid("password: at least 8 characters".into()));
    }
    c.execute(
        "INSERT INTO users(name, pw_hash, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(name) DO UPDATE SET pw_hash = ?2",
        params![name, hash_password(password), now],
    )?;
    Ok(())
}

/// Replaces a user's stored hash (an older kind upgraded at sign-in).
pub fn replace_hash(c: &Connection, name: &str, hash: &str) -> Result<(), DbError> {
    c.execute(
        "UPDATE users SET pw_hash = ?2 WHERE name = ?1",
        params![name, hash],
    )?;
    Ok(())
}

/// The stored password hash of a user (checked off the writer thread).
pub fn password_hash(c: &Connection, name: &str) -> Result<Option<String>, DbError> {
    Ok(
        c.query_row("SELECT pw_hash FROM users WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?,
    )
}

/// Starts a session for `user`; returns the cookie value.
pub fn create_session(c: &Connection, user: &str, now: i64, hours: u64) -> Result<String, DbError> {
    let secret = random_secret();
    c.execute("DELETE FROM sessions WHERE expires_at < ?1", [now])?;
    c.execute(
        "INSERT INTO sessions(token_hash, user_name, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![sha256(&secret), user, now, now + (hours as i64) * 3_600_000],
    )?;
    Ok(secret)
}

/// The user of a live session.
pub fn session_user(c: &Connection, cookie: &str, now: i64) -> Result<Option<String>, DbError> {
    Ok(c.query_row(
        "SELECT user_name FROM sessions WHERE token_hash = ?1 AND expires_at > ?2",
        params![sha256(cookie), now],
        |r| r.get(0),
    )
    .optional()?)
}

/// Ends a session.
pub fn end_session(c: &Connection, cookie: &str) -> Result<(), DbError> {
    c.execute(
        "DELETE FROM sessions WHERE token_hash = ?1",
        [sha256(cookie)],
    )?;
    Ok(())
}

/// An API token as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// Token id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// When made, ms.
    pub created_at: i64,
    /// Last used, ms.
    pub last_used: Option<i64>,
    /// When revoked, ms.
    pub revoked_at: Option<i64>,
}

/// Makes an API token; returns its listing and its text (shown once).
pub fn create_api_token(
    c: &Connection,
    name: &str,
    now: i64,
) -> Result<(ApiToken, String), DbError> {
    if name.trim().is_empty() {
        return Err(DbError::Invalid("token name: must not be empty".into()));
    }
    let text = format!("{API_TOKEN_PREFIX}{}", random_secret());
    let id = format!("k-{}", &random_secret()[..12]);
    c.execute(
        "INSERT INTO api_tokens(id, name, token_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![id, name, sha256(&text), now],
    )?;
    Ok((
        ApiToken {
            id,
            name: name.to_owned(),
            created_at: now,
            last_used: None,
            revoked_at: None,
        },
        text,
    ))
}

/// The name of the live API token `text`, if it is one.
pub fn api_token_name(c: &Connection, text: &str) -> Result<Option<(String, String)>, DbError> {
    Ok(c.query_row(
        "SELECT id, name FROM api_tokens WHERE token_hash = ?1 AND revoked_at IS NULL",
        [sha256(text)],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()?)
}

/// Whether anyone can sign in or call the API yet.
pub fn has_principals(c: &Connection) -> Result<bool, DbError> {
    let n: i64 = c.query_row(
        "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL)",
        [],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}
