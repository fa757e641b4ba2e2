//! `[upload]`: when data leaves the gateway, and how fast.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::StoreSection;

/// `[upload]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UploadSection {
    /// Seconds a live reading may wait for others, so that readings travel in fuller,
    /// better-compressed batches (events never wait); 0: at once.
    pub telemetry_delay_secs: u64,
    /// When telemetry is sent.
    pub telemetry: UploadWhen,
    /// When the inventory is sent.
    pub inventory: UploadWhen,
    /// Most bytes a second sent to the broker (a metered backup line); 0: no cap. Events,
    /// command results and routine runs are never held back, but their bytes count.
    pub max_bytes_per_sec: u64,
}

impl Default for UploadSection {
    fn default() -> Self {
        UploadSection {
            telemetry_delay_secs: 5,
            telemetry: UploadWhen::Live,
            inventory: UploadWhen::Live,
            max_bytes_per_sec: 0,
        }
    }
}

/// When a class of data is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadWhen {
    /// As soon as it can.
    Live,
    /// Only while the store is closed (`[store] hours`); kept in the buffer meanwhile.
    Closed,
}

impl UploadSection {
    /// The buffer's policy under the store's trading hours (none: never open).
    pub fn policy(&self, store: &StoreSection) -> crate::buffer::Upload {
        crate::buffer::Upload {
            delay: Duration::from_secs(self.telemetry_delay_secs),
            telemetry_closed_only: self.telemetry == UploadWhen::Closed,
            inventory_closed_only: self.inventory == UploadWhen::Closed,
            store_time: if store.hours.trim().is_empty() {
                None
            } else {
                store.store_time().ok()
            },
        }
    }
}
