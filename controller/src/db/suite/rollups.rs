//! The rollups folded from ingest's deltas, on both backends: each reading counted once in
//! its minute and its hour, aggregates from the agent with their `n`, in steps, and (on
//! PostgreSQL) once when two replicas fold at the same time.

use storefleet_protocol::message::{Aggregate, Point, Series, TelemetryBatch};
use storefleet_protocol::{Envelope, Message};
use storefleet_storage::{args, Sql, SqlExt as _};

use crate::db::testing::on_each_backend;
use crate::db::DbError;
use crate::ingest::rollups::{fold, Folded};
use crate::ingest::write::{apply, Verified};

/// An hour's start, ms.
const T: i64 = 10 * 3_600_000;

/// A message of gateway `gw-1` in store `S` with one reading of `ups` `charge`.
fn reading(seq: u64, t: i64, v: f64, agg: Option<(u32, f64, f64)>) -> Verified {
    Verified {
        store: "S".into(),
        envelope: Envelope::new(
            "gw-1",
            seq,
            t,
            Message::Telemetry(TelemetryBatch {
                backlog: false,
                series: vec![Series {
                    device: Some("ups".into()),
                    metric: "charge".into(),
                    points: vec![Point {
                        t,
                        v,
                        agg: agg.map(|(n, min, max)| Aggregate {
                            res: 60,
                            n,
                            min,
                            max,
                        }),
                    }],
                }],
            }),
        ),
    }
}

/// A rollup: (res, bucket, n, sum, min, max).
type Rollup = (i64, i64, i64, f64, f64, f64);

/// Every rollup, in order.
fn rollups(c: &dyn Sql) -> Result<Vec<Rollup>, DbError> {
    c.all(
        "SELECT res, bucket, n, sum, min, max FROM rollups ORDER BY res, bucket",
        args![],
        |r| {
            Ok((
                r.i64("res")?,
                r.i64("bucket")?,
                r.i64("n")?,
                r.f64("sum")?,
                r.f64("min")?,
                r.f64("max")?,
            ))
        },
    )
}

fn deltas(c: &dyn Sql) -> Result<i64, DbError> {
    c.int("SELECT count(*) AS n FROM rollup_deltas", args![], "n")
}

/// Folds in steps of `step` until a step takes fewer; returns the total.
fn fold_all(c: &dyn Sql, step: i64) -> Result<Folded, DbError> {
    let mut total = Folded::default();
    loop {
        let f = fold(c, step)?;
        total += f;
        if f.deltas < step as u64 {
            return Ok(total);
        }
    }
}

#[test]
fn readings_are_folded_into_their_minute_and_hour_once_on_both_backends() {
    on_each_backend("rollup fold", |backend, db| {
        db(&mut |c| {
            c.execute(
                "INSERT INTO stores(code, name, created_at) VALUES ('S', 'S', 0)",
                args![],
            )?;
            // Ingest updates no rollup; it stores what each batch adds to a minute.
            apply(
                c,
                &[
                    reading(1, T + 1_000, 1.0, None),
                    reading(2, T + 2_000, 3.0, None),
                    reading(3, T + 61_000, 5.0, None),
                ],
                T,
            )?;
            apply(
                c,
                &[
                    // The agent's own aggregate of 4 readings, mean 2.
                    reading(4, T + 3_000, 2.0, Some((4, 0.0, 9.0))),
                    reading(5, T + 3_600_000 + 5, 7.0, None),
                ],
                T,
            )?;
            assert!(rollups(c)?.is_empty(), "{backend}");
            assert_eq!(deltas(c)?, 4, "{backend}: a row per batch and minute");
            // In steps of 3 deltas: 3, then 1.
            let f = fold_all(c, 3)?;
            assert_eq!(f.deltas, 4, "{backend}");
            assert_eq!(deltas(c)?, 0, "{backend}");
            let hour = 3_600_000;
            assert_eq!(
                rollups(c)?,
                [
                    (60, T, 6, 12.0, 0.0, 9.0),
                    (60, T + 60_000, 1, 5.0, 5.0, 5.0),
                    (60, T + hour, 1, 7.0, 7.0, 7.0),
                    (3600, T, 7, 17.0, 0.0, 9.0),
                    (3600, T + hour, 1, 7.0, 7.0, 7.0),
                ],
                "{backend}"
            );
            // Nothing new: nothing changes. A later reading in a folded minute adds to it.
            assert_eq!(fold_all(c, 3)?, Folded::default(), "{backend}");
            apply(c, &[reading(6, T + 59_999, -1.0, None)], T)?;
            assert_eq!(fold_all(c, 3)?.deltas, 1, "{backend}");
            let r = rollups(c)?;
            assert_eq!(r[0], (60, T, 7, 11.0, -1.0, 9.0), "{backend}");
            assert_eq!(r[3], (3600, T, 8, 16.0, -1.0, 9.0), "{backend}");
            // The charts read the folded rollups: the minute's mean.
            let m = crate::telemetry::samples(c, 1, T, T, 60, 10)?;
            assert_eq!(m.len(), 1, "{backend}");
            assert!((m[0].v - 11.0 / 7.0).abs() < 1e-9, "{backend}: {m:?}");
            Ok(())
        })
        .unwrap();
    });
}

/// Two replicas fold at once (one just lost the engines, one just took them), while a batch
/// comes in: every delta is counted once, and the batch's is folded by a later turn.
#[test]
fn concurrent_folds_count_each_delta_once_on_postgresql() {
    use crate::db::testing::{postgres_with_store, uncommitted};
    let Some((_db, pool)) = postgres_with_store("rollup folds", 3) else {
        return;
    };
    let n = 50u64;
    pool.run_blocking(false, move |c| {
        for seq in 1..=n {
            apply(c, &[reading(seq, T + seq as i64, 1.0, None)], T)?;
        }
        Ok(())
    })
    .unwrap();
    // Uncommitted while the other fold and a batch run.
    let slow = uncommitted(&pool, std::time::Duration::from_millis(500), |c| {
        fold(c, 1_000)
    });
    std::thread::sleep(std::time::Duration::from_millis(150));
    let batch = {
        let pool = pool.clone();
        std::thread::spawn(move || {
            pool.run_blocking(false, move |c| {
                apply(c, &[reading(n + 1, T + 1, 1.0, None)], T).map(|_| ())
            })
        })
    };
    let other = pool.run_blocking(false, |c| fold(c, 1_000)).unwrap();
    let slow = slow.join().unwrap().unwrap();
    batch.join().unwrap().unwrap();
    let later = pool.run_blocking(false, |c| fold(c, 1_000)).unwrap();
    // The slow fold took the 50 it saw; the other waited for it and took only the batch's
    // delta if it saw it, else the later turn did.
    assert_eq!(slow.deltas, n, "{slow:?}");
    assert_eq!(other.deltas + later.deltas, 1, "{other:?} {later:?}");
    let r = pool.run_blocking(true, rollups).unwrap();
    assert_eq!(
        r.iter().map(|r| (r.0, r.2)).collect::<Vec<_>>(),
        [(60, n as i64 + 1), (3600, n as i64 + 1)],
        "{r:?}"
    );
}
