//! The latest reading of every series, as it enters the buffer: what routine conditions
//! look at ("printer-1 down for two minutes"). Kept in memory only; after a restart the
//! conditions start from the first new readings.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::buffer::SeriesIn;

/// `(device, metric)`; no device: the gateway.
type Key = (Option<String>, String);

/// Latest `(t ms, value)` per device and metric.
#[derive(Debug, Default)]
pub struct Latest(Mutex<HashMap<Key, (i64, f64)>>);

impl Latest {
    /// Notes the newest point of each series.
    pub fn record(&self, series: &[SeriesIn]) {
        let Ok(mut map) = self.0.lock() else { return };
        for s in series {
            let Some(&(t, v)) = s.points.iter().max_by_key(|(t, _)| *t) else {
                continue;
            };
            let slot = map
                .entry((s.device.clone(), s.metric.clone()))
                .or_insert((t, v));
            if t >= slot.0 {
                *slot = (t, v);
            }
        }
    }

    /// The latest reading of a device's (`None`: the gateway's) metric.
    pub fn get(&self, device: Option<&str>, metric: &str) -> Option<(i64, f64)> {
        let map = self.0.lock().ok()?;
        map.get(&(device.map(str::to_owned), metric.to_owned()))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_point_wins_even_when_older_ones_arrive_later() {
        let l = Latest::default();
        let s = |t, v| SeriesIn {
            device: Some("p".into()),
            metric: "probe.up".into(),
            points: vec![(t, v)],
        };
        l.record(&[s(10, 1.0)]);
        l.record(&[s(20, 0.0)]);
        l.record(&[s(15, 1.0)]);
        assert_eq!(l.get(Some("p"), "probe.up"), Some((20, 0.0)));
        assert_eq!(l.get(None, "probe.up"), None);
    }
}
