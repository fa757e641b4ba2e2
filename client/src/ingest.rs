//! Messages the database refused, held for a retry.

use serde::{Deserialize, Serialize};

/// The held messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldList {
    /// How many are held.
    pub count: u64,
    /// The oldest of them, at most the limit asked for.
    pub messages: Vec<Held>,
}

/// A held message, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// The sending agent.
    pub agent_id: String,
    /// The agent's sequence number of the message.
    pub seq: u64,
    /// The agent's store.
    pub store: String,
    /// The message kind (`event`, `telemetry`...).
    pub kind: String,
    /// Why the database refused it.
    pub error: String,
    /// When it was held (last, if it came again), ms.
    pub held_at: i64,
    /// Size of the kept envelope, bytes.
    pub bytes: u64,
}

/// A held message stored again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retried {
    /// The agent.
    pub agent_id: String,
    /// The message's sequence number.
    pub seq: u64,
    /// Whether it was stored now (false: a later copy had been stored already).
    pub stored: bool,
}
