//! Alert rules and tickets with 1,000 simulated stores: the real controller (in this
//! process: ingest, the ticket engine, SQLite) and a real broker (the embedded one, or
//! Mosquitto with `STOREFLEET_TEST_MQTT`), against simulated agents at the protocol level
//! (signed telemetry and events over MQTT, as agents send them; a thousand real agent
//! processes do not fit on one machine, the controller's side is the same either way).
//!
//! Reported:
//! - Rule evaluation: one snapshot of the fleet read from the database, and the pure
//!   evaluation of every built-in rule over it (observations and state machine steps per
//!   second).
//! - Fault to ticket: printers go down in `BENCH_FAULTS` stores, one every 50 ms, while
//!   every store sends telemetry; for each, the time from the moment its rule's duration
//!   has elapsed (the fault's time + `for_secs`) to the ticket being committed and visible
//!   to a reader polling every 5 ms (so up to 5 ms of it is the poll). p50/p99/max.
//!
//! - With `BENCH_REPLICAS=2` (PostgreSQL at `STOREFLEET_TEST_PG`; a Mosquitto of its own
//!   with `deploy/mosquitto.conf`'s limits): two replicas, each a `storefleet serve`
//!   process of its own, share the uplink through the shared subscription, so about half
//!   the faults are stored by the replica that does not run the ticket engine and reach it
//!   by NOTIFY. The bench reads their counters from their `/metrics` and the database
//!   through a connection of its own. At the end the replica with the engines is told to
//!   stop (SIGTERM), and the time until the other runs them is reported.
//! - Whether ingest keeps up (messages sent and stored over `BENCH_STEADY_SECS` (65) of
//!   steady load and the fault phase), the p95 of the overview, a store, its readiness
//!   (one store in twenty is opening), the readiness board, the tickets and the asset
//!   registry pages on each replica under that load, and the CPU and RSS of the
//!   bench process (the simulated agents, and the controller with one replica) and of each
//!   replica process.
//!
//! ```sh
//! cargo bench -p storefleet-controller --bench tickets
//! BENCH_STORES=2000 BENCH_FAULTS=400 cargo bench -p storefleet-controller --bench tickets
//! BENCH_REPLICAS=2 BENCH_STORES=10000 BENCH_FAULTS=400 \
//!   STOREFLEET_TEST_PG=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p storefleet-controller --bench tickets
//! ```

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, QoS};
use storefleet_controller::alerts::eval::{Evaluator, Timing};
use storefleet_controller::alerts::{self, observe};
use storefleet_controller::fleet::Rules;
use storefleet_protocol::message::{Event, Point, Series, Severity, TelemetryBatch};
use storefleet_protocol::{now_ms, Direction, Envelope, Kind, Message, SigningKey, Topic};
use storefleet_storage::SqlExt as _;
use support::env_u64;
use support::replica::{Load, Replica};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

const REGIONS: [&str; 5] = ["north", "south", "east", "west", "alps"];
/// Devices of every store: (id, class, metric watched by a rule or not).
const DEVICES: [(&str, &str, &str); 10] = [
    ("pos-1", "pos", "transactions"),
    ("pos-2", "pos", "transactions"),
    ("pos-3", "pos", "transactions"),
    ("printer-1", "receipt-printer", "up"),
    ("scale-1", "scale", "weight_kg"),
    ("scanner-1", "scanner", "scans"),
    ("scanner-2", "scanner", "scans"),
    ("signage-1", "signage", "up"),
    ("ups-1", "ups", "on_battery"),
    ("fridge-1", "fridge-sensor", "temp_c"),
];
/// The printer rule's duration in the bench.
const FOR_SECS: u64 = 2;

struct Agent {
    id: String,
    store: String,
    key: SigningKey,
    seq: Mutex<u64>,
}

impl Agent {
    async fn frame(&self, m: Message) -> Vec<u8> {
        let mut seq = self.seq.lock().await;
        *seq += 1;
        Envelope::new(&self.id, *seq, now_ms(), m)
            .seal(&self.key)
            .unwrap()
    }
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// The controller under test: in this process (one replica), or replica processes
/// (`BENCH_REPLICAS` > 1) over PostgreSQL, read through a connection of the bench's own.
struct Fleet {
    inproc: Option<storefleet_controller::server::Running>,
    procs: Vec<Replica>,
    db: storefleet_controller::db::Db,
}

impl Fleet {
    /// A counter of every replica process's `/metrics`, added up.
    async fn sum(&self, metric: &str) -> u64 {
        let mut n = 0.0;
        for r in &self.procs {
            n += r.metric(metric).await.unwrap_or(0.0);
        }
        n as u64
    }

