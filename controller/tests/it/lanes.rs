//! Ingest's lanes: a fault is stored while the telemetry before it cannot be. Telemetry
//! writes are held up from outside (another session locks the points table, as a long
//! vacuum or a slow disk would), a gateway keeps sending readings until every batch ingest
//! may write at once is stuck, and then reports a printer jam. The jam must be stored (and
//! acknowledged) within seconds; before the lanes it waited in the same queue until the
//! lock was gone. When the lock goes, every reading is stored, once.
//!
//! Needs PostgreSQL (`STOREFLEET_TEST_PG`, set in CI) to lock a table from another
//! session; runs once, in the suite's first pass (it makes its own database either way).
//!
//! And an upgrade: a controller from before the lanes left a persistent session at the
//! machine's Mosquitto subscribed to the whole uplink, with an event queued in it. The new
//! controller stores that event, and drops the old subscription once both lanes have
//! theirs, so a later event is received once, not once per subscription.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, Packet, QoS};
use storefleet_protocol::message::{Event as AgentEvent, Point, Series, Severity, TelemetryBatch};
use storefleet_protocol::{now_ms, Direction, Envelope, Kind, Message, SigningKey, Topic};
use storefleet_storage::SqlExt as _;
use tokio_util::sync::CancellationToken;

use crate::common::{eventually, within};

const READINGS: u64 = 16;

/// A gateway publishing signed messages as `id`, counting the broker's acknowledgements.
pub(crate) struct Gateway {
    client: AsyncClient,
    id: &'static str,
    key: SigningKey,
    acked: Arc<AtomicU64>,
}

impl Gateway {
    pub(crate) fn connect(
        options: rumqttc::MqttOptions,
        id: &'static str,
        key: SigningKey,
    ) -> Gateway {
        let (client, ev) = AsyncClient::new(options, 256);
        let acked = crate::common::count_pubacks(ev);
        Gateway {
            client,
            id,
            key,
            acked,
        }
    }

    /// A gateway on the embedded broker of the in-process controller `running`.
    pub(crate) fn on(
        running: &storefleet_controller::server::Running,
        id: &'static str,
        key: SigningKey,
    ) -> Gateway {
        let mqtt: std::net::SocketAddr = running
            .mqtt_url
            .trim_start_matches("mqtt://")
            .parse()
            .unwrap();
        Gateway::connect(crate::common::agent_mqtt(mqtt, id, &key), id, key)
    }

    pub(crate) async fn send(&self, seq: u64, kind: Kind, message: Message) {
        self.send_at(seq, now_ms(), kind, message).await;
    }

    /// [`Gateway::send`] signed at `ts` (a message that waited somewhere).
    pub(crate) async fn send_at(&self, seq: u64, ts: i64, kind: Kind, message: Message) {
        let frame = Envelope::new(self.id, seq, ts, message)
            .seal(&self.key)
            .unwrap();
        let topic = Topic::format(self.id, Direction::Up, kind);
        self.client
            .publish(topic, QoS::AtLeastOnce, false, frame)
            .await
            .unwrap();
    }

    pub(crate) async fn reading(&self, seq: u64, t: i64) {
        self.reading_signed_at(seq, t, now_ms()).await;
    }

    /// A live reading at `t` in a message signed at `ts`.
    pub(crate) async fn reading_signed_at(&self, seq: u64, t: i64, ts: i64) {
        let batch = TelemetryBatch {
            backlog: false,
            series: vec![Series {
                device: Some("meter".into()),
                metric: "energy.kwh".into(),
                points: vec![Point {
                    t,
                    v: seq as f64,
                    agg: None,
                }],
            }],
        };
        self.send_at(seq, ts, Kind::Telemetry, Message::Telemetry(batch))
            .await;
    }

