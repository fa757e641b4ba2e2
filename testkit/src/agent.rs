//! The real agent binary in a temporary state directory: its config, its process (directly
//! or under a runner such as `qemu-aarch64`), HTTP calls to its ingest endpoint, and a
//! controller key that signs commands to it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use storefleet_protocol::{PublicKey, SigningKey};

/// A temporary agent installation: config file, state directory, ingest port.
pub struct AgentHome {
    /// The agent binary.
    pub binary: PathBuf,
    /// A command that runs the binary (e.g. `qemu-aarch64 -L /usr/aarch64-linux-gnu`).
    pub runner: Vec<String>,
    /// The agent id (unique per home).
    pub id: String,
    /// The directory holding config and state.
    pub dir: tempfile::TempDir,
    /// The ingest endpoint address.
    pub ingest: SocketAddr,
    /// The controller key pinned in the config.
    pub controller: SigningKey,
    /// Environment variables the agent runs with (besides this process's).
    pub env: Vec<(String, String)>,
}

impl AgentHome {
    /// Writes `agent.toml` for `binary` pointing at `mqtt`, with `extra` TOML appended.
    pub fn new(binary: &Path, mqtt: SocketAddr, extra: &str) -> AgentHome {
        let dir = tempfile::tempdir().unwrap();
        let ingest: SocketAddr = ([127, 0, 0, 1], crate::free_port()).into();
        let controller = SigningKey::generate().unwrap();
        // Unique per test, so that tests sharing a broker do not see each other.
        let id = format!("gw-{:016x}", rand::random::<u64>());
        let home = AgentHome {
            binary: binary.to_owned(),
            runner: Vec::new(),
            id,
            dir,
            ingest,
            controller,
            env: Vec::new(),
        };
        home.write_config(mqtt, extra);
        home
    }

    /// Rewrites the config file.
    pub fn write_config(&self, mqtt: SocketAddr, extra: &str) {
        let state = self.dir.path().join("state");
        let text = format!(
            r#"
[agent]
id = "{id}"
store = "S001"
state_dir = "{state}"
health_interval_secs = 0

[controller]
mqtt_url = "mqtt://{mqtt}"
public_key = "{key}"
keep_alive_secs = 5

[sync]
backoff_min_ms = 100
backoff_max_ms = 1000

[ingest]
listen = "{ingest}"

[host]
interval_secs = 0

{extra}
"#,
            id = self.id,
            state = state.display(),
            key = self.controller.public_key().to_base64(),
            ingest = self.ingest,
        );
        std::fs::write(self.config_path(), text).unwrap();
    }

    /// The main config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("agent.toml")
    }

    /// The state directory.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// A command for the agent binary, through the runner if any.
    pub fn command(&self) -> Command {
        let mut c = match self.runner.split_first() {
            Some((prog, args)) => {
                let mut c = Command::new(prog);
                c.args(args).arg(&self.binary);
                c
            }
            None => Command::new(&self.binary),
        };
        c.args(["--config", self.config_path().to_str().unwrap()]);
        c
    }

    /// The agent's public key (made on first use by `show-id`).
    pub fn agent_key(&self) -> PublicKey {
        let out = self.command().arg("show-id").output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let line = text.lines().find(|l| l.starts_with("public_key")).unwrap();
        PublicKey::from_base64(line.split('=').nth(1).unwrap().trim()).unwrap()
    }

    /// Starts the agent and waits until its ingest endpoint answers.
    pub fn spawn(&self) -> AgentProcess {
        self.spawn_logging("info,storefleet_agent=debug")
    }

    /// [`AgentHome::spawn`] with the log filter `filter` (`warn` for a measurement).
    pub fn spawn_logging(&self, filter: &str) -> AgentProcess {
        let log = std::fs::File::create(self.dir.path().join("agent.log")).unwrap();
        let child = self
            .command()
            .arg("run")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("STOREFLEET_LOG", filter)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let p = AgentProcess {
            child: Some(child),
            ingest: self.ingest,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(self.ingest).is_err() {
            assert!(
                Instant::now() < deadline,
                "agent did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        p
    }

    /// The agent's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }
}

/// A running agent process.
pub struct AgentProcess {
    child: Option<Child>,
    /// The ingest endpoint address.
    pub ingest: SocketAddr,
}

impl AgentProcess {
    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: no shutdown at all.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "agent did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGHUP: the agent reads its configuration again.
    pub fn hup(&self) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args(["-HUP", &c.id().to_string()])
                .status();
        }
    }

    /// Whether the process is still alive.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// One HTTP/1.1 request; returns status and body.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Result<(u16, String), String> {
    let url = format!("http://{addr}{path}");
    let req = storefleet_support::http::Request {
        method,
        url: &url,
        headers: Vec::new(),
        body: content_type.map(|ct| (ct, body)),
    };
    storefleet_support::http::send(req, std::time::Duration::from_secs(60))
        .await
        .map(|r| (r.status, r.text()))
        .map_err(|e| e.to_string())
}

/// POSTs JSON.
pub async fn post_json(
    addr: SocketAddr,
    path: &str,
    body: &serde_json::Value,
) -> Result<(u16, String), String> {
    http(
        addr,
        "POST",
        path,
        Some("application/json"),
        body.to_string().into_bytes(),
    )
    .await
}

/// A counter or gauge from the agent's `/metrics`.
pub async fn metric(addr: SocketAddr, name: &str) -> u64 {
    let (status, text) = http(addr, "GET", "/metrics", None, Vec::new())
        .await
        .unwrap();
    assert_eq!(status, 200);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
        .trim()
        .parse()
        .unwrap()
}

/// Points of one series: `{"series":[{"device":..,"metric":..,"points":[{t,v}..]}]}`.
pub fn points_body(device: &str, metric: &str, pts: &[(i64, f64)]) -> serde_json::Value {
    serde_json::json!({
        "series": [{
            "device": device,
            "metric": metric,
            "points": pts.iter().map(|&(t, v)| serde_json::json!({"t": t, "v": v})).collect::<Vec<_>>(),
        }]
    })
}

/// The sink's key map for one agent.
pub fn keys(home: &AgentHome) -> std::collections::HashMap<String, PublicKey> {
    std::collections::HashMap::from([(home.id.clone(), home.agent_key())])
}

/// Total size of the buffer files.
pub fn buffer_bytes(state: &Path) -> u64 {
    ["buffer.db", "buffer.db-wal"]
        .iter()
        .map(|f| std::fs::metadata(state.join(f)).map_or(0, |m| m.len()))
        .sum()
}

/// CPU time of process `pid` so far (user and system), in clock ticks (1/100 s).
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |x| x.1);
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the command name.
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

/// Resident memory of process `pid`, KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
