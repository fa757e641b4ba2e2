//! What starts routines by themselves: cron schedules in the store's time zone, and
//! conditions on the latest readings that hold for a while. [`Due`] decides from a clock it
//! is given (tests drive it with their own); [`run`] ticks it every second and starts the
//! runs it names.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use storefleet_protocol::routine::Trigger;
use tokio_util::sync::CancellationToken;

use super::doc::{cron, Routine};
use super::runner::{RunError, Runner};
use crate::latest::Latest;

/// A reading older than this never makes a condition hold (a device that stopped
/// reporting is the staleness check's business, not a routine's).
pub const MAX_READING_AGE_MS: i64 = 120_000;

#[derive(Debug, Default, Clone)]
struct CondState {
    since: Option<i64>,
    fired_at: Option<i64>,
    fired_this_episode: bool,
}

/// Trigger bookkeeping across ticks.
#[derive(Debug, Default)]
pub struct Due {
    schedules: HashMap<String, jiff_cron::Schedule>,
    next_cron: HashMap<(String, usize), Timestamp>,
    conditions: HashMap<(String, usize), CondState>,
}

impl Due {
    /// The routines to start at `now`: name and trigger.
    pub fn tick(
        &mut self,
        routines: &[&Routine],
        tz: &TimeZone,
        now: Timestamp,
        latest: &Latest,
    ) -> Vec<(String, Trigger)> {
        let mut out = Vec::new();
        let now_ms = now.as_millisecond();
        for r in routines {
            for (i, expr) in r.triggers.cron.iter().enumerate() {
                // Parsed once per expression, not on every tick.
                if !self.schedules.contains_key(expr) {
                    let Ok(parsed) = cron(expr) else { continue };
                    self.schedules.insert(expr.clone(), parsed);
                }
                let schedule = &self.schedules[expr];
                let key = (r.name.clone(), i);
                let next = |after: Timestamp| {
                    schedule
                        .after(after.to_zoned(tz.clone()))
                        .next()
                        .map(|z| z.timestamp())
                };
                match self.next_cron.get(&key).copied() {
                    None => {
                        if let Some(n) = next(now) {
                            self.next_cron.insert(key, n);
                        }
                    }
                    Some(at) if at <= now => {
                        out.push((r.name.clone(), Trigger::Schedule { cron: expr.clone() }));
                        match next(now) {
                            Some(n) => self.next_cron.insert(key, n),
                            None => self.next_cron.remove(&key),
                        };
                    }
                    Some(_) => {}
                }
            }
            for (i, c) in r.triggers.condition.iter().enumerate() {
                let (metric, _, _) = c.metric();
                let holds = latest
                    .get(c.device.as_deref(), metric)
                    .is_some_and(|(t, v)| now_ms - t <= MAX_READING_AGE_MS && c.holds(v));
                let st = self.conditions.entry((r.name.clone(), i)).or_default();
                if !holds {
                    st.since = None;
                    st.fired_this_episode = false;
                    continue;
                }
                let since = *st.since.get_or_insert(now_ms);
                let held_ms = now_ms - since;
                let cooled = st
                    .fired_at
                    .is_none_or(|f| now_ms - f >= c.cooldown_secs as i64 * 1000);
                if held_ms >= c.for_secs as i64 * 1000 && !st.fired_this_episode && cooled {
                    st.fired_at = Some(now_ms);
                    st.fired_this_episode = true;
                    out.push((
                        r.name.clone(),
                        Trigger::Condition {
                            detail: format!("{} for {} s", c.describe(), held_ms / 1000),
                        },
                    ));
                }
            }
        }
        out
    }
}

/// A fresh run id for a run the agent starts itself.
pub fn run_id() -> String {
    format!("r-{:016x}", rand::random::<u64>())
}

