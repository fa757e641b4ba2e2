//! Controller replicas as processes of their own (`storefleet serve`), so that each one's
//! CPU and memory can be told apart from the others' and from the simulated fleet: usage
//! from `/proc`, counters from its `/metrics`, and a load window ([`Load`]) that reports
//! both.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use storefleet_controller::config::Config;
use storefleet_support::http::{self, Request};

use super::{free_port, KillOnDrop};

/// A replica process.
pub struct Replica {
    /// Its name (`controller.replica`).
    pub name: String,
    /// Its HTTP address.
    pub http: SocketAddr,
    child: KillOnDrop,
    token: String,
}

/// CPU time (clock ticks, user and system), resident and peak resident memory (kB) of a
/// process (`self` or a pid).
pub fn usage(pid: &str) -> (u64, u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let f: Vec<&str> = stat
        .rsplit_once(") ")
        .map_or("", |(_, r)| r)
        .split_whitespace()
        .collect();
    let field = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field(11) + field(12), kb("VmRSS:"), kb("VmHWM:"))
}

impl Replica {
    /// Starts `storefleet serve` on `config` (HTTP on a free port) with its config and log
    /// in `dir` (warnings; `BENCH_REPLICA_LOG` sets the filter), and waits until ingest is
    /// connected. `token` is an API token for its
    /// `/metrics`.
    pub async fn spawn(name: &str, mut config: Config, dir: &Path, token: &str) -> Replica {
        config.controller.replica = name.into();
        config.http.listen = ([127, 0, 0, 1], free_port()).into();
        let path = dir.join(format!("replica-{name}.toml"));
        std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
        let log = std::fs::File::create(dir.join(format!("replica-{name}.log"))).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_storefleet"))
            .arg("serve")
            .env("STOREFLEET_CONFIG", &path)
            .env(
                "STOREFLEET_LOG",
                std::env::var("BENCH_REPLICA_LOG").unwrap_or_else(|_| "warn,rumqttc=error".into()),
            )
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("storefleet serve");
        let r = Replica {
            name: name.into(),
            http: config.http.listen,
            child: KillOnDrop(child),
            token: token.into(),
        };
        let start = Instant::now();
        while r.metric("storefleet_controller_ingest_connected").await != Some(1.0) {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "replica {name} did not come up; see its log in {}",
                dir.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        r
    }

    /// The process id.
    pub fn pid(&self) -> String {
        self.child.0.id().to_string()
    }

    /// A value of its `/metrics` (the first sample of `name` without labels); `None` when
    /// it does not answer.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let r = http::send(
            Request {
                method: "GET",
                url: &format!("http://{}/metrics", self.http),
                headers: vec![("authorization", format!("Bearer {}", self.token))],
                body: None,
            },
            Duration::from_secs(30),
        )
        .await
        .ok()?;
        let body = String::from_utf8_lossy(&r.body).into_owned();
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    }

    /// Asks it to stop (SIGTERM), as systemd does.
    pub fn terminate(&self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid()])
            .status();
    }

    /// Waits until it exited, at most `limit`; whether it did.
    pub async fn exited(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(_)) = self.child.0.try_wait() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        false
    }
}

/// Messages sent and stored, and CPU of the bench process and of each replica process,
/// over a window.
pub struct Load {
    at: Instant,
    sent: u64,
    stored: u64,
    /// (name, pid, CPU ticks at the start): `self` first, then each replica process.
    procs: Vec<(String, String, u64)>,
}

impl Load {
    pub fn start(sent: u64, stored: u64, replicas: &[Replica]) -> Load {
        let mut procs = vec![("bench process".to_owned(), "self".to_owned())];
        procs.extend(
            replicas
                .iter()
                .map(|r| (format!("replica {}", r.name), r.pid())),
        );
        Load {
            at: Instant::now(),
            sent,
            stored,
            procs: procs
                .into_iter()
                .map(|(name, pid)| {
                    let ticks = usage(&pid).0;
                    (name, pid, ticks)
                })
                .collect(),
        }
    }

    pub fn report(&self, sent: u64, stored: u64) {
        let secs = self.at.elapsed().as_secs_f64();
        println!(
            "load over {secs:.0} s: {:.0} messages/s sent, {:.0} stored (backlog at the end {})",
            (sent - self.sent) as f64 / secs,
            (stored - self.stored) as f64 / secs,
            sent.saturating_sub(stored),
        );
        for (name, pid, start) in &self.procs {
            let (ticks, rss, hwm) = usage(pid);
            println!(
                "  {name}: {:.0} % CPU of one core, RSS {:.0} MB (peak {:.0} MB)",
                (ticks - start) as f64 / 100.0 / secs * 100.0,
                rss as f64 / 1024.0,
                hwm as f64 / 1024.0,
            );
        }
    }
}
