//! Reconnect delays: exponential with jitter, so that a fleet that lost its broker at the
//! same moment does not come back at the same moment.

use std::time::Duration;

/// Exponential backoff with "equal jitter": each delay is half the exponential step plus a
/// random share of the other half.
#[derive(Debug, Clone)]
pub struct Backoff {
    min_ms: u64,
    max_ms: u64,
    attempt: u32,
}

impl Backoff {
    /// Delays grow from `min_ms` to at most `max_ms`.
    pub fn new(min_ms: u64, max_ms: u64) -> Backoff {
        Backoff {
            min_ms: min_ms.max(1),
            max_ms: max_ms.max(min_ms.max(1)),
            attempt: 0,
        }
    }

    /// Starts again from the smallest delay (after a connection that held).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The next delay; `unit` is a random number in `[0, 1)`.
    pub fn next_with(&mut self, unit: f64) -> Duration {
        let step = self
            .min_ms
            .saturating_mul(1u64 << self.attempt.min(30))
            .min(self.max_ms);
        self.attempt = self.attempt.saturating_add(1);
        let half = step / 2;
        Duration::from_millis(half + (unit.clamp(0.0, 1.0) * (step - half) as f64) as u64)
    }

    /// The next delay with a random jitter.
    pub fn next_delay(&mut self) -> Duration {
        self.next_with(rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_within_their_jitter_band() {
        let mut b = Backoff::new(100, 1000);
        let lows: Vec<u64> = (0..6)
            .map(|_| b.next_with(0.0).as_millis() as u64)
            .collect();
        assert_eq!(lows, vec![50, 100, 200, 400, 500, 500]);
        let mut b = Backoff::new(100, 1000);
        let highs: Vec<u64> = (0..6)
            .map(|_| b.next_with(1.0).as_millis() as u64)
            .collect();
        assert_eq!(highs, vec![100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::new(100, 1000);
        for _ in 0..5 {
            b.next_with(0.5);
        }
        b.reset();
        assert_eq!(b.next_with(1.0), Duration::from_millis(100));
    }

    #[test]
    fn jitter_spreads_a_fleet() {
        let delays: std::collections::HashSet<u128> = (0..50)
            .map(|_| Backoff::new(1000, 60_000).next_delay().as_micros())
            .collect();
        assert!(delays.len() > 10);
    }
}
