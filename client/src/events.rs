//! Events as stored.

use serde::{Deserialize, Serialize};

/// A stored event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Row id.
    pub id: i64,
    /// Agent that sent it.
    pub agent_id: String,
    /// Store.
    pub store: String,
    /// The agent's event id.
    pub event_id: String,
    /// When it happened, ms.
    pub ts: i64,
    /// Device; empty for the gateway.
    pub device: String,
    /// Dotted code.
    pub code: String,
    /// Severity.
    pub severity: String,
    /// Message.
    pub message: String,
    /// Structured details.
    pub data: serde_json::Value,
}
