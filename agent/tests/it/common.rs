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

/// An MQTT client standing in for the controller (publishing commands).
pub fn controller_client(broker: SocketAddr) -> rumqttc::AsyncClient {
    let o = rumqttc::MqttOptions::new(
        format!("ctl-{}", rand::random::<u32>()),
        broker.ip().to_string(),
        broker.port(),
    );
    let (client, mut eventloop) = rumqttc::AsyncClient::new(o, 64);
    tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    client
}

/// A command for `to`, signed with `key` as the controller.
pub fn command(
    id: &str,
    action: storefleet_protocol::message::CommandAction,
    seq: u64,
    to: &str,
    exp: i64,
    key: &storefleet_protocol::SigningKey,
) -> Vec<u8> {
    use storefleet_protocol::{message::Command, now_ms, Envelope, Message, CONTROLLER_ID};
    Envelope::new(
        CONTROLLER_ID,
        seq,
        now_ms(),
        Message::Command(Command {
            id: id.into(),
            action,
        }),
    )
    .to(to)
    .expires(exp)
    .seal(key)
    .unwrap()
}

/// Waits until the sink has seen the agent's presence.
pub async fn wait_online(home: &AgentHome, sink: &storefleet_testkit::sink::Sink) {
    assert!(
        sink.wait(std::time::Duration::from_secs(15), |s| s
            .presence
            .contains_key(&home.id))
            .await,
        "agent never came online"
    );
}

/// A device of `class` probed by `probe`, with no identity typed in, within `timeout_ms`.
pub fn probed(
    class: &str,
    probe: storefleet_agent::config::Probe,
    timeout_ms: u64,
) -> storefleet_agent::config::DeviceConfig {
    storefleet_agent::config::DeviceConfig {
        id: format!("{class}-1"),
        class: class.into(),
        vendor: None,
        model: None,
        serial: None,
        firmware: None,
        interval_secs: 10,
        timeout_ms,
        address: String::new(),
        probe,
    }
}

pub use storefleet_testkit::peers::{bin as peer_bin, here as peer_here};
