//! When telemetry and inventory leave the buffer (`[upload]`): live readings wait a few
//! seconds to travel in fuller, better-compressed batches, and a class held for the
//! store's closed hours stays in the buffer while the store is open. Events, command
//! results and routine runs are never held.

use std::time::{Duration, Instant};

use storefleet_schedule::StoreTime;

/// The upload policy the buffer seals by.
#[derive(Debug, Clone, Default)]
pub struct Upload {
    /// How long the first live point of a batch may wait for others.
    pub delay: Duration,
    /// Telemetry only while the store is closed.
    pub telemetry_closed_only: bool,
    /// Inventory only while the store is closed.
    pub inventory_closed_only: bool,
    /// The store's trading hours (none: never open).
    pub store_time: Option<StoreTime>,
}

impl Upload {
    /// Whether a class held for closed hours waits now.
    pub fn held(&self, closed_only: bool) -> bool {
        closed_only
            && self
                .store_time
                .as_ref()
                .is_some_and(|st| st.is_open(jiff::Timestamp::now()))
    }

    /// Whether live points that have waited since `since` should wait longer, with `n`
    /// of them pending and `full` making a whole batch.
    pub fn lingers(&self, since: Option<Instant>, n: u64, full: u64) -> bool {
        match since {
            Some(t) => n < full && t.elapsed() < self.delay,
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_hours_hold_only_the_classes_that_ask() {
        let open = Upload {
            store_time: Some(StoreTime::new("24/7", "UTC").unwrap()),
            ..Upload::default()
        };
        assert!(open.held(true));
        assert!(!open.held(false));
        // No trading hours: never open, so nothing waits.
        let never = Upload::default();
        assert!(!never.held(true));
    }

    #[test]
    fn live_points_linger_until_the_delay_or_a_full_batch() {
        let u = Upload {
            delay: Duration::from_secs(60),
            ..Upload::default()
        };
        let now = Some(Instant::now());
        assert!(u.lingers(now, 10, 2000));
        assert!(!u.lingers(now, 2000, 2000));
        assert!(!u.lingers(None, 10, 2000));
        let no_delay = Upload::default();
        assert!(!no_delay.lingers(now, 10, 2000));
    }
}
