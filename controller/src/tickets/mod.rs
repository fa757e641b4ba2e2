//! Dispatch tickets: one per problem, carrying the store, the assets, what was already
//! tried, an SLA clock and a timeline, assigned to the best field engineer.
//!
//! - [`lifecycle`]: statuses, actions, priority and SLA (pure).
//! - [`place`]: what a firing alert becomes: muted, waiting for its self-heal, attached,
//!   reopening a ticket, or a new one (pure).
//! - [`assign`]: the best engineer, and why (pure).
//! - [`db`]: tickets, their assets and timeline in SQLite; actions with their webhooks.
//! - [`pass`] (and `upkeep`): one pass of ticket work in one transaction.
//! - [`engine`]: the loop that evaluates rules and applies all of the above.

pub use storefleet_core::assign;
pub mod calendar;
pub mod db;
pub mod engine;
pub use storefleet_core::lifecycle;
pub mod parts;
pub mod pass;
pub mod place;
pub mod standing;
mod upkeep;

use std::sync::Arc;

use crate::config::{TicketsSection, WebhookConfig};

pub use storefleet_client::tickets::{Entry, Ticket, TicketAsset, TicketView};

/// What ticket work needs from the configuration.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// `[tickets]`.
    pub settings: TicketsSection,
    /// Webhooks.
    pub hooks: Arc<Vec<WebhookConfig>>,
    /// The UI's base URL, for links in webhooks.
    pub public_url: String,
}

/// What a pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Alerts fired.
    pub fired: u32,
    /// Alerts cleared.
    pub cleared: u32,
    /// Tickets opened.
    pub opened: u32,
    /// Alerts attached to an open ticket.
    pub attached: u32,
    /// Tickets reopened.
    pub reopened: u32,
    /// Tickets resolved because their alerts cleared.
    pub resolved: u32,
    /// Escalations.
    pub escalated: u32,
    /// Assignments.
    pub assigned: u32,
    /// Alerts healed by their routine.
    pub healed: u32,
}

/// Everything one pass needs besides the connection.
pub struct Input<'a> {
    /// Configuration.
    pub ctx: &'a Ctx,
    /// Rules by name.
    pub rules: &'a std::collections::HashMap<String, crate::alerts::Rule>,
    /// What the evaluator said.
    pub changes: &'a [crate::alerts::eval::Change],
    /// Now, ms.
    pub now: i64,
}
