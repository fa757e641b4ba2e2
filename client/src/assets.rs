//! Asset records and their history.

use serde::{Deserialize, Serialize};

/// A device record made by hand (`POST /api/v1/assets`), before its gateway reports the
/// device: the gateway's report of `slot` at `store` continues the same record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAsset {
    /// Store code.
    pub store: String,
    /// The device's id at the store, as its gateway names it (`printer-2`).
    pub slot: String,
    /// Class, e.g. `receipt-printer`.
    pub class: String,
    /// Vendor.
    #[serde(default)]
    pub vendor: String,
    /// Model.
    #[serde(default)]
    pub model: String,
    /// Serial number.
    #[serde(default)]
    pub serial: String,
    /// Firmware version.
    #[serde(default)]
    pub firmware: String,
    /// Lifecycle state (empty: `active`).
    #[serde(default)]
    pub lifecycle: String,
    /// `YYYY-MM-DD` or empty.
    #[serde(default)]
    pub purchase_date: String,
    /// `YYYY-MM-DD` or empty.
    #[serde(default)]
    pub warranty_end: String,
}

/// One asset record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    /// Asset id.
    pub id: i64,
    /// `gateway` or `device`.
    pub kind: String,
    /// Store code.
    pub store: Option<String>,
    /// The store's region.
    pub region: String,
    /// Device id in the store (or the gateway's host name).
    pub slot: Option<String>,
    /// Reporting agent.
    pub agent_id: Option<String>,
    /// Class, e.g. `receipt-printer`.
    pub class: String,
    /// Vendor.
    pub vendor: String,
    /// Model.
    pub model: String,
    /// Serial number.
    pub serial: String,
    /// Firmware version.
    pub firmware: String,
    /// Host name (gateways).
    pub hostname: String,
    /// MAC addresses, comma-separated (gateways).
    pub macs: String,
    /// Lifecycle state.
    pub lifecycle: String,
    /// Purchase date, `YYYY-MM-DD`.
    pub purchase_date: String,
    /// Warranty end, `YYYY-MM-DD`.
    pub warranty_end: String,
    /// Parent asset (a device's gateway).
    pub parent_id: Option<i64>,
    /// Free attributes.
    pub attrs: serde_json::Map<String, serde_json::Value>,
    /// First reported, ms.
    pub first_seen: i64,
    /// Last reported, ms.
    pub last_seen: Option<i64>,
    /// Last changed, ms.
    pub updated_at: i64,
}

/// One change in an asset's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// When, ms.
    pub ts: i64,
    /// `agent:<id>`, `user:<name>`, `token:<name>` or `system`.
    pub actor: String,
    /// The field (`created` for a new record).
    pub field: String,
    /// Value before.
    pub before: Option<String>,
    /// Value after.
    pub after: Option<String>,
}
/// A page of the search: the matching assets of the page and how many match in all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssetPage {
    /// Matches in all pages.
    pub total: u64,
    /// This page's assets.
    pub items: Vec<Asset>,
}
