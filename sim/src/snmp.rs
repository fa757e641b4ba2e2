//! The simulated UPSes (UPS-MIB) and receipt printers (Host Resources and Printer MIB)
//! answer SNMPv2c on one UDP socket for the whole fleet, one community per device
//! (`S0001-ups-1`), so that the demo's agents read them through their real `snmp` probe
//! instead of being handed readings. `GET`, `GETNEXT` and
//! `GETBULK`; anything else, or an unknown community, gets no answer, as from a real agent.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use snmp2::{MessageType, Pdu};
use tokio_util::sync::CancellationToken;

/// One device's objects: OID to value.
pub type Objects = BTreeMap<Vec<u32>, Answer>;

/// A value the responder serves.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// INTEGER.
    Int(i64),
    /// OCTET STRING.
    Text(String),
    /// OCTET STRING of bits.
    Bytes(Vec<u8>),
}

/// Every simulated device's objects, by community.
#[derive(Default, Clone)]
pub struct Agents(Arc<Mutex<HashMap<String, Objects>>>);

impl Agents {
    /// Sets (replaces) the objects of `community`.
    pub fn set(&self, community: &str, objects: Objects) {
        let mut all = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        all.insert(community.to_owned(), objects);
    }

    fn answer(&self, request: &[u8]) -> Option<Vec<u8>> {
        let pdu = Pdu::from_bytes(request).ok()?;
        let community = std::str::from_utf8(pdu.community).ok()?;
        let all = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let objects = all.get(community)?;
        let names: Vec<Vec<u32>> = pdu
            .varbinds
            .clone()
            .map(|(name, _)| {
                name.iter()
                    .map(|i| i.map(|p| u32::try_from(p).unwrap_or(u32::MAX)).collect())
                    .unwrap_or_default()
            })
            .collect();
        let mut out: Vec<(Vec<u32>, Option<Answer>)> = Vec::new();
        let next = |after: &[u32]| {
            objects
                .range::<[u32], _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
                .next()
                .map(|(k, v)| (k.clone(), Some(v.clone())))
        };
        match pdu.message_type {
            MessageType::GetRequest => {
                for n in names {
                    let v = objects.get(&n).cloned();
                    out.push((n, v));
                }
            }
            MessageType::GetNextRequest => {
                for n in names {
                    out.push(next(&n).unwrap_or((n, None)));
                }
            }
            MessageType::GetBulkRequest => {
                // GETBULK carries non-repeaters and max-repetitions where others carry the
                // error status and index.
                let reps = pdu.error_index.min(64);
                for n in names.into_iter().skip(pdu.error_status as usize) {
                    let mut at = n;
                    for _ in 0..reps.max(1) {
                        match next(&at) {
                            Some((k, v)) => {
                                at.clone_from(&k);
                                out.push((k, v));
                            }
                            None => {
                                out.push((at.clone(), None));
                                break;
                            }
                        }
                    }
                }
            }
            _ => return None,
        }
        Some(response(
            community.as_bytes(),
            pdu.req_id,
            &out,
            pdu.message_type,
        ))
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 128 {
        out.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// A BER INTEGER's content: the fewest two's complement bytes.
fn int_content(n: i64) -> Vec<u8> {
    let b = n.to_be_bytes();
    let mut i = 0;
    while i < 7 && ((b[i] == 0 && b[i + 1] & 0x80 == 0) || (b[i] == 0xff && b[i + 1] & 0x80 != 0)) {
        i += 1;
    }
    b[i..].to_vec()
}

fn oid_content(parts: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut arcs =
        vec![parts.first().copied().unwrap_or(0) * 40 + parts.get(1).copied().unwrap_or(0)];
    arcs.extend(parts.iter().skip(2));
    for arc in arcs {
        let mut chunk = vec![(arc & 0x7f) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            chunk.push(0x80 | (rest & 0x7f) as u8);
            rest >>= 7;
        }
        out.extend(chunk.iter().rev());
    }
    out
}

fn response(
    community: &[u8],
    req_id: i32,
    vars: &[(Vec<u32>, Option<Answer>)],
    asked: MessageType,
) -> Vec<u8> {
    let mut binds = Vec::new();
    for (name, value) in vars {
        let v = match value {
            Some(Answer::Int(n)) => tlv(0x02, &int_content(*n)),
            Some(Answer::Text(t)) => tlv(0x04, t.as_bytes()),
            Some(Answer::Bytes(b)) => tlv(0x04, b),
            // noSuchObject for a GET, endOfMibView past the last object.
            None if asked == MessageType::GetRequest => tlv(0x80, &[]),
            None => tlv(0x82, &[]),
        };
        let mut bind = tlv(0x06, &oid_content(name));
        bind.extend(v);
        binds.extend(tlv(0x30, &bind));
    }
    let mut pdu = tlv(0x02, &int_content(i64::from(req_id)));
    pdu.extend(tlv(0x02, &[0]));
    pdu.extend(tlv(0x02, &[0]));
    pdu.extend(tlv(0x30, &binds));
    let mut msg = tlv(0x02, &[1]);
    msg.extend(tlv(0x04, community));
    msg.extend(tlv(snmp2::snmp::MSG_RESPONSE, &pdu));
    tlv(0x30, &msg)
}

/// Serves `agents` on `socket` until cancelled.
pub async fn serve(socket: tokio::net::UdpSocket, agents: Agents, token: CancellationToken) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let (n, from): (usize, SocketAddr) = tokio::select! {
            () = token.cancelled() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(_) => continue,
            },
        };
        if let Some(reply) = agents.answer(&buf[..n]) {
            let _ = socket.send_to(&reply, from).await;
        }
    }
}

