//! The controller's services: what a caller may do, done once for the API, the UI and the
//! CLI (through the API). A service checks the caller's rights beyond the route's role,
//! runs the change in one transaction, writes the audit line and wakes the engines that
//! must react, on every replica. HTTP handlers and pages only parse, call and render.

pub mod agents;
pub mod ingest;
pub mod tasks;
pub mod tickets;

use crate::auth::{self, Role};
use crate::db::DbError;

/// Who is calling, as the access guard ([`crate::access`]) found them.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The actor as written into history: `user:NAME` or `user:NAME/token:TOKEN`.
    pub actor: String,
    /// The user.
    pub user: String,
    /// The role in force.
    pub role: Role,
    /// The id of the token the call came with, if any.
    pub token: Option<String>,
    /// The person's own time zone for pages; empty: UTC.
    pub zone: String,
}

impl From<auth::Caller> for Principal {
    fn from(c: auth::Caller) -> Self {
        Principal {
            actor: c.actor(),
            role: c.role,
            token: c.token.map(|(id, _)| id),
            user: c.user,
            zone: c.zone,
        }
    }
}

impl Principal {
    /// Refuses unless the caller has at least `role` (for rights finer than a route's).
    pub fn require(&self, role: Role) -> Result<()> {
        if self.role >= role {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "this needs the {role} role; {} has {}",
                self.actor, self.role
            )))
        }
    }
}

/// Why a service refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller may not do this; the message says which right it needs.
    #[error("{0}")]
    Forbidden(String),
    /// The storage said no (not found, invalid, a conflict) or failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A service's result.
pub type Result<T> = std::result::Result<T, Error>;
