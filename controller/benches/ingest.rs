//! Ingest throughput: signed telemetry from many agents through a real broker into the
//! controller's SQLite, beside a raw batched SQLite insert of the same points in the same run.
//!
//! ```sh
//! STOREFLEET_TEST_MQTT=127.0.0.1:1883 cargo bench -p storefleet-controller --bench ingest
//! ```
//!
//! Without `STOREFLEET_TEST_MQTT` the embedded broker is used. `BENCH_POINTS` (default
//! 1,000,000) sets the volume; `BENCH_SYNC=normal` measures with `synchronous = NORMAL`.
//! `BENCH_DATABASE=postgres` (with `STOREFLEET_TEST_PG`) measures PostgreSQL instead, in a
//! fresh database, beside a raw insert there (multi-row statements, 50,000 per transaction).
//! The publisher keeps at most 400 messages ahead of what the controller has stored, so the
//! figure is sustained throughput (and no broker queue limit is hit).

mod support;

use std::time::{Duration, Instant};
use support::{env_u64, free_port};

use rumqttc::{AsyncClient, QoS};
use storefleet_controller::config::Config;
use storefleet_protocol::message::{Point, Series, TelemetryBatch};
use storefleet_protocol::{now_ms, Envelope, Message, SigningKey};
use tokio_util::sync::CancellationToken;

const AGENTS: usize = 20;
const SERIES_PER_MSG: usize = 10;
const POINTS_PER_SERIES: usize = 50;

/// Pre-sealed messages: (topic, payload).
fn messages(total_points: usize, keys: &[(String, SigningKey)]) -> Vec<(String, Vec<u8>)> {
    let per_msg = SERIES_PER_MSG * POINTS_PER_SERIES;
    let n = total_points.div_ceil(per_msg);
    let t0 = now_ms() - 3_600_000;
    (0..n)
        .map(|i| {
            let (id, key) = &keys[i % keys.len()];
            let round = (i / keys.len()) as i64;
            let series = (0..SERIES_PER_MSG)
                .map(|s| Series {
                    device: Some(format!("dev-{}", s % 5)),
                    metric: format!("m{s}"),
                    points: (0..POINTS_PER_SERIES)
                        .map(|p| Point {
                            t: t0 + (round * POINTS_PER_SERIES as i64 + p as i64) * 100,
                            v: (p as f64).sin() * 10.0,
                            agg: None,
                        })
                        .collect(),
                })
                .collect();
            let env = Envelope::new(
                id,
                round as u64 + 1,
                now_ms(),
                Message::Telemetry(TelemetryBatch {
                    backlog: false,
                    series,
                }),
            );
            (format!("sf/v1/{id}/up/telemetry"), env.seal(key).unwrap())
        })
        .collect()
}

/// The same points inserted raw, in transactions of 50,000, into the same table shape.
fn raw_insert(total_points: usize, full: bool) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let c = rusqlite::Connection::open(dir.path().join("raw.db")).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "synchronous", if full { "FULL" } else { "NORMAL" })
        .unwrap();
    // The same page cache as the controller's writer.
    c.pragma_update(None, "cache_size", -32_000).unwrap();
    c.execute_batch("CREATE TABLE points (series_id INTEGER NOT NULL, t INTEGER NOT NULL, v REAL NOT NULL, PRIMARY KEY (series_id, t)) WITHOUT ROWID;")
        .unwrap();
    let start = Instant::now();
    let mut done = 0;
    while done < total_points {
        let tx = c.unchecked_transaction().unwrap();
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO points(series_id, t, v) VALUES (?1, ?2, ?3)",
                )
                .unwrap();
            for i in done..(done + 50_000).min(total_points) {
                st.execute(rusqlite::params![
                    (i % 200) as i64,
                    (i / 200) as i64 * 100,
                    (i as f64).sin()
                ])
                .unwrap();
            }
        }
        tx.commit().unwrap();
        done = (done + 50_000).min(total_points);
    }
    total_points as f64 / start.elapsed().as_secs_f64()
}

