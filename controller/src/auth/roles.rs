//! Roles and the access rule of every route.
//!
//! Roles are ordered: `viewer` reads the fleet, assets, tasks, tickets and KPIs; `engineer`
//! also works the tickets assigned to them and uses the field view (and sees only their own
//! tickets);
//! `dispatcher` also runs tickets, engineers and silences, `admin` also runs the fleet
//! (stores, enrollment, agents, tasks, releases) and people (users, everyone's tokens).
//! Every route is registered with its [`Access`] through [`crate::access::Routes`], so a
//! route without a rule cannot exist.

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

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not (health, sign-in, enrollment with its own token, release
    /// downloads that agents check against their signed manifest).
    Public,
    /// `/metrics`: anyone when `http.metrics_public`, else a viewer.
    Metrics,
    /// Signed in with at least this role.
    AtLeast(Role),
}

/// Anyone.
pub const PUBLIC: Access = Access::Public;
/// At least a viewer.
pub const VIEWER: Access = Access::AtLeast(Role::Viewer);
/// At least an engineer.
pub const ENGINEER: Access = Access::AtLeast(Role::Engineer);
/// At least a dispatcher.
pub const DISPATCHER: Access = Access::AtLeast(Role::Dispatcher);
/// An admin.
pub const ADMIN: Access = Access::AtLeast(Role::Admin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_named() {
        assert!(Role::Viewer < Role::Engineer && Role::Engineer < Role::Dispatcher);
        assert!(Role::Dispatcher < Role::Admin);
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        assert_eq!(Role::parse("root"), None);
    }
}
