//! Discovery: sweeping the store's subnets for devices that answer SNMP, IPP or Modbus TCP,
//! and saying what each is, so that an operator configures a store's devices from a list
//! instead of from a walk round the back office.
//!
//! Only subnets listed in `[discovery] subnets` are swept ([`DiscoverySection::targets`]);
//! addresses are begun at `rate_per_sec` at most, with at most [`IN_FLIGHT`] at once, and
//! each protocol waits `timeout_ms` for an answer (SNMP as long again for the device's
//! identity). SNMP is asked with the store's `[snmp]`
//! credentials (a device that does not know them stays silent, as it should).
//!
//! - SNMP: `sysDescr`, `sysObjectID`, `sysServices`, and objects that tell a UPS (UPS-MIB,
//!   XUPS-MIB), a printer (Host Resources device type, Printer MIB), a router (IP
//!   forwarding) or a switch (bridging, several ports); then the class's own profile for
//!   the device's identity, as polling reads it.
//! - IPP: `Get-Printer-Attributes` at each of `ipp_paths` in turn (`/ipp/print`, IPP
//!   Everywhere's, by default).
//! - Modbus TCP: `Read Device Identification` (maker, product, revision) of unit 1; an
//!   exception answer still tells a Modbus device.

pub mod write;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use storefleet_protocol::message::{Discovered, Found};
use tokio::sync::Semaphore;

use crate::collect::inventory::Identity;
use crate::collect::snmp::{self, oid, profiles, Val, Values};
use crate::collect::{ipp, modbus};
use crate::config::{DiscoverySection, SnmpProfile, SnmpSection, SnmpTarget, Subnet};

/// Addresses asked at once at most (each holds at most one SNMP session, so none waits
/// for one and its time is all its own).
pub const IN_FLIGHT: usize = 16;
/// Devices reported at most.
pub const MAX_FOUND: usize = 1024;

/// SNMP sessions a sweep holds at once (apart from polling's).
static SWEEP_SESSIONS: Semaphore = Semaphore::const_new(IN_FLIGHT);

const SYS_DESCR: &str = "1.3.6.1.2.1.1.1.0";
const SYS_OBJECT_ID: &str = "1.3.6.1.2.1.1.2.0";
const SYS_SERVICES: &str = "1.3.6.1.2.1.1.7.0";
const IF_NUMBER: &str = "1.3.6.1.2.1.2.1.0";
const IP_FORWARDING: &str = "1.3.6.1.2.1.4.1.0";
const UPS_IDENT: [&str; 4] = [
    "1.3.6.1.2.1.33.1.1.1.0",
    "1.3.6.1.2.1.33.1.1.2.0",
    "1.3.6.1.4.1.534.1.1.1.0",
    "1.3.6.1.4.1.534.1.1.2.0",
];
const HR_DEVICE_TYPE_1: &str = "1.3.6.1.2.1.25.3.2.1.2.1";
const HR_DEVICE_PRINTER: &str = "1.3.6.1.2.1.25.3.1.5";
const PRT_GENERAL: [&str; 2] = ["1.3.6.1.2.1.43.5.1.1.16.1", "1.3.6.1.2.1.43.5.1.1.17.1"];

/// What a device's SNMP answer says it is, as a device class.
pub fn classify(v: &Values) -> &'static str {
    let int = |o: &str| v.get(&oid(o)).and_then(Val::int);
    if UPS_IDENT.iter().any(|o| v.contains_key(&oid(o))) {
        return "ups";
    }
    let printer_type = v.get(&oid(HR_DEVICE_TYPE_1)) == Some(&Val::Oid(oid(HR_DEVICE_PRINTER)));
    if printer_type || PRT_GENERAL.iter().any(|o| v.contains_key(&oid(o))) {
        return "printer";
    }
    let services = int(SYS_SERVICES).unwrap_or(0);
    if int(IP_FORWARDING) == Some(1) && services & 4 != 0 {
        return "router";
    }
    if services & 2 != 0 && int(IF_NUMBER).unwrap_or(0) >= 4 {
        return "switch";
    }
    "snmp-device"
}

