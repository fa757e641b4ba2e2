//! The embedded MQTT broker: rumqttd with settings for one machine (MQTT 3.1.1, no TLS).
//!
//! With an [`Auth`] check (what the controller runs) every client must authenticate:
//! the check sees the client id, the username and the password of each CONNECT, and a
//! client it refuses is disconnected without a CONNACK. rumqttd has no topic rules: an
//! authenticated client may subscribe to any topic; messages stay signed end to end, so
//! what it can do there is read, not forge. Without a check (the test peers) anyone may
//! connect.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rumqttd::{Config, ConnectionSettings, RouterConfig, ServerSettings};

/// Largest MQTT payload the broker accepts, bytes.
pub const MAX_PAYLOAD_BYTES: usize = 5 * 1024 * 1024;

/// Decides whether a CONNECT may go on: `(client_id, username, password)`.
pub type Auth = std::sync::Arc<dyn Fn(&str, &str, &str) -> bool + Send + Sync>;

/// Broker settings for `listen` with room for `max_connections` clients, checking each
/// CONNECT with `auth` when given.
pub fn config(listen: SocketAddr, max_connections: usize, auth: Option<Auth>) -> Config {
    let mut connections = ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: MAX_PAYLOAD_BYTES,
        max_inflight_count: 1000,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    if let Some(check) = auth {
        connections.set_auth_handler(move |client_id: String, user: String, pass: String| {
            std::future::ready(check(&client_id, &user, &pass))
        });
    }
    let server = ServerSettings {
        name: "v4".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    Config {
        id: 0,
        router: RouterConfig {
            max_connections,
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
pub fn run_blocking(
    listen: SocketAddr,
    max_connections: usize,
    auth: Option<Auth>,
) -> Result<(), String> {
    rumqttd::Broker::new(config(listen, max_connections, auth))
        .start()
        .map_err(|e| e.to_string())
}

/// Why the embedded broker did not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The broker thread could not be made.
    #[error("cannot start the broker thread: {0}")]
    Thread(std::io::Error),
    /// Nothing listened on the address in time (taken, or not ours to bind).
    #[error("the embedded broker does not listen on {0} (is the port taken?)")]
    NotListening(SocketAddr),
}

/// Starts the broker on a background thread and waits until it accepts connections.
pub fn start_in_process(
    listen: SocketAddr,
    max_connections: usize,
    auth: Option<Auth>,
) -> Result<(), BrokerError> {
    let checked = auth.is_some();
    // Fail early and clearly when the port is taken (rumqttd would only log it).
    drop(std::net::TcpListener::bind(listen).map_err(|_| BrokerError::NotListening(listen))?);
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            if let Err(e) = run_blocking(listen, max_connections, auth) {
                eprintln!("embedded broker on {listen} stopped: {e}");
            }
        })
        .map_err(BrokerError::Thread)?;
    // A broker that checks credentials closes an anonymous probe without a CONNACK: then
    // an accepted TCP connection is the sign of life.
    let up = if checked {
        wait_accepting(listen, Duration::from_secs(10))
    } else {
        wait_listening(listen, Duration::from_secs(10))
    };
    if up {
        Ok(())
    } else {
        Err(BrokerError::NotListening(listen))
    }
}

/// Waits until an MQTT broker answers on `addr` (a CONNECT that gets a CONNACK, then a
/// clean DISCONNECT, so the broker has nothing to complain about); `false` after `limit`.
pub fn wait_listening(addr: SocketAddr, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if mqtt_ping(addr).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn wait_accepting(addr: SocketAddr, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn mqtt_ping(addr: SocketAddr) -> std::io::Result<()> {
    clear_session(addr, "sf-probe")
}

/// Connects as `client_id` with a clean session and disconnects: the broker forgets that
/// client's persistent session (and the messages it was keeping for it).
pub fn clear_session(addr: SocketAddr, client_id: &str) -> std::io::Result<()> {
    use std::io::{Read as _, Write as _};
    let client_id = client_id.as_bytes();
    if client_id.len() > 200 {
        return Err(std::io::Error::other("client id too long"));
    }
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    // CONNECT, MQTT 3.1.1, clean session, keep-alive 10 s.
    let mut pkt = vec![
        0x10,
        (10 + 2 + client_id.len()) as u8,
        0,
        4,
        b'M',
        b'Q',
        b'T',
        b'T',
        4,
        0x02,
        0,
        10,
        0,
        client_id.len() as u8,
    ];
    pkt.extend_from_slice(client_id);
    s.write_all(&pkt)?;
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack)?;
    if ack[0] != 0x20 {
        return Err(std::io::Error::other("not a CONNACK"));
    }
    s.write_all(&[0xe0, 0x00])
}