/// Ticks the triggers every second until `stop`; each due routine runs in its own task.
pub async fn run(runner: Runner, tz: TimeZone, latest: Arc<Latest>, stop: CancellationToken) {
    let mut due = Due::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let prepared = runner.list();
        let routines: Vec<&Routine> = prepared.iter().map(|p| &p.routine).collect();
        for (name, trigger) in due.tick(&routines, &tz, Timestamp::now(), &latest) {
            let Some(p) = runner.get(&name) else { continue };
            let r = runner.clone();
            runner.spawn(async move {
                match r.run(p, run_id(), trigger, false).await {
                    Ok(_) => {}
                    Err(RunError::Busy(n)) => {
                        tracing::debug!(routine = %n, "Trigger fired while the routine runs; not started twice");
                    }
                    Err(e) => tracing::warn!(error = %e, "Triggered routine not started"),
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::SeriesIn;

    fn routine(triggers: &str) -> Routine {
        Routine::parse(
            &format!(
                "name = \"t\"\nversion = 1\n{triggers}\n[[steps]]\nkind = \"check\"\nname = \"c\"\naction = \"disk.check\"\n"
            ),
            "test",
        )
        .unwrap()
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn cron_fires_once_per_occurrence_in_the_store_zone() {
        let r = routine("[triggers]\ncron = [\"30 2 * * *\"]");
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let latest = Latest::default();
        let mut due = Due::default();
        // 01:00 UTC = 02:00 Berlin (winter): the next occurrence is 01:30 UTC.
        assert!(due
            .tick(&[&r], &tz, at("2026-11-22T01:00:00Z"), &latest)
            .is_empty());
        assert!(due
            .tick(&[&r], &tz, at("2026-11-22T01:29:59Z"), &latest)
            .is_empty());
        let fired = due.tick(&[&r], &tz, at("2026-11-22T01:30:00Z"), &latest);
        assert_eq!(fired.len(), 1);
        assert!(matches!(&fired[0].1, Trigger::Schedule { cron } if cron == "30 2 * * *"));
        assert!(due
            .tick(&[&r], &tz, at("2026-11-22T01:30:01Z"), &latest)
            .is_empty());
        assert_eq!(
            due.tick(&[&r], &tz, at("2026-11-23T01:30:00Z"), &latest)
                .len(),
            1
        );
    }

    #[test]
    fn a_condition_fires_after_holding_and_once_per_episode() {
        let r = routine(
            "[[triggers.condition]]\ndevice = \"printer-1\"\nstate = \"down\"\nfor_secs = 120\ncooldown_secs = 600",
        );
        let tz = TimeZone::UTC;
        let latest = Latest::default();
        let mut due = Due::default();
        let t0 = at("2026-11-22T07:00:00Z");
        let up = |ms: i64| {
            latest.record(&[SeriesIn {
                device: Some("printer-1".into()),
                metric: "probe.up".into(),
                points: vec![(t0.as_millisecond() + ms, if ms < 0 { 1.0 } else { 0.0 })],
            }]);
        };
        let tick = |due: &mut Due, secs: i64| {
            due.tick(
                &[&r],
                &tz,
                t0 + jiff::SignedDuration::from_secs(secs),
                &latest,
            )
        };
        up(-1000);
        assert!(tick(&mut due, 0).is_empty(), "up: nothing");
        for s in (0..=110).step_by(10) {
            up(s * 1000);
            assert!(tick(&mut due, s).is_empty(), "down for {s} s only");
        }
        up(120_000);
        let fired = tick(&mut due, 120);
        assert_eq!(fired.len(), 1);
        assert!(
            matches!(&fired[0].1, Trigger::Condition { detail } if detail.contains("printer-1 down for 120 s"))
        );
        up(130_000);
        assert!(tick(&mut due, 130).is_empty(), "once per episode");
        // Stale readings do not hold.
        assert!(tick(&mut due, 130 + 121).is_empty());
        // A new episode: it holds long enough at 420 s, but the cooldown from the run at
        // 120 s lasts until 720 s.
        for s in (300..=740).step_by(10) {
            up(s * 1000);
            let fired = tick(&mut due, s);
            assert_eq!(fired.len(), usize::from(s == 720), "at {s} s");
        }
    }
}
