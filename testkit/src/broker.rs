//! The embedded MQTT broker: rumqttd with settings for one machine.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rumqttd::{Config, ConnectionSettings, RouterConfig, ServerSettings};

/// Broker settings for `listen`: MQTT 3.1.1, 4 MiB payloads, no TLS, no auth (loopback).
pub fn config(listen: SocketAddr) -> Config {
    let server = ServerSettings {
        name: "v4".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: 5 * 1024 * 1024,
            max_inflight_count: 1000,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: 20_000,
            max_outgoing_packet_count: 1000,
            max_segment_size: 16 * 1024 * 1024,
            max_segment_count: 10,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: rumqttd::Strategy::default(),
        },
        v4: Some(HashMap::from([("1".to_owned(), server)])),
        v5: None,
        ws: None,
        cluster: None,
        console: None,
        bridge: None,
        prometheus: None,
        metrics: None,
    }
}

/// Runs the broker on this thread until the process ends.
pub fn run_blocking(listen: SocketAddr) -> Result<(), String> {
    rumqttd::Broker::new(config(listen))
        .start()
        .map_err(|e| e.to_string())
}

/// Starts the broker on a background thread and waits until it accepts connections.
pub fn start_in_process(listen: SocketAddr) {
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            if let Err(e) = run_blocking(listen) {
                eprintln!("embedded broker on {listen} stopped: {e}");
            }
        })
        .expect("spawn broker thread");
    wait_listening(listen, Duration::from_secs(10));
}

fn wait_listening(addr: SocketAddr, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Path of the `storefleet-dev` binary, built on first use with the cargo that built the
/// caller (so a test in another package can start the broker as a process).
pub fn dev_binary() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let exe = std::env::current_exe().expect("current exe");
        // target/<profile>/deps/<test> -> target/<profile>/storefleet-dev
        let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
        let path = dir.join("storefleet-dev");
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "-p",
                "storefleet-testkit",
                "--bin",
                "storefleet-dev",
            ])
            .status()
            .expect("run cargo build for storefleet-dev");
        assert!(status.success(), "building storefleet-dev failed");
        assert!(path.exists(), "storefleet-dev not at {}", path.display());
        path
    })
    .clone()
}

/// The embedded broker as a child process that a test can stop and start again.
pub struct BrokerProcess {
    /// Where it listens.
    pub addr: SocketAddr,
    child: Option<Child>,
}

impl BrokerProcess {
    /// Starts a broker process on a free loopback port.
    pub fn start() -> BrokerProcess {
        let addr: SocketAddr = ([127, 0, 0, 1], crate::free_port()).into();
        let mut b = BrokerProcess { addr, child: None };
        b.restart();
        b
    }

    /// Kills the broker (SIGKILL: no goodbye to anyone).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same address and waits until it listens.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new(dev_binary())
            .args(["broker", "--listen", &self.addr.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn storefleet-dev broker");
        self.child = Some(child);
        assert!(
            wait_listening(self.addr, Duration::from_secs(10)),
            "broker did not listen on {}",
            self.addr
        );
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
