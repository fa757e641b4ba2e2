//! Ingest counters, exported on `/metrics` as `storefleet_controller_ingest_*`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use super::lane::Lane;
use super::write::Outcome;

/// Ingest counters.
#[derive(Debug, Default)]
pub struct Stats {
    /// Each lane's connection ([`Lane::ALL`] order).
    connected: [AtomicBool; 2],
    disconnects: AtomicU64,
    stored: AtomicU64,
    duplicates: AtomicU64,
    points: AtomicU64,
    batches: AtomicU64,
    write_failures: AtomicU64,
    held: AtomicU64,
    stale_inventories: AtomicU64,
    /// How far behind the agents the last batch with live telemetry was, ms, and when it
    /// was stored ([`super::behind`]).
    behind_ms: AtomicI64,
    behind_at: AtomicI64,
    rejected: Mutex<BTreeMap<&'static str, u64>>,
}

impl Stats {
    /// Records a lane's connection state; true when it changed.
    pub fn set_connected(&self, lane: Lane, up: bool) -> bool {
        let changed = self.connected[lane as usize].swap(up, Ordering::Relaxed) != up;
        if changed && !up {
            self.disconnects.fetch_add(1, Ordering::Relaxed);
        }
        changed
    }

    /// Whether ingest is connected to the broker (every lane).
    pub fn connected(&self) -> bool {
        self.connected.iter().all(|c| c.load(Ordering::Relaxed))
    }

    /// Counts a message refused for `label`.
    pub fn rejected(&self, label: &'static str) {
        if let Ok(mut m) = self.rejected.lock() {
            *m.entry(label).or_default() += 1;
        }
    }

    /// Counts a stored batch.
    pub fn stored(&self, o: &Outcome) {
        self.stored.fetch_add(o.stored, Ordering::Relaxed);
        self.duplicates.fetch_add(o.duplicates, Ordering::Relaxed);
        self.points.fetch_add(o.points, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.stale_inventories
            .fetch_add(o.stale_inventories, Ordering::Relaxed);
    }

    /// Records how far behind the agents a batch stored at `now` was.
    pub fn measured_behind(&self, behind_ms: i64, now: i64) {
        self.behind_ms.store(behind_ms, Ordering::Relaxed);
        self.behind_at.store(now, Ordering::Relaxed);
    }

    /// How far behind ingest is at `now`, ms: the last batch's figure, or 0 when no live
    /// telemetry was stored for a while (nothing waits).
    pub fn behind(&self, now: i64) -> i64 {
        if now - self.behind_at.load(Ordering::Relaxed) > super::behind::FORGET_MS / 2 {
            0
        } else {
            self.behind_ms.load(Ordering::Relaxed)
        }
    }

    /// Counts a message held apart, its data refused by the database.
    pub fn held(&self) {
        self.held.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a failed batch write.
    pub fn write_failed(&self) {
        self.write_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Messages stored so far.
    pub fn stored_total(&self) -> u64 {
        self.stored.load(Ordering::Relaxed)
    }

    /// Prometheus text.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(out, "# TYPE storefleet_controller_ingest_connected gauge\nstorefleet_controller_ingest_connected {}", u8::from(self.connected()));
        let behind = self.behind(storefleet_protocol::now_ms()) as f64 / 1000.0;
        let _ = writeln!(out, "# TYPE storefleet_controller_ingest_behind_seconds gauge\nstorefleet_controller_ingest_behind_seconds {behind}");
        for (name, v) in [
            ("disconnects_total", g(&self.disconnects)),
            ("messages_stored_total", g(&self.stored)),
            ("messages_duplicate_total", g(&self.duplicates)),
            ("points_stored_total", g(&self.points)),
            ("batches_total", g(&self.batches)),
            ("write_failures_total", g(&self.write_failures)),
            ("messages_held_total", g(&self.held)),
            ("inventories_stale_total", g(&self.stale_inventories)),
        ] {
            let _ = writeln!(out, "# TYPE storefleet_controller_ingest_{name} counter\nstorefleet_controller_ingest_{name} {v}");
        }
        let _ = writeln!(
            out,
            "# TYPE storefleet_controller_ingest_messages_rejected_total counter"
        );
        if let Ok(m) = self.rejected.lock() {
            for (label, v) in m.iter() {
                let _ = writeln!(out, "storefleet_controller_ingest_messages_rejected_total{{reason=\"{label}\"}} {v}");
            }
        }
    }
}
