//! Telemetry read back and pruned on both backends: each resolution is kept for its own
//! retention, series are listed by store and device, samples come oldest first.

use storefleet_storage::{args, Sql, SqlExt as _};

use crate::config::TelemetrySection;
use crate::db::testing::on_each_backend;
use crate::db::DbError;
use crate::telemetry::{prune, samples, series};

fn count(c: &dyn Sql, sql: &str) -> Result<i64, DbError> {
    c.int(sql, args![], "n")
}

#[test]
fn pruning_keeps_each_resolution_for_its_own_retention_on_both_backends() {
    on_each_backend("telemetry", |backend, db| {
        let day = 86_400_000i64;
        let now = 1000 * day;
        db(&mut |c| {
            c.execute(
                "INSERT INTO series(id, store_code, device, metric, last_t, last_v) VALUES (1, 'S', '', 'm', ?1, 1.5)",
                args![now - day],
            )?;
            c.execute(
                "INSERT INTO series(id, store_code, device, metric) VALUES (2, 'S', 'ups', 'charge')",
                args![],
            )?;
            for age in [1, 8, 60, 100, 800] {
                let t = now - age * day;
                c.execute("INSERT INTO points(series_id, t, v) VALUES (1, ?1, ?2)", args![t, age as f64])?;
                for res in [60, 3600] {
                    c.execute(
                        "INSERT INTO rollups(series_id, res, bucket, n, sum, min, max) VALUES (1, ?1, ?2, 2, 3.0, 1.0, 2.0)",
                        args![res, t],
                    )?;
                }
            }
            let raw = samples(c, 1, 0, now, 0, 3)?;
            assert_eq!(raw.iter().map(|s| s.v).collect::<Vec<_>>(), [60.0, 8.0, 1.0], "{backend}: newest 3, oldest first");
            let hours = samples(c, 1, now - 10 * day, now, 3600, 10)?;
            assert_eq!((hours.len(), hours[0].v, hours[0].min, hours[0].max), (2, 1.5, 1.0, 2.0));
            let all = series(c, "S", None)?;
            assert_eq!(all.iter().map(|s| s.metric.as_str()).collect::<Vec<_>>(), ["m", "charge"]);
            assert_eq!((all[0].last_t, all[0].last_v), (Some(now - day), Some(1.5)));
            assert_eq!(series(c, "S", Some("ups"))?.len(), 1);
            assert!(crate::telemetry::exists(c, 2)? && !crate::telemetry::exists(c, 3)?);
            Ok(())
        })
        .unwrap();
        db(&mut |c| {
            let r = TelemetrySection::default(); // 7, 90, 730 days
            assert_eq!(prune(c, &r, now)?, 4 + 2 + 1, "{backend}");
            assert_eq!(
                count(c, "SELECT count(*) AS n FROM points")?,
                1,
                "{backend}: raw: the 1-day-old point"
            );
            assert_eq!(
                count(c, "SELECT count(*) AS n FROM rollups WHERE res = 60")?,
                3,
                "{backend}: 1, 8, 60 days"
            );
            assert_eq!(
                count(c, "SELECT count(*) AS n FROM rollups WHERE res = 3600")?,
                4,
                "{backend}: all but 800"
            );
            Ok(())
        })
        .unwrap();
    });
}

#[test]
fn ingest_stores_each_message_once_on_both_backends() {
    use crate::ingest::write::{apply, Verified};
    use storefleet_protocol::message::{Point, Series, TelemetryBatch};
    use storefleet_protocol::{Envelope, Message};
    let msg = |seq: u64, t: i64, metric: &str| Verified {
        store: "S".into(),
        envelope: Envelope::new(
            "gw-1",
            seq,
            t,
            Message::Telemetry(TelemetryBatch {
                backlog: false,
                series: vec![Series {
                    device: Some("ups".into()),
                    metric: metric.into(),
                    points: vec![Point {
                        t,
                        v: seq as f64,
                        agg: None,
                    }],
                }],
            }),
        ),
    };
    on_each_backend("ingest", |backend, db| {
        let now = 1_000_000;
        db(&mut |c| {
            c.execute(
                "INSERT INTO stores(code, name, created_at) VALUES ('S', 'S', 0)",
                args![],
            )?;
            // A copy of seq 2 in the same batch counts once.
            let first = [
                msg(1, now, "charge"),
                msg(2, now + 1, "charge"),
                msg(2, now + 1, "charge"),
                msg(3, now + 2, "load"),
            ];
            let o = apply(c, &first, now)?;
            assert_eq!((o.stored, o.duplicates, o.points), (3, 1, 3), "{backend}");
            assert_eq!(o.telemetry, 3, "{backend}");
            assert!(
                !o.wakes_rules(),
                "{backend}: telemetry alone waits for the round"
            );
            // Redelivered beside a new one: only the new one is stored, in the known series.
            let again = [msg(2, now + 1, "charge"), msg(4, now + 3, "charge")];
            let o = apply(c, &again, now)?;
            assert_eq!((o.stored, o.duplicates, o.points), (1, 1, 1), "{backend}");
            assert_eq!(
                count(c, "SELECT count(*) AS n FROM points")?,
                4,
                "{backend}"
            );
            assert_eq!(
                count(c, "SELECT count(*) AS n FROM series")?,
                2,
                "{backend}"
            );
            assert_eq!(
                count(c, "SELECT count(*) AS n FROM received")?,
                4,
                "{backend}"
            );
            Ok(())
        })
        .unwrap();
    });
}

