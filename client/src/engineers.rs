//! Field engineers, their load and where they last checked in.

pub use storefleet_core::engineer::Engineer;
pub use storefleet_core::geo::Coord;

/// An engineer with the open tickets they carry now, as the API lists them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EngineerLoad {
    /// The engineer.
    #[serde(flatten)]
    pub engineer: Engineer,
    /// Open tickets assigned to them.
    pub load: u32,
    /// Their last check-in at a store (set by the check-in; dispatch weighs the drive from
    /// there on the same day).
    #[serde(default)]
    pub last_check_in: Option<CheckIn>,
}

/// Where and when an engineer last checked in.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CheckIn {
    /// The store.
    pub store: String,
    /// When, ms since the epoch.
    pub at: i64,
    /// The store's place then, when it had one.
    pub place: Option<Coord>,
}
