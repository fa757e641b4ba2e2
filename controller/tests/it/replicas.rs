//! Three `storefleet serve` replicas over one PostgreSQL database and the machine's
//! Mosquitto: they split the agents' uplink through a shared subscription, exactly one runs
//! the engines, and it is SIGKILLed twice: during a staged task over 20 simulated stores,
//! and while a printer fault is on its way to a ticket. A meter publishes numbered points
//! all along; every point the broker acknowledged is stored exactly once, the task finishes
//! with its routine run once per store (each store's till counts the checks it gets), the
//! fault becomes exactly one ticket whose webhook is delivered once, and a key revoked on
//! replica A is refused by replica B within a second. A killed replica comes back with the
//! same name, as systemd would bring it back: what the broker held for it is delivered then.
//!
//! Runs where `STOREFLEET_TEST_MQTT` and `STOREFLEET_TEST_PG` are set (CI); once, in the
//! suite's SQLite pass (it makes its own PostgreSQL database either way).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, MqttOptions, QoS};
use serde_json::{json, Value};
use storefleet_protocol::message::{Point, Series, TelemetryBatch};
use storefleet_protocol::{now_ms, Direction, Envelope, Kind, Message, SigningKey, Topic};
use storefleet_storage::postgres::testing::TestDb;
use storefleet_storage::SqlExt as _;

use crate::common::{eventually, within, Controller};
use crate::tickets::{engineer, printer, store, Receiver, RULES};

/// Starts replica `name`; a later replica gets the first one's signing key and admin token
/// (what an operator copies to each replica's machine).
fn replica(
    name: &str,
    db: &TestDb,
    broker: SocketAddr,
    ids: (&str, &str),
    extra: &str,
    first: Option<&Controller>,
) -> Controller {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    if let Some(first) = first {
        for f in ["controller.key", "admin-token"] {
            std::fs::copy(first.dir.path().join("state").join(f), state.join(f)).unwrap();
        }
    }
    let http: SocketAddr = ([127, 0, 0, 1], storefleet_testkit::free_port()).into();
    let (client_id, group) = ids;
    let config = format!(
        "[controller]\nstate_dir = \"{}\"\nreplica = \"{name}\"\n\n[http]\nlisten = \"{http}\"\n\n\
         [mqtt]\nurl = \"mqtt://{broker}\"\nclient_id = \"{client_id}\"\nshare_group = \"{group}\"\n\n\
         [database]\nurl = \"{}\"\n",
        state.display(),
        db.url
    );
    Controller::from_files(
        dir,
        (http, broker, format!("{client_id}-{name}")),
        (&config, extra),
        true,
        None,
        None,
    )
}

async fn holds_engines(c: &Controller) -> bool {
    c.get("/api/v1/health").await["engines"] == true
}

/// The replica that runs the engines, once exactly one does.
async fn holder(replicas: &[Controller]) -> usize {
    eventually(20, "exactly one replica holding the engines", || async {
        let mut held = Vec::new();
        for (i, r) in replicas.iter().enumerate() {
            if holds_engines(r).await {
                held.push(i);
            }
        }
        (held.len() == 1).then(|| held[0])
    })
    .await
}

/// SIGKILLs replica `i`; returns how long until another replica ran the engines. Then
/// starts it again.
async fn kill_holder(replicas: &mut [Controller], i: usize) -> Duration {
    let killed = Instant::now();
    replicas[i].kill();
    let took = eventually(30, "another replica to take the engines", || async {
        for (j, r) in replicas.iter().enumerate() {
            if j != i && holds_engines(r).await {
                return Some(killed.elapsed());
            }
        }
        None
    })
    .await;
    eprintln!("replicas: engines failed over in {took:?}");
    replicas[i].spawn();
    took
}

async fn unknown_sender_refusals(c: &Controller) -> u64 {
    c.metric("storefleet_controller_ingest_messages_rejected_total{reason=\"unknown_sender\"}")
        .await
}

/// A sender of signed telemetry straight to the broker, one point per message at
/// `t = base + seq`, counting the broker's acknowledgements.
struct Publisher {
    client: AsyncClient,
    id: String,
    key: SigningKey,
    metric: String,
    acked: Arc<AtomicU64>,
    base: i64,
}

