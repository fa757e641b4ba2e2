//! Reading each rule's condition from the database: presence for gateways, the devices'
//! reported state and staleness, the newest value of each series, recent events.
//!
//! One [`Snapshot`] per evaluation (a handful of queries over the whole fleet, no query per
//! store); [`observe`] turns it into observations for the rules, a pure step.

use std::collections::{BTreeSet, HashSet};

use storefleet_storage::{Sql, SqlExt as _, Value};

use super::eval::{AlertKey, Observation, Reading};
use super::{Condition, Rule};
use crate::agents::Agent;
use crate::db::DbError;
use crate::fleet::{self, DeviceState, Rules};

/// A metric reading older than this neither fires nor clears an alert (the device is
/// stale, which its own rule says).
pub const MAX_READING_AGE_MS: i64 = 15 * 60_000;

/// The newest value of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Latest {
    /// Store.
    pub store: String,
    /// Device; empty for the gateway.
    pub device: String,
    /// The device's class (`gateway` for the gateway).
    pub class: String,
    /// Metric.
    pub metric: String,
    /// When, ms.
    pub t: i64,
    /// Value.
    pub v: f64,
}

/// A recent event.
#[derive(Debug, Clone, PartialEq)]
pub struct RecentEvent {
    /// Store.
    pub store: String,
    /// Device; empty for the gateway.
    pub device: String,
    /// Code.
    pub code: String,
    /// When, ms.
    pub ts: i64,
    /// Message.
    pub message: String,
}

/// What the rules look at, read in one go: only the fleet's exceptions (agents offline,
/// devices down or stale, readings not clear of a threshold, recent events of watched
/// codes). An alert whose subject is not listed counts as clear, so a healthy store costs
/// the database a scan and the engine nothing; the cost of a pass follows the number of
/// problems, not the size of the fleet.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Now, ms.
    pub now: i64,
    /// Agents judged offline.
    pub agents: Vec<Agent>,
    /// Devices down or stale.
    pub devices: Vec<DeviceState>,
    /// Newest values, of the metrics some rule watches, that are not clear of its
    /// threshold.
    pub latest: Vec<Latest>,
    /// Events with codes some rule watches, within the longest hold.
    pub events: Vec<RecentEvent>,
}

/// The values of a metric that are not clear for a rule: at least the clearing threshold
/// of `above`, at most that of `below`.
fn not_clear(when: &Condition) -> Option<(&str, Option<f64>, Option<f64>)> {
    match when {
        Condition::Metric {
            metric,
            above,
            below,
            clear_below,
            clear_above,
            ..
        } => Some((
            metric.as_str(),
            above.map(|a| clear_below.unwrap_or(a)),
            below.map(|b| clear_above.unwrap_or(b)),
        )),
        _ => None,
    }
}

/// Reads what `rules` need at `at.now`, over the whole fleet.
pub fn snapshot(c: &dyn Sql, rules: &[Rule], at: &Rules) -> Result<Snapshot, DbError> {
    let mut snap = Snapshot {
        now: at.now,
        agents: at.judge().offline(c)?,
        devices: fleet::troubled_devices(c, at)?,
        ..Snapshot::default()
    };
    readings(c, rules, at, None, &mut snap)?;
    Ok(snap)
}

/// [`snapshot`] of `stores` only, store by store, each read by its index: what the ticket
/// engine reads for a store that reported a fault, or whose alert is due, without reading
/// the fleet. It lists every agent and device of those stores, healthy ones too, which
/// [`observe`] tells apart.
pub fn snapshot_of(
    c: &dyn Sql,
    rules: &[Rule],
    at: &Rules,
    stores: &BTreeSet<String>,
) -> Result<Snapshot, DbError> {
    let mut snap = Snapshot {
        now: at.now,
        ..Snapshot::default()
    };
    let judge = at.judge();
    for store in stores {
        snap.agents.extend(judge.list(c, Some(store))?);
        snap.devices.extend(fleet::devices(c, Some(store), at)?);
        readings(c, rules, at, Some(store), &mut snap)?;
    }
    Ok(snap)
}

