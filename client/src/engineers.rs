//! Field engineers and their load.

pub use storefleet_core::engineer::Engineer;

/// An engineer with the open tickets they carry now, as the API lists them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EngineerLoad {
    /// The engineer.
    #[serde(flatten)]
    pub engineer: Engineer,
    /// Open tickets assigned to them.
    pub load: u32,
}
