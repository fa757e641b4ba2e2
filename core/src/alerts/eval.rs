//! The alert state machine: a pure function of observations and time.
//!
//! Each alert is one rule on one subject (a store's gateway or a device). Fed the
//! condition's reading at each evaluation, it goes pending when the condition starts to
//! hold, fires once it has held for the rule's `for_secs` (counted from when the condition
//! began, when the observation knows it), goes clearing when the condition is clear, and
//! clears once it has stayed clear for `clear_after_secs`. A reading between the firing and
//! the clearing threshold changes nothing (hysteresis); a condition that holds again while
//! clearing goes back to firing without a new alert. A subject no longer observed counts as
//! clear. The machine does no I/O: [`Evaluator::step`] returns what fired and cleared, and
//! [`Evaluator::next_due`] when the next change can happen without new data.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// One alert: a rule on a subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AlertKey {
    /// The rule's name.
    pub rule: String,
    /// Store code.
    pub store: String,
    /// Device id, or the agent id for gateway rules.
    pub subject: String,
}

impl AlertKey {
    /// `rule/store/subject`, the ticket dedupe key of this alert.
    pub fn dedupe_key(&self) -> String {
        format!("{}/{}/{}", self.rule, self.store, self.subject)
    }
}

/// What the condition says now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Past the firing threshold.
    Holds,
    /// Past the clearing threshold.
    Clear,
    /// Between the two, or not known now: no change.
    Between,
}

/// One observation of one alert's condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Which alert.
    pub key: AlertKey,
    /// The reading.
    pub reading: Reading,
    /// When the condition began, ms, when known (a device's `down` event time).
    pub since: Option<i64>,
    /// What was seen, for people (`printer-1 is down: paper jam`, `temp_c 9.4`).
    pub detail: String,
}

/// The timing of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Holds this long before firing, ms.
    pub for_ms: i64,
    /// Clear this long before clearing, ms.
    pub clear_ms: i64,
}

/// Where one alert stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// Holding, not long enough yet.
    Pending {
        /// The condition began.
        since: i64,
    },
    /// Fired.
    Firing {
        /// The condition began.
        since: i64,
        /// It fired.
        fired_at: i64,
    },
    /// Fired and now clear, not long enough yet.
    Clearing {
        /// The condition began.
        since: i64,
        /// It fired.
        fired_at: i64,
        /// It became clear.
        clear_since: i64,
    },
}

/// A change the caller acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The alert fired.
    Fired {
        /// Which.
        key: AlertKey,
        /// The condition began, ms.
        since: i64,
        /// Now, ms.
        at: i64,
        /// What was seen.
        detail: String,
    },
    /// The alert cleared.
    Cleared {
        /// Which.
        key: AlertKey,
        /// The condition became clear, ms.
        clear_since: i64,
        /// Now, ms.
        at: i64,
    },
}

/// Every alert's state.
#[derive(Debug, Clone, Default)]
pub struct Evaluator {
    states: HashMap<AlertKey, State>,
}

impl Evaluator {
    /// An evaluator with the alerts that were firing when the controller stopped.
    pub fn restore(firing: impl IntoIterator<Item = (AlertKey, i64, i64)>) -> Evaluator {
        Evaluator {
            states: firing
                .into_iter()
                .map(|(k, since, fired_at)| (k, State::Firing { since, fired_at }))
                .collect(),
        }
    }

    /// The state of one alert.
    pub fn state(&self, key: &AlertKey) -> Option<State> {
        self.states.get(key).copied()
    }

    /// Alerts that fired and have not cleared.
    pub fn firing(&self) -> impl Iterator<Item = (&AlertKey, State)> {
        self.states
            .iter()
            .filter(|(_, s)| !matches!(s, State::Pending { .. }))
            .map(|(k, s)| (k, *s))
    }

