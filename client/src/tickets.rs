//! Dispatch tickets.

use serde::{Deserialize, Serialize};

use storefleet_core::alerts::{Impact, Severity};

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
    /// The lowest skill level that may take it.
    #[serde(default)]
    pub level: storefleet_core::engineer::Level,
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
    /// Visits on site (check-ins); one for a first-time fix.
    #[serde(default)]
    pub visits: u32,
    /// Spare parts: needed, ordered, used (one ticket's own read only; empty in lists).
    #[serde(default)]
    pub parts: Vec<Part>,
}

/// Where a spare part on a ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartState {
    /// The fix needs it.
    Needed,
    /// Ordered, on its way.
    Ordered,
    /// Fitted.
    Used,
    /// Not needed after all, or sent back.
    Returned,
}

impl PartState {
    /// `needed`, `ordered`, `used` or `returned`.
    pub fn as_str(self) -> &'static str {
        match self {
            PartState::Needed => "needed",
            PartState::Ordered => "ordered",
            PartState::Used => "used",
            PartState::Returned => "returned",
        }
    }

    /// The state named `s`.
    pub fn parse(s: &str) -> Option<PartState> {
        [
            PartState::Needed,
            PartState::Ordered,
            PartState::Used,
            PartState::Returned,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

fn needed() -> PartState {
    PartState::Needed
}

fn one() -> u32 {
    1
}

/// A spare part on a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// Id.
    pub id: i64,
    /// Part number or name (`Epson 2141001 cutter unit`).
    pub part: String,
    /// How many.
    pub quantity: u32,
    /// Where it stands.
    pub state: PartState,
    /// A note (supplier, order number).
    pub note: String,
    /// Who changed it last.
    pub updated_by: String,
    /// When, ms.
    pub updated_at: i64,
}

/// A spare part added to a ticket (`POST /api/v1/tickets/{id}/parts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPart {
    /// Part number or name, 1 to 120 characters.
    pub part: String,
    /// How many (1 to 1000; default 1).
    #[serde(default = "one")]
    pub quantity: u32,
    /// Default needed.
    #[serde(default = "needed")]
    pub state: PartState,
    /// A note, at most 500 characters.
    #[serde(default)]
    pub note: String,
}

/// A part's new state (`PATCH /api/v1/tickets/{id}/parts/{part}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartChange {
    /// The new state.
    pub state: PartState,
    /// A new note; absent keeps it.
    #[serde(default)]
    pub note: Option<String>,
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
/// What a new ticket is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTicket {
    /// Store code.
    pub store: String,
    /// Title.
    pub title: String,
    /// The skill the fix needs.
    pub skill: String,
    /// The lowest skill level that may take it.
    #[serde(default)]
    pub level: storefleet_core::engineer::Level,
    /// `critical`, `major` or `minor`.
    pub severity: Severity,
    /// `store`, `device` or `peripheral`.
    #[serde(default = "peripheral")]
    pub impact: Impact,
    /// The device concerned (its assets go on the ticket).
    #[serde(default)]
    pub device: Option<String>,
    /// What was reported (first timeline entry).
    #[serde(default)]
    pub description: String,
    /// Dedupe key; manual tickets get their own.
    #[serde(skip)]
    pub dedupe_key: String,
    /// The rule (auto tickets).
    #[serde(skip)]
    pub rule: String,
    /// The alert fired, ms (auto tickets).
    #[serde(skip)]
    pub detected_at: Option<i64>,
    /// The fault began, ms (auto tickets).
    #[serde(skip)]
    pub fault_since: Option<i64>,
    /// Start at this escalation level (a tripped circuit breaker).
    #[serde(skip)]
    pub escalation: u8,
}

fn peripheral() -> Impact {
    Impact::Peripheral
}