    async fn jam(&self, seq: u64, event_id: &str) {
        let jam = AgentEvent {
            id: event_id.into(),
            ts: now_ms(),
            device: Some("printer-1".into()),
            code: "printer.jam".into(),
            severity: Severity::Critical,
            message: "Paper jam in tray 2".into(),
            data: serde_json::Map::new(),
        };
        self.send(seq, Kind::Event, Message::Event(jam)).await;
    }

    pub(crate) async fn all_acked(&self, n: u64) {
        eventually(10, "the broker took every message", || async {
            (self.acked.load(Ordering::SeqCst) >= n).then_some(())
        })
        .await;
    }
}

/// Starts a controller on `config` with store S0001 and `id` enrolled with `key`.
pub(crate) async fn controller(
    config: storefleet_controller::config::Config,
    token: &CancellationToken,
    id: &str,
    key: storefleet_protocol::PublicKey,
) -> storefleet_controller::server::Running {
    let running = storefleet_controller::server::start(config, token.clone())
        .await
        .unwrap();
    if running.first_login.is_some() {
        let body = serde_json::json!({"code": "S0001", "name": "Lanes", "region": "north", "timezone": "Europe/Berlin"});
        crate::common::client_of(&running)
            .call("PUT", "/api/v1/stores/S0001", Some(&body))
            .await
            .unwrap();
        let (agent, public) = (id.to_owned(), key.to_base64());
        running
            .state
            .db
            .write(move |c| {
                c.execute(
                    "INSERT INTO agents(id, public_key, store_code, enrolled_at) VALUES (?1, ?2, 'S0001', ?3)",
                    storefleet_storage::args![agent.as_str(), public.as_str(), now_ms()],
                )
            })
            .await
            .unwrap();
    }
    running.state.registry.insert(id, key, "S0001");
    let state = &running.state;
    eventually(10, "ingest connected", || async {
        state.stats.connected().then_some(())
    })
    .await;
    running
}

