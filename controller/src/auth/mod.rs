//! People and programs: users with a role, passwords and sessions ([`users`]), and API
//! bearer tokens that belong to a user ([`tokens`]).
//!
//! Passwords are stored as argon2id ([`password`]); sign-in attempts are limited per user
//! and per address ([`limit`]); session cookies and API tokens are random 256-bit values of
//! which only the SHA-256 is stored. Roles and route rules are in [`roles`]. Nothing here
//! logs a secret.

pub mod limit;
pub mod password;
pub mod roles;
pub mod tokens;
pub mod users;

pub use password::{check_password, hash_password, Checked};
pub use roles::{Access, Role};
pub use tokens::{api_token, create_api_token, ApiToken, NewToken};
pub use users::{
    create_session, end_session, password_hash, replace_hash, session_user, set_user, User,
};

use base64::Engine as _;
use rand::RngCore as _;
use storefleet_storage::{args, Sql, SqlExt as _};

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

/// Compares without an early exit, so that timing tells nothing about where two secrets
/// (or their hashes) differ.
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether anyone can sign in or call the API yet.
pub fn has_principals(c: &dyn Sql) -> Result<bool, DbError> {
    let n = c.int(
        "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL) AS n",
        args![],
        "n",
    )?;
    Ok(n > 0)
}

/// Who is calling, as resolved from a session cookie or a bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user.
    pub user: String,
    /// The role in force: the user's, or the token's when lower.
    pub role: Role,
    /// The token's id and name when the call came with one.
    pub token: Option<(String, String)>,
    /// The person's own time zone for pages; empty: UTC.
    pub zone: String,
}

impl Caller {
    /// How the caller is written into history and logs: `user:NAME`, or
    /// `user:NAME/token:TOKEN_NAME` for a call with a token.
    pub fn actor(&self) -> String {
        match &self.token {
            Some((_, name)) => format!("user:{}/token:{name}", self.user),
            None => format!("user:{}", self.user),
        }
    }
}
