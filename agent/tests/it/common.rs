//! Shared helpers: the testkit's agent harness, pointed at the binary under test.

use std::net::SocketAddr;

pub use storefleet_testkit::agent::{
    buffer_bytes, http, keys, metric, points_body, post_json, AgentHome,
};

/// The agent binary under test.
pub const AGENT: &str = env!("CARGO_BIN_EXE_storefleet-agent");

/// A temporary home for the binary under test, pointed at `mqtt`.
pub fn agent_home(mqtt: SocketAddr, extra: &str) -> AgentHome {
    AgentHome::new(std::path::Path::new(AGENT), mqtt, extra)
}