fn profile_of(class: &str) -> Option<SnmpProfile> {
    match class {
        "ups" => Some(SnmpProfile::Ups),
        "printer" => Some(SnmpProfile::Printer),
        "switch" | "router" => Some(SnmpProfile::Switch),
        _ => None,
    }
}

/// What a sweep asks every SNMP device first.
fn snmp_objects() -> Vec<Vec<u64>> {
    let mut ask: Vec<Vec<u64>> = [SYS_DESCR, SYS_OBJECT_ID, SYS_SERVICES, IF_NUMBER]
        .iter()
        .chain(&[IP_FORWARDING, HR_DEVICE_TYPE_1])
        .chain(&UPS_IDENT)
        .chain(&PRT_GENERAL)
        .map(|o| oid(o))
        .collect();
    ask.extend(profiles::identity_objects());
    ask
}

/// One protocol's answer at an address.
struct Answer {
    protocol: &'static str,
    class: &'static str,
    identity: Identity,
    description: String,
    ipp_url: Option<String>,
}

/// Asks `target` what it is within `wait`, then, within as long again, who it is (a device
/// slow to walk is still found, with what its first answer said).
async fn ask_snmp(target: SnmpTarget, wait: Duration) -> Result<Answer, String> {
    let first = async {
        let mut s = snmp::open_in(&target, &SWEEP_SESSIONS).await?;
        let mut got = Values::new();
        s.get(&snmp_objects(), &mut got).await?;
        Ok::<_, String>((s, got))
    };
    let (mut s, got) = tokio::time::timeout(wait, first)
        .await
        .map_err(|_| "no answer".to_owned())??;
    if got.is_empty() {
        return Err("the device answered with nothing".into());
    }
    let class = classify(&got);
    let description = got
        .get(&oid(SYS_DESCR))
        .and_then(Val::text)
        .unwrap_or_default();
    // The identity as polling would read it; where the profile cannot read this device,
    // what the general objects say.
    let mut identity = Identity::default();
    if let Some(p) = profile_of(class) {
        if let Ok(Ok(v)) = tokio::time::timeout(wait, profiles::ask(&mut s, p)).await {
            if let Ok(r) = profiles::read(p, &v) {
                identity = r.identity;
            }
        }
    }
    if identity == Identity::default() {
        if let Ok(r) = profiles::read(SnmpProfile::Switch, &got) {
            identity = r.identity;
        }
    }
    Ok(Answer {
        protocol: "snmp",
        class,
        identity,
        description,
        ipp_url: None,
    })
}

async fn ask_ipp(base: String, paths: Vec<String>) -> Result<Answer, String> {
    let mut last = Err("no IPP path to ask".to_owned());
    let mut url = String::new();
    for path in &paths {
        url = format!("{base}{path}");
        last = ipp::get(&url).await;
        if last.is_ok() {
            break;
        }
    }
    let p = last?;
    Ok(Answer {
        ipp_url: Some(url),
        protocol: "ipp",
        class: "printer",
        identity: p.identity(),
        description: p.model.clone().unwrap_or_default(),
    })
}

async fn ask_modbus(address: String) -> Result<Answer, String> {
    let identity = modbus::identify(&address, 1).await?.unwrap_or_default();
    Ok(Answer {
        protocol: "modbus",
        class: "modbus-device",
        identity,
        description: String::new(),
        ipp_url: None,
    })
}

/// The answer, if one came within `wait`.
async fn bounded(
    wait: Duration,
    f: impl std::future::Future<Output = Result<Answer, String>>,
) -> Option<Answer> {
    tokio::time::timeout(wait, f).await.ok()?.ok()
}

