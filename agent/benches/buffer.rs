//! Figures for the agent, printed as a table: `cargo bench -p storefleet-agent --bench buffer`.
//!
//! 1. Buffer ingest and drain (points/s) beside a raw batched SQLite insert loop.
//! 2. Full rate through the real agent binary: HTTP ingest -> buffer -> broker PUBACK,
//!    with the agent process's CPU time per point.
//! 3. Replay of a 1,000,000-point backlog after an outage.
//! 4. Steady state with 50 probed devices at a 10 s interval: RSS and CPU.
//! 5. Broker back -> backlog delivered after an outage, median of `BENCH_RECONNECTS` (5)
//!    outages of `BENCH_OUTAGE_SECS` (30) each, with the agent's default reconnect delays.
//! 6. Size of the release binary.
//!
//! The broker is Mosquitto when `STOREFLEET_TEST_MQTT` is set, else the embedded one.
//! `BENCH_POINTS` (default 1,000,000) and `BENCH_STEADY_SECS` (default 60) scale the runs;
//! `BENCH_AGENT` names another agent binary to measure (e.g. `target/dist/storefleet-agent`
//! from `cargo build --profile dist`, the size-optimised build that gateways get).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use storefleet_agent::buffer::{Buffer, Limits, Sealer, SeriesIn, Store};
use storefleet_agent::config::Durability;
use storefleet_agent::health::Health;
use storefleet_protocol::SigningKey;
use storefleet_testkit::agent::{cpu_ticks, http, metric, rss_kib};
use storefleet_testkit::bench::{broker, env_num};
use storefleet_testkit::proxy::Proxy;

/// The agent binary measured: `BENCH_AGENT`, else the release build.
fn agent_binary() -> String {
    std::env::var("BENCH_AGENT")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_storefleet-agent").to_owned())
}

fn batch(series: usize, per: usize, from: i64) -> Vec<SeriesIn> {
    (0..series)
        .map(|s| SeriesIn {
            device: Some(format!("dev-{s}")),
            metric: "bench.value".into(),
            points: (0..per as i64).map(|i| (from + i, i as f64)).collect(),
        })
        .collect()
}

