//! The HTTP surface under a slow-header attack: the real `storefleet serve` process with its
//! default limits (10 s header timeout, 4,096 connections, 256 per address), and two
//! attacker processes (this bench again, so that each stays within its open-files limit)
//! holding `BENCH_CONNECTIONS` (20,000) connections in all from 80 loopback addresses, each
//! starting a TLS handshake (half a ClientHello) and then sending nothing, opened again as
//! the controller closes them, for `BENCH_SECS` (30 s); this process measures. The
//! controller serves HTTPS with its self-signed certificate, as by default; `BENCH_TLS=0`
//! runs it on plain HTTP, the attackers then sending half a request's headers.
//!
//! Reported: answers per second on a login-protected page (the fleet overview, with a
//! session) before and during the attack, the controller's CPU during the attack, and the
//! controller's own counts of refused connections and accept errors.
//!
//! ```sh
//! cargo bench -p storefleet-controller --bench slowloris
//! ```

mod support;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::env_u64;
use tokio::io::AsyncWriteExt as _;

const BIN: &str = env!("CARGO_BIN_EXE_storefleet");

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(") ").next().unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

/// The controller's base URL and a client that trusts it.
#[derive(Clone)]
struct Target {
    base: String,
    client: storefleet_support::http::Client,
}

/// Answers per second of `GET /` with the session `cookie`, from 8 clients, for `secs`.
async fn page_rate(target: &Target, cookie: &str, secs: u64) -> (f64, u64) {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (ok, failed, cookie) = (ok.clone(), failed.clone(), cookie.to_owned());
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                let r = target
                    .client
                    .send(
                        storefleet_support::http::Request {
                            method: "GET",
                            url: &format!("{}/", target.base),
                            headers: vec![("cookie", cookie.clone())],
                            body: None,
                        },
                        Duration::from_secs(5),
                    )
                    .await;
                match r {
                    Ok(r) if r.status == 200 => ok.fetch_add(1, Relaxed),
                    _ => failed.fetch_add(1, Relaxed),
                };
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    (ok.load(Relaxed) as f64 / secs as f64, failed.load(Relaxed))
}

