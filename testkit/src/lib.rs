//! Test peers for Storefleet: what the agent talks to when there is no controller yet, and
//! what tests use to break things on purpose.
//!
//! - [`agent`]: the real agent binary in a temporary home, and HTTP calls to it.
//! - [`broker`]: the embedded MQTT broker (rumqttd), in-process or as its own process
//!   (so that a test can kill and restart it).
//! - [`proxy`]: a TCP proxy that can cut the line and restore it, like a store's uplink.
//! - [`sink`]: a verifying subscriber: checks every signature, dedupes on `(agent, seq)`,
//!   and records what arrived, as the controller's ingest will.
//!
//! Nothing here is a mock of a broker: the broker is a real MQTT broker, and tests also run
//! against Mosquitto when `STOREFLEET_TEST_MQTT` is set.

pub mod agent;
pub mod broker;
pub mod certs;
pub mod proxy;
pub mod sink;

/// The MQTT broker address tests should use besides the embedded one, from
/// `STOREFLEET_TEST_MQTT` (`host:port`, e.g. `127.0.0.1:1883`), if set.
pub fn external_mqtt() -> Option<std::net::SocketAddr> {
    let v = std::env::var("STOREFLEET_TEST_MQTT").ok()?;
    let v = v.trim_start_matches("mqtt://");
    use std::net::ToSocketAddrs as _;
    v.to_socket_addrs().ok()?.next()
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}