    /// Takes `obs` (the full set: an alert not in it counts as clear) at `now`; `timing`
    /// gives each rule's timing (an unknown rule's alerts are dropped).
    pub fn step(
        &mut self,
        now: i64,
        obs: &[Observation],
        timing: impl Fn(&str) -> Option<Timing>,
    ) -> Vec<Change> {
        let mut out = Vec::new();
        let mut seen: HashMap<&AlertKey, &Observation> = HashMap::with_capacity(obs.len());
        for o in obs {
            seen.insert(&o.key, o);
        }
        // Known alerts first (cleared ones included), then new ones.
        let keys: Vec<AlertKey> = self.states.keys().cloned().collect();
        for key in keys {
            let Some(t) = timing(&key.rule) else {
                self.states.remove(&key);
                continue;
            };
            let o = seen.remove(&key);
            let reading = o.map_or(Reading::Clear, |o| o.reading);
            let detail = o.map(|o| o.detail.clone()).unwrap_or_default();
            let state = self.states[&key];
            let next = match (state, reading) {
                (State::Pending { .. }, Reading::Clear) => None,
                (State::Pending { since }, _) => {
                    Some(fire_if_due(&key, since, now, t, &detail, &mut out))
                }
                (State::Firing { .. }, Reading::Holds | Reading::Between)
                | (State::Clearing { .. }, Reading::Between) => Some(state),
                (State::Firing { since, fired_at }, Reading::Clear) => {
                    clear_if_due(&key, since, fired_at, now, now, t, &mut out)
                }
                (
                    State::Clearing {
                        since, fired_at, ..
                    },
                    Reading::Holds,
                ) => Some(State::Firing { since, fired_at }),
                (
                    State::Clearing {
                        since,
                        fired_at,
                        clear_since,
                    },
                    Reading::Clear,
                ) => clear_if_due(&key, since, fired_at, clear_since, now, t, &mut out),
            };
            match next {
                Some(s) => {
                    self.states.insert(key, s);
                }
                None => {
                    self.states.remove(&key);
                }
            }
        }
        for (key, o) in seen {
            if o.reading != Reading::Holds {
                continue;
            }
            let Some(t) = timing(&key.rule) else { continue };
            let since = o.since.unwrap_or(now).min(now);
            let s = fire_if_due(key, since, now, t, &o.detail, &mut out);
            self.states.insert(key.clone(), s);
        }
        out
    }

    /// The earliest time an alert can change without new observations.
    pub fn next_due(&self, timing: impl Fn(&str) -> Option<Timing>) -> Option<i64> {
        self.states
            .iter()
            .filter_map(|(k, s)| {
                let t = timing(&k.rule)?;
                match s {
                    State::Pending { since } => Some(since + t.for_ms),
                    State::Clearing { clear_since, .. } => Some(clear_since + t.clear_ms),
                    State::Firing { .. } => None,
                }
            })
            .min()
    }
}

fn fire_if_due(
    key: &AlertKey,
    since: i64,
    now: i64,
    t: Timing,
    detail: &str,
    out: &mut Vec<Change>,
) -> State {
    if now - since >= t.for_ms {
        out.push(Change::Fired {
            key: key.clone(),
            since,
            at: now,
            detail: detail.to_owned(),
        });
        State::Firing {
            since,
            fired_at: now,
        }
    } else {
        State::Pending { since }
    }
}