impl Publisher {
    fn start(broker: SocketAddr, id: &str, key: SigningKey, metric: &str) -> Publisher {
        let mut o = MqttOptions::new(
            format!("{id}-{:08x}", rand::random::<u32>()),
            broker.ip().to_string(),
            broker.port(),
        );
        o.set_keep_alive(Duration::from_secs(30));
        let (client, ev) = AsyncClient::new(o, 1000);
        let acked = crate::common::count_pubacks(ev);
        Publisher {
            client,
            id: id.to_owned(),
            key,
            metric: metric.to_owned(),
            acked,
            base: now_ms() - 3_600_000,
        }
    }

    async fn send(&self, seq: u64) {
        let batch = TelemetryBatch {
            backlog: false,
            series: vec![Series {
                device: Some("meter".into()),
                metric: self.metric.clone(),
                points: vec![Point {
                    t: self.base + seq as i64,
                    v: seq as f64,
                    agg: None,
                }],
            }],
        };
        let frame = Envelope::new(&self.id, seq, now_ms(), Message::Telemetry(batch))
            .seal(&self.key)
            .unwrap();
        self.client
            .publish(
                Topic::format(&self.id, Direction::Up, Kind::Telemetry),
                QoS::AtLeastOnce,
                false,
                frame,
            )
            .await
            .unwrap();
    }
}

/// Points stored for `metric`, counted in the database itself.
fn stored_points(db: &TestDb, metric: &str) -> i64 {
    let pool = storefleet_storage::postgres::Pool::connect(&db.url, 1).unwrap();
    let m = metric.to_owned();
    pool.run_blocking(true, move |c| {
        c.int(
            "SELECT count(*) AS n FROM points p JOIN series s ON s.id = p.series_id WHERE s.metric = ?1",
            storefleet_storage::args![m.as_str()],
            "n",
        )
    })
    .unwrap()
}

async fn stored_soon(db: &TestDb, metric: &str, want: i64, secs: u64) -> i64 {
    let got = within(secs, || async {
        let n = stored_points(db, metric);
        (n >= want).then_some(n)
    })
    .await;
    got.unwrap_or_else(|| stored_points(db, metric))
}