    /// Messages stored by every replica.
    async fn stored(&self) -> u64 {
        match &self.inproc {
            Some(r) => r.state.stats.stored_total(),
            None => {
                self.sum("storefleet_controller_ingest_messages_stored_total")
                    .await
            }
        }
    }

    /// Rule evaluations of the whole fleet, and of a few stores, run (by the replica with
    /// the engines).
    async fn evaluations(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        match &self.inproc {
            Some(r) => {
                let c = &r.state.ticket_counters;
                (c.evaluations.load(Relaxed), c.looks.load(Relaxed))
            }
            None => (
                self.sum("storefleet_rule_evaluations_total").await,
                self.sum("storefleet_rule_store_looks_total").await,
            ),
        }
    }

    fn https(&self) -> Vec<(String, std::net::SocketAddr)> {
        match &self.inproc {
            Some(r) => vec![("a".into(), r.http)],
            None => self
                .procs
                .iter()
                .map(|r| (r.name.clone(), r.http))
                .collect(),
        }
    }
}

/// p95 of the overview, a store, its readiness, the readiness board, the tickets and the
/// asset registry on one replica.
async fn pages(name: &str, addr: std::net::SocketAddr, token: &str, store: &str) {
    use std::fmt::Write as _;
    use storefleet_support::http::{self, Request};
    let mut line = format!("replica {name} pages p95:");
    for path in [
        "/".to_owned(),
        format!("/stores/{store}"),
        format!("/stores/{store}/readiness"),
        "/openings".to_owned(),
        "/tickets".to_owned(),
        "/assets?class=receipt-printer".to_owned(),
    ] {
        let mut times = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            let r = http::send(
                Request {
                    method: "GET",
                    url: &format!("http://{addr}{path}"),
                    headers: vec![("authorization", format!("Bearer {token}"))],
                    body: None,
                },
                Duration::from_secs(60),
            )
            .await
            .unwrap();
            assert_eq!(r.status, 200, "{path}");
            times.push((t.elapsed().as_secs_f64() * 1000.0) as i64);
        }
        times.sort_unstable();
        let _ = write!(line, " {path} {} ms;", percentile(&times, 0.95));
    }
    println!("{line}");
}

