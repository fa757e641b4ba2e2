//! Limits on sign-in attempts, per user name and per client address.
//!
//! Each key has a bucket of failures it may still make: `burst` at first, refilled at
//! `burst` per [`WINDOW_MS`]. A failed sign-in takes one from the user's bucket and one from
//! the address's; while either is empty, sign-in for that pair is refused at once (HTTP
//! 429 with `Retry-After`) without looking at the password. A success refills the user's
//! bucket. Unknown names are limited like real ones, so the limiter does not tell them
//! apart. Buckets live in memory, per controller process; at most [`MAX_KEYS`] of each kind
//! are kept (full, i.e. harmless, ones are forgotten first).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;

/// The refill period: `burst` failures per this many ms.
pub const WINDOW_MS: i64 = 15 * 60 * 1000;
/// Most keys remembered per kind.
pub const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: i64,
}

#[derive(Debug)]
struct Buckets<K> {
    burst: f64,
    map: HashMap<K, Bucket>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    fn new(burst: u32) -> Self {
        Buckets {
            burst: f64::from(burst.max(1)),
            map: HashMap::new(),
        }
    }

    fn level(&self, k: &K, now: i64) -> f64 {
        self.map.get(k).map_or(self.burst, |b| {
            let refill = (now - b.at).max(0) as f64 * self.burst / WINDOW_MS as f64;
            (b.tokens + refill).min(self.burst)
        })
    }

    /// Ms until one attempt is allowed; 0 when it is now.
    fn wait(&self, k: &K, now: i64) -> i64 {
        let level = self.level(k, now);
        if level >= 1.0 {
            0
        } else {
            ((1.0 - level) * WINDOW_MS as f64 / self.burst).ceil() as i64
        }
    }

    fn take(&mut self, k: &K, now: i64) {
        let tokens = (self.level(k, now) - 1.0).max(0.0);
        if self.map.len() >= MAX_KEYS && !self.map.contains_key(k) {
            let burst = self.burst;
            let window = WINDOW_MS as f64;
            self.map
                .retain(|_, b| b.tokens + (now - b.at).max(0) as f64 * burst / window < burst);
            if self.map.len() >= MAX_KEYS {
                return;
            }
        }
        self.map.insert(k.clone(), Bucket { tokens, at: now });
    }

    fn reset(&mut self, k: &K) {
        self.map.remove(k);
    }
}

/// Why an attempt is refused now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// Seconds until the next attempt may be made.
    pub retry_after_secs: u64,
    /// `user` or `address`.
    pub by: &'static str,
}

/// Sign-in limits of one controller process.
#[derive(Debug)]
pub struct LoginLimiter {
    users: Mutex<Buckets<String>>,
    addresses: Mutex<Buckets<IpAddr>>,
}

impl LoginLimiter {
    /// `per_user` and `per_address` failures per [`WINDOW_MS`] (and at once).
    pub fn new(per_user: u32, per_address: u32) -> LoginLimiter {
        LoginLimiter {
            users: Mutex::new(Buckets::new(per_user)),
            addresses: Mutex::new(Buckets::new(per_address)),
        }
    }

    /// Whether `user` from `addr` may try now.
    pub fn check(&self, user: &str, addr: IpAddr, now: i64) -> Result<(), Limited> {
        let u = lock(&self.users).wait(&user.to_owned(), now);
        let a = lock(&self.addresses).wait(&addr, now);
        let (wait, by) = if u >= a { (u, "user") } else { (a, "address") };
        if wait == 0 {
            Ok(())
        } else {
            Err(Limited {
                retry_after_secs: (wait as u64).div_ceil(1000).max(1),
                by,
            })
        }
    }

    /// A failed attempt.
    pub fn failed(&self, user: &str, addr: IpAddr, now: i64) {
        lock(&self.users).take(&user.to_owned(), now);
        lock(&self.addresses).take(&addr, now);
    }

    /// A successful sign-in: the user's failures are forgiven.
    pub fn succeeded(&self, user: &str) {
        lock(&self.users).reset(&user.to_owned());
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn a_user_gets_its_burst_then_one_attempt_per_refill() {
        let l = LoginLimiter::new(5, 1000);
        for _ in 0..5 {
            assert!(l.check("admin", A, 0).is_ok());
            l.failed("admin", A, 0);
        }
        let e = l.check("admin", A, 0).unwrap_err();
        assert_eq!(e.by, "user");
        assert_eq!(e.retry_after_secs, 180, "15 minutes / 5");
        // From another address it is the same user: still refused.
        assert!(l.check("admin", B, 0).is_err());
        assert!(l.check("admin", A, 179_000).is_err());
        assert!(l.check("admin", A, 180_000).is_ok());
        // Another user is not affected.
        assert!(l.check("dispatch", A, 0).is_ok());
    }

    #[test]
    fn one_address_spraying_many_names_is_limited_by_address() {
        let l = LoginLimiter::new(5, 20);
        for i in 0..20 {
            let user = format!("user{i}");
            assert!(l.check(&user, A, 0).is_ok());
            l.failed(&user, A, 0);
        }
        let e = l.check("user99", A, 0).unwrap_err();
        assert_eq!(e.by, "address");
        assert!(l.check("user99", B, 0).is_ok());
    }

    #[test]
    fn success_forgives_the_users_failures() {
        let l = LoginLimiter::new(2, 100);
        l.failed("ann", A, 0);
        l.failed("ann", A, 0);
        assert!(l.check("ann", A, 0).is_err());
        l.succeeded("ann");
        assert!(l.check("ann", A, 0).is_ok());
    }

    #[test]
    fn memory_stays_bounded() {
        let mut b: Buckets<u32> = Buckets::new(3);
        for k in 0..(MAX_KEYS as u32 + 10) {
            b.take(&k, 0);
        }
        assert!(b.map.len() <= MAX_KEYS);
    }
}