fn clear_if_due(
    key: &AlertKey,
    since: i64,
    fired_at: i64,
    clear_since: i64,
    now: i64,
    t: Timing,
    out: &mut Vec<Change>,
) -> Option<State> {
    if now - clear_since >= t.clear_ms {
        out.push(Change::Cleared {
            key: key.clone(),
            clear_since,
            at: now,
        });
        None
    } else {
        Some(State::Clearing {
            since,
            fired_at,
            clear_since,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timing = Timing {
        for_ms: 60_000,
        clear_ms: 30_000,
    };

    fn key() -> AlertKey {
        AlertKey {
            rule: "printer-down".into(),
            store: "S1".into(),
            subject: "printer-1".into(),
        }
    }

    fn obs(reading: Reading, since: Option<i64>) -> Vec<Observation> {
        vec![Observation {
            key: key(),
            reading,
            since,
            detail: "down".into(),
        }]
    }

    #[allow(clippy::unnecessary_wraps)] // the evaluator's signature
    fn timing(_: &str) -> Option<Timing> {
        Some(T)
    }

    fn fired(c: &[Change]) -> usize {
        c.iter()
            .filter(|c| matches!(c, Change::Fired { .. }))
            .count()
    }

    fn cleared(c: &[Change]) -> usize {
        c.iter()
            .filter(|c| matches!(c, Change::Cleared { .. }))
            .count()
    }

    #[test]
    fn an_alert_fires_once_after_its_duration_counted_from_when_the_condition_began() {
        let mut e = Evaluator::default();
        assert!(e
            .step(10_000, &obs(Reading::Holds, Some(0)), timing)
            .is_empty());
        assert_eq!(e.next_due(timing), Some(60_000));
        assert!(e
            .step(59_999, &obs(Reading::Holds, Some(0)), timing)
            .is_empty());
        let c = e.step(60_000, &obs(Reading::Holds, Some(0)), timing);
        assert_eq!(fired(&c), 1);
        assert!(matches!(
            &c[0],
            Change::Fired {
                since: 0,
                at: 60_000,
                ..
            }
        ));
        assert!(e
            .step(120_000, &obs(Reading::Holds, Some(0)), timing)
            .is_empty());
        assert_eq!(e.next_due(timing), None);
    }

    #[test]
    fn a_condition_older_than_the_duration_fires_at_once() {
        let mut e = Evaluator::default();
        let c = e.step(100_000, &obs(Reading::Holds, Some(1_000)), timing);
        assert_eq!(fired(&c), 1);
    }

    #[test]
    fn a_short_blip_never_fires() {
        let mut e = Evaluator::default();
        e.step(0, &obs(Reading::Holds, None), timing);
        assert!(e
            .step(30_000, &obs(Reading::Clear, None), timing)
            .is_empty());
        assert!(e.state(&key()).is_none());
        assert!(e
            .step(90_000, &obs(Reading::Clear, None), timing)
            .is_empty());
    }

    #[test]
    fn clearing_waits_for_the_clear_time_and_a_relapse_does_not_fire_again() {
        let mut e = Evaluator::default();
        e.step(60_000, &obs(Reading::Holds, Some(0)), timing);
        assert!(e
            .step(70_000, &obs(Reading::Clear, None), timing)
            .is_empty());
        assert_eq!(e.next_due(timing), Some(100_000));
        // Holds again while clearing: still the same alert, nothing new.
        assert!(e
            .step(80_000, &obs(Reading::Holds, None), timing)
            .is_empty());
        assert!(matches!(e.state(&key()), Some(State::Firing { .. })));
        e.step(90_000, &obs(Reading::Clear, None), timing);
        let c = e.step(120_000, &obs(Reading::Clear, None), timing);
        assert_eq!(cleared(&c), 1);
        assert!(e.state(&key()).is_none());
    }

    #[test]
    fn a_reading_between_thresholds_changes_nothing() {
        let mut e = Evaluator::default();
        e.step(60_000, &obs(Reading::Holds, Some(0)), timing);
        for t in [70_000, 200_000, 900_000] {
            assert!(e.step(t, &obs(Reading::Between, None), timing).is_empty());
        }
        assert!(matches!(e.state(&key()), Some(State::Firing { .. })));
        // Pending stays pending too.
        let mut p = Evaluator::default();
        p.step(0, &obs(Reading::Holds, None), timing);
        p.step(10_000, &obs(Reading::Between, None), timing);
        assert_eq!(p.state(&key()), Some(State::Pending { since: 0 }));
    }

    #[test]
    fn a_subject_no_longer_observed_counts_as_clear() {
        let mut e = Evaluator::default();
        e.step(60_000, &obs(Reading::Holds, Some(0)), timing);
        e.step(61_000, &[], timing);
        let c = e.step(91_000, &[], timing);
        assert_eq!(cleared(&c), 1);
    }

    #[test]
    fn restored_alerts_do_not_fire_again_and_unknown_rules_are_dropped() {
        let mut e = Evaluator::restore([(key(), 0, 60_000)]);
        assert!(e
            .step(100_000, &obs(Reading::Holds, Some(0)), timing)
            .is_empty());
        let c = e.step(100_000, &obs(Reading::Holds, Some(0)), |_| None);
        assert!(c.is_empty());
        assert!(e.state(&key()).is_none());
    }

    #[test]
    fn zero_durations_fire_and_clear_in_one_step() {
        let t0 = |_: &str| {
            Some(Timing {
                for_ms: 0,
                clear_ms: 0,
            })
        };
        let mut e = Evaluator::default();
        assert_eq!(fired(&e.step(5, &obs(Reading::Holds, None), t0)), 1);
        assert_eq!(cleared(&e.step(6, &obs(Reading::Clear, None), t0)), 1);
    }

    #[test]
    fn random_readings_keep_fired_and_cleared_alternating() {
        use rand::{Rng as _, SeedableRng as _};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut e = Evaluator::default();
        let mut open = false;
        let mut now = 0;
        for _ in 0..20_000 {
            now += rng.random_range(0..20_000);
            let r = match rng.random_range(0..3) {
                0 => Reading::Holds,
                1 => Reading::Clear,
                _ => Reading::Between,
            };
            for c in e.step(now, &obs(r, None), timing) {
                match c {
                    Change::Fired { .. } => {
                        assert!(!open, "fired twice without clearing");
                        open = true;
                    }
                    Change::Cleared { .. } => {
                        assert!(open, "cleared without firing");
                        open = false;
                    }
                }
            }
            assert_eq!(open, e.firing().next().is_some());
        }
    }
}
