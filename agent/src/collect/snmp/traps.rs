//! SNMP traps from the store's devices: v1 and v2c with the community of `[snmp]`, v3
//! authPriv with its user (the sender is the authoritative engine of a trap, so its engine
//! id is learnt from the trap itself). A trap from an address that is no configured SNMP
//! device, or that does not authenticate, is dropped and counted; one that does becomes an
//! event of its device, and the device is probed at once.
//!
//! Events: UPS-MIB's on battery (`ups.on_battery`) and alarms (`ups.alarm`,
//! `ups.alarm_cleared`), the Printer MIB's alert (`printer.alert`, in the printer's words),
//! IF-MIB's link down and up (`switch.link_down`, `switch.link_up`), a restart
//! (`device.restarted`), and any other trap as `snmp.trap` naming its OID.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use snmp2::v3::{Auth, Security};
use snmp2::{MessageType, Pdu};
use storefleet_protocol::message::{Event, Severity};
use storefleet_protocol::now_ms;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{oid, Val};
use crate::buffer::{new_event_id, Buffer};
use crate::config::SnmpSection;

/// Traps handled per second at most; past that they are dropped (a device in a loop, or a
/// flood).
const PER_SECOND: u32 = 50;
/// Variables kept in an event.
const MAX_VARS: usize = 32;

/// A trap, decoded and authenticated.
#[derive(Debug, Clone, PartialEq)]
pub struct Trap {
    /// `snmpTrapOID` (for v1, as RFC 3584 translates it).
    pub oid: Vec<u64>,
    /// Its variables (without `sysUpTime` and `snmpTrapOID`).
    pub vars: Vec<(Vec<u64>, Val)>,
}