/// Keeps `n` slow connections open from 40 addresses (from `base`) until `stop`.
async fn attack(http: SocketAddr, n: u64, base: u8, tls: bool, stop: Arc<AtomicBool>) -> u64 {
    let opened = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..n {
        let (opened, stop) = (opened.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let from: SocketAddr = ([127, 0, base + (i % 40) as u8, 1], 0).into();
            while !stop.load(Relaxed) {
                let Ok(sock) = tokio::net::TcpSocket::new_v4() else {
                    break;
                };
                if sock.bind(from).is_err() {
                    break;
                }
                let Ok(Ok(mut s)) =
                    tokio::time::timeout(Duration::from_secs(5), sock.connect(http)).await
                else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                opened.fetch_add(1, Relaxed);
                let start: &[u8] = if tls {
                    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
                } else {
                    b"GET / HTTP/1.1\r\nHost: x\r\n"
                };
                let _ = s.write_all(start).await;
                // Held until the controller closes it (or the end).
                let mut buf = [0u8; 512];
                loop {
                    tokio::select! {
                        r = tokio::io::AsyncReadExt::read(&mut s, &mut buf) => {
                            if matches!(r, Ok(0) | Err(_)) { break; }
                        }
                        () = tokio::time::sleep(Duration::from_millis(500)) => {
                            if stop.load(Relaxed) { return; }
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    opened.load(Relaxed)
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0)
}

/// An attacker process: `BENCH_ATTACK=http-addr,connections,base,tls` until killed.
fn attacker(spec: &str) {
    let mut it = spec.split(',');
    let http: SocketAddr = it.next().unwrap().parse().unwrap();
    let n: u64 = it.next().unwrap().parse().unwrap();
    let base: u8 = it.next().unwrap().parse().unwrap();
    let tls = it.next() == Some("tls");
    {
        use nix::sys::resource::{getrlimit, setrlimit, Resource};
        if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(attack(http, n, base, tls, Arc::new(AtomicBool::new(false))));
}

fn main() {
    if let Ok(spec) = std::env::var("BENCH_ATTACK") {
        attacker(&spec);
        return;
    }
    let conns = env_u64("BENCH_CONNECTIONS", 20_000);
    let secs = env_u64("BENCH_SECS", 30);
    let tls = env_u64("BENCH_TLS", 1) != 0;
    let dir = tempfile::tempdir().unwrap();
    let http: SocketAddr = ([127, 0, 0, 1], support::free_port()).into();
    let mqtt: SocketAddr = ([127, 0, 0, 1], support::free_port()).into();
    std::fs::write(
        dir.path().join("controller.toml"),
        format!(
            "[controller]\nstate_dir = \"{}\"\n[http]\nlisten = \"{http}\"\ntls = {tls}\n[mqtt]\nlisten = \"{mqtt}\"\n[database]\nsynchronous = \"normal\"\n",
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args([
            "--config",
            dir.path().join("controller.toml").to_str().unwrap(),
            "serve",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let password = loop {
            if let Ok(p) = std::fs::read_to_string(dir.path().join("state/admin-password")) {
                if !p.trim().is_empty() && std::net::TcpStream::connect(http).is_ok() {
                    break p.trim().to_owned();
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let scheme = if tls { "https" } else { "http" };
        let pin = tls.then(|| {
            storefleet_support::http::Pin::of_pem_file(&dir.path().join("state/https-cert.pem"))
                .unwrap()
        });
        let target = Target {
            base: format!("{scheme}://{http}"),
            client: storefleet_support::http::Client::new(&storefleet_support::http::Trust {
                pin,
                ca_file: std::path::PathBuf::new(),
            })
            .unwrap(),
        };
        let r = target.client.send(
            storefleet_support::http::Request {
                method: "POST",
                url: &format!("{}/login", target.base),
                headers: vec![("origin", target.base.clone())],
                body: Some((
                    "application/x-www-form-urlencoded",
                    format!("user=admin&password={password}&next=/").into_bytes(),
                )),
            },
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        let cookie = r.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
        let token = std::fs::read_to_string(dir.path().join("state/admin-token")).unwrap();

        let (before, _) = page_rate(&target, &cookie, 10).await;
        let me = std::env::current_exe().unwrap();
        let mut attackers: Vec<std::process::Child> = [10u8, 50]
            .into_iter()
            .map(|base| {
                Command::new(&me)
                    .env("BENCH_ATTACK", format!("{http},{},{base},{}", conns / 2, if tls { "tls" } else { "plain" }))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (t0, c0) = (Instant::now(), cpu_ticks(pid));
        let (during, failed) = page_rate(&target, &cookie, secs).await;
        let cpu = (cpu_ticks(pid) - c0) as f64 / 100.0 / t0.elapsed().as_secs_f64() * 100.0;
        for a in &mut attackers {
            let _ = a.kill();
            let _ = a.wait();
        }
        let m = target.client.send(
            storefleet_support::http::Request {
                method: "GET",
                url: &format!("{}/metrics", target.base),
                headers: vec![("authorization", format!("Bearer {}", token.trim()))],
                body: None,
            },
            Duration::from_secs(10),
        )
        .await
        .unwrap()
        .text();
        let name = |o: &str| format!("storefleet_http_connections_total{{outcome=\"{o}\"}}");
        println!("slow-{} attack: {conns} connections held open from 80 addresses (2 processes) for {secs} s", if tls { "handshake (HTTPS)" } else { "header (plain HTTP)" });
        println!("  login-protected page (GET / with a session, 8 clients): {before:.0}/s before, {during:.0}/s during ({failed} failed)");
        println!("  controller CPU during the attack: {cpu:.0} % of one core");
        println!(
            "  controller: accepted {}, refused (address cap) {}, evicted (no whole request) {}, refused (total cap) {}, accept errors {}",
            metric(&m, &name("accepted")),
            metric(&m, &name("refused_address_cap")),
            metric(&m, &name("evicted_idle")),
            metric(&m, &name("refused_cap")),
            metric(&m, &name("accept_error"))
        );
        println!("  TLS handshakes failed or timed out: {}", metric(&m, &name("tls_failed")));
    });
    let _ = child.kill();
    let _ = child.wait();
}
