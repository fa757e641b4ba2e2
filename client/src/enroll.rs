//! Enrollment tokens.

use serde::{Deserialize, Serialize};

/// A token as listed (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Token id.
    pub id: String,
    /// Store it enrolls into.
    pub store: String,
    /// Who made it.
    pub created_by: String,
    /// When, ms.
    pub created_at: i64,
    /// Expiry, ms.
    pub expires_at: i64,
    /// Uses allowed; `None`: any number until expiry.
    pub max_uses: Option<i64>,
    /// Uses so far.
    pub uses: i64,
    /// When revoked, ms.
    pub revoked_at: Option<i64>,
    /// A note from its creator.
    pub note: String,
}

/// A token just made: its text (shown this once) and its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    /// The token to give the installer.
    pub token: String,
    /// Its record.
    pub info: TokenInfo,
}

/// What a new token needs.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct NewToken {
    /// Store code.
    pub store: String,
    /// Lifetime in hours; default from config.
    #[serde(default)]
    pub ttl_hours: Option<u64>,
    /// Lifetime in seconds, for short-lived tokens (overrides `ttl_hours`).
    #[serde(default)]
    pub ttl_secs: Option<u64>,
    /// Uses allowed; default 1; 0 means any number until expiry.
    #[serde(default)]
    pub max_uses: Option<i64>,
    /// A note.
    #[serde(default)]
    pub note: String,
}
