//! Figures for the agent's device protocols: `cargo bench -p storefleet-agent --bench devices`.
//!
//! The real agent binary polls `BENCH_SNMP` (100) SNMP devices and `BENCH_MODBUS` (20)
//! Modbus devices every 10 s: snmpsim serves, in turn, the recorded Eaton UPS (over SNMPv3
//! authPriv for half of them), the recorded Linux host as a switch, and the printer; pymodbus
//! serves a fridge controller's register map. After 20 s of warm-up, over
//! `BENCH_STEADY_SECS` (60):
//!
//! - the agent's RSS (now and peak) and CPU (target: under 12 MB, under 2% of a core);
//! - bytes on the wire per telemetry point, as sent (compressed) and as the same messages
//!   would be as plain frames, counted by a verifying subscriber (target: under 8).
//!
//! The agent runs with the environment of the package's systemd unit.
//! The broker is Mosquitto when `STOREFLEET_TEST_MQTT` is set, else the embedded one.
//! `BENCH_AGENT` names another agent binary to measure, e.g. `target/dist/storefleet-agent`
//! from `cargo build --profile dist -p storefleet-agent` (what gateways get: most of the
//! agent's RSS is its own code, paged in from the binary). Needs the peers of `scripts/install-test-peers.sh`; says so and stops without them.

use std::fmt::Write as _;
use std::time::Duration;

use storefleet_testkit::agent::{cpu_ticks, keys, rss_kib, AgentHome};
use storefleet_testkit::bench::{broker, env_num};
use storefleet_testkit::peers::{self, ModbusDevice, Snmpsim, SNMP_V3};
use storefleet_testkit::sink::Sink;

/// The `[[devices]]` of the run.
fn devices(snmp: usize, snmp_port: u16, modbus: usize, modbus_port: u16) -> String {
    let (user, auth, privacy) = SNMP_V3;
    let mut out = String::new();
    for i in 0..snmp {
        let (class, profile, auth_part) = match i % 3 {
            0 if i % 2 == 0 => (
                "ups",
                "ups",
                format!(
                    "user = \"{user}\", auth_password = \"{auth}\", privacy_password = \"{privacy}\", context = \"eaton-9px\""
                ),
            ),
            0 => ("ups", "ups", "community = \"eaton-9px\"".to_owned()),
            1 => ("switch", "switch", "community = \"linux\"".to_owned()),
            _ => ("printer", "printer", "community = \"printer\"".to_owned()),
        };
        let _ = write!(
            out,
            "[[devices]]\nid = \"{class}-{i}\"\nclass = \"{class}\"\ninterval_secs = 10\ntimeout_ms = 5000\n\
             probe = {{ type = \"snmp\", address = \"127.0.0.1:{snmp_port}\", profile = \"{profile}\", {auth_part} }}\n\n"
        );
    }
    for i in 0..modbus {
        let _ = write!(
            out,
            "[[devices]]\nid = \"fridge-{i}\"\nclass = \"fridge-controller\"\ninterval_secs = 10\n\
             probe = {{ type = \"modbus\", address = \"127.0.0.1:{modbus_port}\", registers = [\n\
               {{ name = \"temp_c\", kind = \"input\", address = 0, type = \"i16\", scale = 0.1 }},\n\
               {{ name = \"door_open\", kind = \"input\", address = 1 }},\n\
               {{ name = \"energy_kwh\", address = 10, type = \"u32\", scale = 0.01 }},\n\
             ] }}\n\n"
        );
    }
    out
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let (Some(snmpsim), Some(python)) = (
        peers::bin("snmpsim-command-responder"),
        peers::bin("python"),
    ) else {
        println!(
            "device figures: skipped, the peers are not installed (scripts/install-test-peers.sh)"
        );
        return;
    };
    let n_snmp = env_num("BENCH_SNMP", 100) as usize;
    let n_modbus = env_num("BENCH_MODBUS", 20) as usize;
    let steady = env_num("BENCH_STEADY_SECS", 60);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (mqtt, broker_name) = broker();
    let sim = Snmpsim::start(&snmpsim);
    let modbus = ModbusDevice::start(&python);
    // snmpsim answers once it has indexed its files.
    std::thread::sleep(Duration::from_secs(3));
    let binary = std::env::var("BENCH_AGENT")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_storefleet-agent").to_owned());
    let mut home = AgentHome::new(
        std::path::Path::new(&binary),
        mqtt,
        &devices(n_snmp, sim.port, n_modbus, modbus.port),
    );
    // The environment the package's systemd unit gives the agent.
    let unit = include_str!("../../packaging/agent/storefleet-agent.service");
    home.env = unit
        .lines()
        .filter_map(|l| l.strip_prefix("Environment="))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    println!(
        "storefleet-agent device figures: {n_snmp} SNMP + {n_modbus} Modbus devices every 10 s, broker: {broker_name}, agent: {binary}"
    );
    rt.block_on(async {
        let sink = Sink::start(mqtt, keys(&home)).await;
        let agent = home.spawn_logging("warn");
        let pid = agent.pid().unwrap();
        tokio::time::sleep(Duration::from_secs(20)).await;
        let (cpu0, bytes0) = (
            cpu_ticks(pid),
            sink.with(|s| (s.telemetry_bytes, s.telemetry_plain_bytes, s.point_count())),
        );
        let mut peak = 0;
        for _ in 0..steady {
            tokio::time::sleep(Duration::from_secs(1)).await;
            peak = peak.max(rss_kib(pid));
        }
        let cpu = (cpu_ticks(pid) - cpu0) as f64 / 100.0;
        let (bytes, plain, points) =
            sink.with(|s| (s.telemetry_bytes, s.telemetry_plain_bytes, s.point_count()));
        let points = (points - bytes0.2).max(1) as f64;
        let down = sink.with(|s| {
            s.series
                .iter()
                .filter(|((_, m), p)| m == "probe.up" && p.last().is_some_and(|r| r.v == 0.0))
                .count()
        });
        println!(
            "agent RSS {:.1} MB now, {:.1} MB peak (target < 12 MB)   CPU {:.2}% of a core over {steady} s (target < 2%)",
            rss_kib(pid) as f64 / 1024.0,
            peak as f64 / 1024.0,
            cpu * 100.0 / steady as f64
        );
        println!(
            "telemetry on the wire {:.2} bytes/point compressed, {:.2} as plain frames (target < 8), {points:.0} points; devices down at the end: {down}",
            (bytes - bytes0.0) as f64 / points,
            (plain - bytes0.1) as f64 / points,
        );
        drop(agent);
    });
    drop(modbus);
    drop(sim);
}
