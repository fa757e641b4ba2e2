//! Roles and the access rule of every route.
//!
//! Roles are ordered: `viewer` reads the fleet, assets, tasks, tickets and KPIs; `engineer`
//! also works the tickets assigned to them and uses the field view (and sees only their own
//! tickets);
//! `dispatcher` also runs tickets, engineers and silences, `admin` also runs the fleet
//! (stores, enrollment, agents, tasks, releases) and people (users, everyone's tokens).
//! Every route is registered with its [`Access`] through [`crate::access::Routes`], so a
//! route without a rule cannot exist.

pub use storefleet_client::auth::Role;

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
