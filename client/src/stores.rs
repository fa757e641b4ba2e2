//! Stores.

use serde::{Deserialize, Serialize};

/// A store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Store {
    /// Store code, e.g. `S123`.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Region, e.g. `north`.
    #[serde(default)]
    pub region: String,
    /// Street address.
    #[serde(default)]
    pub address: String,
    /// IANA time zone, e.g. `Europe/Berlin`.
    #[serde(default = "utc")]
    pub timezone: String,
    /// Trading hours, e.g. `Mo-Sa 08:00-20:00`.
    #[serde(default)]
    pub trading_hours: String,
    /// Free labels for selecting stores in fleet tasks, e.g. `pilot`, `mall`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Where the store is (dispatch weighs engineers' drives to it; the overview's map).
    #[serde(default)]
    pub place: Option<storefleet_core::geo::Coord>,
}

impl Store {
    /// A new store with only its code: no name yet, in UTC, without hours, tags or place.
    pub fn blank(code: &str) -> Store {
        Store {
            code: code.to_owned(),
            name: String::new(),
            region: String::new(),
            address: String::new(),
            timezone: utc(),
            trading_hours: String::new(),
            tags: Vec::new(),
            place: None,
        }
    }
}

fn utc() -> String {
    "UTC".into()
}

/// A device a store's gateway found on the store's network and that is not configured
/// on it yet (`GET /api/v1/stores/{code}/discovered`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveredDevice {
    /// Its IPv4 address.
    pub address: String,
    /// The agent whose sweep found it.
    pub agent_id: String,
    /// The protocols it answered: `snmp`, `ipp`, `modbus`.
    pub protocols: Vec<String>,
    /// What it seems to be (`ups`, `printer`, `switch`, `router`, `modbus-device`,
    /// `snmp-device`).
    pub class: String,
    /// Maker, when it said.
    pub vendor: Option<String>,
    /// Model, when it said.
    pub model: Option<String>,
    /// Serial number, when it said.
    pub serial: Option<String>,
    /// Firmware, when it said.
    pub firmware: Option<String>,
    /// The IPP URL it answered at.
    pub ipp_url: Option<String>,
    /// Its own description.
    pub description: String,
    /// When the sweep that found it ended, Unix milliseconds.
    pub swept_at_ms: i64,
}