fn dotted(o: &[u64]) -> String {
    o.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

fn owned_oid(o: &snmp2::Oid<'_>) -> Vec<u64> {
    o.iter().map(Iterator::collect).unwrap_or_default()
}

fn from_pdu(pdu: &Pdu<'_>) -> Result<Trap, String> {
    let mut vars = Vec::new();
    let mut trap_oid = None;
    for (name, value) in pdu.varbinds.clone() {
        let name = owned_oid(&name);
        let value = super::owned(&value).unwrap_or(Val::Other);
        if name == oid("1.3.6.1.6.3.1.1.4.1.0") {
            if let Val::Oid(o) = value {
                trap_oid = Some(o);
            }
        } else if name != oid("1.3.6.1.2.1.1.3.0") && vars.len() < MAX_VARS {
            vars.push((name, value));
        }
    }
    let oid = match (&pdu.v1_trap_info, trap_oid) {
        (Some(v1), _) => {
            if v1.generic_trap == 6 {
                let mut o = owned_oid(&v1.enterprise);
                o.push(0);
                o.push(u64::try_from(v1.specific_trap).map_err(|_| "bad specific trap")?);
                o
            } else {
                let generic = u64::try_from(v1.generic_trap).map_err(|_| "bad generic trap")?;
                let mut o = oid("1.3.6.1.6.3.1.1.5");
                o.push(generic + 1);
                o
            }
        }
        (None, Some(o)) => o,
        (None, None) => return Err("a trap without snmpTrapOID".into()),
    };
    Ok(Trap { oid, vars })
}

/// Decodes and authenticates one datagram.
pub fn decode(datagram: &[u8], snmp: &SnmpSection) -> Result<Trap, String> {
    match Pdu::from_bytes(datagram) {
        Ok(pdu) => {
            if pdu.community != snmp.community.expose().as_bytes() {
                return Err("a trap with another community".into());
            }
            check_type(pdu.message_type)?;
            from_pdu(&pdu)
        }
        Err(snmp2::Error::AuthFailure(_)) => {
            if snmp.user.is_empty() {
                return Err("an SNMPv3 trap, and no [snmp] user".into());
            }
            let mut security =
                Security::new(snmp.user.as_bytes(), snmp.auth_password.expose().as_bytes())
                    .with_auth_protocol(super::auth_protocol(snmp.auth))
                    .with_auth(Auth::AuthPriv {
                        cipher: super::cipher(snmp.privacy),
                        privacy_password: snmp.privacy_password.expose().as_bytes().to_vec(),
                    });
            // The crate zeroes the signature in place while checking it.
            let bytes = datagram.to_vec();
            let pdu = Pdu::from_bytes_with_security(&bytes, Some(&mut security))
                .map_err(|e| super::describe(&e))?;
            check_type(pdu.message_type)?;
            from_pdu(&pdu)
        }
        Err(e) => Err(format!("not an SNMP trap: {e}")),
    }
}

fn check_type(t: MessageType) -> Result<(), String> {
    match t {
        MessageType::Trap | MessageType::TrapV1 => Ok(()),
        other => Err(format!("a {other:?}, not a trap")),
    }
}

/// The event a trap of `device` (of `class`) becomes.
pub fn event(device: &str, class: &str, trap: &Trap) -> Event {
    let o = dotted(&trap.oid);
    let text_of = |prefix: &str| {
        let p = oid(prefix);
        trap.vars
            .iter()
            .find(|(n, _)| n.starts_with(&p))
            .and_then(|(_, v)| v.text())
    };
    let (code, severity, message) = match o.as_str() {
        "1.3.6.1.2.1.33.2.0.1" => (
            "ups.on_battery",
            Severity::Warning,
            format!("{device} switched to battery"),
        ),
        "1.3.6.1.2.1.33.2.0.3" => (
            "ups.alarm",
            Severity::Warning,
            format!("{device} raised an alarm"),
        ),
        "1.3.6.1.2.1.33.2.0.4" => (
            "ups.alarm_cleared",
            Severity::Info,
            format!("{device} cleared an alarm"),
        ),
        "1.3.6.1.2.1.43.18.2.0.1" => (
            "printer.alert",
            Severity::Warning,
            match text_of("1.3.6.1.2.1.43.18.1.1.8") {
                Some(d) => format!("{device}: {d}"),
                None => format!("{device} raised an alert"),
            },
        ),
        "1.3.6.1.6.3.1.1.5.3" | "1.3.6.1.6.3.1.1.5.4" => {
            let down = o.ends_with(".3");
            let port = text_of("1.3.6.1.2.1.2.2.1.2").unwrap_or_else(|| "a port".into());
            (
                if down {
                    "switch.link_down"
                } else {
                    "switch.link_up"
                },
                if down {
                    Severity::Warning
                } else {
                    Severity::Info
                },
                format!("{device}: {port} is {}", if down { "down" } else { "up" }),
            )
        }
        "1.3.6.1.6.3.1.1.5.1" | "1.3.6.1.6.3.1.1.5.2" => (
            "device.restarted",
            Severity::Info,
            format!("{device} restarted"),
        ),
        _ => (
            "snmp.trap",
            Severity::Info,
            format!("{device} sent trap {o}"),
        ),
    };
    let mut data = serde_json::Map::new();
    data.insert("class".into(), class.into());
    data.insert("trap".into(), o.clone().into());
    let vars: serde_json::Map<String, serde_json::Value> = trap
        .vars
        .iter()
        .map(|(n, v)| {
            let shown = match v {
                Val::Int(i) => (*i).into(),
                Val::Oid(x) => dotted(x).into(),
                other => other.text().unwrap_or_default().into(),
            };
            (dotted(n), shown)
        })
        .collect();
    data.insert("vars".into(), vars.into());
    Event {
        id: new_event_id(),
        ts: now_ms(),
        device: Some(device.to_owned()),
        code: code.into(),
        severity,
        message,
        data,
    }
}

/// A device traps may come from: its id, class, and what wakes its probe.
pub struct Sender {
    /// Device id.
    pub id: String,
    /// Device class.
    pub class: String,
    /// Host (or `host:port`) of its SNMP address.
    pub address: String,
    /// Wakes its probe.
    pub poke: Arc<Notify>,
}

/// Listens on `listen` until cancelled.
pub async fn run(
    listen: String,
    snmp: SnmpSection,
    senders: Vec<Sender>,
    buffer: Buffer,
    token: CancellationToken,
) {
    // After a reload the listener it replaces may hold the port a moment longer.
    let mut tries = 0;
    let socket = loop {
        match tokio::net::UdpSocket::bind(&listen).await {
            Ok(s) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries < 30 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                tracing::error!(listen = %listen, error = %e, "Cannot listen for SNMP traps (ports under 1024 need CAP_NET_BIND_SERVICE)");
                return;
            }
        }
    };
    let mut by_ip: HashMap<IpAddr, Sender> = HashMap::new();
    for s in senders {
        match tokio::net::lookup_host(crate::config::snmp_host_port(&s.address)).await {
            Ok(mut addrs) => {
                if let Some(a) = addrs.next() {
                    by_ip.insert(a.ip(), s);
                }
            }
            Err(e) => {
                tracing::warn!(device = %s.id, error = %e, "Cannot resolve an SNMP device; its traps are not recognised");
            }
        }
    }
    tracing::info!(listen = %listen, devices = by_ip.len(), "Listening for SNMP traps");
    let mut buf = vec![0u8; 65_535];
    let (mut window, mut handled, mut dropped) = (Instant::now(), 0u32, 0u64);
    loop {
        let (n, from) = tokio::select! {
            () = token.cancelled() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "SNMP trap socket error");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        if window.elapsed() >= Duration::from_secs(1) {
            if dropped > 0 {
                tracing::warn!(
                    dropped,
                    "SNMP traps dropped: more than {PER_SECOND} a second"
                );
            }
            (window, handled, dropped) = (Instant::now(), 0, 0);
        }
        if handled >= PER_SECOND {
            dropped += 1;
            continue;
        }
        handled += 1;
        let Some(sender) = by_ip.get(&from.ip()) else {
            tracing::debug!(from = %from, "SNMP trap from no configured device, dropped");
            continue;
        };
        let trap = match decode(&buf[..n], &snmp) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(device = %sender.id, from = %from, error = %e, "SNMP trap refused");
                continue;
            }
        };
        let ev = event(&sender.id, &sender.class, &trap);
        tracing::info!(device = %sender.id, code = %ev.code, "SNMP trap");
        if let Err(e) = buffer.add_event(ev).await {
            tracing::error!(device = %sender.id, error = %e, "Cannot buffer an SNMP trap's event");
        }
        sender.poke.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traps_become_events_named_for_what_happened() {
        let link = Trap {
            oid: oid("1.3.6.1.6.3.1.1.5.3"),
            vars: vec![
                (oid("1.3.6.1.2.1.2.2.1.1.7"), Val::Int(7)),
                (
                    oid("1.3.6.1.2.1.2.2.1.2.7"),
                    Val::Bytes(b"ge-0/0/7".to_vec()),
                ),
            ],
        };
        let e = event("switch-1", "switch", &link);
        assert_eq!(e.code, "switch.link_down");
        assert_eq!(e.message, "switch-1: ge-0/0/7 is down");
        assert_eq!(e.data["vars"]["1.3.6.1.2.1.2.2.1.1.7"], 7);
        let other = Trap {
            oid: oid("1.3.6.1.4.1.534.1.0.9"),
            vars: Vec::new(),
        };
        let e = event("ups-1", "ups", &other);
        assert_eq!((e.code.as_str(), e.severity), ("snmp.trap", Severity::Info));
        assert!(e.message.contains("1.3.6.1.4.1.534.1.0.9"));
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// A v2c and a v3 (SHA, AES-128) trap as pysnmp sent them, user `storefleet` with
    /// `auth-pass-123` and `priv-pass-456`.
    const V2C: &str = "305e02010104067075626c6963a751020400d0372f0201000201003043300d06082b060102010103004301003017060a2b06010603010104010006092b06010201210200013019060c2b060102012b12010108010104095061706572206a616d";
    const V3: &str = "30819b0201033011020400fe970a020300ffe304010302010304393037040b80004fb805766d11237cc0020102020101040a73746f7265666c656574040cb0d56ef8471ba70672c057d60408ee9f8a09b3c628d30448ae8eb76be74117fd8e78a9a5840ff01ca6ae810222ac3c418de7cad421cfe7f5c0e5bf56f1f407e9fe5027fcb28241e6f511aee1a04f662a1b09cf5158a5a2d99d356a3c08eac160";

    fn store_snmp() -> SnmpSection {
        SnmpSection {
            user: "storefleet".into(),
            auth_password: crate::config::Secret::new("auth-pass-123"),
            privacy_password: crate::config::Secret::new("priv-pass-456"),
            ..SnmpSection::default()
        }
    }

    #[test]
    fn traps_as_a_real_sender_made_them_decode() {
        let t = decode(&hex(V2C), &store_snmp()).unwrap();
        assert_eq!(dotted(&t.oid), "1.3.6.1.2.1.33.2.0.1");
        assert_eq!(t.vars[0].1.text().as_deref(), Some("Paper jam"));
        let t = decode(&hex(V3), &store_snmp()).unwrap();
        assert_eq!(dotted(&t.oid), "1.3.6.1.2.1.33.2.0.1");
        let mut wrong = store_snmp();
        wrong.privacy_password = crate::config::Secret::new("priv-pass-457");
        assert!(decode(&hex(V3), &wrong).is_err());
    }

    proptest::proptest! {
        /// Whatever arrives on the trap port (a real trap with bytes changed, cut or
        /// added, or noise), decoding answers and never panics: a panic would stop the
        /// agent (release builds abort).
        #[test]
        fn no_datagram_panics_the_decoder(
            which in 0..3usize,
            flips in proptest::collection::vec((0..200usize, proptest::prelude::any::<u8>()), 0..6),
            cut in 0..220usize,
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            let mut bytes = match which { 0 => hex(V2C), 1 => hex(V3), _ => noise.clone() };
            let len = bytes.len().max(1);
            for (at, b) in flips {
                if let Some(x) = bytes.get_mut(at % len) {
                    *x = b;
                }
            }
            bytes.truncate(cut.max(1));
            bytes.extend_from_slice(&noise[..noise.len() % 5]);
            let _ = decode(&bytes, &store_snmp());
        }
    }

    #[test]
    fn what_is_not_a_trap_is_named() {
        let snmp = SnmpSection::default();
        for (bytes, says) in [
            (&b""[..], "not an SNMP trap"),
            (&b"\x30\x03\x02\x01\x01"[..], "not an SNMP trap"),
        ] {
            let e = decode(bytes, &snmp).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }
}