fn count(db: &storefleet_storage::postgres::testing::TestDb, sql: &'static str) -> i64 {
    let pool = storefleet_storage::postgres::Pool::connect(&db.url, 1).unwrap();
    pool.run_blocking(true, move |c| c.int(sql, &[], "n"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_is_stored_while_telemetry_writes_are_stuck() {
    if std::env::var("STOREFLEET_TEST_DATABASE").as_deref() == Ok("postgres") {
        eprintln!("skipped: runs once, in the suite's first pass");
        return;
    }
    let Some(db) = storefleet_storage::postgres::testing::database("lanes") else {
        eprintln!("skipped: STOREFLEET_TEST_PG is not set (CI sets it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::common::in_process_config(dir.path());
    config.database.url.clone_from(&db.url);
    let token = CancellationToken::new();
    let key = SigningKey::generate().unwrap();
    let running = controller(config, &token, "gw-lanes", key.public_key()).await;

    // Telemetry writes wait for this lock; reads of the table still work.
    let url = db.url.clone();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let mut tx = c.transaction().unwrap();
        tx.batch_execute("LOCK TABLE points IN EXCLUSIVE MODE")
            .unwrap();
        locked_tx.send(()).unwrap();
        let _ = release_rx.recv();
        tx.commit().unwrap();
    });
    locked_rx.recv().unwrap();

    let gw = Gateway::on(&running, "gw-lanes", key);
    let base = now_ms() - 60_000;
    // Each reading a batch of its own (they are further apart than a batch waits).
    for seq in 1..=READINGS {
        gw.reading(seq, base + seq as i64).await;
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    gw.all_acked(READINGS).await;
    gw.jam(READINGS + 1, "jam-1").await;

    let stored = within(15, || async {
        (count(
            &db,
            "SELECT count(*) AS n FROM events WHERE code = 'printer.jam'",
        ) == 1)
            .then_some(())
    })
    .await;
    let points_meanwhile = count(&db, "SELECT count(*) AS n FROM points");
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    assert!(
        stored.is_some(),
        "the jam waited behind the stuck telemetry"
    );
    assert_eq!(points_meanwhile, 0, "the lock held telemetry back");

    let all = within(30, || async {
        (count(&db, "SELECT count(*) AS n FROM points") == READINGS as i64).then_some(())
    })
    .await;
    assert!(
        all.is_some(),
        "every reading stored once the lock went: {} of {READINGS}",
        count(&db, "SELECT count(*) AS n FROM points")
    );
    assert_eq!(
        count(&db, "SELECT count(*) AS n FROM received"),
        READINGS as i64 + 1,
        "each message stored once"
    );
    token.cancel();
    running.wait().await;
}

fn duplicates(state: &storefleet_controller::state::AppState) -> u64 {
    let mut text = String::new();
    state.stats.render(&mut text);
    text.lines()
        .find_map(|l| l.strip_prefix("storefleet_controller_ingest_messages_duplicate_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(u64::MAX)
}

async fn jams(state: &storefleet_controller::state::AppState) -> i64 {
    state
        .db
        .read(|c| {
            c.int(
                "SELECT count(*) AS n FROM events WHERE code = 'printer.jam'",
                &[],
                "n",
            )
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_from_before_the_lanes_is_drained_and_its_old_filter_dropped() {
    let Ok(mqtt) = std::env::var("STOREFLEET_TEST_MQTT") else {
        eprintln!("skipped: STOREFLEET_TEST_MQTT is not set (CI sets it)");
        return;
    };
    let broker: std::net::SocketAddr = mqtt.parse().unwrap();
    let ingest_id = format!("ctl-lanes-{:08x}", rand::random::<u32>());
    // The old controller's session: the whole uplink, persistent, then gone.
    let mut o = rumqttc::MqttOptions::new(&ingest_id, broker.ip().to_string(), broker.port());
    o.set_clean_session(false);
    let (old, mut ev) = AsyncClient::new(o, 10);
    old.subscribe(Topic::uplink_filter(), QoS::AtLeastOnce)
        .await
        .unwrap();
    while !matches!(ev.poll().await.unwrap(), Event::Incoming(Packet::SubAck(_))) {}
    old.disconnect().await.unwrap();
    while ev.poll().await.is_ok() {}

    // The gateway is enrolled before the new controller starts (it loads the keys then).
    let key = SigningKey::generate().unwrap();
    let id = "gw-upgrade";
    let dir = tempfile::tempdir().unwrap();
    let setup = crate::common::in_process_config(dir.path());
    let token = CancellationToken::new();
    let first = controller(setup.clone(), &token, id, key.public_key()).await;
    token.cancel();
    first.wait().await;
    let o = rumqttc::MqttOptions::new(
        format!("{id}-{:08x}", rand::random::<u32>()),
        broker.ip().to_string(),
        broker.port(),
    );
    let public = key.public_key();
    let gw = Gateway::connect(o, id, key);
    gw.jam(1, "jam-while-away").await;
    gw.all_acked(1).await;

    let mut config = setup;
    config.mqtt.url = format!("mqtt://{mqtt}");
    config.mqtt.client_id.clone_from(&ingest_id);
    let token = CancellationToken::new();
    let running = controller(config, &token, id, public).await;
    let state = &running.state;
    eventually(15, "the event queued in the old session stored", || async {
        (jams(state).await == 1).then_some(())
    })
    .await;
    // Both lanes subscribe and the old filter goes within moments of connecting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = duplicates(state);
    gw.jam(2, "jam-after").await;
    eventually(15, "the later event stored", || async {
        (jams(state).await == 2).then_some(())
    })
    .await;
    // A second copy, had the old subscription stayed, comes in the same moment.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        duplicates(state) - before,
        0,
        "the event came twice: the old whole-uplink subscription is still there"
    );
    token.cancel();
    running.wait().await;
    for lane in storefleet_controller::ingest::Lane::ALL {
        let _ = storefleet_support::broker::clear_session(broker, &lane.client_id(&ingest_id));
    }
}
