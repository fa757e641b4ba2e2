//! The README's first command, as a process: `storefleet-sim demo` starts the controller,
//! its broker, the web UI and the simulated stores, prints where they are, gets every store
//! online, and stops cleanly on SIGTERM, keeping its state directory when given one.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use storefleet_controller::client::Client;

const BIN: &str = env!("CARGO_BIN_EXE_storefleet-sim");

#[test]
fn demo_starts_a_fleet_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = storefleet_testkit::free_port();
    let mut child = Reap(
        Command::new(BIN)
            .args([
                "demo",
                "--stores",
                "4",
                "--http",
                &format!("127.0.0.1:{port}"),
            ])
            .arg("--state-dir")
            .arg(dir.path())
            .env("STOREFLEET_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    // The banner: URL, login and how to point the CLI at it.
    let mut banner = String::new();
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    while !banner.contains("Press Ctrl-C") {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "demo exited before its banner: {banner}"
        );
        banner.push_str(&line);
    }
    let url = format!("http://127.0.0.1:{port}");
    assert!(banner.contains(&format!("web UI:  {url}/")), "{banner}");
    assert!(banner.contains("login:   admin / "), "{banner}");
    let token_file = dir.path().join("controller/admin-token");
    assert!(
        banner.contains(&format!(
            "cargo run -q -p storefleet-controller -- --url {url} --token \"$(cat {})\"",
            token_file.display()
        )),
        "{banner}"
    );
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert!(
        !banner.contains(token.trim()),
        "the banner shows the API token itself"
    );

    let client = Client::new(url, token.trim());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let agents = rt
            .block_on(client.call("GET", "/api/v1/agents", None))
            .unwrap();
        let online = agents
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["online"] == Value::Bool(true))
            .count();
        if online == 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{online} of 4 simulated stores online: {agents}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // The demo's UPSes and printers answer SNMP and its fridge controllers Modbus TCP: the
    // agent polls them through its real probes (a pushed device has no probe.up), and what
    // it reads arrives.
    for (device, metric, over) in [
        ("ups-1", "battery_pct", "SNMP"),
        ("printer-1", "supply.paper_roll_pct", "SNMP"),
        ("fridge-1", "temp_c", "Modbus"),
    ] {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let path = format!("/api/v1/stores/S0001/series?device={device}");
            let series = rt
                .block_on(client.call("GET", &path, None))
                .unwrap()
                .to_string();
            if series.contains("probe.up") && series.contains(metric) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the simulated {device} was not read over {over}: {series}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    // The last two stores are opening from the demo's format: the board says when, and
    // that the store with two tills misses the third its format wants.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let board = rt
            .block_on(client.call("GET", "/api/v1/openings", None))
            .unwrap();
        let stores: Vec<(&str, i64)> = board
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["store"].as_str().unwrap(),
                    r["days_left"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(stores, [("S0003", 2), ("S0004", 10)], "{board}");
        let missing_till = board[0]["devices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["class"] == "pos" && d["state"] == "missing");
        let tills_ready = board[0]["devices"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["class"] == "pos" && d["state"] == "ready")
            .count();
        if missing_till && tills_ready == 2 {
            assert_eq!(board[0]["ready"], false);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "S0003's two tills, and the missing third: {board}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    nix_kill(child.0.id());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "demo did not stop within 30 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "demo exited with {status}");
    assert!(
        dir.path().join("controller").is_dir(),
        "the given state directory was removed"
    );
    assert!(dir.path().join("agents/S0001").is_dir());
}

/// Kills the demo when the test ends early (a failed assertion), so that it does not
/// outlive the test and hold its output open.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nix_kill(pid: u32) {
    let ok = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM {pid}");
}
