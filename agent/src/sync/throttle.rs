//! The upload cap (`[upload] max_bytes_per_sec`): a token bucket over the bytes handed to
//! the broker, with one second of burst (or one message, if larger).

use std::time::{Duration, Instant};

/// A byte budget refilled at a steady rate.
#[derive(Debug)]
pub struct Throttle {
    rate: f64,
    allowance: f64,
    last: Instant,
}

impl Throttle {
    /// `bytes_per_sec` a second; `None` for no cap (0).
    pub fn new(bytes_per_sec: u64) -> Option<Throttle> {
        (bytes_per_sec > 0).then(|| Throttle {
            rate: bytes_per_sec as f64,
            allowance: bytes_per_sec as f64,
            last: Instant::now(),
        })
    }

    /// How long to wait before `n` bytes may go; the bytes are counted as sent when the
    /// wait is zero. A `must` send (an event) goes now and counts, leaving a debt.
    pub fn wait_for(&mut self, n: usize, must: bool) -> Duration {
        let now = Instant::now();
        let burst = self.rate.max(n as f64);
        self.allowance =
            (self.allowance + now.duration_since(self.last).as_secs_f64() * self.rate).min(burst);
        self.last = now;
        let n = n as f64;
        if must || self.allowance >= n {
            self.allowance -= n;
            return Duration::ZERO;
        }
        Duration::from_secs_f64((n - self.allowance) / self.rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_second_goes_then_the_rest_waits_its_share() {
        assert!(Throttle::new(0).is_none());
        let mut t = Throttle::new(1000).unwrap();
        assert_eq!(t.wait_for(1000, false), Duration::ZERO);
        let w = t.wait_for(500, false);
        assert!(
            w > Duration::from_millis(400) && w <= Duration::from_millis(500),
            "{w:?}"
        );
        // An event goes anyway, and the debt makes the next telemetry wait longer.
        assert_eq!(t.wait_for(500, true), Duration::ZERO);
        assert!(t.wait_for(500, false) > Duration::from_millis(900));
        // A message larger than a second's worth still goes once the bucket is full.
        let mut t = Throttle::new(100).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert!(t.wait_for(5000, false) > Duration::ZERO);
    }
}
