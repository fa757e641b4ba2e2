//! Reading telemetry back (series, points at a resolution) and pruning it by retention.

use rusqlite::{params, Connection, OptionalExtension as _};
use serde::{Deserialize, Serialize};

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
pub fn series(
    c: &Connection,
    store: &str,
    device: Option<&str>,
) -> Result<Vec<SeriesInfo>, DbError> {
    let mut st = c.prepare_cached(
        "SELECT id, store_code, device, metric, last_t, last_v FROM series
         WHERE store_code = ?1 AND (?2 IS NULL OR device = ?2) ORDER BY device, metric",
    )?;
    let rows = st.query_map(params![store, device], |r| {
        Ok(SeriesInfo {
            id: r.get(0)?,
            store: r.get(1)?,
            device: r.get(2)?,
            metric: r.get(3)?,
            last_t: r.get(4)?,
            last_v: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
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
    c: &Connection,
    series_id: i64,
    from: i64,
    to: i64,
    res: u32,
    limit: u32,
) -> Result<Vec<Sample>, DbError> {
    let mut out: Vec<Sample> = if res == 0 {
        let mut st = c.prepare_cached(
            "SELECT t, v FROM points WHERE series_id = ?1 AND t >= ?2 AND t <= ?3 ORDER BY t DESC LIMIT ?4",
        )?;
        let rows = st.query_map(params![series_id, from, to, limit], |r| {
            let v: f64 = r.get(1)?;
            Ok(Sample {
                t: r.get(0)?,
                v,
                min: v,
                max: v,
            })
        })?;
        rows.collect::<Result<_, _>>()?
    } else {
        let mut st = c.prepare_cached(
            "SELECT bucket, sum / n, min, max FROM rollups WHERE series_id = ?1 AND res = ?2
             AND bucket >= ?3 AND bucket <= ?4 ORDER BY bucket DESC LIMIT ?5",
        )?;
        let rows = st.query_map(params![series_id, res, from, to, limit], |r| {
            Ok(Sample {
                t: r.get(0)?,
                v: r.get(1)?,
                min: r.get(2)?,
                max: r.get(3)?,
            })
        })?;
        rows.collect::<Result<_, _>>()?
    };
    out.reverse();
    Ok(out)
}

/// Whether a series exists.
pub fn exists(c: &Connection, id: i64) -> Result<bool, DbError> {
    Ok(
        c.query_row("SELECT 1 FROM series WHERE id = ?1", [id], |_| Ok(()))
            .optional()?
            .is_some(),
    )
}

/// Deletes what is older than the retention; returns rows deleted.
pub fn prune(c: &Connection, r: &TelemetrySection, now: i64) -> Result<u64, DbError> {
    let day = 86_400_000i64;
    let mut n = 0;
    n += c.execute(
        "DELETE FROM points WHERE t < ?1",
        [now - i64::from(r.raw_retention_days) * day],
    )?;
    n += c.execute(
        "DELETE FROM rollups WHERE res = 60 AND bucket < ?1",
        [now - i64::from(r.minute_retention_days) * day],
    )?;
    n += c.execute(
        "DELETE FROM rollups WHERE res = 3600 AND bucket < ?1",
        [now - i64::from(r.hour_retention_days) * day],
    )?;
    // Deduplication needs to remember (agent, seq) only as long as a redelivery can come.
    n += c.execute(
        "DELETE FROM received WHERE at < ?1",
        [now - i64::from(r.raw_retention_days.max(1)) * day],
    )?;
    n += c.execute(
        "DELETE FROM events WHERE ts < ?1",
        [now - i64::from(r.hour_retention_days) * day],
    )?;
    Ok(n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_keeps_each_resolution_for_its_own_retention() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::db::migrations::apply(&mut c).unwrap();
        let day = 86_400_000i64;
        let now = 1000 * day;
        c.execute(
            "INSERT INTO series(id, store_code, device, metric) VALUES (1, 'S', '', 'm')",
            [],
        )
        .unwrap();
        for age in [1, 8, 60, 100, 800] {
            let t = now - age * day;
            c.execute(
                "INSERT INTO points(series_id, t, v) VALUES (1, ?1, 1.0)",
                [t],
            )
            .unwrap();
            for res in [60, 3600] {
                c.execute("INSERT INTO rollups(series_id, res, bucket, n, sum, min, max) VALUES (1, ?1, ?2, 1, 1, 1, 1)", [res, t])
                    .unwrap();
            }
        }
        let r = TelemetrySection::default(); // 7, 90, 730 days
        prune(&c, &r, now).unwrap();
        let count = |sql: &str| -> i64 { c.query_row(sql, [], |x| x.get(0)).unwrap() };
        assert_eq!(
            count("SELECT count(*) FROM points"),
            1,
            "raw: only the 1-day-old point"
        );
        assert_eq!(
            count("SELECT count(*) FROM rollups WHERE res = 60"),
            3,
            "minutes: 1, 8, 60 days"
        );
        assert_eq!(
            count("SELECT count(*) FROM rollups WHERE res = 3600"),
            4,
            "hours: all but 800 days"
        );
    }
}