/// A simulated UPS's UPS-MIB objects, from its latest readings.
pub fn ups_objects(vendor: &str, model: &str, firmware: &str, readings: &[(&str, f64)]) -> Objects {
    let get = |name: &str| readings.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    let on_battery = get("on_battery").unwrap_or(0.0) > 0.5;
    let charge = get("battery_pct").unwrap_or(100.0).round() as u32;
    let load = get("load_pct").unwrap_or(30.0).round() as i64;
    let mut o = Objects::new();
    o.insert(
        oid("1.3.6.1.2.1.33.1.1.1.0"),
        Answer::Text(vendor.to_owned()),
    );
    o.insert(
        oid("1.3.6.1.2.1.33.1.1.2.0"),
        Answer::Text(model.to_owned()),
    );
    o.insert(
        oid("1.3.6.1.2.1.33.1.1.3.0"),
        Answer::Text(firmware.to_owned()),
    );
    // Battery: normal(2) or low(3); seconds on battery; minutes left; charge.
    o.insert(
        oid("1.3.6.1.2.1.33.1.2.1.0"),
        Answer::Int(if charge < 25 { 3 } else { 2 }),
    );
    o.insert(
        oid("1.3.6.1.2.1.33.1.2.2.0"),
        Answer::Int(if on_battery { 60 } else { 0 }),
    );
    o.insert(
        oid("1.3.6.1.2.1.33.1.2.3.0"),
        Answer::Int(i64::from(charge) * 9 / 10),
    );
    o.insert(
        oid("1.3.6.1.2.1.33.1.2.4.0"),
        Answer::Int(i64::from(charge)),
    );
    o.insert(
        oid("1.3.6.1.2.1.33.1.3.3.1.3.1"),
        Answer::Int(if on_battery { 0 } else { 230 }),
    );
    // Output source: battery(5) or normal(3); load of line 1.
    o.insert(
        oid("1.3.6.1.2.1.33.1.4.1.0"),
        Answer::Int(if on_battery { 5 } else { 3 }),
    );
    o.insert(oid("1.3.6.1.2.1.33.1.4.4.1.5.1"), Answer::Int(load));
    o
}

fn oid(s: &str) -> Vec<u32> {
    s.split('.').filter_map(|p| p.parse().ok()).collect()
}

/// Who a simulated device is.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    /// Maker.
    pub vendor: &'a str,
    /// Model.
    pub model: &'a str,
    /// Serial number.
    pub serial: &'a str,
    /// Firmware.
    pub firmware: &'a str,
}

