//! The `snmp` device probe against `snmpsim` (installed by `scripts/install-test-peers.sh`;
//! skipped with a note where it is missing, never where `STOREFLEET_TEST_SNMP` is set),
//! serving:
//!
//! - an Eaton 9PX UPS, recorded from the real device (snmpsim's own recordings), over
//!   SNMPv3 authPriv (SHA, AES-128), and the same recording with the mains cut (its output
//!   source switched to battery);
//! - a Linux host's full walk, recorded from the real machine, read as a switch (IF-MIB);
//! - a receipt printer, healthy and jammed with its door open. snmpsim-data has no printer
//!   recording: these two files (`scripts/peers/snmp/`) are written after the Printer MIB
//!   (RFC 3805) and the Host Resources MIB, not recorded.
//!
//! And the real agent binary with the printer configured: what the printer says it is
//! (serial, maker, firmware) reaches the inventory without anybody typing it.

use std::process::Command;
use std::time::Duration;

use storefleet_agent::collect::probe::{probe_once, Outcome};
use storefleet_agent::config::{Probe, Secret, SnmpProfile, SnmpTarget};
use storefleet_testkit::broker::BrokerProcess;
pub(crate) use storefleet_testkit::peers::snmpsim;
use storefleet_testkit::peers::{free_udp_port, Snmpsim};
use storefleet_testkit::sink::Sink;

use crate::common::{agent_home, keys, peer_bin, probed, wait_online};

const USER: &str = storefleet_testkit::peers::SNMP_V3.0;
const AUTH: &str = storefleet_testkit::peers::SNMP_V3.1;
const PRIV: &str = storefleet_testkit::peers::SNMP_V3.2;

fn target(port: u16, profile: SnmpProfile, community: &str) -> SnmpTarget {
    SnmpTarget {
        address: format!("127.0.0.1:{port}"),
        profile,
        community: Secret::new(community),
        user: String::new(),
        auth: storefleet_agent::config::SnmpAuth::Sha1,
        auth_password: Secret::default(),
        privacy: storefleet_agent::config::SnmpPrivacy::Aes128,
        privacy_password: Secret::default(),
        context: String::new(),
    }
}

fn v3(port: u16, context: &str, privacy_password: &str) -> SnmpTarget {
    SnmpTarget {
        user: USER.into(),
        auth_password: Secret::new(AUTH),
        privacy_password: Secret::new(privacy_password),
        context: context.into(),
        ..target(port, SnmpProfile::Ups, "")
    }
}

async fn ask(class: &str, t: SnmpTarget) -> Outcome {
    probe_once(&probed(class, Probe::Snmp(t), 3000)).await
}

/// A metric's value, as text (`64`, `0.5`).
fn metric(o: &Outcome, name: &str) -> String {
    let v = o
        .metrics
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} in {o:?}"))
        .1;
    v.to_string()
}

