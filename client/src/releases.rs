//! Agent releases as published.

use serde::{Deserialize, Serialize};
use storefleet_protocol::release::Release;

/// A published release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The signed manifest.
    #[serde(flatten)]
    pub release: Release,
    /// When, ms.
    pub published_at: i64,
    /// By whom.
    pub published_by: String,
}