/// A TCP "till" per store that counts the checks it gets.
async fn till() -> (SocketAddr, Arc<AtomicU32>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let n = Arc::new(AtomicU32::new(0));
    let counter = n.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });
    (addr, n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_ingest_fail_over_the_engines_and_hear_each_others_revokes() {
    let Ok(mqtt) = std::env::var("STOREFLEET_TEST_MQTT") else {
        eprintln!("skipped: STOREFLEET_TEST_MQTT is not set (CI sets it)");
        return;
    };
    if std::env::var("STOREFLEET_TEST_DATABASE").as_deref() == Ok("postgres") {
        eprintln!("skipped: runs once, in the suite's first pass");
        return;
    }
    let Some(db) = storefleet_storage::postgres::testing::database("replicas") else {
        eprintln!("skipped: STOREFLEET_TEST_PG is not set (CI sets it)");
        return;
    };
    let broker: SocketAddr = mqtt.parse().unwrap();
    let hooks = Receiver::start().await;
    hooks.failing.store(false, Ordering::SeqCst);
    let extra = format!(
        "{RULES}\n[[webhooks]]\nname = \"itsm\"\nurl = \"http://{}/hook\"\nsecret = \"replicas-webhook-secret\"\nevents = [\"ticket.created\"]\n",
        hooks.addr
    );
    let run = format!("{:08x}", rand::random::<u32>());
    let ids = (format!("ctl-rep-{run}"), format!("sf-test-{run}"));
    let ids = (ids.0.as_str(), ids.1.as_str());
    let a = replica("a", &db, broker, ids, &extra, None);
    let b = replica("b", &db, broker, ids, &extra, Some(&a));
    let c = replica("c", &db, broker, ids, &extra, Some(&a));
    let mut replicas = vec![a, b, c];
    assert_eq!(
        holder(&replicas).await,
        0,
        "the first replica takes the engines"
    );

    // A store with a printer gateway (the real agent binary) and its engineer.
    store(&replicas[0], "T1", "test").await;
    engineer(&replicas[1], "anna", &["printers"], "test").await;
    let gateway = crate::tickets::gateway(&replicas[0], "T1", false);
    let _gateway_process = gateway.spawn();

    // A meter and a rogue identity, enrolled on replica A in a store of their own (they
    // send no presence, and the meter's points are an hour old: alerts of that store).
    store(&replicas[0], "M1", "meters").await;
    let meter = Publisher::start(
        broker,
        "meter-1",
        crate::security::enroll(&replicas[0], "M1", "meter-1").await,
        "meter_reading",
    );
    let rogue = Publisher::start(
        broker,
        "rogue-1",
        crate::security::enroll(&replicas[0], "M1", "rogue-1").await,
        "rogue_reading",
    );

    // 20 simulated stores, enrolled through replica B, each with a till of its own.
    let dir = tempfile::tempdir().unwrap();
    let mut tills = Vec::new();
    for n in 1..=20 {
        let (addr, count) = till().await;
        crate::tasks::write_routine(&dir.path().join(format!("S{n:04}")), &addr.to_string());
        tills.push(count);
    }
    let sim_token = tokio_util::sync::CancellationToken::new();
    let sim_tracker = tokio_util::task::TaskTracker::new();
    let client = storefleet_controller::client::Client {
        base: replicas[1].url(),
        trust: replicas[1].trust(),
        token: replicas[1].token.clone(),
    };
    let mut opts = storefleet_sim::Options::new(20, dir.path().to_path_buf(), client);
    opts.random_faults = false;
    storefleet_sim::start(opts, sim_token.clone(), &sim_tracker)
        .await
        .unwrap();
    eventually(120, "21 gateways online, seen by replica C", || async {
        let v = replicas[2].get("/api/v1/agents").await;
        let online = v.as_array()?.iter().filter(|a| a["online"] == true).count();
        (online >= 21).then_some(())
    })
    .await;

    // Revocation: the rogue's points are stored, then it is revoked on A, and a second
    // later every replica refuses it (the broker hands each replica its share).
    for seq in 1..=6 {
        rogue.send(seq).await;
    }
    assert_eq!(stored_soon(&db, "rogue_reading", 6, 30).await, 6);
    let (s, v) = replicas[0]
        .call("POST", "/api/v1/agents/rogue-1/revoke", None, true)
        .await;
    assert_eq!(s, 204, "{v}");
    let before_b = unknown_sender_refusals(&replicas[1]).await;
    let mut before = 0;
    for r in &replicas {
        before += unknown_sender_refusals(r).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for seq in 7..=36 {
        rogue.send(seq).await;
    }
    eventually(30, "30 refusals of the revoked agent", || async {
        let mut now = 0;
        for r in &replicas {
            now += unknown_sender_refusals(r).await;
        }
        (now >= before + 30).then_some(())
    })
    .await;
    assert!(
        unknown_sender_refusals(&replicas[1]).await > before_b,
        "replica B refused some of the revoked agent's messages"
    );
    assert_eq!(
        stored_points(&db, "rogue_reading"),
        6,
        "nothing after the revoke"
    );

    // The meter runs from here to the end: a point every 20 ms.
    let meter = Arc::new(meter);
    let sent = Arc::new(AtomicU64::new(0));
    let stop_meter = tokio_util::sync::CancellationToken::new();
    {
        let (m, s, t) = (meter.clone(), sent.clone(), stop_meter.clone());
        tokio::spawn(async move {
            let mut seq = 0;
            while !t.is_cancelled() {
                seq += 1;
                m.send(seq).await;
                s.store(seq, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }

    // A staged task over the 20 stores, pushed on C; its engine is killed mid-rollout.
    let stores: Vec<String> = (1..=20).map(|n| format!("S{n:04}")).collect();
    let plan = json!({"canary": 2, "waves": [25, 50, 100], "region_concurrency": 1, "target_timeout_ms": 60_000});
    let (s, task) = replicas[2]
        .call(
            "POST",
            "/api/v1/tasks",
            Some(&json!({
                "action": {"type": "routine", "name": "till-check"},
                "select": {"stores": stores},
                "plan": plan,
                "window": {},
            })),
            true,
        )
        .await;
    assert_eq!(s, 201, "{task}");
    let id = task["id"].as_str().unwrap().to_owned();
    let progress = |t: &Value| crate::tasks::count(t, "succeeded");
    let t = eventually(60, "the rollout under way", || async {
        let t = replicas[2].get(&format!("/api/v1/tasks/{id}")).await;
        (progress(&t) >= 3).then_some(t)
    })
    .await;
    assert!(t["finished_at"].is_null(), "killed mid-rollout: {t}");
    let h = holder(&replicas).await;
    let task_failover = kill_holder(&mut replicas, h).await;
    let t = eventually(120, "the task finished after the failover", || async {
        let t = replicas[(h + 1) % 3]
            .get(&format!("/api/v1/tasks/{id}"))
            .await;
        (!t["finished_at"].is_null()).then_some(t)
    })
    .await;
    assert_eq!(t["phase"], "completed", "{t}");
    assert_eq!(progress(&t), 20, "{t}");
    let runs: Vec<u32> = tills.iter().map(|n| n.load(Ordering::SeqCst)).collect();
    assert_eq!(
        runs,
        vec![1; 20],
        "the routine ran once per store: {runs:?}"
    );

    // A printer fault; the engine holder dies while it is on its way to a ticket.
    let h = holder(&replicas).await;
    printer(&gateway, false).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ticket_failover = kill_holder(&mut replicas, h).await;
    let other = (h + 1) % 3;
    let ticket = within(90, || async {
        let v = crate::tickets::tickets_of(&replicas[other], "T1").await;
        let id = v.first()?["id"].as_i64()?;
        let full = crate::tickets::full(&replicas[other], id).await;
        (v.len() == 1 && full["ticket"]["engineer"] == "anna").then_some(id)
    })
    .await;
    let Some(ticket) = ticket else {
        let v = crate::tickets::tickets_of(&replicas[other], "T1").await;
        let alerts = replicas[other].get("/api/v1/alerts").await;
        let logs: Vec<String> = replicas.iter().map(Controller::log).collect();
        panic!(
            "no single assigned ticket: {v:#?}\nalerts: {alerts}\nlogs:\n{}",
            logs.join("\n-----\n")
        );
    };
    eventually(30, "its webhook", || async {
        (!hooks.got.lock().unwrap().is_empty()).then_some(())
    })
    .await;

    // Everything the broker acknowledged from the meter is stored, once each.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop_meter.cancel();
    let acked = eventually(30, "the meter's last acknowledgements", || async {
        let a = meter.acked.load(Ordering::SeqCst);
        (a == sent.load(Ordering::SeqCst)).then_some(a)
    })
    .await;
    let stored = stored_soon(&db, "meter_reading", acked as i64, 60).await;
    assert_eq!(
        stored, acked as i64,
        "points acknowledged by the broker vs stored"
    );

    // Nothing more happens later: one ticket, one webhook.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all = crate::tickets::tickets_of(&replicas[2], "T1").await;
    assert_eq!(all.len(), 1, "{all:?}");
    // Every ticket's webhook once (the meters' store has tickets too), the printer's among them.
    let got = hooks.got.lock().unwrap().clone();
    let mut per_ticket = std::collections::BTreeMap::<i64, u32>::new();
    for (event, _, body) in &got {
        assert_eq!(event, "ticket.created");
        let b: Value = serde_json::from_str(body).unwrap();
        *per_ticket
            .entry(b["data"]["id"].as_i64().unwrap())
            .or_default() += 1;
    }
    assert!(per_ticket.values().all(|n| *n == 1), "{per_ticket:?}");
    assert_eq!(per_ticket.get(&ticket), Some(&1), "{got:?}");
    eprintln!(
        "replicas: {acked} meter points stored once each; failovers {task_failover:?} (task), {ticket_failover:?} (ticket)"
    );
    sim_token.cancel();
    sim_tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(20), sim_tracker.wait()).await;
}