/// A telemetry message of gateway `gw-1` in store `S`: one reading of each of `metrics` of
/// device `ups`, at `1_000 + seq`.
fn readings(seq: u64, metrics: &[&str]) -> crate::ingest::write::Verified {
    use storefleet_protocol::message::{Point, Series, TelemetryBatch};
    use storefleet_protocol::{Envelope, Message};
    crate::ingest::write::Verified {
        store: "S".into(),
        envelope: Envelope::new(
            "gw-1",
            seq,
            1_000,
            Message::Telemetry(TelemetryBatch {
                backlog: false,
                series: metrics
                    .iter()
                    .map(|m| Series {
                        device: Some("ups".into()),
                        metric: (*m).into(),
                        points: vec![Point {
                            t: 1_000 + seq as i64,
                            v: 1.0,
                            agg: None,
                        }],
                    })
                    .collect(),
            }),
        ),
    }
}

/// Series ids learned from committed batches are used by later ones: a batch whose series
/// are all known asks the database for none, and its points land on the same series.
#[test]
fn ingest_uses_the_series_ids_it_learned_on_both_backends() {
    use crate::ingest::write::{apply_with, SeriesIds};
    on_each_backend("series ids", |backend, db| {
        let known = SeriesIds::default();
        db(&mut |c| {
            c.execute(
                "INSERT INTO stores(code, name, created_at) VALUES ('S', 'S', 0)",
                args![],
            )?;
            let (o, learned) = apply_with(c, &[readings(1, &["charge", "load"])], 5_000, &known)?;
            assert_eq!((o.stored, o.points, learned.len()), (1, 2, 2), "{backend}");
            known.learn(learned);
            // All known: nothing learned, the points go to the same two series.
            let (o, learned) = apply_with(c, &[readings(2, &["load", "charge"])], 5_000, &known)?;
            assert_eq!((o.points, learned.len()), (2, 0), "{backend}");
            // One known, one new: only the new one is learned.
            let (_, learned) = apply_with(c, &[readings(3, &["charge", "temp"])], 5_000, &known)?;
            let names: Vec<&str> = learned.iter().map(|((_, _, m), _)| m.as_str()).collect();
            assert_eq!(names, ["temp"], "{backend}");
            assert_eq!(
                count(c, "SELECT count(*) AS n FROM series")?,
                3,
                "{backend}"
            );
            assert_eq!(
                count(
                    c,
                    "SELECT count(*) AS n FROM points p JOIN series s ON s.id = p.series_id WHERE s.metric = 'charge'"
                )?,
                3,
                "{backend}: every charge reading on the one charge series"
            );
            Ok(())
        })
        .unwrap();
    });
}