fn raw_insert(dir: &std::path::Path, n: usize) -> f64 {
    let conn = rusqlite::Connection::open(dir.join("raw.db")).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE points (id INTEGER PRIMARY KEY, series INTEGER NOT NULL, t INTEGER NOT NULL, v REAL NOT NULL);",
    )
    .unwrap();
    let start = Instant::now();
    let mut done = 0;
    while done < n {
        conn.execute_batch("BEGIN").unwrap();
        {
            let mut stmt = conn
                .prepare_cached("INSERT INTO points (series, t, v) VALUES (?1, ?2, ?3)")
                .unwrap();
            for i in 0..10_000 {
                stmt.execute(rusqlite::params![
                    (i % 10) as i64,
                    (done + i) as i64,
                    i as f64
                ])
                .unwrap();
            }
        }
        conn.execute_batch("COMMIT").unwrap();
        done += 10_000;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

async fn buffer_ingest_drain(dir: &std::path::Path, n: usize) -> f64 {
    let store = Store::open(
        &dir.join("buffer.db"),
        Sealer {
            agent_id: "bench".into(),
            key: Arc::new(SigningKey::generate().unwrap()),
        },
        Limits {
            max_bytes: 1 << 32,
            events_max_bytes: 1 << 26,
            max_batch_points: 2000,
            max_batch_bytes: 256 * 1024,
            durability: Durability::Normal,
            compress: true,
        },
        Arc::new(Health::default()),
    )
    .unwrap();
    let (buffer, thread) = Buffer::start(store);
    let start = Instant::now();
    let mut done = 0;
    while done < n {
        done += buffer
            .add_points(batch(10, 1000, done as i64))
            .await
            .unwrap();
    }
    let mut after = 0;
    let mut drained = 0usize;
    loop {
        let msgs = buffer.next_messages(after, 64).await.unwrap();
        let Some(last) = msgs.last() else { break };
        after = last.seq;
        drained += msgs.len();
        buffer.ack(msgs.iter().map(|m| m.seq).collect());
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    assert!(drained > 0);
    drop(buffer);
    thread.join().unwrap();
    rate
}

struct Agent {
    child: Child,
    ingest: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Quick reconnects, for the runs that measure something else.
const FAST_SYNC: &str = "backoff_min_ms = 50\nbackoff_max_ms = 200";

fn start_agent(mqtt: SocketAddr, sync: &str, extra: &str) -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let ingest: SocketAddr = ([127, 0, 0, 1], storefleet_testkit::free_port()).into();
    let cfg = dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "[agent]\nid = \"bench-{}\"\nstate_dir = \"{}\"\nhealth_interval_secs = 0\n[controller]\nmqtt_url = \"mqtt://{mqtt}\"\n[sync]\n{sync}\n[ingest]\nlisten = \"{ingest}\"\nmax_body_bytes = 4194304\n{extra}\n",
            std::process::id(),
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let child = Command::new(agent_binary())
        .args(["--config", cfg.to_str().unwrap(), "run"])
        .env("STOREFLEET_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while std::net::TcpStream::connect(ingest).is_err() {
        std::thread::sleep(Duration::from_millis(10));
    }
    Agent {
        child,
        ingest,
        _dir: dir,
    }
}

async fn post(addr: SocketAddr, body: String) -> u16 {
    http(
        addr,
        "POST",
        "/v1/telemetry",
        Some("application/json"),
        body.into_bytes(),
    )
    .await
    .expect("ingest answers")
    .0
}

/// Posts `n` points in requests of 2000 (10 series x 200), two clients at a time.
async fn ingest_points(addr: SocketAddr, n: usize) {
    let per_req = 2000;
    let bodies: Vec<String> = (0..n / per_req)
        .map(|r| {
            let series: Vec<serde_json::Value> = (0..10)
                .map(|s| {
                    serde_json::json!({"device": format!("dev-{s}"), "metric": "bench.value",
                        "points": (0..200).map(|i| serde_json::json!({"t": 1_700_000_000_000i64 + (r * 200 + i) as i64, "v": i})).collect::<Vec<_>>()})
                })
                .collect();
            serde_json::json!({ "series": series }).to_string()
        })
        .collect();
    let mut chunks = bodies
        .chunks(bodies.len().div_ceil(2))
        .map(<[String]>::to_vec)
        .collect::<Vec<_>>();
    let b = chunks.pop().unwrap_or_default();
    let a = chunks.pop().unwrap_or_default();
    let ta = tokio::spawn(async move {
        for body in a {
            assert_eq!(post(addr, body).await, 200);
        }
    });
    let tb = tokio::spawn(async move {
        for body in b {
            assert_eq!(post(addr, body).await, 200);
        }
    });
    ta.await.unwrap();
    tb.await.unwrap();
}

async fn wait_acked(addr: SocketAddr, n: u64, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if metric(addr, "storefleet_agent_points_acked_total").await >= n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Broker back -> backlog delivered: the line drops for a while (long enough for the
/// reconnect delays to reach their bound), points arrive meanwhile, then the line is back.
async fn reconnects(mqtt: SocketAddr) {
    let rounds = env_num("BENCH_RECONNECTS", 5) as usize;
    let outage = Duration::from_secs(env_num("BENCH_OUTAGE_SECS", 30));
    let per_round = 10_000;
    let proxy = Proxy::start(mqtt).await;
    // The agent's own reconnect delays, as a store gets them (`BENCH_SYNC` to try others).
    let sync = std::env::var("BENCH_SYNC").unwrap_or_default();
    let agent = start_agent(proxy.addr, &sync.replace(';', "\n"), "");
    // Connected first: a first batch delivered.
    let first = 2000;
    ingest_points(agent.ingest, first).await;
    assert!(
        wait_acked(agent.ingest, first as u64, Duration::from_secs(30)).await,
        "never connected"
    );
    let mut took = Vec::new();
    for r in 1..=rounds {
        proxy.cut();
        tokio::time::sleep(outage / 2).await;
        ingest_points(agent.ingest, per_round).await;
        tokio::time::sleep(outage / 2).await;
        let t0 = Instant::now();
        proxy.restore();
        let want = (first + r * per_round) as u64;
        assert!(
            wait_acked(agent.ingest, want, Duration::from_secs(300)).await,
            "backlog not delivered"
        );
        took.push(t0.elapsed().as_secs_f64());
    }
    let mut sorted = took.clone();
    sorted.sort_by(f64::total_cmp);
    let runs: Vec<String> = took.iter().map(|t| format!("{t:.2}")).collect();
    println!(
        "broker back -> {per_round}-point backlog delivered after {} s outages: median {:.2} s of {rounds} (target < 5 s; each: {} s)",
        outage.as_secs(),
        sorted[rounds / 2],
        runs.join(", ")
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env_num("BENCH_POINTS", 1_000_000) as usize;
    let steady = env_num("BENCH_STEADY_SECS", 60);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (mqtt, broker_name) = broker();
    println!("storefleet-agent figures ({n} points, broker: {broker_name})");

    let dir = tempfile::tempdir().unwrap();
    let raw = raw_insert(dir.path(), n);
    let ours = rt.block_on(buffer_ingest_drain(dir.path(), n));
    println!("buffer ingest+drain     {ours:>12.0} points/s   raw batched insert {raw:>12.0} points/s   ratio {:.0}% (target >= 30%)", ours * 100.0 / raw);

    rt.block_on(async {
        // Full rate: live ingest straight through to PUBACK.
        let agent = start_agent(mqtt, FAST_SYNC, "");
        let pid = agent.child.id();
        let cpu0 = cpu_ticks(pid);
        let t0 = Instant::now();
        ingest_points(agent.ingest, n).await;
        assert!(wait_acked(agent.ingest, n as u64, Duration::from_secs(300)).await, "full-rate run did not finish");
        let secs = t0.elapsed().as_secs_f64();
        let cpu = (cpu_ticks(pid) - cpu0) as f64 / 100.0;
        println!(
            "full rate ingest->PUBACK {:>11.0} points/s   agent CPU {:.2} us/point (target <= 3 us)",
            n as f64 / secs,
            cpu * 1e6 / n as f64
        );
        drop(agent);

        // Replay: an outage builds a backlog, then the line comes back.
        let proxy = Proxy::start(mqtt).await;
        proxy.cut();
        let agent = start_agent(proxy.addr, FAST_SYNC, "");
        ingest_points(agent.ingest, n).await;
        let t0 = Instant::now();
        proxy.restore();
        assert!(wait_acked(agent.ingest, n as u64, Duration::from_secs(300)).await, "replay did not finish");
        println!("replay of {n} buffered points {:>8.2} s (target <= 5 s)", t0.elapsed().as_secs_f64());
        drop(agent);

        // Steady state: 50 devices probed every 10 s.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = listener.local_addr().unwrap();
        tokio::spawn(async move { while let Ok((s, _)) = listener.accept().await { drop(s); } });
        let devices = (0..50)
            .map(|i| format!("[[devices]]\nid = \"dev-{i}\"\nclass = \"receipt-printer\"\ninterval_secs = 10\nprobe = {{ type = \"tcp\", address = \"{target}\" }}\n"))
            .collect::<Vec<_>>()
            .concat();
        let agent = start_agent(mqtt, FAST_SYNC, &format!("[host]\ninterval_secs = 30\n{devices}"));
        let pid = agent.child.id();
        tokio::time::sleep(Duration::from_secs(15)).await;
        let cpu0 = cpu_ticks(pid);
        let mut peak = 0;
        for _ in 0..steady {
            tokio::time::sleep(Duration::from_secs(1)).await;
            peak = peak.max(rss_kib(pid));
        }
        let cpu = (cpu_ticks(pid) - cpu0) as f64 / 100.0;
        println!(
            "steady 50 devices @10s   RSS {:.1} MB now, {:.1} MB peak (target <= 10 MB)   CPU {:.3}% of a core over {steady} s (target < 1%)",
            rss_kib(pid) as f64 / 1024.0,
            peak as f64 / 1024.0,
            cpu * 100.0 / steady as f64
        );
    });

    rt.block_on(reconnects(mqtt));

    let bin = agent_binary();
    let size = std::fs::metadata(&bin).map_or(0, |m| m.len());
    println!(
        "binary {bin}: {:.2} MB stripped (target <= 8 MB)",
        size as f64 / 1e6
    );
}
