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
//!
//! [`Evaluator::step_within`] takes the observations of some stores only (a store's fault
//! looked at as soon as it is reported, or the alerts that are due) and leaves every other
//! store's alerts as they are; a whole-fleet step can leave out stores that were looked at
//! more recently than its own data.

use std::collections::{BTreeSet, HashMap};

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

/// One alert's state and when it was last stepped.
#[derive(Debug, Clone, Copy)]
struct Entry {
    state: State,
    /// The `now` of the last step that looked at the alert.
    stepped: i64,
}

/// Every alert's state.
#[derive(Debug, Clone, Default)]
pub struct Evaluator {
    states: HashMap<AlertKey, Entry>,
}

impl Evaluator {
    /// An evaluator with the alerts that were firing when the controller stopped.
    pub fn restore(firing: impl IntoIterator<Item = (AlertKey, i64, i64)>) -> Evaluator {
        Evaluator {
            states: firing
                .into_iter()
                .map(|(k, since, fired_at)| {
                    let state = State::Firing { since, fired_at };
                    (
                        k,
                        Entry {
                            state,
                            stepped: fired_at,
                        },
                    )
                })
                .collect(),
        }
    }

    /// The state of one alert.
    pub fn state(&self, key: &AlertKey) -> Option<State> {
        self.states.get(key).map(|e| e.state)
    }

    /// Alerts that fired and have not cleared.
    pub fn firing(&self) -> impl Iterator<Item = (&AlertKey, State)> {
        self.states
            .iter()
            .filter(|(_, e)| !matches!(e.state, State::Pending { .. }))
            .map(|(k, e)| (k, e.state))
    }

    /// Takes `obs` (the full set: an alert not in it counts as clear) at `now`; `timing`
    /// gives each rule's timing (an unknown rule's alerts are dropped).
    pub fn step(
        &mut self,
        now: i64,
        obs: &[Observation],
        timing: impl Fn(&str) -> Option<Timing>,
    ) -> Vec<Change> {
        self.step_within(now, obs, timing, |_| true)
    }

    /// [`Evaluator::step`] for the stores `within` accepts only: `obs` is taken as the full
    /// set of those stores' observations (others in it are ignored), and the alerts of
    /// other stores are left as they are.
    pub fn step_within(
        &mut self,
        now: i64,
        obs: &[Observation],
        timing: impl Fn(&str) -> Option<Timing>,
        within: impl Fn(&str) -> bool,
    ) -> Vec<Change> {
        let mut out = Vec::new();
        let mut seen: HashMap<&AlertKey, &Observation> = HashMap::with_capacity(obs.len());
        for o in obs.iter().filter(|o| within(&o.key.store)) {
            seen.insert(&o.key, o);
        }
        // Known alerts first (cleared ones included), then new ones.
        let keys: Vec<AlertKey> = self
            .states
            .keys()
            .filter(|k| within(&k.store))
            .cloned()
            .collect();
        for key in keys {
            let Some(t) = timing(&key.rule) else {
                self.states.remove(&key);
                continue;
            };
            let o = seen.remove(&key);
            let reading = o.map_or(Reading::Clear, |o| o.reading);
            let detail = o.map(|o| o.detail.clone()).unwrap_or_default();
            let state = self.states[&key].state;
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
                Some(state) => {
                    self.states.insert(
                        key,
                        Entry {
                            state,
                            stepped: now,
                        },
                    );
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
            let state = fire_if_due(key, since, now, t, &o.detail, &mut out);
            self.states.insert(
                key.clone(),
                Entry {
                    state,
                    stepped: now,
                },
            );
        }
        out
    }

    /// When `e` can change without new data: its rule's time runs out then, and it was
    /// not looked at since (an alert looked at after its time without changing, one
    /// clearing whose reading went between the thresholds, waits for new data).
    fn due(e: &Entry, t: Timing) -> Option<i64> {
        let at = match e.state {
            State::Pending { since } => since + t.for_ms,
            State::Clearing { clear_since, .. } => clear_since + t.clear_ms,
            State::Firing { .. } => return None,
        };
        (at > e.stepped).then_some(at)
    }

    /// The earliest time an alert can change without new observations.
    pub fn next_due(&self, timing: impl Fn(&str) -> Option<Timing>) -> Option<i64> {
        self.states
            .iter()
            .filter_map(|(k, e)| Evaluator::due(e, timing(&k.rule)?))
            .min()
    }

    /// The stores with an alert that can change at `now` without new observations: what
    /// a step of those stores only must look at.
    pub fn due_stores(
        &self,
        now: i64,
        timing: impl Fn(&str) -> Option<Timing>,
    ) -> BTreeSet<String> {
        self.states
            .iter()
            .filter(|(k, e)| {
                timing(&k.rule)
                    .and_then(|t| Evaluator::due(e, t))
                    .is_some_and(|at| at <= now)
            })
            .map(|(k, _)| k.store.clone())
            .collect()
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
mod tests;
