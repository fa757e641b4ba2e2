//! The agent's own health: counters and gauges shared by every part of the agent.
//!
//! Each counter is one atomic, bumped where the thing happens. The same numbers are served
//! as Prometheus text on the loopback endpoint ([`Health::render_prometheus`]) and sent as
//! telemetry under the `agent.` prefix ([`Health::as_points`]).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

macro_rules! health {
    ($( $(#[doc = $doc:literal])* $kind:ident $name:ident ),* $(,)?) => {
        /// Counters and gauges of the running agent.
        #[derive(Debug, Default)]
        pub struct Health {
            $( $(#[doc = $doc])* pub $name: AtomicU64, )*
            /// Timestamp (ms) of the oldest record still buffered; 0 when empty.
            pub oldest_record_ms: AtomicI64,
        }

        impl Health {
            fn entries(&self) -> Vec<(&'static str, &'static str, &'static str, u64)> {
                vec![$( (stringify!($name), stringify!($kind), concat!($($doc),*), self.$name.load(Ordering::Relaxed)), )*]
            }
        }
    };
}

health! {
    /// Points accepted into the buffer.
    counter points_ingested,
    /// Events and command results accepted into the buffer.
    counter events_ingested,
    /// Requests refused because the event quota was full (HTTP 503).
    counter events_refused_full,
    /// Ingest requests refused as malformed or too large (HTTP 4xx).
    counter ingest_rejected,
    /// Raw or aggregate points folded into coarser aggregates to stay under the quota.
    counter points_downsampled,
    /// Aggregate points made by downsampling.
    counter aggregates_created,
    /// Points evicted (oldest first) to stay under the quota.
    counter points_evicted,
    /// Messages published to the broker (including retransmissions).
    counter messages_published,
    /// Messages acknowledged by the broker (PUBACK) and removed from the buffer.
    counter messages_acked,
    /// Points acknowledged by the broker and removed from the buffer.
    counter points_acked,
    /// Connections made to the broker after the first.
    counter reconnects,
    /// Failed connection attempts.
    counter connect_failures,
    /// Commands executed.
    counter commands_executed,
    /// Commands refused: failed verification, replayed, expired or unknown action.
    counter commands_refused,
    /// Buffer databases found corrupt, moved aside and replaced.
    counter buffer_corruptions,
    /// Routine runs recorded (including skipped ones).
    counter routine_runs,
    /// Routine runs that failed or escalated.
    counter routine_escalations,
    /// Routines refused: a forged or modified document, an action the config does not
    /// allow, a bad argument.
    counter routines_refused,
    /// Config changes from the controller refused: a section `controller.remote_config`
    /// does not allow, a bad name or not TOML.
    counter config_changes_refused,
    /// Points in the buffer.
    gauge buffer_points,
    /// Events and command results in the buffer.
    gauge buffer_events,
    /// Sealed messages waiting for a PUBACK.
    gauge buffer_outbox,
    /// Bytes of the buffer database in use.
    gauge buffer_used_bytes,
    /// 1 while connected to the broker.
    gauge connected,
}

impl Health {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets a gauge.
    pub fn set(gauge: &AtomicU64, v: u64) {
        gauge.store(v, Ordering::Relaxed);
    }

    /// Age in seconds of the oldest buffered record, 0 when the buffer is empty.
    pub fn oldest_age_secs(&self, now_ms: i64) -> f64 {
        match self.oldest_record_ms.load(Ordering::Relaxed) {
            0 => 0.0,
            t => ((now_ms - t).max(0) as f64) / 1000.0,
        }
    }

    /// Prometheus text exposition (version 0.0.4).
    pub fn render_prometheus(&self, now_ms: i64) -> String {
        let mut out = String::with_capacity(4096);
        for (name, kind, help, value) in self.entries() {
            let full = if kind == "counter" {
                format!("storefleet_agent_{name}_total")
            } else {
                format!("storefleet_agent_{name}")
            };
            let _ = writeln!(out, "# HELP {full} {}", help.trim());
            let _ = writeln!(out, "# TYPE {full} {kind}");
            let _ = writeln!(out, "{full} {value}");
        }
        let _ = writeln!(
            out,
            "# HELP storefleet_agent_buffer_oldest_age_seconds Age of the oldest buffered record.\n\
             # TYPE storefleet_agent_buffer_oldest_age_seconds gauge\n\
             storefleet_agent_buffer_oldest_age_seconds {}",
            self.oldest_age_secs(now_ms)
        );
        out
    }

    /// The same numbers as `(metric, value)` pairs for telemetry, named `agent.<name>`.
    pub fn as_points(&self, now_ms: i64) -> Vec<(String, f64)> {
        let mut v: Vec<(String, f64)> = self
            .entries()
            .into_iter()
            .map(|(name, _, _, value)| (format!("agent.{name}"), value as f64))
            .collect();
        v.push((
            "agent.buffer_oldest_age_s".into(),
            self.oldest_age_secs(now_ms),
        ));
        v
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // exact values are the point of these tests
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_names_counters_and_gauges() {
        let h = Health::default();
        Health::add(&h.points_ingested, 5);
        Health::set(&h.buffer_points, 7);
        let text = h.render_prometheus(0);
        assert!(text.contains("# TYPE storefleet_agent_points_ingested_total counter"));
        assert!(text.contains("storefleet_agent_points_ingested_total 5\n"));
        assert!(text.contains("storefleet_agent_buffer_points 7\n"));
        assert!(text.contains("# HELP storefleet_agent_points_evicted_total Points evicted"));
    }

    #[test]
    fn oldest_age_is_zero_when_empty() {
        let h = Health::default();
        assert_eq!(h.oldest_age_secs(10_000), 0.0);
        h.oldest_record_ms.store(4_000, Ordering::Relaxed);
        assert_eq!(h.oldest_age_secs(10_000), 6.0);
    }
}
