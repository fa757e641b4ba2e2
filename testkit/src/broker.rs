//! The embedded MQTT broker for tests: in this process, or as a process a test can kill.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use storefleet_support::broker::wait_listening;

/// Connections the test broker accepts.
const MAX_CONNECTIONS: usize = 20_000;

/// Runs the broker on this thread until the process ends.
pub fn run_blocking(listen: SocketAddr) -> Result<(), String> {
    storefleet_support::broker::run_blocking(listen, MAX_CONNECTIONS, None)
}

/// Starts the broker on a background thread and waits until it accepts connections.
pub fn start_in_process(listen: SocketAddr) {
    storefleet_support::broker::start_in_process(listen, MAX_CONNECTIONS, None)
        .expect("embedded broker");
}

/// Path of the `storefleet-dev` binary, built on first use (see [`cargo_bin`]).
pub fn dev_binary() -> PathBuf {
    cargo_bin("storefleet-testkit", "storefleet-dev")
}

/// Path of binary `bin` of `package`, built on first use with the cargo that built the
/// caller, into the caller's target directory (so that a test in one package can run
/// another package's binary).
pub fn cargo_bin(package: &str, bin: &str) -> PathBuf {
    static BUILT: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, p)) = built.iter().find(|(b, _)| b == bin) {
        return p.clone();
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> -> target/<profile>/<bin>
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join(bin);
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", package, "--bin", bin])
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building {bin} failed");
    assert!(path.exists(), "{bin} not at {}", path.display());
    built.push((bin.to_owned(), path.clone()));
    path
}

/// The agent built again as `version` (stamped with `STOREFLEET_AGENT_VERSION`, profile
/// `update-test`, its own directory so the main build is untouched), copied to `to` so that
/// several versions can sit side by side. For self-update tests and benches.
pub fn agent_as_version(version: &str, to: &Path) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> -> target/
    let target = exe.ancestors().nth(3).expect("target dir");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "-p",
            "storefleet-agent",
            "--bin",
            "storefleet-agent",
        ])
        .args(["--profile", "update-test"])
        .env("STOREFLEET_AGENT_VERSION", version)
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building the agent as {version} failed");
    std::fs::copy(target.join("update-test/storefleet-agent"), to).expect("copy the build");
    to.to_owned()
}

/// The embedded broker as a child process that a test can stop and start again.
pub struct BrokerProcess {
    /// Where it listens.
    pub addr: SocketAddr,
    child: Option<Child>,
}

impl BrokerProcess {
    /// Starts a broker process on a free loopback port.
    pub fn start() -> BrokerProcess {
        let addr: SocketAddr = ([127, 0, 0, 1], crate::free_port()).into();
        let mut b = BrokerProcess { addr, child: None };
        b.restart();
        b
    }

    /// Kills the broker (SIGKILL: no goodbye to anyone).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same address and waits until it listens.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new(dev_binary())
            .args(["broker", "--listen", &self.addr.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn storefleet-dev broker");
        self.child = Some(child);
        assert!(
            wait_listening(self.addr, Duration::from_secs(10)),
            "broker did not listen on {}",
            self.addr
        );
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
