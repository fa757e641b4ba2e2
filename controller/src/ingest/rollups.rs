//! The per-minute and per-hour rollups, folded from the deltas ingest stores.
//!
//! Each batch stores what it adds to a series' minute bucket as a row of `rollup_deltas`
//! (count, sum, min, max). Every `[telemetry] rollup_every_secs`, the replica that holds the
//! engines takes the deltas, adds each minute's and each hour's sum to its rollup, and
//! deletes them, in one transaction: a delta is counted once, even when a fold on a replica
//! that just lost the engines runs at the same time. A series that reports every 5 s gets
//! one rollup update per fold instead of two per reading. Rollups are therefore up to one
//! interval behind the raw points; the charts read raw points for the last 6 hours.

use std::time::Duration;

use storefleet_storage::{args, Dialect, Sql, SqlExt as _};
use tokio_util::sync::CancellationToken;

use crate::db::{Db, DbError};

/// Deltas folded per transaction, so that a backlog (the engines' replica was away) is
/// folded in steps that hold no lock for long, and a stopping replica waits for one step
/// at most.
pub const STEP: i64 = 50_000;

/// Adds a row of sums to a rollup that has one for its bucket. Scalar min/max differ
/// between the backends (SQLite's min(a, b), PostgreSQL's LEAST/GREATEST): CASE says the
/// same on both.
const ADD: &str = " ON CONFLICT(series_id, res, bucket) DO UPDATE SET
    n = rollups.n + excluded.n, sum = rollups.sum + excluded.sum,
    min = CASE WHEN excluded.min < rollups.min THEN excluded.min ELSE rollups.min END,
    max = CASE WHEN excluded.max > rollups.max THEN excluded.max ELSE rollups.max END";

/// The hour that holds a minute bucket, also before 1970 (`%` keeps the dividend's sign
/// on both backends).
const HOUR: &str = "bucket - ((bucket % 3600000) + 3600000) % 3600000";

/// What one fold did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Folded {
    /// Deltas taken.
    pub deltas: u64,
    /// Rollup rows made or added to (minute and hour).
    pub rollups: u64,
}

impl std::ops::AddAssign for Folded {
    fn add_assign(&mut self, o: Folded) {
        self.deltas += o.deltas;
        self.rollups += o.rollups;
    }
}

/// Folds at most `step` deltas into the rollups, in the caller's transaction.
pub fn fold(c: &dyn Sql, step: i64) -> Result<Folded, DbError> {
    match c.dialect() {
        Dialect::Postgres => fold_postgres(c, step),
        Dialect::Sqlite => fold_sqlite(c, step),
    }
}

/// One statement: the deltas deleted are those summed, whatever other transactions commit
/// meanwhile (a delta deleted by a concurrent fold is skipped by this one).
fn fold_postgres(c: &dyn Sql, step: i64) -> Result<Folded, DbError> {
    let sql = format!(
        "WITH d AS (
            DELETE FROM rollup_deltas
            WHERE ctid = ANY(ARRAY(SELECT ctid FROM rollup_deltas LIMIT ?1))
            RETURNING series_id, bucket, n, sum, min, max
         ), m AS (
            SELECT series_id, 60::bigint AS res, bucket, sum(n)::bigint AS n, sum(sum) AS sum,
                   min(min) AS min, max(max) AS max
            FROM d GROUP BY series_id, bucket
         ), h AS (
            SELECT series_id, 3600::bigint AS res, {HOUR} AS bucket, sum(n)::bigint AS n,
                   sum(sum) AS sum, min(min) AS min, max(max) AS max
            FROM m GROUP BY series_id, 3
         ), up AS (
            INSERT INTO rollups(series_id, res, bucket, n, sum, min, max)
            SELECT * FROM (SELECT * FROM m UNION ALL SELECT * FROM h) r
            ORDER BY series_id, res, bucket
            {ADD}
            RETURNING 1
         )
         SELECT (SELECT count(*) FROM d) AS deltas, (SELECT count(*) FROM up) AS rollups"
    );
    let r = c
        .one(&sql, args![step])?
        .ok_or_else(|| DbError::Backend("the rollup fold returned no row".into()))?;
    Ok(Folded {
        deltas: r.i64("deltas")? as u64,
        rollups: r.i64("rollups")? as u64,
    })
}

/// SQLite has one writer: the oldest deltas up to an id are summed, then deleted.
fn fold_sqlite(c: &dyn Sql, step: i64) -> Result<Folded, DbError> {
    let r = c
        .one(
            "SELECT max(id) AS top, count(*) AS n FROM
               (SELECT id FROM rollup_deltas ORDER BY id LIMIT ?1)",
            args![step],
        )?
        .ok_or_else(|| DbError::Backend("counting the rollup deltas returned no row".into()))?;
    let (Some(top), n) = (r.opt_i64("top")?, r.i64("n")?) else {
        return Ok(Folded::default());
    };
    let minutes = c.execute(
        &format!(
            "INSERT INTO rollups(series_id, res, bucket, n, sum, min, max)
             SELECT series_id, 60, bucket, sum(n), sum(sum), min(min), max(max)
             FROM rollup_deltas WHERE id <= ?1 GROUP BY series_id, bucket ORDER BY 1, 3 {ADD}"
        ),
        args![top],
    )?;
    let hours = c.execute(
        &format!(
            "INSERT INTO rollups(series_id, res, bucket, n, sum, min, max)
             SELECT series_id, 3600, {HOUR} AS hour, sum(n), sum(sum), min(min), max(max)
             FROM rollup_deltas WHERE id <= ?1 GROUP BY series_id, hour ORDER BY 1, 3 {ADD}"
        ),
        args![top],
    )?;
    c.execute("DELETE FROM rollup_deltas WHERE id <= ?1", args![top])?;
    Ok(Folded {
        deltas: n as u64,
        rollups: minutes + hours,
    })
}

/// Folds everything there is, a step per transaction, or until `token` is cancelled (each
/// step is whole: the rest waits for the next fold); returns the total.
pub async fn fold_all(db: &Db, token: &CancellationToken) -> Result<Folded, DbError> {
    let mut total = Folded::default();
    while !token.is_cancelled() {
        let f = db.write(|c| fold(c, STEP)).await?;
        total += f;
        if f.deltas < STEP as u64 {
            break;
        }
    }
    Ok(total)
}

/// Folds every `every` until `token` is cancelled; a failure is logged and tried again at
/// the next turn (the deltas stay until folded).
pub async fn run(db: Db, every: Duration, token: CancellationToken) {
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let start = std::time::Instant::now();
        match fold_all(&db, &token).await {
            Ok(f) => tracing::debug!(
                deltas = f.deltas,
                rollups = f.rollups,
                ms = start.elapsed().as_millis() as u64,
                "Rollups folded"
            ),
            Err(e) => tracing::warn!(error = %e, "Folding the rollups failed; will retry"),
        }
    }
}
