//! Test peers for Storefleet: what the agent talks to when there is no controller yet, and
//! what tests use to break things on purpose.
//!
//! - [`agent`]: the real agent binary in a temporary home, and HTTP calls to it.
//! - [`bench`]: the benches' knobs and broker.
//! - [`broker`]: the embedded MQTT broker (rumqttd), in-process or as its own process
//!   (so that a test can kill and restart it).
//! - [`peers`]: the Python device peers (snmpsim, pymodbus).
//! - [`proxy`]: a TCP proxy that can cut the line and restore it, like a store's uplink.
//! - [`sink`]: a verifying subscriber: checks every signature, dedupes on `(agent, seq)`,
//!   and records what arrived, as the controller's ingest will.
//!
//! Nothing here is a mock of a broker: the broker is a real MQTT broker, and tests also run
//! against Mosquitto when `STOREFLEET_TEST_MQTT` is set.

pub mod agent;
pub mod bench;
pub mod broker;
pub mod certs;
pub mod peers;
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

/// A port on 127.0.0.1 that refuses connections for as long as this is held: bound, never
/// listening, and without `SO_REUSEADDR`, so no other test's listener can take it
/// meanwhile (a port from [`free_port`] can be reused by a parallel test and answer).
pub struct ClosedPort {
    _socket: socket2::Socket,
    /// The port number.
    pub port: u16,
}

impl ClosedPort {
    /// Bind one.
    pub fn bind() -> ClosedPort {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a TCP socket");
        let any: std::net::SocketAddr = ([127, 0, 0, 1], 0).into();
        socket.bind(&any.into()).expect("bind an ephemeral port");
        let port = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .map(|a| a.port())
            .expect("the bound port");
        ClosedPort {
            _socket: socket,
            port,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }
}

#[cfg(test)]
mod tests {
    use super::ClosedPort;

    #[test]
    fn a_closed_port_refuses_and_cannot_be_taken() {
        let closed = ClosedPort::bind();
        let err = std::net::TcpStream::connect(closed.addr()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
        // std's listener sets SO_REUSEADDR, as tokio's does: still refused.
        assert!(std::net::TcpListener::bind(closed.addr()).is_err());
    }
}