/// A simulated receipt printer's objects (Host Resources and Printer MIB), from its latest
/// readings and its fault (`paper jam`, or broken hardware), if any: what a real printer's
/// SNMP agent shows.
pub fn printer_objects(id: Identity<'_>, readings: &[(&str, f64)], fault: Option<&str>) -> Objects {
    let get = |name: &str| readings.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    let jammed = fault == Some(super::behaviour::JAM);
    let mut o = Objects::new();
    let mut put = |s: &str, v: Answer| {
        o.insert(oid(s), v);
    };
    put(
        "1.3.6.1.2.1.1.1.0",
        Answer::Text(format!("{} {}", id.vendor, id.model)),
    );
    // The printer's hrDevice row: its description, and its status: running(2) or down(5).
    put(
        "1.3.6.1.2.1.25.3.2.1.3.1",
        Answer::Text(format!("{} {}", id.vendor, id.model)),
    );
    put(
        "1.3.6.1.2.1.25.3.2.1.5.1",
        Answer::Int(if fault.is_some() { 5 } else { 2 }),
    );
    // hrPrinterStatus idle(3) or other(1); detected errors: jammed (bit 5) or service
    // requested (bit 7).
    put(
        "1.3.6.1.2.1.25.3.5.1.1.1",
        Answer::Int(if fault.is_some() { 1 } else { 3 }),
    );
    let bits = match fault {
        Some(_) if jammed => 0x04,
        Some(_) => 0x01,
        None => 0x00,
    };
    put("1.3.6.1.2.1.25.3.5.1.2.1", Answer::Bytes(vec![bits, 0]));
    put(
        "1.3.6.1.2.1.43.5.1.1.17.1",
        Answer::Text(id.serial.to_owned()),
    );
    put("1.3.6.1.2.1.43.10.2.1.4.1.1", Answer::Int(48_213));
    // The paper roll: its level out of 100.
    put(
        "1.3.6.1.2.1.43.11.1.1.6.1.1",
        Answer::Text("Paper Roll".into()),
    );
    put("1.3.6.1.2.1.43.11.1.1.8.1.1", Answer::Int(100));
    let paper = get("paper_pct").unwrap_or(100.0).round().clamp(0.0, 100.0) as i64;
    put("1.3.6.1.2.1.43.11.1.1.9.1.1", Answer::Int(paper));
    // A critical alert saying what is wrong, in the printer's words.
    if let Some(why) = fault {
        put("1.3.6.1.2.1.43.18.1.1.2.1.1", Answer::Int(3));
        put("1.3.6.1.2.1.43.18.1.1.8.1.1", Answer::Text(why.to_owned()));
    }
    put(
        "1.3.6.1.2.1.47.1.1.1.1.9.1",
        Answer::Text(id.firmware.to_owned()),
    );
    put(
        "1.3.6.1.2.1.47.1.1.1.1.12.1",
        Answer::Text(id.vendor.to_owned()),
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The agent's own SNMP client (the `ups` profile of a real probe) reads a simulated
    /// UPS, and an unknown community gets no answer.
    #[tokio::test]
    async fn the_agents_snmp_probe_reads_a_simulated_ups() {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        let agents = Agents::default();
        agents.set(
            "S0001-ups-1",
            ups_objects(
                "APC",
                "SMT1500",
                "UPS 09.8",
                &[
                    ("on_battery", 1.0),
                    ("battery_pct", 71.0),
                    ("load_pct", 33.0),
                ],
            ),
        );
        let token = CancellationToken::new();
        tokio::spawn(serve(socket, agents, token.clone()));
        let probe = |community: &str| {
            let toml = format!(
                "id = \"ups-1\"\nclass = \"ups\"\ntimeout_ms = 1000\n\
                 probe = {{ type = \"snmp\", address = \"127.0.0.1:{port}\", profile = \"ups\", community = \"{community}\" }}"
            );
            toml::from_str::<storefleet_agent::config::DeviceConfig>(&toml).unwrap()
        };
        let o = storefleet_agent::collect::probe::probe_once(&probe("S0001-ups-1")).await;
        assert!(o.up, "{o:?}");
        let m: std::collections::HashMap<_, _> = o.metrics.iter().cloned().collect();
        assert_eq!(
            (m["on_battery"], m["battery_pct"], m["load_pct"]),
            (1.0, 71.0, 33.0)
        );
        assert_eq!(o.identity.unwrap().vendor.as_deref(), Some("APC"));
        let stranger = storefleet_agent::collect::probe::probe_once(&probe("S0002-ups-1")).await;
        assert!(!stranger.up);
        token.cancel();
    }

    /// The agent's own `printer` profile reads a simulated printer: healthy, then jammed
    /// (down, saying so in the printer's words), and who it is.
    #[tokio::test]
    async fn the_agents_snmp_probe_reads_a_simulated_printer() {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        let agents = Agents::default();
        let id = Identity {
            vendor: "Epson",
            model: "TM-T88VI",
            serial: "X5E00000042",
            firmware: "30.05",
        };
        let token = CancellationToken::new();
        tokio::spawn(serve(socket, agents.clone(), token.clone()));
        let toml = format!(
            "id = \"printer-1\"\nclass = \"receipt-printer\"\ntimeout_ms = 1000\n\
             probe = {{ type = \"snmp\", address = \"127.0.0.1:{port}\", profile = \"printer\", community = \"p\" }}"
        );
        let d: storefleet_agent::config::DeviceConfig = toml::from_str(&toml).unwrap();
        agents.set("p", printer_objects(id, &[("paper_pct", 64.0)], None));
        let ok = storefleet_agent::collect::probe::probe_once(&d).await;
        assert!(ok.up, "{ok:?}");
        assert!(
            ok.metrics.contains(&("supply.paper_roll_pct".into(), 64.0)),
            "{ok:?}"
        );
        let who = ok.identity.unwrap();
        assert_eq!(who.serial.as_deref(), Some("X5E00000042"));
        assert_eq!(who.vendor.as_deref(), Some("Epson"));
        agents.set("p", printer_objects(id, &[], Some(crate::behaviour::JAM)));
        let jammed = storefleet_agent::collect::probe::probe_once(&d).await;
        assert!(!jammed.up);
        let why = jammed.reason.unwrap_or_default();
        assert!(why.contains("jammed") && why.contains("paper jam"), "{why}");
        token.cancel();
    }

    #[test]
    fn integers_and_object_identifiers_encode_as_ber_says() {
        assert_eq!(int_content(0), [0]);
        assert_eq!(int_content(127), [0x7f]);
        assert_eq!(int_content(128), [0x00, 0x80]);
        assert_eq!(int_content(-1), [0xff]);
        assert_eq!(int_content(-129), [0xff, 0x7f]);
        assert_eq!(
            oid_content(&[1, 3, 6, 1, 4, 1, 705]),
            [0x2b, 6, 1, 4, 1, 0x85, 0x41]
        );
        assert_eq!(tlv(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
    }
}