/// Waits for the simulator to answer (it indexes its files first).
pub(crate) async fn ready(port: u16) {
    for _ in 0..60 {
        if ask("printer", target(port, SnmpProfile::Printer, "printer"))
            .await
            .up
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("snmpsim never answered on port {port}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snmp_profiles_read_recorded_devices_over_v2c_and_v3() {
    let Some(bin) = snmpsim() else { return };
    let sim = Snmpsim::start(&bin);
    ready(sim.port).await;

    // A healthy printer: up, its supplies and pages, and who it is.
    let p = ask("printer", target(sim.port, SnmpProfile::Printer, "printer")).await;
    assert!(p.up, "{p:?}");
    assert_eq!(metric(&p, "supply.paper_roll_pct"), "64");
    assert_eq!(metric(&p, "pages"), "48213");
    // Low toner is a warning, counted, not a fault.
    assert_eq!(metric(&p, "printer_errors"), "1");
    let id = p.identity.unwrap();
    assert_eq!(id.serial.as_deref(), Some("X5RT012345"));
    assert_eq!(id.vendor.as_deref(), Some("EPSON"));
    assert_eq!(id.model.as_deref(), Some("EPSON TM-T88VI"));
    assert_eq!(id.firmware.as_deref(), Some("30.04"));

    // Jammed with its door open: down, saying so in the printer's own words too.
    let j = ask(
        "printer",
        target(sim.port, SnmpProfile::Printer, "printer-jammed"),
    )
    .await;
    assert!(!j.up);
    let why = j.reason.unwrap();
    assert!(
        why.contains("door open, jammed") && why.contains("Paper jam at the cutter"),
        "{why}"
    );

    // The real Eaton UPS over SNMPv3 authPriv (the context picks the recording).
    let u = ask("ups", v3(sim.port, "eaton-9px", PRIV)).await;
    assert!(u.up, "{u:?}");
    for (name, want) in [
        ("on_battery", "0"),
        ("battery_pct", "100"),
        ("runtime_min", "286"),
        ("load_pct", "9"),
        ("input_v", "243"),
    ] {
        assert_eq!(metric(&u, name), want, "{name}");
    }
    let id = u.identity.unwrap();
    assert_eq!(id.vendor.as_deref(), Some("Eaton"));
    assert_eq!(id.model.as_deref(), Some("Eaton 9PX 2200i RT 3U"));
    assert_eq!(id.serial.as_deref(), Some("GX13G45099"));
    assert_eq!(id.firmware.as_deref(), Some("INV: 01.17.4945"));
    // The mains cut: on battery (the built-in ups-on-battery rule watches this).
    let cut = ask("ups", v3(sim.port, "eaton-9px-on-battery", PRIV)).await;
    assert_eq!(metric(&cut, "on_battery"), "1", "{cut:?}");

    // A wrong privacy password, a wrong community: down, and why.
    let wrong = ask("ups", v3(sim.port, "eaton-9px", "not-the-password")).await;
    assert!(!wrong.up);
    let why = wrong.reason.unwrap();
    assert!(
        why.contains("SNMP 127.0.0.1") && why.contains("authentication failed"),
        "{why}"
    );
    let stranger = ask("ups", target(sim.port, SnmpProfile::Ups, "guess")).await;
    assert!(!stranger.up);
    assert!(stranger
        .reason
        .unwrap()
        .contains("no answer within 3000 ms"));
    // A device that is not what its profile says is named.
    let not_ups = ask("ups", target(sim.port, SnmpProfile::Ups, "printer")).await;
    assert!(not_ups.reason.unwrap().contains("is this device a UPS"));

    // A recorded Linux host read as a switch: its one Ethernet port, loopback left out.
    let s = ask("switch", target(sim.port, SnmpProfile::Switch, "linux")).await;
    assert!(s.up, "{s:?}");
    assert_eq!(metric(&s, "ports"), "1");
    assert_eq!(metric(&s, "ports_up"), "1");
    assert_eq!(metric(&s, "ports_down"), "0");
}

/// The real agent with the printer configured by class and address only (the catalog sets
/// up its SNMP probe, with the community of `[snmp]`): the inventory
/// it reports carries the printer's serial, maker and firmware, and it is sent as soon as
/// the printer said who it is (not at the next inventory interval, an hour away by
/// default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_device_says_it_is_reaches_the_inventory() {
    let Some(bin) = snmpsim() else { return };
    let sim = Snmpsim::start(&bin);
    ready(sim.port).await;
    let broker = BrokerProcess::start();
    let home = agent_home(
        broker.addr,
        &format!(
            "[snmp]\ncommunity = \"printer\"\n\n[[devices]]\nid = \"till-printer-1\"\n\
             class = \"receipt-printer\"\naddress = \"127.0.0.1:{}\"\ninterval_secs = 2\n",
            sim.port
        ),
    );
    let sink = Sink::start(broker.addr, keys(&home)).await;
    let mut agent = home.spawn();
    wait_online(&home, &sink).await;
    let found = sink
        .wait(Duration::from_secs(30), |s| {
            s.inventory.get(&home.id).is_some_and(|i| {
                i.devices
                    .iter()
                    .any(|d| d.serial.as_deref() == Some("X5RT012345"))
            })
        })
        .await;
    let log = home.log();
    agent.terminate();
    assert!(found, "no serial in the inventory; agent log:\n{log}");
    sink.with(|s| {
        let inv = &s.inventory[&home.id];
        let d = inv
            .devices
            .iter()
            .find(|d| d.id == "till-printer-1")
            .unwrap();
        assert_eq!(d.vendor.as_deref(), Some("EPSON"));
        assert_eq!(d.firmware.as_deref(), Some("30.04"));
        assert_eq!(
            d.address.as_deref(),
            Some(format!("127.0.0.1:{}", sim.port).as_str())
        );
    });
}

/// Sends a trap from this machine with pysnmp; `auth` is `--community C` or `--v3 ...`.
fn send_trap(port: u16, trap: &str, auth: &[&str], vars: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/peers/snmp_trap.py");
    let mut cmd = Command::new(peer_bin("python").unwrap());
    cmd.args([script, "127.0.0.1", &port.to_string(), trap])
        .args(auth);
    for v in vars {
        cmd.args(["--var", v]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Traps from a configured device become its events at once, v2c with the store's
/// community and v3 authPriv with its user, and wake its probe (polled hourly here, so a
/// second poll can only be the trap's). A trap with another community, one signed with
/// another password, and a datagram that is no SNMP at all are dropped, and the agent
/// goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traps_become_events_of_their_device_and_wake_its_probe() {
    let Some(bin) = snmpsim() else { return };
    let sim = Snmpsim::start(&bin);
    ready(sim.port).await;
    let trap_port = free_udp_port();
    let broker = BrokerProcess::start();
    let home = agent_home(
        broker.addr,
        &format!(
            "[snmp]\ncommunity = \"eaton-9px\"\nuser = \"{USER}\"\nauth_password = \"{AUTH}\"\n\
             privacy_password = \"{PRIV}\"\ntrap_listen = \"127.0.0.1:{trap_port}\"\n\n\
             [[devices]]\nid = \"ups-1\"\nclass = \"ups\"\naddress = \"127.0.0.1:{}\"\n\
             interval_secs = 3600\n",
            sim.port
        ),
    );
    let sink = Sink::start(broker.addr, keys(&home)).await;
    let mut agent = home.spawn();
    wait_online(&home, &sink).await;
    let polls = |s: &storefleet_testkit::sink::SinkState| {
        s.series
            .get(&("ups-1".to_owned(), "probe.up".to_owned()))
            .map_or(0, Vec::len)
    };
    assert!(sink.wait(Duration::from_secs(20), |s| polls(s) == 1).await);

    // Refused: another community, another password, not SNMP.
    send_trap(
        trap_port,
        "1.3.6.1.2.1.33.2.0.1",
        &["--community", "guess"],
        &[],
    );
    send_trap(
        trap_port,
        "1.3.6.1.2.1.33.2.0.1",
        &["--v3", USER, "wrong-password", PRIV],
        &[],
    );
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(b"\x30\x03\x02\x01", ("127.0.0.1", trap_port))
        .unwrap();
    // Taken: v2c on battery, v3 a printer alert in the device's words.
    send_trap(
        trap_port,
        "1.3.6.1.2.1.33.2.0.1",
        &["--community", "eaton-9px"],
        &[],
    );
    send_trap(
        trap_port,
        "1.3.6.1.2.1.43.18.2.0.1",
        &["--v3", USER, AUTH, PRIV],
        &["1.3.6.1.2.1.43.18.1.1.8.1.1=Paper jam at the cutter"],
    );
    let both = sink
        .wait(Duration::from_secs(20), |s| {
            s.events.iter().any(|e| e.code == "printer.alert")
                && s.events.iter().any(|e| e.code == "ups.on_battery")
        })
        .await;
    let woke = sink.wait(Duration::from_secs(20), |s| polls(s) >= 2).await;
    let log = home.log();
    assert!(agent.alive(), "{log}");
    agent.terminate();
    assert!(both, "agent log:\n{log}");
    assert!(woke, "the trap did not wake the probe");
    sink.with(|s| {
        let traps: Vec<_> = s
            .events
            .iter()
            .filter(|e| e.code.starts_with("ups.") || e.code == "printer.alert")
            .collect();
        assert_eq!(traps.len(), 2, "{traps:?}");
        let alert = traps.iter().find(|e| e.code == "printer.alert").unwrap();
        assert_eq!(alert.device.as_deref(), Some("ups-1"));
        assert_eq!(alert.message, "ups-1: Paper jam at the cutter");
        assert_eq!(alert.data["trap"], "1.3.6.1.2.1.43.18.2.0.1");
    });
    assert!(log.contains("another community"), "{log}");
    assert!(log.contains("authentication failed"), "{log}");
}