fn main() {
    // Warnings and errors of the controller on stderr (STOREFLEET_LOG for more).
    storefleet_support::shutdown::init_logging("warn,rumqttc=error");
    let n = env_u64("BENCH_STORES", 1000) as usize;
    let faults = (env_u64("BENCH_FAULTS", 200) as usize).min(n);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let (mut config, mut broker) = support::controller_config(dir.path(), "tickets");
        // Replicas run on Mosquitto as deploy/mosquitto.conf sets it up: with its default
        // limits (1000 queued messages a client) a fleet's burst is dropped, which would
        // be counted here as lost tickets.
        let replicas = env_u64("BENCH_REPLICAS", 1);
        let _mosquitto = (replicas > 1).then(|| {
            let (child, addr) = support::fleet_mosquitto(dir.path())
                .expect("BENCH_REPLICAS needs mosquitto (scripts/install-mosquitto.sh)");
            config.mqtt.url = format!("mqtt://{addr}");
            broker = addr;
            child
        });
        // The built-in printer rule with a short duration and no routine to wait for.
        let mut printer = alerts::builtin()
            .into_iter()
            .find(|r| r.name == "printer-down")
            .unwrap();
        printer.for_secs = FOR_SECS;
        printer.routine = None;
        config.rules = vec![printer];
        let database = (replicas > 1).then(|| {
            let db = storefleet_storage::postgres::testing::database("tickets bench")
                .expect("BENCH_REPLICAS needs STOREFLEET_TEST_PG");
            config.database.url.clone_from(&db.url);
            config.controller.replica = "a".into();
            config.mqtt.share_group = format!("bench-{}", std::process::id());
            db
        });
        let presence = config.presence.clone();
        let rules = alerts::effective(&config.rules);
        let token = CancellationToken::new();
        let process_config = config.clone();
        let running = storefleet_controller::server::start(config, token.clone())
            .await
            .unwrap();
        let state = running.state.clone();

        // Stores, agents and devices, registered as enrollment and inventory do.
        let agents: Vec<Arc<Agent>> = (0..n)
            .map(|i| {
                Arc::new(Agent {
                    id: format!("a-bench-{i:05}"),
                    store: format!("S{i:05}"),
                    key: SigningKey::generate().unwrap(),
                    seq: Mutex::new(0),
                })
            })
            .collect();
        let gateways: Vec<support::Gateway> = agents
            .iter()
            .map(|a| support::Gateway {
                id: a.id.clone(),
                key: a.key.public_key(),
                store: a.store.clone(),
            })
            .collect();
        let devices = DEVICES.iter().map(|(d, class, _)| (*d, *class)).collect();
        support::register(&state, &gateways, &REGIONS, devices).await;
        // One store in twenty is opening from a format (the store whose pages are timed
        // among them), so the readiness board and page read real openings.
        let opening: Vec<String> = (0..n)
            .filter(|i| i % 20 == (n / 2) % 20)
            .map(|i| format!("S{i:05}"))
            .collect();
        support::open_stores(&state, opening).await;
        if replicas > 1 {
            // Fresh tables have no statistics yet; autovacuum gathers them within a minute
            // of a load like this one. Gather them now, as a running database has them.
            state
                .db
                .write(|c| c.execute("ANALYZE", &[]).map(drop))
                .await
                .unwrap();
        }
        // Replica processes start once the fleet is registered (they read the keys then);
        // the controller that registered it stops first. Replica a takes the engines.
        let api_token = running.first_login.as_ref().unwrap().api_token.clone();
        let fleet = if let Some(db) = &database {
            token.cancel();
            running.wait().await;
            let mut procs = Vec::new();
            for name in ["a", "b"].into_iter().take(replicas as usize) {
                let mut c = process_config.clone();
                c.controller.state_dir = dir.path().join(format!("state-{name}"));
                std::fs::create_dir_all(&c.controller.state_dir).unwrap();
                std::fs::copy(
                    state.config.key_path(),
                    c.controller.state_dir.join("controller.key"),
                )
                .unwrap();
                let r = Replica::spawn(name, c, dir.path(), &api_token).await;
                if name == "a" {
                    let start = Instant::now();
                    while r.metric("storefleet_controller_engines_held").await != Some(1.0) {
                        assert!(start.elapsed() < Duration::from_secs(60), "replica a never took the engines");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                procs.push(r);
            }
            Fleet {
                inproc: None,
                procs,
                db: storefleet_controller::db::connect(&db.url, None).unwrap(),
            }
        } else {
            Fleet {
                db: state.db.clone(),
                inproc: Some(running),
                procs: Vec::new(),
            }
        };

        // Stops the simulated agents (the controller's token may have stopped the
        // controller that registered the fleet already).
        let load = CancellationToken::new();
        // Connections of 100 agents each; every agent sends a telemetry batch of its
        // devices every 5 s (2,000 points/s for 1,000 stores) for the whole bench.
        let mut conns = Vec::new();
        let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
        for (c, chunk) in agents.chunks(100).enumerate() {
            let mut o = support::bench_mqtt(&state.config, broker, &format!("agents-{c}"));
            o.set_max_packet_size(1 << 20, 1 << 20)
                .set_inflight(100)
                .set_keep_alive(Duration::from_secs(60));
            let (client, mut ev) = AsyncClient::new(o, 1000);
            tokio::spawn(async move { while ev.poll().await.is_ok() {} });
            let chunk: Vec<Arc<Agent>> = chunk.to_vec();
            let (cl, stop, sent) = (client.clone(), load.clone(), sent.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(50));
                let mut k = 0usize;
                loop {
                    tokio::select! { () = stop.cancelled() => return, _ = tick.tick() => {} }
                    // 100 agents over 100 ticks of 50 ms: one each per 5 s.
                    let a = &chunk[k % chunk.len()];
                    k += 1;
                    let t = now_ms();
                    let series = DEVICES
                        .iter()
                        .map(|(d, class, m)| Series {
                            device: Some((*d).into()),
                            metric: (*m).into(),
                            points: vec![Point {
                                t,
                                v: match *class {
                                    "fridge-sensor" => 4.0,
                                    "ups" => 0.0,
                                    _ => 1.0,
                                },
                                agg: None,
                            }],
                        })
                        .collect();
                    let f = a
                        .frame(Message::Telemetry(TelemetryBatch { backlog: false, series }))
                        .await;
                    let topic = Topic::format(&a.id, Direction::Up, Kind::Telemetry);
                    if cl.publish(topic, QoS::AtLeastOnce, false, f).await.is_ok() {
                        sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
            conns.push(client);
        }
        tokio::time::sleep(Duration::from_secs(6)).await;
        // Until ingest has caught up with every store's first round (a new fleet makes each
        // of its series once; a running one does not), so that what follows is the steady
        // state: at least one message per store stored and less than a second of traffic
        // waiting. At most 3 minutes: a fleet this machine cannot keep up with says so.
        let warm = Instant::now();
        loop {
            let stored = fleet.stored().await;
            let backlog = sent
                .load(std::sync::atomic::Ordering::Relaxed)
                .saturating_sub(stored);
            let caught_up = stored >= n as u64 && backlog < (n / 5) as u64;
            if caught_up || warm.elapsed() > Duration::from_secs(180) {
                println!(
                    "warm-up: {} after {:.0} s more (backlog {backlog} messages)",
                    if caught_up { "ingest caught up with every store's first round" } else { "ingest NOT caught up" },
                    warm.elapsed().as_secs_f64()
                );
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }

        // The load window: from here to the end of the faults. It holds the steady state
        // for `BENCH_STEADY_SECS` (65) first, so that the engines' replica folds the
        // rollups (every 60 s) at least once within it, as a running fleet's does.
        let window = Load::start(
            sent.load(std::sync::atomic::Ordering::Relaxed),
            fleet.stored().await,
            &fleet.procs,
        );
        tokio::time::sleep(Duration::from_secs(env_u64("BENCH_STEADY_SECS", 65))).await;

        // Rule evaluation over the whole fleet.
        let reps = 20;
        let mut snap_ms = Vec::new();
        let mut snap = None;
        for _ in 0..reps {
            let (list, at) = (rules.clone(), Rules::new(&presence, now_ms()));
            let t = Instant::now();
            let s = fleet.db.read(move |c| observe::snapshot(c, &list, &at)).await.unwrap();
            snap_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            snap = Some(s);
        }
        let snap = snap.unwrap();
        // Off the async threads (the replicas' connections are polled there), and at most
        // 5 s of passes: a fleet that went stale whole is every device.
        let (eval_reps, observed, elapsed) = {
            let (rules, snap) = (rules.clone(), snap.clone());
            tokio::task::spawn_blocking(move || {
                let timings: HashMap<String, Timing> =
                    rules.iter().map(|r| (r.name.clone(), r.timing())).collect();
                let mut eval = Evaluator::default();
                let t = Instant::now();
                let (mut reps, mut observed) = (0u32, 0usize);
                while reps < 200 && (reps == 0 || t.elapsed() < Duration::from_secs(5)) {
                    let obs = observe::observe(&rules, &snap);
                    observed += obs.len();
                    let _ = eval.step(snap.now, &obs, |name| timings.get(name).copied());
                    reps += 1;
                }
                (reps, observed, t.elapsed())
            })
            .await
            .unwrap()
        };
        let per_pass = elapsed.as_secs_f64() * 1000.0 / f64::from(eval_reps);
        let subjects = snap.devices.len() + snap.agents.len();
        snap_ms.sort_by(f64::total_cmp);
        println!(
            "rule evaluation, {n} stores ({subjects} subjects, {} rules): snapshot from the database {:.1} ms (median of {reps}); \
             observe + evaluate {per_pass:.2} ms per pass ({:.0} observations/s, {:.0} rule x subject checks/s)",
            rules.len(),
            snap_ms[reps / 2],
            observed as f64 / (per_pass / 1000.0 * f64::from(eval_reps)),
            (subjects * rules.len()) as f64 / (per_pass / 1000.0),
        );

        // Faults: printers go down, one store every 50 ms. A reader polls the tickets every
        // 5 ms meanwhile, so a ticket counts from when it was committed and visible.
        let seen: Arc<std::sync::Mutex<HashMap<String, (i64, i64)>>> = Arc::default();
        let poller = {
            let (db, seen) = (fleet.db.clone(), seen.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                loop {
                    let rows: Vec<(String, i64)> = db
                        .read(|c| {
                            storefleet_storage::SqlExt::all(
                                c,
                                "SELECT store_code, opened_at FROM tickets WHERE rule = 'printer-down'",
                                &[],
                                |r| Ok((r.text("store_code")?, r.i64("opened_at")?)),
                            )
                        })
                        .await
                        .unwrap();
                    let at = now_ms();
                    let count = {
                        let mut m = seen.lock().unwrap();
                        for (store, opened) in rows {
                            m.entry(store).or_insert((opened, at));
                        }
                        m.len()
                    };
                    // Past 180 s the figures are of the tickets there are, and the note says
                    // how many are missing: a fleet this machine cannot keep up with.
                    if count >= faults || started.elapsed() > Duration::from_secs(180) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        };
        let mut down_at: HashMap<String, i64> = HashMap::new();
        for i in 0..faults {
            let a = &agents[i * n / faults];
            let t = now_ms();
            let e = Event {
                id: format!("e-bench-{i}"),
                ts: t,
                device: Some("printer-1".into()),
                code: "device.down".into(),
                severity: Severity::Error,
                message: "printer-1 is down: paper jam".into(),
                data: serde_json::Map::new(),
            };
            let f = a.frame(Message::Event(e)).await;
            let topic = Topic::format(&a.id, Direction::Up, Kind::Event);
            conns[(i * n / faults) / 100]
                .publish(topic, QoS::AtLeastOnce, false, f)
                .await
                .unwrap();
            down_at.insert(a.store.clone(), t);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        poller.await.unwrap();
        window.report(sent.load(std::sync::atomic::Ordering::Relaxed), fleet.stored().await);
        for (name, addr) in fleet.https() {
            pages(&name, addr, &api_token, &agents[n / 2].store).await;
        }
        let seen = seen.lock().unwrap().clone();
        if seen.len() < faults {
            println!(
                "NOT KEEPING UP: {} of {faults} faults became tickets within 180 s",
                seen.len()
            );
        }
        assert!(!seen.is_empty(), "no ticket at all");
        let due = |s: &str| down_at[s] + FOR_SECS as i64 * 1000;
        let mut visible: Vec<i64> = seen.iter().map(|(s, (_, at))| at - due(s)).collect();
        let mut opened: Vec<i64> = seen.iter().map(|(s, (o, _))| o - due(s)).collect();
        visible.sort_unstable();
        opened.sort_unstable();
        let (evals, looks) = fleet.evaluations().await;
        println!(
            "fault to ticket after the rule's {FOR_SECS} s, {faults} faults in {n} stores under telemetry: \
             committed and visible p50 {} ms, p99 {} ms, max {} ms (the ticket's own opened_at: p50 {} ms, p99 {} ms; {evals} evaluations of the fleet, {looks} of a few stores)",
            percentile(&visible, 0.5),
            percentile(&visible, 0.99),
            visible[visible.len() - 1],
            percentile(&opened, 0.5),
            percentile(&opened, 0.99),
        );
        if let Some(db) = &database {
            let url = db.url.clone();
            tokio::task::spawn_blocking(move || in_place_updates(&url))
                .await
                .unwrap();
        }
        load.cancel();
        let Fleet { inproc, mut procs, .. } = fleet;
        if let Some(running) = inproc {
            token.cancel();
            running.wait().await;
        } else if procs.len() > 1 {
            // The replica with the engines is told to stop; the other takes them.
            let held = "storefleet_controller_engines_held";
            let stored = "storefleet_controller_ingest_messages_stored_total";
            let (a, b) = (&procs[0], &procs[1]);
            assert_eq!((a.metric(held).await, b.metric(held).await), (Some(1.0), Some(0.0)));
            let (sa, sb) = (a.metric(stored).await.unwrap_or(0.0), b.metric(stored).await.unwrap_or(0.0));
            let stopped = Instant::now();
            a.terminate();
            while b.metric(held).await != Some(1.0) {
                assert!(stopped.elapsed() < Duration::from_secs(30), "no failover");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let moved = stopped.elapsed();
            let exited = procs[0].exited(Duration::from_secs(30)).await;
            let stop_took = stopped.elapsed();
            println!(
                "2 replica processes: replica a (engines) stored {sa} messages, replica b {sb} (the shared subscription splits the uplink); \
                 the engines moved to replica b {:.0} ms after replica a was told to stop (SIGTERM); replica a {} {:.0} ms",
                moved.as_secs_f64() * 1000.0,
                if exited { "exited after" } else { "had NOT exited after" },
                stop_took.as_secs_f64() * 1000.0
            );
            procs[1].terminate();
            procs[1].exited(Duration::from_secs(30)).await;
        }
    });
}

/// How many of the updates of the rows every reading touches PostgreSQL made in place
/// (HOT: no new index entries), per table.
fn in_place_updates(url: &str) {
    let pool = storefleet_storage::postgres::Pool::connect(url, 1).unwrap();
    let rows = pool
        .run_blocking(true, |c| {
            c.all(
                "SELECT relname::text AS t, n_tup_upd AS u, n_tup_hot_upd AS h FROM pg_stat_user_tables
                 WHERE relname IN ('series', 'devices', 'agents', 'rollups') ORDER BY relname",
                &[],
                |r| Ok((r.text("t")?, r.i64("u")?, r.i64("h")?)),
            )
        })
        .unwrap();
    let line: Vec<String> = rows
        .iter()
        .map(|(t, u, h)| format!("{t} {:.0} % of {u}", *h as f64 * 100.0 / (*u).max(1) as f64))
        .collect();
    println!("updates in place (HOT): {}", line.join("; "));
}
