//! Downsampling: folding old points into coarser aggregates to make room under the quota.
//!
//! Pure: takes rows, returns rows. Levels go raw -> 1 minute -> 10 minutes -> 1 hour; an
//! hour aggregate is not folded again (the store evicts it when still short of room).

use std::collections::HashMap;

/// Bucket widths in seconds, finest first. A raw point has resolution 0.
pub const LEVELS: [u32; 3] = [60, 600, 3600];

/// A stored point or aggregate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    /// Row id (keeps the buffer's send order).
    pub id: i64,
    /// Series id.
    pub series: i64,
    /// Timestamp, ms (bucket start for aggregates).
    pub t: i64,
    /// Value (mean for aggregates).
    pub v: f64,
    /// Resolution in seconds; 0 for raw.
    pub res: u32,
    /// Raw points folded into this row (1 for raw).
    pub n: u32,
    /// Smallest folded value.
    pub min: f64,
    /// Largest folded value.
    pub max: f64,
}

impl Row {
    /// A raw point.
    pub fn raw(id: i64, series: i64, t: i64, v: f64) -> Row {
        Row {
            id,
            series,
            t,
            v,
            res: 0,
            n: 1,
            min: v,
            max: v,
        }
    }
}

/// The next coarser level for a resolution, `None` at the coarsest.
pub fn next_level(res: u32) -> Option<u32> {
    LEVELS.iter().copied().find(|&l| l > res)
}

/// Folds `rows` one level coarser, per series and bucket. Rows already at the coarsest
/// level are kept as they are. The result is ordered by id; each aggregate takes the
/// smallest id of the rows it folds, so per-series order is preserved.
///
/// Returns the new rows and how many input rows were folded into aggregates.
pub fn fold(rows: &[Row]) -> (Vec<Row>, usize) {
    let mut out: Vec<Row> = Vec::with_capacity(rows.len() / 4 + 1);
    let mut index: HashMap<(i64, u32, i64), usize> = HashMap::new();
    let mut folded = 0usize;
    for r in rows {
        let Some(level) = next_level(r.res) else {
            out.push(*r);
            continue;
        };
        folded += 1;
        let width = i64::from(level) * 1000;
        let bucket = r.t - r.t.rem_euclid(width);
        match index.get(&(r.series, level, bucket)) {
            Some(&i) => {
                let a = &mut out[i];
                let n = a.n + r.n;
                a.v = (a.v * f64::from(a.n) + r.v * f64::from(r.n)) / f64::from(n);
                a.n = n;
                a.min = a.min.min(r.min);
                a.max = a.max.max(r.max);
                a.id = a.id.min(r.id);
            }
            None => {
                index.insert((r.series, level, bucket), out.len());
                out.push(Row {
                    id: r.id,
                    series: r.series,
                    t: bucket,
                    v: r.v,
                    res: level,
                    n: r.n,
                    min: r.min,
                    max: r.max,
                });
            }
        }
    }
    out.sort_by_key(|r| r.id);
    (out, folded)
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // exact values are the point of these tests
mod tests {
    use super::*;

    #[test]
    fn raw_points_fold_into_minute_means_per_series() {
        let rows: Vec<Row> = (0..120)
            .map(|i| Row::raw(i + 1, i % 2, i * 1000, i as f64))
            .collect();
        let (out, folded) = fold(&rows);
        assert_eq!(folded, 120);
        // Two series, two minutes each.
        assert_eq!(out.len(), 4);
        let first = out.iter().find(|r| r.series == 0 && r.t == 0).unwrap();
        assert_eq!(first.res, 60);
        assert_eq!(first.n, 30);
        assert_eq!(first.min, 0.0);
        assert_eq!(first.max, 58.0);
        assert!((first.v - 29.0).abs() < 1e-9);
        assert_eq!(first.id, 1);
        assert_eq!(out.iter().map(|r| r.n).sum::<u32>(), 120);
    }

    #[test]
    fn aggregates_fold_with_weighted_means() {
        let a = Row {
            id: 1,
            series: 0,
            t: 0,
            v: 10.0,
            res: 60,
            n: 1,
            min: 10.0,
            max: 10.0,
        };
        let b = Row {
            id: 2,
            series: 0,
            t: 60_000,
            v: 20.0,
            res: 60,
            n: 3,
            min: 15.0,
            max: 30.0,
        };
        let (out, folded) = fold(&[a, b]);
        assert_eq!(folded, 2);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].res, 600);
        assert_eq!(out[0].n, 4);
        assert!((out[0].v - 17.5).abs() < 1e-9);
        assert_eq!((out[0].min, out[0].max), (10.0, 30.0));
    }

    #[test]
    fn hour_aggregates_are_kept_and_not_counted_as_folded() {
        let h = Row {
            id: 5,
            series: 0,
            t: 0,
            v: 1.0,
            res: 3600,
            n: 60,
            min: 0.0,
            max: 2.0,
        };
        let (out, folded) = fold(&[h]);
        assert_eq!(out, vec![h]);
        assert_eq!(folded, 0);
    }

    #[test]
    fn negative_timestamps_bucket_downwards() {
        let (out, _) = fold(&[Row::raw(1, 0, -1, 1.0)]);
        assert_eq!(out[0].t, -60_000);
    }
}
