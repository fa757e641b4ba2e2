//! What the benches share: their knobs and their broker.

use std::net::SocketAddr;

/// The number in environment variable `name`, else `default`.
pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Mosquitto when `STOREFLEET_TEST_MQTT` is set, else the embedded broker started in this
/// process; its address and its name for the report.
pub fn broker() -> (SocketAddr, &'static str) {
    if let Some(a) = crate::external_mqtt() {
        return (a, "Mosquitto");
    }
    let addr: SocketAddr = ([127, 0, 0, 1], crate::free_port()).into();
    crate::broker::start_in_process(addr);
    (addr, "embedded rumqttd")
}
