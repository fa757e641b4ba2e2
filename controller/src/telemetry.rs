//! Reading telemetry back (series, points at a resolution) and pruning it by retention.

use serde::{Deserialize, Serialize};
use storefleet_storage::{args, Sql, SqlExt as _};

use crate::config::TelemetrySection;
use crate::db::DbError;

/// One series of a store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesInfo {
    /// Series id.
    pub id: i64,
    /// Store code.
    pub store: String,
    /// Device id; empty for the gateway.
    pub device: String,
    /// Metric name.
    pub metric: String,
    /// Newest point's time, ms.
    pub last_t: Option<i64>,
    /// Newest point's value.
    pub last_v: Option<f64>,
}

/// A point as read back: raw, or a rollup bucket with its mean, min and max.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Time (bucket start for rollups), ms.
    pub t: i64,
    /// Value (mean for rollups).
    pub v: f64,
    /// Smallest in the bucket.
    pub min: f64,
    /// Largest in the bucket.
    pub max: f64,
}

/// The series of a store, optionally of one device.
pub fn series(c: &dyn Sql, store: &str, device: Option<&str>) -> Result<Vec<SeriesInfo>, DbError> {
    c.all(
        "SELECT id, store_code, device, metric, last_t, last_v FROM series
         WHERE store_code = ?1 AND (CAST(?2 AS TEXT) IS NULL OR device = ?2) ORDER BY device, metric",
        args![store, device],
        |r| {
            Ok(SeriesInfo {
                id: r.i64("id")?,
                store: r.text("store_code")?,
                device: r.text("device")?,
                metric: r.text("metric")?,
                last_t: r.opt_i64("last_t")?,
                last_v: r.opt_f64("last_v")?,
            })
        },
    )
}

/// The resolution chosen for a time range when none is asked for: raw up to 6 hours,
/// per minute up to 7 days, per hour beyond.
pub fn auto_resolution(from: i64, to: i64) -> u32 {
    let span = to - from;
    if span <= 6 * 3_600_000 {
        0
    } else if span <= 7 * 86_400_000 {
        60
    } else {
        3600
    }
}

/// Points of `series_id` in `[from, to]` at `res` (0 raw, 60, 3600), oldest first, at most
/// `limit` (the newest are kept).
pub fn samples(
    c: &dyn Sql,
    series_id: i64,
    from: i64,
    to: i64,
    res: u32,
    limit: u32,
) -> Result<Vec<Sample>, DbError> {
    let mut out: Vec<Sample> = if res == 0 {
        c.all(
            "SELECT t, v FROM points WHERE series_id = ?1 AND t >= ?2 AND t <= ?3 ORDER BY t DESC LIMIT ?4",
            args![series_id, from, to, limit],
            |r| {
                let v = r.f64("v")?;
                Ok(Sample {
                    t: r.i64("t")?,
                    v,
                    min: v,
                    max: v,
                })
            },
        )?
    } else {
        c.all(
            "SELECT bucket, sum / n AS mean, min, max FROM rollups WHERE series_id = ?1 AND res = ?2
             AND bucket >= ?3 AND bucket <= ?4 ORDER BY bucket DESC LIMIT ?5",
            args![series_id, res, from, to, limit],
            |r| {
                Ok(Sample {
                    t: r.i64("bucket")?,
                    v: r.f64("mean")?,
                    min: r.f64("min")?,
                    max: r.f64("max")?,
                })
            },
        )?
    };
    out.reverse();
    Ok(out)
}

/// Whether a series exists.
pub fn exists(c: &dyn Sql, id: i64) -> Result<bool, DbError> {
    Ok(
        c.one("SELECT 1 AS one FROM series WHERE id = ?1", args![id])?
            .is_some(),
    )
}

/// Deletes what is older than the retention; returns rows deleted.
pub fn prune(c: &dyn Sql, r: &TelemetrySection, now: i64) -> Result<u64, DbError> {
    let day = 86_400_000i64;
    let mut n = 0;
    n += c.execute(
        "DELETE FROM points WHERE t < ?1",
        args![now - i64::from(r.raw_retention_days) * day],
    )?;
    n += c.execute(
        "DELETE FROM rollups WHERE res = 60 AND bucket < ?1",
        args![now - i64::from(r.minute_retention_days) * day],
    )?;
    n += c.execute(
        "DELETE FROM rollups WHERE res = 3600 AND bucket < ?1",
        args![now - i64::from(r.hour_retention_days) * day],
    )?;
    // Replicas that stopped reporting how far their ingest is behind (renamed, removed).
    n += c.execute("DELETE FROM ingest_behind WHERE at < ?1", args![now - day])?;
    // Deduplication needs to remember (agent, seq) only as long as a redelivery can come.
    n += c.execute(
        "DELETE FROM received WHERE at < ?1",
        args![now - i64::from(r.raw_retention_days.max(1)) * day],
    )?;
    n += c.execute(
        "DELETE FROM events WHERE ts < ?1",
        args![now - i64::from(r.hour_retention_days) * day],
    )?;
    Ok(n)
}
