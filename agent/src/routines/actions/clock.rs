//! `clock.offset`: the gateway's clock agrees with an NTP server (SNTP, RFC 4330). A gateway
//! whose clock drifts signs messages the controller rejects as expired and stamps receipts
//! with the wrong time, so this is worth a routine of its own.
//!
//! ```toml
//! action = "clock.offset"
//! args = { server = "ntp.example:123", max_offset_ms = 1000 }   # server: [routines] ntp_server
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::{Cx, Done};

/// Seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix).
const NTP_UNIX: f64 = 2_208_988_800.0;

fn second() -> i64 {
    1000
}

fn five() -> u64 {
    5
}

/// `clock.offset`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offset {
    /// `host:port`; empty: `[routines] ntp_server`.
    #[serde(default)]
    pub server: String,
    /// Largest acceptable offset, ms.
    #[serde(default = "second")]
    pub max_offset_ms: i64,
    /// Seconds to wait for the answer.
    #[serde(default = "five")]
    pub timeout_secs: u64,
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// An NTP timestamp (as 8 bytes) for a Unix time in seconds.
pub fn to_ntp(unix: f64) -> [u8; 8] {
    let t = unix + NTP_UNIX;
    let secs = t.trunc() as u32;
    let frac = (t.fract() * 4_294_967_296.0) as u32;
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&secs.to_be_bytes());
    b[4..].copy_from_slice(&frac.to_be_bytes());
    b
}

/// The Unix time in seconds of an NTP timestamp.
pub fn from_ntp(b: &[u8]) -> f64 {
    let secs = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let frac = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    f64::from(secs) + f64::from(frac) / 4_294_967_296.0 - NTP_UNIX
}

/// Offset of the server's clock from ours, ms (positive: ours is behind), and the round
/// trip, ms. `t1`: our send time, `t4`: our receive time, `reply`: the server's packet.
pub fn offset(t1: f64, t4: f64, sent: &[u8; 8], reply: &[u8]) -> Result<(f64, f64), String> {
    if reply.len() < 48 {
        return Err(format!("short NTP reply ({} bytes)", reply.len()));
    }
    let mode = reply[0] & 0x7;
    if mode != 4 {
        return Err(format!("NTP reply in mode {mode}, not a server's"));
    }
    if reply[1] == 0 {
        return Err("NTP server refused (kiss-o'-death)".into());
    }
    if reply[24..32] != sent[..] {
        return Err("NTP reply does not answer our request".into());
    }
    let (t2, t3) = (from_ntp(&reply[32..40]), from_ntp(&reply[40..48]));
    Ok((
        ((t2 - t1) + (t3 - t4)) * 500.0,
        ((t4 - t1) - (t3 - t2)) * 1000.0,
    ))
}

impl Offset {
    async fn measure(&self, server: &str) -> Result<(f64, f64), String> {
        let sock = tokio::net::UdpSocket::bind(if server.starts_with('[') {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        })
        .await
        .map_err(|e| format!("udp: {e}"))?;
        sock.connect(server)
            .await
            .map_err(|e| format!("{server}: {e}"))?;
        let mut req = [0u8; 48];
        req[0] = 0x23; // version 4, client
        let t1 = unix_now();
        let sent = to_ntp(t1);
        req[40..48].copy_from_slice(&sent);
        sock.send(&req)
            .await
            .map_err(|e| format!("{server}: {e}"))?;
        let mut buf = [0u8; 128];
        let n = tokio::time::timeout(Duration::from_secs(self.timeout_secs), sock.recv(&mut buf))
            .await
            .map_err(|_| format!("{server}: no answer within {} s", self.timeout_secs))?
            .map_err(|e| format!("{server}: {e}"))?;
        offset(t1, unix_now(), &sent, &buf[..n])
    }

    /// Runs it.
    pub async fn run(&self, cx: &Cx) -> Done {
        let server = if self.server.is_empty() {
            cx.policy.ntp_server.clone()
        } else {
            self.server.clone()
        };
        match self.measure(&server).await {
            Ok((off, rtt)) => Done::from(
                off.abs() <= self.max_offset_ms as f64,
                format!(
                    "offset {off:+.0} ms from {server} (round trip {rtt:.0} ms), allowed ±{} ms",
                    self.max_offset_ms
                ),
            ),
            Err(e) => Done::fail(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal SNTP responder whose clock runs `skew` seconds ahead. A stand-in: no NTP
    /// server can be started in the test environment, so the wire format is exercised
    /// against this instead.
    async fn responder(skew: f64) -> String {
        let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = s.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let mut buf = [0u8; 48];
            while let Ok((_, from)) = s.recv_from(&mut buf).await {
                let mut r = [0u8; 48];
                r[0] = 0x24;
                r[1] = 2;
                r[24..32].copy_from_slice(&buf[40..48]);
                let now = unix_now() + skew;
                r[32..40].copy_from_slice(&to_ntp(now));
                r[40..48].copy_from_slice(&to_ntp(now));
                let _ = s.send_to(&r, from).await;
            }
        });
        addr
    }

    fn cx() -> Cx {
        Cx {
            policy: crate::config::RoutinesSection::default(),
        }
    }

    #[tokio::test]
    async fn offset_is_measured_and_judged() {
        let fine = responder(0.0).await;
        let d = Offset {
            server: fine,
            max_offset_ms: 500,
            timeout_secs: 2,
        }
        .run(&cx())
        .await;
        assert!(d.ok, "{}", d.output);
        let ahead = responder(5.0).await;
        let d = Offset {
            server: ahead,
            max_offset_ms: 500,
            timeout_secs: 2,
        }
        .run(&cx())
        .await;
        assert!(!d.ok, "{}", d.output);
        assert!(
            d.output.contains("offset +50") || d.output.contains("offset +49"),
            "{}",
            d.output
        );
    }

    #[test]
    fn replies_that_do_not_answer_us_are_refused() {
        let sent = to_ntp(1000.0);
        let mut r = [0u8; 48];
        r[0] = 0x24;
        r[1] = 1;
        assert!(offset(1000.0, 1000.1, &sent, &r)
            .unwrap_err()
            .contains("does not answer"));
        r[24..32].copy_from_slice(&sent);
        r[1] = 0;
        assert!(offset(1000.0, 1000.1, &sent, &r)
            .unwrap_err()
            .contains("kiss"));
        assert!(offset(1000.0, 1000.1, &sent, &r[..20])
            .unwrap_err()
            .contains("short"));
        assert!((from_ntp(&to_ntp(1_700_000_000.25)) - 1_700_000_000.25).abs() < 1e-6);
    }
}