/// Adds the newest values that are not clear and the recent events that `rules` watch, of
/// the fleet or of one `store`.
fn readings(
    c: &dyn Sql,
    rules: &[Rule],
    at: &Rules,
    store: Option<&str>,
    snap: &mut Snapshot,
) -> Result<(), DbError> {
    // One statement shape for the fleet, one for a store (by its index); never a condition
    // that leaves the planner to guess which.
    let of_store = |table: &str, n: usize| {
        store.map_or(String::new(), |_| format!(" AND {table}store_code = ?{n}"))
    };
    let with_store = |mut a: Vec<Value>| {
        a.extend(store.map(Value::from));
        a
    };
    let mut seen: HashSet<(String, String, String)> = HashSet::new();
    for (m, at_least, at_most) in rules.iter().filter_map(|r| not_clear(&r.when)) {
        let rows = c.all(
            // The class per row found (by the devices' key), not by a join: a join makes
            // PostgreSQL hash the whole devices table on every evaluation.
            &format!(
                "SELECT s.store_code, s.device, s.last_t, s.last_v,
                    COALESCE((SELECT d.class FROM devices d
                              WHERE d.store_code = s.store_code AND d.device = s.device), '') AS class
                 FROM series s
                 WHERE s.metric = ?1 AND s.last_t >= ?2
                   AND (CAST(?3 AS DOUBLE PRECISION) IS NULL OR s.last_v >= ?3)
                   AND (CAST(?4 AS DOUBLE PRECISION) IS NULL OR s.last_v <= ?4){}",
                of_store("s.", 5)
            ),
            &with_store(vec![
                m.into(),
                (at.now - MAX_READING_AGE_MS).into(),
                at_least.into(),
                at_most.into(),
            ]),
            |r| {
                let device = r.text("device")?;
                let class = r.text("class")?;
                Ok(Latest {
                    store: r.text("store_code")?,
                    class: if device.is_empty() {
                        "gateway".into()
                    } else {
                        class
                    },
                    device,
                    metric: m.to_owned(),
                    t: r.i64("last_t")?,
                    v: r.f64("last_v")?,
                })
            },
        )?;
        for l in rows {
            if seen.insert((l.store.clone(), l.device.clone(), l.metric.clone())) {
                snap.latest.push(l);
            }
        }
    }
    for r in rules {
        if let Condition::Event { codes, hold_secs } = &r.when {
            let from = at.now - (*hold_secs as i64) * 1000;
            for code in codes {
                snap.events.extend(c.all(
                    &format!(
                        "SELECT store_code, device, ts, message FROM events
                         WHERE code = ?1 AND ts >= ?2{} ORDER BY ts",
                        of_store("", 3)
                    ),
                    &with_store(vec![code.as_str().into(), from.into()]),
                    |row| {
                        Ok(RecentEvent {
                            store: row.text("store_code")?,
                            device: row.text("device")?,
                            code: code.clone(),
                            ts: row.i64("ts")?,
                            message: row.text("message")?,
                        })
                    },
                )?);
            }
        }
    }
    Ok(())
}

fn class_matches(want: Option<&String>, class: &str) -> bool {
    want.is_none_or(|w| w == class)
}

