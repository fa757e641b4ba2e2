//! Self-update with real binaries: the `storefleet serve` process, a real agent under its
//! supervisor (`storefleet-agent supervise`), and three releases published with
//! `storefleet release publish` and pushed as fleet tasks:
//!
//! - v2 is the agent built a second time with another version (profile `update-test`);
//!   its first download is cut off by a mirror that hangs halfway and the agent is killed
//!   meanwhile: it comes back on v1 with nothing half-installed, and the next push resumes
//!   the download where it stopped and updates to v2;
//! - v3 crashes at start: the supervisor puts v2 back by itself and the task says why;
//! - a release whose stored binary was tampered with, and one whose manifest is not signed
//!   by the release key, are refused (the forged one before a byte is downloaded); the
//!   controller refuses an upload signed with another key.
//!
//! The mirror (`releases.download_url`) is a small HTTP server in this test that serves the
//! controller's release files and can be told to hang halfway through one.

use std::io::{BufRead as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::common::{enrolled_home, eventually, AgentHome, Controller, STOREFLEET};

const V2: &str = "0.1.1-update";

/// Serves `root`'s release files like the controller does; `stall` makes the next whole
/// download hang after half the bytes. Records the Range headers it was asked for.
struct Mirror {
    addr: SocketAddr,
    root: Arc<Mutex<PathBuf>>,
    stall: Arc<AtomicBool>,
    ranges: Arc<Mutex<Vec<String>>>,
    asked: Arc<Mutex<Vec<String>>>,
    stalled: Arc<AtomicBool>,
}

async fn serve(
    mut s: tokio::net::TcpStream,
    root: Arc<Mutex<PathBuf>>,
    stall: Arc<AtomicBool>,
    stalled: Arc<AtomicBool>,
    ranges: Arc<Mutex<Vec<String>>>,
    asked: Arc<Mutex<Vec<String>>>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let path = text
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    asked.lock().unwrap().push(path.clone());
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let root = root.lock().unwrap().clone();
    let file = match parts.as_slice() {
        ["releases", v, a] => root.join(format!("storefleet-agent-{v}-{a}")),
        _ => PathBuf::new(),
    };
    let Ok(bytes) = std::fs::read(&file) else {
        let _ = s
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    };
    let range = text.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("range: bytes=")
            .map(str::to_owned)
    });
    if let Some(r) = range {
        ranges.lock().unwrap().push(r.clone());
        let start: usize = r.trim_end_matches('-').trim().parse().unwrap();
        let body = &bytes[start..];
        let h = format!(
            "HTTP/1.1 206 Partial Content\r\ncontent-length: {}\r\ncontent-range: bytes {start}-{}/{}\r\n\r\n",
            body.len(),
            bytes.len() - 1,
            bytes.len()
        );
        let _ = s.write_all(h.as_bytes()).await;
        let _ = s.write_all(body).await;
        return;
    }
    let h = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", bytes.len());
    let _ = s.write_all(h.as_bytes()).await;
    if stall.swap(false, Ordering::SeqCst) {
        let _ = s.write_all(&bytes[..bytes.len() / 2]).await;
        let _ = s.flush().await;
        stalled.store(true, Ordering::SeqCst);
        // A peer that hangs: the connection stays open with nothing more on it.
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        return;
    }
    let _ = s.write_all(&bytes).await;
}

impl Mirror {
    async fn start() -> Mirror {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let m = Mirror {
            addr: l.local_addr().unwrap(),
            root: Arc::default(),
            stall: Arc::default(),
            ranges: Arc::default(),
            asked: Arc::default(),
            stalled: Arc::default(),
        };
        let (root, stall, stalled, ranges, asked) = (
            m.root.clone(),
            m.stall.clone(),
            m.stalled.clone(),
            m.ranges.clone(),
            m.asked.clone(),
        );
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(serve(
                    s,
                    root.clone(),
                    stall.clone(),
                    stalled.clone(),
                    ranges.clone(),
                    asked.clone(),
                ));
            }
        });
        m
    }
}

/// The agent under its supervisor.
struct Supervised(Child);

impl Supervised {
    fn start(home: &AgentHome) -> Supervised {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(home.dir.path().join("agent.log"))
            .unwrap();
        Supervised(
            home.command()
                .arg("supervise")
                .env("STOREFLEET_LOG", "info,storefleet_agent=debug")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        )
    }

