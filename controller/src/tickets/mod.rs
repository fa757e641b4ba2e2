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
pub mod db;
pub mod engine;
pub use storefleet_core::lifecycle;
pub mod pass;
pub mod place;
pub mod standing;
mod upkeep;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::{TicketsSection, WebhookConfig};

/// A ticket as the API and the UI show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    /// Id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Store code.
    pub store: String,
    /// Store name.
    pub store_name: String,
    /// Region.
    pub region: String,
    /// Street address.
    pub address: String,
    /// The store's time zone.
    pub timezone: String,
    /// The store's trading hours.
    pub trading_hours: String,
    /// `auto` (a rule) or `manual` (a person).
    pub source: String,
    /// The rule that opened it.
    pub rule: String,
    /// The skill the fix needs.
    pub skill: String,
    /// `critical`, `major`, `minor`.
    pub severity: String,
    /// `store`, `device`, `peripheral`.
    pub impact: String,
    /// 1 (highest) to 4.
    pub priority: u8,
    /// Status.
    pub status: String,
    /// Assigned engineer.
    pub engineer: Option<String>,
    /// Escalation level (0: none).
    pub escalation: u8,
    /// An asset is under warranty: vendor repair.
    pub vendor_repair: bool,
    /// Opened, ms.
    pub opened_at: i64,
    /// The alert fired, ms.
    pub detected_at: Option<i64>,
    /// The fault began, ms.
    pub fault_since: Option<i64>,
    /// Accepted, ms.
    pub accepted_at: Option<i64>,
    /// Checked in on site, ms.
    pub on_site_at: Option<i64>,
    /// Resolved, ms.
    pub resolved_at: Option<i64>,
    /// Closed, ms.
    pub closed_at: Option<i64>,
    /// Response deadline, ms.
    pub response_due: i64,
    /// Resolution deadline, ms.
    pub resolution_due: i64,
    /// Time on hold so far, ms.
    pub held_ms: i64,
    /// Service report.
    pub report: String,
    /// Satisfaction rating at close.
    pub rating: Option<u8>,
    /// Times reopened.
    pub reopened: u32,
    /// The problem's dedupe key.
    pub dedupe_key: String,
    /// The assets concerned.
    pub assets: Vec<TicketAsset>,
}

/// An asset on a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketAsset {
    /// Asset id.
    pub id: i64,
    /// Device id in the store (or the gateway's host name).
    pub slot: String,
    /// Class.
    pub class: String,
    /// Vendor.
    pub vendor: String,
    /// Model.
    pub model: String,
    /// Serial.
    pub serial: String,
    /// Warranty end (`YYYY-MM-DD`), empty when unknown.
    pub warranty_end: String,
    /// Under warranty when the ticket opened.
    pub under_warranty: bool,
}

/// One timeline entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Id.
    pub id: i64,
    /// When, ms.
    pub ts: i64,
    /// `alert`, `telemetry`, `self_heal`, `assignment`, `status`, `escalation`, `note`.
    pub kind: String,
    /// `system`, `user:NAME`, `token:NAME`.
    pub actor: String,
    /// For people.
    pub text: String,
    /// Details (the run's steps, the readings).
    pub data: serde_json::Value,
}

/// A ticket with its timeline, as the API answers for one ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketView {
    /// The ticket.
    pub ticket: Ticket,
    /// What happened to it, oldest first.
    pub timeline: Vec<Entry>,
}

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