/// The observations of every rule in `snap`. Only what holds, or could clear an alert, is
/// listed; an alert missing from the list counts as clear.
pub fn observe(rules: &[Rule], snap: &Snapshot) -> Vec<Observation> {
    // Classes with a stale rule of their own: the generic stale rule leaves them alone.
    let stale_classes: HashSet<&str> = rules
        .iter()
        .filter_map(|r| match &r.when {
            Condition::DeviceStale { class: Some(c) } => Some(c.as_str()),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    let key = |r: &Rule, store: &str, subject: &str| AlertKey {
        rule: r.name.clone(),
        store: store.to_owned(),
        subject: subject.to_owned(),
    };
    for r in rules {
        match &r.when {
            Condition::GatewayOffline => {
                for a in snap.agents.iter().filter(|a| a.revoked_at.is_none()) {
                    if !a.online && a.last_seen.is_some() {
                        out.push(Observation {
                            key: key(r, &a.store, &a.id),
                            reading: Reading::Holds,
                            since: a.last_seen.max(if a.presence == "offline" {
                                a.presence_at
                            } else {
                                None
                            }),
                            detail: format!(
                                "gateway {} ({}) offline: {}",
                                a.hostname,
                                a.id,
                                if a.presence == "offline" {
                                    "it said so (last will or shutdown)"
                                } else {
                                    "not heard from"
                                }
                            ),
                        });
                    }
                }
            }
            Condition::DeviceDown { class } => {
                for d in &snap.devices {
                    if d.state == "down" && class_matches(class.as_ref(), &d.class) {
                        out.push(Observation {
                            key: key(r, &d.store, &d.device),
                            reading: Reading::Holds,
                            since: d.state_at,
                            detail: if d.note.is_empty() {
                                format!("{} is down", d.device)
                            } else {
                                d.note.clone()
                            },
                        });
                    }
                }
            }
            Condition::DeviceStale { class } => {
                for d in &snap.devices {
                    let covered = class.is_none() && stale_classes.contains(d.class.as_str());
                    if d.stale && !covered && class_matches(class.as_ref(), &d.class) {
                        out.push(Observation {
                            key: key(r, &d.store, &d.device),
                            reading: Reading::Holds,
                            // The fault began when the data stopped.
                            since: d.last_seen,
                            detail: format!(
                                "{} sent no data for more than {} s",
                                d.device,
                                d.interval_ms / 1000
                            ),
                        });
                    }
                }
            }
            Condition::Metric {
                metric,
                class,
                above,
                below,
                clear_below,
                clear_above,
            } => {
                for l in snap.latest.iter().filter(|l| &l.metric == metric) {
                    if !class_matches(class.as_ref(), &l.class) {
                        continue;
                    }
                    let holds = above.is_none_or(|a| l.v > a) && below.is_none_or(|b| l.v < b);
                    let clear = above.is_some_and(|a| l.v < clear_below.unwrap_or(a))
                        || below.is_some_and(|b| l.v > clear_above.unwrap_or(b));
                    let reading = if holds {
                        Reading::Holds
                    } else if clear {
                        Reading::Clear
                    } else {
                        Reading::Between
                    };
                    let subject = if l.device.is_empty() {
                        "gateway"
                    } else {
                        &l.device
                    };
                    out.push(Observation {
                        key: key(r, &l.store, subject),
                        reading,
                        since: Some(l.t),
                        detail: format!("{subject} {metric} = {}", crate::fmt::num(l.v)),
                    });
                }
            }
            Condition::Event { codes, .. } => {
                for e in snap.events.iter().filter(|e| codes.contains(&e.code)) {
                    let subject = if e.device.is_empty() {
                        "gateway"
                    } else {
                        &e.device
                    };
                    // The newest event of a subject wins (events come oldest first).
                    let k = key(r, &e.store, subject);
                    out.retain(|o: &Observation| o.key != k);
                    out.push(Observation {
                        key: k,
                        reading: Reading::Holds,
                        since: Some(e.ts),
                        detail: if e.message.is_empty() {
                            e.code.clone()
                        } else {
                            e.message.clone()
                        },
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(store: &str, id: &str, class: &str, state: &str, stale: bool) -> DeviceState {
        DeviceState {
            store: store.into(),
            device: id.into(),
            class: class.into(),
            agent_id: "a".into(),
            last_seen: Some(1_000),
            interval_ms: 10_000,
            state: state.into(),
            state_at: Some(500),
            note: format!("{id} is {state}"),
            stale,
        }
    }

    fn latest(store: &str, device: &str, class: &str, metric: &str, v: f64) -> Latest {
        Latest {
            store: store.into(),
            device: device.into(),
            class: class.into(),
            metric: metric.into(),
            t: 900,
            v,
        }
    }

    #[test]
    fn device_rules_match_their_class_and_stale_yields_to_a_class_rule() {
        let rules = super::super::builtin();
        let snap = Snapshot {
            now: 2_000,
            devices: vec![
                device("S1", "printer-1", "receipt-printer", "down", false),
                device("S1", "pos-1", "pos", "up", true),
                device("S1", "scale-1", "scale", "up", true),
            ],
            ..Snapshot::default()
        };
        let obs = observe(&rules, &snap);
        let keys: Vec<String> = obs.iter().map(|o| o.key.dedupe_key()).collect();
        assert!(keys.contains(&"printer-down/S1/printer-1".to_owned()));
        assert!(keys.contains(&"pos-service-down/S1/pos-1".to_owned()));
        assert!(keys.contains(&"device-stale/S1/scale-1".to_owned()));
        assert!(
            !keys.contains(&"device-stale/S1/pos-1".to_owned()),
            "{keys:?}"
        );
        let printer = obs.iter().find(|o| o.key.subject == "printer-1").unwrap();
        assert_eq!(printer.since, Some(500));
    }

    #[test]
    fn metric_thresholds_have_hysteresis() {
        let rules = super::super::builtin();
        let reading = |v: f64| {
            let snap = Snapshot {
                now: 1_000,
                latest: vec![latest("S1", "fridge-1", "fridge-sensor", "temp_c", v)],
                ..Snapshot::default()
            };
            observe(&rules, &snap)
                .into_iter()
                .find(|o| o.key.rule == "fridge-too-warm")
                .unwrap()
                .reading
        };
        assert_eq!(reading(9.0), Reading::Holds);
        assert_eq!(reading(7.0), Reading::Between);
        assert_eq!(reading(5.0), Reading::Clear);
        // Another class's temp_c is not a fridge.
        let snap = Snapshot {
            latest: vec![latest("S1", "sign-1", "signage", "temp_c", 40.0)],
            ..Snapshot::default()
        };
        assert!(observe(&rules, &snap).is_empty());
    }

    #[test]
    fn the_newest_event_of_a_subject_is_the_observation() {
        let rules = super::super::builtin();
        let ev = |ts: i64, msg: &str| RecentEvent {
            store: "S1".into(),
            device: "printer-1".into(),
            code: "routine.escalated".into(),
            ts,
            message: msg.into(),
        };
        let snap = Snapshot {
            events: vec![ev(1, "first"), ev(2, "second")],
            ..Snapshot::default()
        };
        let obs = observe(&rules, &snap);
        assert_eq!(obs.len(), 1);
        assert_eq!(obs[0].detail, "second");
        assert_eq!(obs[0].since, Some(2));
    }
}