/// What a batch says about a device's state and an agent's presence is written once per
/// row at the end of the batch: the newest state by time and the presence with the highest
/// seq win, within the batch and against what is stored.
#[test]
fn ingest_keeps_the_newest_device_state_and_presence_on_both_backends() {
    use crate::ingest::write::{apply, Verified};
    use storefleet_protocol::message::{
        Event, Point, Presence, PresenceState, Series, Severity, TelemetryBatch,
    };
    use storefleet_protocol::{Envelope, Message};
    let wrap = |seq: u64, message: Message| Verified {
        store: "S".into(),
        envelope: Envelope::new("gw-1", seq, 1_000 + seq as i64, message),
    };
    let state = |seq: u64, up: bool, ts: i64| {
        wrap(
            seq,
            Message::Event(Event {
                id: format!("e{seq}"),
                ts,
                device: Some("printer-1".into()),
                code: if up { "device.up" } else { "device.down" }.into(),
                severity: Severity::Warning,
                message: format!("seq {seq}"),
                data: serde_json::Map::new(),
            }),
        )
    };
    let presence = |seq: u64, online: bool| {
        wrap(
            seq,
            Message::Presence(Presence {
                state: if online {
                    PresenceState::Online
                } else {
                    PresenceState::Offline
                },
                agent_version: format!("v{seq}"),
                started_at: 7,
                reason: None,
            }),
        )
    };
    let point = |seq: u64, t: i64| {
        wrap(
            seq,
            Message::Telemetry(TelemetryBatch {
                backlog: false,
                series: vec![Series {
                    device: Some("printer-1".into()),
                    metric: "pages".into(),
                    points: vec![Point {
                        t,
                        v: 1.0,
                        agg: None,
                    }],
                }],
            }),
        )
    };
    on_each_backend("ingest state", |backend, db| {
        let read = |c: &dyn Sql| -> Result<(String, String, Option<i64>, String, String), DbError> {
            let d = c
                .one(
                    "SELECT state, state_note, last_seen FROM devices WHERE device = 'printer-1'",
                    args![],
                )?
                .unwrap();
            let a = c
                .one(
                    "SELECT presence, agent_version FROM agents WHERE id = 'gw-1'",
                    args![],
                )?
                .unwrap();
            Ok((
                d.text("state")?,
                d.text("state_note")?,
                d.opt_i64("last_seen")?,
                a.text("presence")?,
                a.text("agent_version")?,
            ))
        };
        db(&mut |c| {
            c.execute("INSERT INTO stores(code, name, created_at) VALUES ('S', 'S', 0)", args![])?;
            c.execute(
                "INSERT INTO agents(id, public_key, store_code, enrolled_at) VALUES ('gw-1', 'k', 'S', 0)",
                args![],
            )?;
            // Out of order within the batch: the down at 200 is newer than the up at 150;
            // the online hello (seq 5) is newer than the offline (seq 4).
            let first = [
                presence(5, true),
                state(6, false, 200),
                point(7, 180),
                state(8, true, 150),
                presence(4, false),
            ];
            apply(c, &first, 1_000)?;
            assert_eq!(
                read(c)?,
                ("down".into(), "seq 6".into(), Some(180), "online".into(), "v5".into()),
                "{backend}"
            );
            // Later batches: an older state and an older presence change nothing, newer
            // ones do; a device seen only through telemetry keeps its state.
            apply(c, &[state(9, true, 190), presence(3, false), point(10, 170)], 1_001)?;
            assert_eq!(
                read(c)?,
                ("down".into(), "seq 6".into(), Some(180), "online".into(), "v5".into()),
                "{backend}"
            );
            apply(c, &[state(11, true, 210), presence(12, false)], 1_002)?;
            assert_eq!(
                read(c)?,
                ("up".into(), "seq 11".into(), Some(180), "offline".into(), "v12".into()),
                "{backend}"
            );
            assert_eq!(count(c, "SELECT count(*) AS n FROM events")?, 4, "{backend}");
            assert_eq!(
                count(c, "SELECT last_seen AS n FROM agents WHERE id = 'gw-1'")?,
                1_002,
                "{backend}"
            );
            // A sender with no agent row (it cannot pass verification, but if it did) is
            // written as a revoked agent without a key: trusted with nothing.
            let mut ghost = point(13, 300);
            ghost.envelope.from = "gw-ghost".into();
            apply(c, &[ghost], 1_003)?;
            assert!(
                !crate::agents::keys(c)?.contains_key("gw-ghost"),
                "{backend}"
            );
            assert_eq!(
                count(c, "SELECT count(*) AS n FROM agents WHERE id = 'gw-ghost' AND revoked_at IS NOT NULL AND public_key = ''")?,
                1,
                "{backend}"
            );
            Ok(())
        })
        .unwrap();
    });
}

/// Two batches on two connections (two replicas) that both bring the first points of a new
/// series: the second waits for the first to commit and then uses its series, instead of
/// failing on the duplicate and stalling its acknowledgements behind a retry.
#[test]
fn concurrent_batches_make_a_new_series_once_on_postgresql() {
    use crate::db::testing::{postgres_with_store, uncommitted};
    use crate::ingest::write::apply;
    let Some((_db, pool)) = postgres_with_store("ingest new series", 2) else {
        return;
    };
    let batch = |seq: u64| vec![readings(seq, &["a", "b", "c"])];
    // Still uncommitted while the other batch makes the same series.
    let msgs = batch(1);
    let first = uncommitted(&pool, std::time::Duration::from_millis(500), move |c| {
        apply(c, &msgs, 1_000).map(|_| ())
    });
    std::thread::sleep(std::time::Duration::from_millis(150));
    let msgs = batch(2);
    let second = pool.run_blocking(false, move |c| apply(c, &msgs, 1_000));
    first.join().unwrap().unwrap();
    assert_eq!(second.unwrap().points, 3);
    let (series, points) = pool
        .run_blocking(true, |c| {
            Ok((
                count(c, "SELECT count(*) AS n FROM series")?,
                count(c, "SELECT count(*) AS n FROM points")?,
            ))
        })
        .unwrap();
    assert_eq!((series, points), (3, 6));
}