/// What one address answered, if anything.
async fn ask(ip: Ipv4Addr, d: &DiscoverySection, creds: &SnmpSection) -> Option<Found> {
    let wait = Duration::from_millis(d.timeout_ms);
    let target = SnmpTarget {
        address: format!("{ip}:{}", d.snmp_port),
        profile: SnmpProfile::Switch,
        community: creds.community.clone(),
        user: creds.user.clone(),
        auth: creds.auth,
        auth_password: creds.auth_password.clone(),
        privacy: creds.privacy,
        privacy_password: creds.privacy_password.clone(),
        context: String::new(),
    };
    let (snmp, ipp, modbus) = tokio::join!(
        bounded(wait * 2, ask_snmp(target, wait)),
        bounded(
            wait,
            ask_ipp(format!("ipp://{ip}:{}", d.ipp_port), d.ipp_paths.clone())
        ),
        bounded(wait, ask_modbus(format!("{ip}:{}", d.modbus_port))),
    );
    let answers: Vec<Answer> = [snmp, ipp, modbus].into_iter().flatten().collect();
    merge(ip, &answers)
}

/// One device from its answers: the first protocol's class (SNMP tells more than IPP, IPP
/// more than Modbus); each identity field from the first answer that has it.
fn merge(ip: Ipv4Addr, answers: &[Answer]) -> Option<Found> {
    let first = answers.first()?;
    let mut found = Found {
        address: ip.to_string(),
        protocols: answers.iter().map(|a| a.protocol.to_owned()).collect(),
        class: first.class.to_owned(),
        ..Found::default()
    };
    for a in answers {
        let id = a.identity.clone();
        found.vendor = found.vendor.or(id.vendor);
        found.model = found.model.or(id.model);
        found.serial = found.serial.or(id.serial);
        found.firmware = found.firmware.or(id.firmware);
        found.ipp_url = found.ipp_url.or(a.ipp_url.clone());
        if found.description.is_empty() {
            found.description = a.description.chars().take(200).collect();
        }
    }
    Some(found)
}

/// Sweeps `subnets` as `d` allows; the devices that answered, by address.
pub async fn sweep(d: &DiscoverySection, creds: &SnmpSection, subnets: &[Subnet]) -> Vec<Found> {
    let mut hosts: Vec<Ipv4Addr> = subnets.iter().flat_map(Subnet::hosts).collect();
    hosts.sort();
    hosts.dedup();
    let mut pace = tokio::time::interval(Duration::from_secs(1) / d.rate_per_sec.max(1));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut running = tokio::task::JoinSet::new();
    let mut found = BTreeMap::new();
    let shared = std::sync::Arc::new((d.clone(), creds.clone()));
    let mut keep = |r: Result<Option<Found>, tokio::task::JoinError>| {
        if let Ok(Some(f)) = r {
            if found.len() < MAX_FOUND {
                found.insert(f.address.parse::<Ipv4Addr>().ok(), f);
            }
        }
    };
    for ip in hosts {
        while running.len() >= IN_FLIGHT {
            if let Some(r) = running.join_next().await {
                keep(r);
            }
        }
        pace.tick().await;
        let shared = shared.clone();
        running.spawn(async move { ask(ip, &shared.0, &shared.1).await });
    }
    while let Some(r) = running.join_next().await {
        keep(r);
    }
    found.into_values().collect()
}

