//! ICMP echo ("ping") for devices with no service to ask: an unprivileged ping socket
//! (`SOCK_DGRAM`, `IPPROTO_ICMP`/`ICMPV6`), which the kernel allows to the groups in
//! `net.ipv4.ping_group_range` (systemd's default allows every group; the package's
//! postinst allows the agent's group where it is not). No raw socket, no capability: the
//! kernel fills in the identifier and checksum and hands back only our own replies.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use socket2::{Domain, Protocol, Socket, Type};

/// The echo request: type, code 0, checksum and identifier left to the kernel, `seq`, and a
/// payload to match the reply against.
pub fn request(v6: bool, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![if v6 { 128 } else { 8 }, 0, 0, 0, 0, 0];
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Whether `answer` is the echo reply to `seq` with `payload`.
pub fn is_reply(answer: &[u8], v6: bool, seq: u16, payload: &[u8]) -> bool {
    let reply = if v6 { 129 } else { 0 };
    answer.len() == 8 + payload.len()
        && answer[0] == reply
        && answer[1] == 0
        && answer[6..8] == seq.to_be_bytes()
        && &answer[8..] == payload
}

/// Pings `host` (an address or a name) once; the round trip in ms. The caller bounds the
/// time (a host that does not answer never returns).
pub async fn ping(host: &str, seq: u16) -> Result<f64, String> {
    let ip: IpAddr = match host.parse() {
        Ok(ip) => ip,
        Err(_) => tokio::net::lookup_host((host, 0))
            .await
            .map_err(|e| format!("{host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host}: no address"))?
            .ip(),
    };
    let v6 = ip.is_ipv6();
    let (domain, protocol) = if v6 {
        (Domain::IPV6, Protocol::ICMPV6)
    } else {
        (Domain::IPV4, Protocol::ICMPV4)
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(protocol)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            "ping sockets are not allowed to this group (net.ipv4.ping_group_range)".to_owned()
        } else {
            format!("ping socket: {e}")
        }
    })?;
    socket
        .set_nonblocking(true)
        .map_err(|e| format!("ping socket: {e}"))?;
    let socket =
        tokio::net::UdpSocket::from_std(socket.into()).map_err(|e| format!("ping socket: {e}"))?;
    socket
        .connect(SocketAddr::new(ip, 0))
        .await
        .map_err(|e| format!("{ip}: {e}"))?;
    let payload: [u8; 16] = rand::random();
    let start = Instant::now();
    socket
        .send(&request(v6, seq, &payload))
        .await
        .map_err(|e| format!("{ip}: {e}"))?;
    let mut buf = [0u8; 128];
    loop {
        let n = socket
            .recv(&mut buf)
            .await
            .map_err(|e| format!("{ip}: {e}"))?;
        if is_reply(&buf[..n], v6, seq, &payload) {
            return Ok(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_reply_to_our_request_counts() {
        let p = [7u8; 16];
        let req = request(false, 3, &p);
        assert_eq!(&req[..8], &[8, 0, 0, 0, 0, 0, 0, 3]);
        let mut reply = req.clone();
        reply[0] = 0;
        reply[4..6].copy_from_slice(&[0x12, 0x34]); // the kernel's identifier
        assert!(is_reply(&reply, false, 3, &p));
        assert!(!is_reply(&reply, false, 4, &p), "another sequence");
        assert!(!is_reply(&reply, true, 3, &p), "not an ICMPv6 reply");
        assert!(!is_reply(&req, false, 3, &p), "our own request");
        assert!(!is_reply(&reply[..10], false, 3, &p), "cut short");
        let mut other = reply.clone();
        other[9] ^= 1;
        assert!(!is_reply(&other, false, 3, &p), "another payload");
        let mut v6 = request(true, 3, &p);
        assert_eq!(v6[0], 128);
        v6[0] = 129;
        assert!(is_reply(&v6, true, 3, &p));
    }
}
