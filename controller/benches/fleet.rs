//! A large simulated fleet against the real controller: `storefleet serve` and the simulator
//! as two processes (this bench starts itself again as the simulator, the way
//! `storefleet-sim run` does it), then the controller's RSS and CPU in steady state and the
//! p95 latency of the overview (with its map), store, asset and ticket pages.
//!
//! `BENCH_BROKER=mosquitto` puts the agents on a Mosquitto of the bench's own (with
//! `deploy/mosquitto.conf`'s limits) instead of the controller's embedded broker, which
//! shows what the embedded broker holds in the controller's memory.
//!
//! ```sh
//! cargo bench -p storefleet-controller --bench fleet            # 1000 stores
//! BENCH_BROKER=mosquitto cargo bench -p storefleet-controller --bench fleet
//! BENCH_STORES=200 BENCH_STEADY_SECS=30 cargo bench -p storefleet-controller --bench fleet
//! ```

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
mod support;

use std::time::{Duration, Instant};
use support::{env_u64, free_port};

use storefleet_support::http::{self, Request};

const BIN: &str = env!("CARGO_BIN_EXE_storefleet");

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
    }
}

/// (utime + stime in clock ticks, RSS in kB) of a process.
fn usage(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f.get(11).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    (ticks, rss)
}

async fn get(url: &str, headers: Vec<(&str, String)>) -> (u16, String) {
    let r = http::send(
        Request {
            method: "GET",
            url,
            headers,
            body: None,
        },
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    (r.status, r.text())
}

fn p95(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 95 / 100).min(v.len() - 1)]
}

/// Set in the child that runs the simulated stores: "STORES URL TOKEN".
const SIM_CHILD: &str = "BENCH_SIM_CHILD";

/// The simulator process: the stores against the controller until SIGTERM.
fn simulate(spec: &str) {
    let mut it = spec.split(' ');
    let (stores, url, token) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
    let dir = std::path::PathBuf::from(std::env::var_os("BENCH_SIM_DIR").unwrap());
    let client = storefleet_controller::client::Client::new(url, token);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let stop = tokio_util::sync::CancellationToken::new();
        tokio::spawn(storefleet_support::shutdown::on_signals(stop.clone()));
        let tracker = tokio_util::task::TaskTracker::new();
        let opts = storefleet_sim::Options::new(stores.parse().unwrap(), dir, client);
        storefleet_sim::start(opts, stop.clone(), &tracker)
            .await
            .unwrap();
        stop.cancelled().await;
        tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(10), tracker.wait()).await;
    });
}

fn main() {
    if let Ok(spec) = std::env::var(SIM_CHILD) {
        return simulate(&spec);
    }
    let stores = env_u64("BENCH_STORES", 1000);
    let steady = env_u64("BENCH_STEADY_SECS", 60);
    let dir = tempfile::tempdir().unwrap();
    let http_addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mqtt: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mosquitto = (std::env::var("BENCH_BROKER").as_deref() == Ok("mosquitto")).then(|| {
        support::fleet_mosquitto(dir.path())
            .expect("BENCH_BROKER=mosquitto needs mosquitto (scripts/install-mosquitto.sh)")
    });
    let broker = match &mosquitto {
        Some((_, addr)) => format!("url = \"mqtt://{addr}\""),
        None => format!("listen = \"{mqtt}\""),
    };
    let config = dir.path().join("controller.toml");
    std::fs::write(
        &config,
        format!(
            "[controller]\nstate_dir = \"{}\"\n[http]\nlisten = \"{http_addr}\"\ntls = false\n[mqtt]\n{broker}\n",
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
    let serve = Proc(
        Command::new(BIN)
            .args(["--config", config.to_str().unwrap(), "serve"])
            .env("STOREFLEET_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let token_path = dir.path().join("state/admin-token");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !token_path.exists() || std::net::TcpStream::connect(http_addr).is_err() {
        assert!(Instant::now() < deadline, "controller did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let token = std::fs::read_to_string(&token_path)
        .unwrap()
        .trim()
        .to_owned();
    let password = std::fs::read_to_string(dir.path().join("state/admin-password"))
        .unwrap()
        .trim()
        .to_owned();
    let url = format!("http://{http_addr}");
    let started = Instant::now();
    let sim_log = std::fs::File::create(dir.path().join("simulate.log")).unwrap();
    let sim = Proc(
        Command::new(std::env::current_exe().unwrap())
            .env(SIM_CHILD, format!("{stores} {url} {token}"))
            .env("BENCH_SIM_DIR", dir.path().join("agents"))
            .env("STOREFLEET_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(sim_log)
            .spawn()
            .unwrap(),
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let auth = vec![("authorization", format!("Bearer {token}"))];
        // Wait until every store's agent is online.
        loop {
            let (s, body) = get(&format!("{url}/api/v1/agents"), auth.clone()).await;
            let online = if s == 200 { body.matches("\"online\":true").count() as u64 } else { 0 };
            if online >= stores {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(900), "only {online} of {stores} agents online");
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let ramp = started.elapsed();
        // Let the first inventory and readings settle, then measure a steady window.
        tokio::time::sleep(Duration::from_secs(20)).await;
        let (t0, _) = usage(serve.0.id());
        let (s0, _) = usage(sim.0.id());
        let w0 = Instant::now();
        tokio::time::sleep(Duration::from_secs(steady)).await;
        let (t1, rss) = usage(serve.0.id());
        let (s1, sim_rss) = usage(sim.0.id());
        let wall = w0.elapsed().as_secs_f64();
        let tick = 100.0; // USER_HZ on Linux
        let cpu = (t1 - t0) as f64 / tick / wall * 100.0;
        let sim_cpu = (s1 - s0) as f64 / tick / wall * 100.0;

        // Sign in like a browser, then time the pages.
        let cookie = raw_login(http_addr, &password);
        let mid = format!("S{:04}", stores / 2);
        let pages = [("overview /", "/".to_owned()), ("store page", format!("/stores/{mid}")), ("asset registry", "/assets?class=receipt-printer".to_owned()), ("asset search", format!("/assets?q=gw-s{:04}", stores / 2)), ("tickets", "/tickets".to_owned())];
        let on = if mosquitto.is_some() { "Mosquitto" } else { "the embedded broker" };
        println!("fleet of {stores} simulated stores on {on} (agents online after {ramp:.0?}), controller `storefleet serve` process:");
        println!("  RSS                    {:>8.1} MB", rss as f64 / 1024.0);
        println!("  CPU                    {cpu:>8.1} % of one core (steady, {steady} s)");
        println!("  simulator process      {:>8.1} MB RSS, {sim_cpu:.1} % CPU ({stores} agents and their devices)", sim_rss as f64 / 1024.0);
        for (name, path) in pages {
            let mut times = Vec::new();
            for _ in 0..40 {
                let t = Instant::now();
                let (s, body) = get(&format!("{url}{path}"), vec![("cookie", cookie.clone())]).await;
                times.push(t.elapsed());
                assert_eq!(s, 200, "{path}: {body}");
            }
            println!("  p95 {name:<18} {:>8.1} ms", p95(times).as_secs_f64() * 1000.0);
        }
    });
    drop(sim);
    drop(serve);
}

/// Signs in with a raw HTTP request and returns the session cookie (`name=value`).
fn raw_login(addr: SocketAddr, password: &str) -> String {
    use std::io::{Read as _, Write as _};
    let body = format!("user=admin&password={password}&next=/");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /login HTTP/1.1\r\nhost: {addr}\r\norigin: http://{addr}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .and_then(|c| c.split(';').next())
        .expect("session cookie")
        .to_owned()
}