/// Sweeps the configured subnets now and then (`interval_hours`), hands what is new to the
/// inventory, and keeps the last sweep in `state` so that a restart or a reload does not
/// sweep the store again before its time. Until cancelled.
pub async fn run(
    config: crate::config::Config,
    state: std::path::PathBuf,
    identities: std::sync::Arc<crate::collect::inventory::Identities>,
    token: tokio_util::sync::CancellationToken,
) {
    let d = &config.discovery;
    let Ok(subnets) = d.targets(&[]) else { return };
    let names: Vec<String> = subnets.iter().map(ToString::to_string).collect();
    let every = Duration::from_secs(d.interval_hours.saturating_mul(3600));
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |t| t.as_millis() as i64)
    };
    let last: Option<Discovered> = std::fs::read(&state)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(|l: &Discovered| l.subnets == names);
    // A first sweep a little after start (the devices probed first); later ones on time.
    let mut wait = Duration::from_secs(10);
    if let Some(l) = last {
        let age = Duration::from_millis(now_ms().saturating_sub(l.at_ms).max(0) as u64);
        wait = every.saturating_sub(age).max(wait);
        let new = write::new_ones(l.devices.clone(), &config.devices);
        identities.set_discovered(Discovered { devices: new, ..l });
    }
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        tracing::info!(subnets = %names.join(", "), "Sweeping the store's subnets for devices");
        let found = tokio::select! {
            () = token.cancelled() => return,
            f = sweep(d, &config.snmp, &subnets) => f,
        };
        let swept = Discovered {
            at_ms: now_ms(),
            subnets: names.clone(),
            devices: found,
        };
        if let Err(e) = write_atomically(&state, &serde_json::to_vec(&swept).unwrap_or_default()) {
            tracing::warn!(error = %e, file = %state.display(), "Cannot keep the sweep's findings");
        }
        let new = write::new_ones(swept.devices.clone(), &config.devices);
        tracing::info!(
            answered = swept.devices.len(),
            new = new.len(),
            "Sweep done"
        );
        identities.set_discovered(Discovered {
            devices: new,
            ..swept
        });
        wait = every;
    }
}

fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// The IPv4 address a configured device is reached at, if it has one: from `host`,
/// `host:port` or a URL.
pub fn host_of(address: &str) -> Option<Ipv4Addr> {
    let rest = address.split_once("://").map_or(address, |(_, r)| r);
    let host = rest.split('/').next().unwrap_or(rest);
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    host.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, Val)]) -> Values {
        pairs.iter().map(|(o, v)| (oid(o), v.clone())).collect()
    }

    #[test]
    fn an_snmp_answer_tells_the_class() {
        let ups = values(&[("1.3.6.1.4.1.534.1.1.2.0", Val::Bytes(b"9PX".to_vec()))]);
        assert_eq!(classify(&ups), "ups");
        let printer = values(&[(HR_DEVICE_TYPE_1, Val::Oid(oid(HR_DEVICE_PRINTER)))]);
        assert_eq!(classify(&printer), "printer");
        let router = values(&[(SYS_SERVICES, Val::Int(78)), (IP_FORWARDING, Val::Int(1))]);
        assert_eq!(classify(&router), "router");
        let switch = values(&[(SYS_SERVICES, Val::Int(2)), (IF_NUMBER, Val::Int(26))]);
        assert_eq!(classify(&switch), "switch");
        let host = values(&[(SYS_SERVICES, Val::Int(72)), (IP_FORWARDING, Val::Int(2))]);
        assert_eq!(classify(&host), "snmp-device");
    }

    #[test]
    fn answers_merge_into_one_device() {
        let a = |protocol, class, vendor: Option<&str>, serial: Option<&str>| Answer {
            protocol,
            class,
            identity: Identity {
                vendor: vendor.map(Into::into),
                serial: serial.map(Into::into),
                ..Identity::default()
            },
            description: format!("{protocol} says"),
            ipp_url: None,
        };
        let f = merge(
            Ipv4Addr::new(10, 0, 0, 9),
            &[
                a("snmp", "printer", None, Some("S1")),
                a("ipp", "printer", Some("EPSON"), Some("S2")),
            ],
        )
        .unwrap();
        assert_eq!(f.protocols, ["snmp", "ipp"]);
        assert_eq!(f.class, "printer");
        assert_eq!(f.vendor.as_deref(), Some("EPSON"));
        assert_eq!(f.serial.as_deref(), Some("S1"));
        assert_eq!(f.description, "snmp says");
        assert!(merge(Ipv4Addr::LOCALHOST, &[]).is_none());
    }

    #[test]
    fn configured_addresses_are_read_from_any_probe_form() {
        let ip = Some(Ipv4Addr::new(10, 0, 0, 5));
        for a in [
            "10.0.0.5",
            "10.0.0.5:161",
            "ipp://10.0.0.5:631/ipp/print",
            "https://10.0.0.5/x",
        ] {
            assert_eq!(host_of(a), ip, "{a}");
        }
        assert_eq!(host_of("printer.local:631"), None);
    }
}
