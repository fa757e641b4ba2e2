//! People, their roles and API tokens.

use serde::{Deserialize, Serialize};

/// A person's or a token's role, from least to most rights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads the fleet, assets, tasks, tickets and KPIs.
    Viewer,
    /// A field engineer: reads, and works their own tickets.
    Engineer,
    /// Dispatch: tickets, engineers, silences.
    Dispatcher,
    /// Everything: the fleet, enrollment, tasks, releases, users.
    Admin,
}

impl Role {
    /// All roles, least first.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Engineer, Role::Dispatcher, Role::Admin];

    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Engineer => "engineer",
            Role::Dispatcher => "dispatcher",
            Role::Admin => "admin",
        }
    }

    /// Parses a role name.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An API token as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// Token id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The user it belongs to.
    pub user: String,
    /// Its role.
    pub role: Role,
    /// When made, ms.
    pub created_at: i64,
    /// Last used, ms (to the minute).
    pub last_used: Option<i64>,
    /// When revoked, ms.
    pub revoked_at: Option<i64>,
}

/// What a new token needs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// A name saying what uses it.
    pub name: String,
    /// Its role; the owner's when absent. Never above the owner's.
    #[serde(default)]
    pub role: Option<Role>,
}

/// A token just made: its text (shown this once) and its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedApiToken {
    /// The bearer token.
    pub token: String,
    /// Its record.
    pub info: ApiToken,
}

/// A user as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Sign-in name (for engineers: their engineer id).
    pub name: String,
    /// Role.
    pub role: Role,
    /// When made, ms.
    pub created_at: i64,
    /// When disabled, ms.
    pub disabled_at: Option<i64>,
}

/// A new user, as the API takes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Sign-in name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Password.
    pub password: String,
}

/// A change of a user's role or of whether they are disabled; what is absent stays.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    /// New role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Disabled or enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// A new password.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The new password.
    pub password: String,
    /// The current password, when users change their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_password: Option<String>,
}

/// A password changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordChanged {
    /// Whose.
    pub user: String,
    /// Their other sessions that ended.
    pub sessions_ended: u64,
}
