//! The Python device peers of `scripts/install-test-peers.sh` (at `STOREFLEET_PEERS` or
//! `~/.cache/storefleet/peers`): snmpsim serving recorded devices, and a pymodbus device.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A program of the peers' environment, if it is installed.
pub fn bin(name: &str) -> Option<PathBuf> {
    let venv = std::env::var_os("STOREFLEET_PEERS").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/storefleet/peers")
        },
        PathBuf::from,
    );
    let bin = venv.join("bin").join(name);
    bin.exists().then_some(bin)
}

/// Whether a test's real peer is here. Where it is not, the test says it is skipped and
/// how to get the peer (`setup`), unless `env` is set (CI sets it), where that is a
/// failure naming `why`.
pub fn here(here: bool, env: &str, why: &str, setup: &str) -> bool {
    if !here {
        assert!(std::env::var_os(env).is_none(), "{env} is set but {why}");
        eprintln!("SKIPPED: {why} ({setup} sets it up; .ci/run does)");
    }
    here
}

/// A program of `scripts/install-test-peers.sh`, where it is installed (else the test is
/// skipped, saying so, unless `env` is set).
fn installed(name: &str, env: &str, why: &str) -> Option<PathBuf> {
    let b = bin(name);
    let ok = here(b.is_some(), env, why, "scripts/install-test-peers.sh");
    b.filter(|_| ok)
}

/// snmpsim's responder.
pub fn snmpsim() -> Option<PathBuf> {
    installed(
        "snmpsim-command-responder",
        "STOREFLEET_TEST_SNMP",
        "snmpsim is not installed",
    )
}

/// The peers' Python, with pymodbus.
pub fn pymodbus() -> Option<PathBuf> {
    installed(
        "python",
        "STOREFLEET_TEST_MODBUS",
        "pymodbus is not installed",
    )
}

/// The project's peer scripts and data (`scripts/peers/`).
pub fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/peers")
}

/// One of snmpsim's recordings of real devices.
pub fn recorded(name: &str) -> PathBuf {
    let python = bin("python").expect("the peers' environment");
    let lib = python
        .parent()
        .and_then(Path::parent)
        .map(|v| v.join("lib"));
    let lib = lib.expect("a virtual environment");
    for py in std::fs::read_dir(&lib).expect("its lib").flatten() {
        let f = py
            .path()
            .join("site-packages/snmpsim/data/recorded")
            .join(name);
        if f.exists() {
            return f;
        }
    }
    panic!("no recording {name} under {}", lib.display());
}

/// A UDP port free a moment ago on 127.0.0.1.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("bind a UDP port")
}

/// SNMPv3 user of [`Snmpsim`]: user, authentication (SHA) and privacy (AES-128) keys.
pub const SNMP_V3: (&str, &str, &str) = ("storefleet", "auth-pass-123", "priv-pass-456");

/// snmpsim on 127.0.0.1, one data file per community (v2c) and context (v3):
///
/// - `eaton-9px`: an Eaton 9PX UPS recorded from the real device (snmpsim's recording), and
///   `eaton-9px-on-battery`, the same with its output on battery;
/// - `linux`: a Linux host's full walk, recorded (IF-MIB for a switch);
/// - `printer` and `printer-jammed`: a receipt printer written after the Printer MIB
///   (snmpsim-data has no printer recording), healthy, and jammed with its door open.
pub struct Snmpsim {
    child: Child,
    /// Its UDP port.
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Snmpsim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Snmpsim {
    /// Starts it (it answers once it has indexed its files: the caller waits for that).
    pub fn start(bin: &Path) -> Snmpsim {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("a data directory");
        let write = |name: &str, text: &str| {
            std::fs::write(data.join(format!("{name}.snmprec")), text).expect("a data file");
        };
        for name in ["printer", "printer-jammed"] {
            let f = scripts().join(format!("snmp/{name}.snmprec"));
            write(name, &std::fs::read_to_string(f).expect("a printer file"));
        }
        let eaton = std::fs::read_to_string(recorded("eaton-9PX-partial-walk.snmprec"))
            .expect("the Eaton recording");
        write("eaton-9px", &eaton);
        // The mains cut: XUPS output source battery(5), MGE "on battery" yes(1).
        let cut = eaton
            .replace("1.3.6.1.4.1.534.1.4.5.0|2|3", "1.3.6.1.4.1.534.1.4.5.0|2|5")
            .replace("1.3.6.1.4.1.705.1.7.3.0|2|2", "1.3.6.1.4.1.705.1.7.3.0|2|1");
        assert_ne!(
            cut, eaton,
            "the recording changed: the mains cut no longer applies"
        );
        write("eaton-9px-on-battery", &cut);
        let linux = std::fs::read_to_string(recorded("linux-full-walk.snmprec"))
            .expect("the Linux recording");
        write("linux", &linux);
        let port = free_udp_port();
        let (user, auth, privacy) = SNMP_V3;
        let child = Command::new(bin)
            .arg(format!("--data-dir={}", data.display()))
            .arg(format!(
                "--cache-dir={}",
                dir.path().join("cache").display()
            ))
            .arg(format!("--agent-udpv4-endpoint=127.0.0.1:{port}"))
            .args([
                &format!("--v3-user={user}"),
                &format!("--v3-auth-key={auth}"),
                "--v3-auth-proto=SHA",
                &format!("--v3-priv-key={privacy}"),
                "--v3-priv-proto=AES",
            ])
            // snmpsim refuses to run as root unless told; CI runs tests as root.
            .env("SNMPSIM_ALLOW_ROOT", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("snmpsim starts");
        Snmpsim {
            child,
            port,
            _dir: dir,
        }
    }
}

/// `scripts/peers/modbus.py` (a fridge controller and an energy meter, unit 1): over TCP
/// on 127.0.0.1, or over RTU on a serial line of two joined pseudo-terminals.
pub struct ModbusDevice {
    child: Child,
    /// Its TCP port (0 on a serial line).
    pub port: u16,
    /// The serial line's end the agent opens (RTU only).
    pub line: Option<PathBuf>,
}

impl Drop for ModbusDevice {
    fn drop(&mut self) {
        self.stop();
    }
}

impl ModbusDevice {
    /// Starts it over TCP with `python` and waits until it listens.
    pub fn start(python: &Path) -> ModbusDevice {
        let port = crate::free_port();
        Self::spawn(python, &port.to_string(), port)
    }

    /// Starts it over RTU on a serial line and waits until it listens.
    pub fn start_rtu(python: &Path) -> ModbusDevice {
        Self::spawn(python, "rtu", 0)
    }

    fn spawn(python: &Path, r#where: &str, port: u16) -> ModbusDevice {
        let mut child = Command::new(python)
            .arg(scripts().join("modbus.py"))
            .arg(r#where)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("pymodbus starts");
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let mut words = line.split_whitespace();
        assert_eq!(
            words.next(),
            Some("ready"),
            "the Modbus device did not start: {line}"
        );
        let line = words.next().map(PathBuf::from);
        ModbusDevice { child, port, line }
    }

    /// Stops it (the device gone).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
