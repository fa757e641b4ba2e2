//! Enrolled gateways as the API shows them.

use serde::{Deserialize, Serialize};

/// An enrolled agent as shown to people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    /// Agent id.
    pub id: String,
    /// Store code.
    pub store: String,
    /// Public key (base64).
    pub public_key: String,
    /// Gateway host name at enrollment.
    pub hostname: String,
    /// Agent version last reported.
    pub agent_version: String,
    /// When enrolled, ms.
    pub enrolled_at: i64,
    /// Last presence said: `online`, `offline` or `unknown`.
    pub presence: String,
    /// When that presence was said, ms.
    pub presence_at: Option<i64>,
    /// When the agent process started, ms.
    pub started_at: Option<i64>,
    /// Last message of any kind, ms.
    pub last_seen: Option<i64>,
    /// Online now: said online and heard from recently.
    pub online: bool,
    /// When its key was revoked, ms.
    pub revoked_at: Option<i64>,
}

/// A gateway opened for re-enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reopened {
    /// The agent.
    pub agent_id: String,
    /// Until when a new key may enroll it, ms.
    pub reenroll_until: i64,
}