/// The same points inserted raw into PostgreSQL: 1,000 rows a statement, 50,000 a transaction.
fn raw_insert_pg(url: &str, total_points: usize) -> f64 {
    use std::fmt::Write as _;
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.batch_execute("CREATE TABLE raw_points (series_id BIGINT NOT NULL, t BIGINT NOT NULL, v DOUBLE PRECISION NOT NULL, PRIMARY KEY (series_id, t))")
        .unwrap();
    let start = Instant::now();
    let mut done = 0;
    while done < total_points {
        let mut tx = c.transaction().unwrap();
        let end = (done + 50_000).min(total_points);
        for chunk in (done..end).collect::<Vec<_>>().chunks(1000) {
            let mut sql = String::from("INSERT INTO raw_points(series_id, t, v) VALUES ");
            for (k, i) in chunk.iter().enumerate() {
                let sep = if k == 0 { "" } else { "," };
                let _ = write!(
                    sql,
                    "{sep}({}, {}, {})",
                    i % 200,
                    (i / 200) * 100,
                    (*i as f64).sin()
                );
            }
            sql.push_str(" ON CONFLICT (series_id, t) DO UPDATE SET v = excluded.v");
            tx.batch_execute(&sql).unwrap();
        }
        tx.commit().unwrap();
        done = end;
    }
    total_points as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let total = env_u64("BENCH_POINTS", 1_000_000) as usize;
    let pg = (std::env::var("BENCH_DATABASE").as_deref() == Ok("postgres")).then(|| {
        storefleet_storage::postgres::testing::database("ingest bench")
            .expect("BENCH_DATABASE=postgres needs STOREFLEET_TEST_PG")
    });
    let full = std::env::var("BENCH_SYNC").map_or(true, |v| v != "normal");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.controller.state_dir = dir.path().join("state");
        config.http.listen = ([127, 0, 0, 1], 0).into();
        // Plain HTTP: the figures stay comparable with earlier runs.
        config.http.tls = false;
        config.database.synchronous = if full { "full" } else { "normal" }.into();
        // The fold runs once, after ingest, and is timed on its own.
        config.telemetry.rollup_every_secs = 3600;
        if let Some(db) = &pg {
            config.database.url.clone_from(&db.url);
        }
        config.mqtt.client_id = format!("bench-ingest-{}", std::process::id());
        let external = std::env::var("STOREFLEET_TEST_MQTT").ok();
        let broker = match &external {
            Some(a) => {
                config.mqtt.url = format!("mqtt://{a}");
                a.parse::<std::net::SocketAddr>().unwrap()
            }
            None => {
                config.mqtt.listen = ([127, 0, 0, 1], free_port()).into();
                config.mqtt.listen
            }
        };
        let token = CancellationToken::new();
        let running = storefleet_controller::server::start(config, token.clone()).await.unwrap();
        let state = running.state.clone();

        // Register the agents' keys the way enrollment does.
        let mut keys = Vec::new();
        for i in 0..AGENTS {
            let key = SigningKey::generate().unwrap();
            let id = format!("bench-{i:03}-{}", std::process::id());
            let (pk, id2) = (key.public_key().to_base64(), id.clone());
            state
                .db
                .write(move |c| {
                    c.execute(
                        "INSERT INTO stores(code, name, created_at) VALUES (?1, 'Bench', 0) ON CONFLICT DO NOTHING",
                        storefleet_storage::args![format!("B{i}")],
                    )?;
                    c.execute(
                        "INSERT INTO agents(id, public_key, store_code, enrolled_at) VALUES (?1, ?2, ?3, 0)",
                        storefleet_storage::args![id2, pk, format!("B{i}")],
                    )?;
                    Ok(())
                })
                .await
                .unwrap();
            state.registry.insert(&id, key.public_key(), &format!("B{i}"));
            keys.push((id, key));
        }
        let sealed_start = Instant::now();
        let msgs = messages(total, &keys);
        let total_points = msgs.len() * SERIES_PER_MSG * POINTS_PER_SERIES;
        eprintln!("sealed {} messages ({total_points} points) in {:.2?}", msgs.len(), sealed_start.elapsed());

        let mut o = support::bench_mqtt(&state.config, broker, "pub");
        o.set_max_packet_size(1 << 22, 1 << 22).set_inflight(200);
        let (client, mut ev) = AsyncClient::new(o, 1000);
        tokio::spawn(async move { while ev.poll().await.is_ok() {} });

        let before = state.stats.stored_total();
        let start = Instant::now();
        for (i, (topic, payload)) in msgs.into_iter().enumerate() {
            while i as u64 > state.stats.stored_total() - before + 400 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            client.publish(topic, QoS::AtLeastOnce, false, payload).await.unwrap();
        }
        let want = before + (total_points / (SERIES_PER_MSG * POINTS_PER_SERIES)) as u64;
        while state.stats.stored_total() < want {
            tokio::time::sleep(Duration::from_millis(2)).await;
            assert!(start.elapsed() < Duration::from_secs(600), "ingest stalled at {}", state.stats.stored_total());
        }
        let secs = start.elapsed().as_secs_f64();
        let rows = state
            .db
            .read(|c| storefleet_storage::SqlExt::int(c, "SELECT count(*) AS n FROM points", &[], "n"))
            .await
            .unwrap();
        assert_eq!(rows as usize, total_points, "every point is a row");
        let fold_start = Instant::now();
        let folded = storefleet_controller::ingest::rollups::fold_all(&state.db, &CancellationToken::new()).await.unwrap();
        let fold_secs = fold_start.elapsed().as_secs_f64();
        let counted = state
            .db
            .read(|c| storefleet_storage::SqlExt::int(c, "SELECT CAST(sum(n) AS BIGINT) AS n FROM rollups WHERE res = 60", &[], "n"))
            .await
            .unwrap();
        assert_eq!(counted as usize, total_points, "every point counted once in the minute rollups");
        let ingest = total_points as f64 / secs;
        let with_fold = total_points as f64 / (secs + fold_secs);
        let pg_url = pg.as_ref().map(|d| d.url.clone());
        let raw = tokio::task::spawn_blocking(move || match pg_url {
            Some(url) => raw_insert_pg(&url, total_points),
            None => raw_insert(total_points, full),
        })
        .await
        .unwrap();
        let broker_name = if external.is_some() { "Mosquitto" } else { "embedded rumqttd" };
        let sync = if full { "FULL" } else { "NORMAL" };
        let database = if pg.is_some() { "PostgreSQL".to_owned() } else { format!("SQLite (synchronous {sync})") };
        println!("ingest via {broker_name} into {database}, {total_points} points from {AGENTS} agents:");
        println!("  controller ingest      {ingest:>12.0} points/s  ({secs:.2} s; verify, dedupe, raw + minute deltas, acks)");
        println!("  rollup fold            {:>12.0} points/s  ({fold_secs:.2} s; {} deltas into {} rollups)", total_points as f64 / fold_secs, folded.deltas, folded.rollups);
        println!("  ingest and fold        {with_fold:>12.0} points/s");
        println!("  raw batched insert     {raw:>12.0} points/s  (same points, points table only)");
        println!("  ratio                  {:>11.0} %  (ingest and fold to raw)", with_fold / raw * 100.0);
        token.cancel();
        running.wait().await;
        drop(pg);
        if let Some(a) = external {
            for lane in storefleet_controller::ingest::Lane::ALL {
                let id = lane.client_id(&format!("bench-ingest-{}", std::process::id()));
                let _ = storefleet_support::broker::clear_session(a.parse().unwrap(), &id);
            }
        }
    });
}
