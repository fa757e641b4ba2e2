//! A Mosquitto's files for the fleet's agents (`storefleet broker mosquitto`).

use serde::{Deserialize, Serialize};

/// The files for Mosquitto.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MosquittoFiles {
    /// `password_file` content.
    pub passwd: String,
    /// `acl_file` content.
    pub acl: String,
    /// A snippet for `mosquitto.conf` naming both (paths under `dir`).
    pub conf: String,
    /// Agents in the password file.
    pub agents: usize,
}