    /// SIGKILL, as a power cut would (the worker goes with it).
    fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    fn alive(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn publish(ctl: &Controller, file: &Path, version: &str, key: &Path) {
    let (ok, out, err) = ctl.cli(&[
        "release",
        "publish",
        file.to_str().unwrap(),
        "--version",
        version,
        "--arch",
        std::env::consts::ARCH,
        "--key",
        key.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("published {version}")), "{out}");
}

/// Pushes an update to every agent; returns the task id.
fn push(ctl: &Controller, version: &str, confirm: &str) -> String {
    let (ok, out, err) = ctl.cli(&[
        "--json",
        "task",
        "push",
        "--update",
        version,
        "--confirm",
        confirm,
        "--select",
        "all",
        "--canary",
        "0",
        "--timeout",
        "5m",
    ]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}"));
    v["id"].as_str().unwrap().to_owned()
}

/// The task's one target once it has finished (or the agent's log, if it does not).
async fn finished(ctl: &Controller, home: &AgentHome, task: &str) -> Value {
    let done = ["succeeded", "failed", "rejected", "timed_out"];
    let found = crate::common::within(180, || async {
        let t = ctl.get(&format!("/api/v1/tasks/{task}/targets")).await;
        let t = t.as_array()?.first()?.clone();
        done.contains(&t["state"].as_str().unwrap_or_default())
            .then_some(t)
    })
    .await;
    match found {
        Some(t) => t,
        None => {
            let log = home.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            panic!(
                "task {task} did not finish: {}\nagent log (newest first):\n{}",
                ctl.get(&format!("/api/v1/tasks/{task}/targets")).await,
                tail.join("\n")
            );
        }
    }
}

async fn reports(ctl: &Controller, version: &str) {
    eventually(
        60,
        &format!("the agent online reporting {version}"),
        || async {
            let a = ctl.get("/api/v1/agents").await;
            let a = a.as_array()?.first()?.clone();
            (a["online"] == true && a["agent_version"] == version).then_some(())
        },
    )
    .await;
}

fn state(home: &AgentHome) -> Value {
    std::fs::read(home.state_dir().join("update/state.json"))
        .map_or(Value::Null, |b| serde_json::from_slice(&b).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_resume_after_a_kill_roll_back_a_crashing_version_and_refuse_forgeries() {
    let keys = tempfile::tempdir().unwrap();
    let v2 = storefleet_testkit::broker::agent_as_version(V2, &keys.path().join("v2"));
    let key = keys.path().join("release.key");
    let (ok, out, err) = {
        let o = Command::new(STOREFLEET)
            .args(["release", "keygen", "--out", key.to_str().unwrap()])
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert!(ok, "{err}");
    let public = out
        .lines()
        .find_map(|l| l.strip_prefix("public_key = "))
        .unwrap()
        .trim_matches('"')
        .to_owned();
    // The mirror serves the controller's own release files; the controller is told of it.
    let mirror = Mirror::start().await;
    let ctl = Controller::start_with(
        None,
        &format!(
            "[releases]\npublic_key = \"{public}\"\ndownload_url = \"http://{}/releases\"\n",
            mirror.addr
        ),
    );
    let state_root = ctl.dir.path().join("state");
    *mirror.root.lock().unwrap() = state_root.join("releases");
    let (s, v) = ctl
        .call(
            "PUT",
            "/api/v1/stores/U1",
            Some(&json!({"code": "U1", "name": "Update store", "region": "north"})),
            true,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let home = enrolled_home(&ctl, "U1", "");
    let dropin = std::fs::read_to_string(
        home.config_path()
            .parent()
            .unwrap()
            .join("agent.d/50-enrollment.toml"),
    )
    .unwrap();
    assert!(
        dropin.contains(&public),
        "enrollment pins the release key: {dropin}"
    );
    let mut agent = Supervised::start(&home);
    reports(&ctl, "0.1.0").await;

    // The controller refuses a release signed with another key.
    let other = keys.path().join("other.key");
    assert!(Command::new(STOREFLEET)
        .args(["release", "keygen", "--out", other.to_str().unwrap()])
        .status()
        .unwrap()
        .success());
    let (ok, _, err) = ctl.cli(&[
        "release",
        "publish",
        v2.to_str().unwrap(),
        "--version",
        "9.9.9",
        "--arch",
        std::env::consts::ARCH,
        "--key",
        other.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("signature"), "{err}");

    // v2, first try: the mirror hangs halfway; the gateway dies meanwhile.
    publish(&ctl, &v2, V2, &key);
    // The controller's own download: whole, and resumed from a byte (streamed from disk).
    let bytes = std::fs::read(&v2).unwrap();
    let url = format!("{}/releases/{V2}/{}", ctl.url(), std::env::consts::ARCH);
    let get = |range: Option<&str>| {
        let headers = range
            .map(|r| vec![("range", r.to_owned())])
            .unwrap_or_default();
        let (url, ctl) = (url.clone(), &ctl);
        async move {
            ctl.send(
                storefleet_support::http::Request {
                    method: "GET",
                    url: &url,
                    headers,
                    body: None,
                },
                std::time::Duration::from_secs(60),
            )
            .await
            .unwrap()
        }
    };
    let whole = get(None).await;
    assert_eq!((whole.status, whole.body.len()), (200, bytes.len()));
    assert!(whole.body == bytes, "the published binary, byte for byte");
    let rest = get(Some("bytes=1000-")).await;
    assert_eq!(rest.status, 206);
    assert!(rest.body == bytes[1000..], "resumed from byte 1000");
    assert_eq!(
        get(Some(&format!("bytes={}-", bytes.len()))).await.status,
        416
    );
    mirror.stall.store(true, Ordering::SeqCst);
    let first = push(&ctl, V2, "60s");
    let part = home
        .state_dir()
        .join(format!("update/storefleet-agent-{V2}.part"));
    eventually(60, "the download hanging halfway", || async {
        (mirror.stalled.load(Ordering::SeqCst)
            && std::fs::metadata(&part).is_ok_and(|m| m.len() > 0))
        .then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    agent.kill9();
    let half = std::fs::metadata(&part).unwrap().len();
    let size = std::fs::metadata(&v2).unwrap().len();
    assert!(half > 0 && half < size, "{half} of {size}");
    assert!(
        !home
            .state_dir()
            .join(format!("bin/storefleet-agent-{V2}"))
            .exists(),
        "nothing half-installed"
    );
    assert!(state(&home)["trial"].is_null(), "{}", state(&home));
    let mut agent = Supervised::start(&home);
    reports(&ctl, "0.1.0").await;
    let (s, _) = ctl
        .call("POST", &format!("/api/v1/tasks/{first}/cancel"), None, true)
        .await;
    assert_eq!(s, 200);

    // Pushed again: the download resumes where it stopped, and v2 confirms.
    let second = push(&ctl, V2, "60s");
    let t = finished(&ctl, &home, &second).await;
    assert_eq!(t["state"], "succeeded", "{t}\n{}", home.log());
    assert!(
        t["message"].as_str().unwrap().contains(&format!("to {V2}")),
        "{t}"
    );
    assert_eq!(
        mirror.ranges.lock().unwrap().clone(),
        vec![format!("{half}-")],
        "resumed from the partial file"
    );
    reports(&ctl, V2).await;
    let st = state(&home);
    assert_eq!(st["current"]["version"], V2, "{st}");
    assert_eq!(st["previous"]["version"], "0.1.0", "{st}");
    assert!(agent.alive(), "the supervisor carried on");

    // v3 crashes at start: back to v2 by itself, and the task says why.
    let v3 = keys.path().join("v3");
    std::fs::write(&v3, "#!/bin/sh\necho 'v3: cannot start' >&2\nexit 3\n").unwrap();
    publish(&ctl, &v3, "0.1.2-crash", &key);
    let third = push(&ctl, "0.1.2-crash", "30s");
    let t = finished(&ctl, &home, &third).await;
    assert_eq!(t["state"], "failed", "{t}");
    let msg = t["message"].as_str().unwrap();
    assert!(
        msg.contains("exited with code 3") && msg.contains(&format!("rolled back to {V2}")),
        "{msg}"
    );
    reports(&ctl, V2).await;
    assert_eq!(state(&home)["current"]["version"], V2);
    assert!(agent.alive());

    // A binary changed after it was signed (the mirror or the disk): refused after download.
    let tampered_file = keys.path().join("v4");
    std::fs::write(&tampered_file, std::fs::read(&v2).unwrap()).unwrap();
    publish(&ctl, &tampered_file, "0.1.3-tampered", &key);
    let stored = state_root.join(format!(
        "releases/storefleet-agent-0.1.3-tampered-{}",
        std::env::consts::ARCH
    ));
    let mut bytes = std::fs::read(&stored).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&stored, bytes).unwrap();
    let fourth = push(&ctl, "0.1.3-tampered", "30s");
    let t = finished(&ctl, &home, &fourth).await;
    assert_eq!(t["state"], "failed", "{t}");
    assert!(
        t["message"]
            .as_str()
            .unwrap()
            .contains("does not match its manifest"),
        "{t}"
    );

    // A manifest the release key did not sign (a controller taken over): refused before
    // anything is downloaded.
    publish(&ctl, &tampered_file, "0.1.4-forged", &key);
    let forged = {
        let k =
            storefleet_protocol::SigningKey::from_pkcs8(&std::fs::read(&other).unwrap()).unwrap();
        storefleet_protocol::release::Release::sign(
            "0.1.4-forged",
            std::env::consts::ARCH,
            b"evil",
            &k,
        )
        .unwrap()
    };
    // Beside the running controller, as a second writer.
    let db = ctl.config().open_database().unwrap();
    db.write(move |c| {
        c.execute(
            "UPDATE releases SET signature = ?1, sha256 = ?2, size = ?3 WHERE version = '0.1.4-forged'",
            storefleet_storage::args![forged.signature, forged.sha256, forged.size],
        )
    })
    .await
    .unwrap();
    drop(db);
    let fifth = push(&ctl, "0.1.4-forged", "30s");
    let t = finished(&ctl, &home, &fifth).await;
    assert_eq!(t["state"], "rejected", "{t}");
    assert!(
        t["message"]
            .as_str()
            .unwrap()
            .contains("signature does not verify"),
        "{t}"
    );
    assert!(
        !mirror
            .asked
            .lock()
            .unwrap()
            .iter()
            .any(|p| p.contains("0.1.4-forged")),
        "nothing was downloaded for a forged manifest"
    );
    reports(&ctl, V2).await;
    assert!(agent.alive());
    let lines: Vec<String> =
        std::io::BufReader::new(std::fs::File::open(home.dir.path().join("agent.log")).unwrap())
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.contains("rolling back"))
            .collect();
    assert_eq!(lines.len(), 1, "one rollback: {lines:?}");
    let _ = std::io::stdout().flush();
}
