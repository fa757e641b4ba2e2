//! Stores.

use serde::{Deserialize, Serialize};

/// A store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

fn utc() -> String {
    "UTC".into()
}
