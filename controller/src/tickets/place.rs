//! What a firing alert becomes: muted, waiting for its self-heal, attached to a ticket,
//! reopening one, or a new ticket. Pure functions over what the engine read.

use serde::{Deserialize, Serialize};

use crate::alerts::eval::AlertKey;
use crate::alerts::Rule;

/// A ticket as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brief {
    /// Id.
    pub id: i64,
    /// Dedupe key of the alert that opened it.
    pub dedupe_key: String,
    /// Store.
    pub store: String,
    /// Opened, ms.
    pub opened_at: i64,
    /// Still open.
    pub open: bool,
    /// Resolved at, ms (for reopening).
    pub resolved_at: Option<i64>,
    /// Other device alerts of the store may join it (not a store ticket for an offline
    /// gateway, not a ticket a person opened).
    pub groupable: bool,
}

/// Where an alert goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Onto this open ticket.
    Attach(i64),
    /// This resolved ticket opens again.
    Reopen(i64),
    /// A new ticket.
    Open,
}

/// Windows that placement uses, ms.
#[derive(Debug, Clone, Copy)]
pub struct Windows {
    /// A recurrence resolved within this long reopens the old ticket.
    pub reopen_ms: i64,
    /// Device alerts of one store within this long of a ticket's opening join it.
    pub group_ms: i64,
}

/// Where the alert `key` of `rule` goes, given the store's tickets.
pub fn place(key: &AlertKey, rule: &Rule, tickets: &[Brief], w: Windows, now: i64) -> Placement {
    let dk = key.dedupe_key();
    if let Some(t) = tickets.iter().find(|t| t.open && t.dedupe_key == dk) {
        return Placement::Attach(t.id);
    }
    if let Some(t) = tickets
        .iter()
        .filter(|t| !t.open && t.dedupe_key == dk)
        .filter(|t| t.resolved_at.is_some_and(|r| now - r <= w.reopen_ms))
        .max_by_key(|t| t.resolved_at)
    {
        return Placement::Reopen(t.id);
    }
    if !rule.is_gateway_offline() {
        if let Some(t) = tickets
            .iter()
            .filter(|t| t.open && t.groupable && t.store == key.store)
            .filter(|t| now - t.opened_at <= w.group_ms)
            .min_by_key(|t| t.opened_at)
        {
            return Placement::Attach(t.id);
        }
    }
    Placement::Open
}

/// A silence or maintenance window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// Id.
    pub id: i64,
    /// Store.
    pub store: String,
    /// Only this device (or agent); `None`: the whole store.
    pub device: Option<String>,
    /// Only this rule; `None`: every rule.
    pub rule: Option<String>,
    /// From, ms.
    pub starts_at: i64,
    /// Until, ms.
    pub ends_at: i64,
    /// Why.
    pub reason: String,
    /// Who set it.
    pub created_by: String,
}

impl Silence {
    /// Whether it covers `key` at `now`.
    pub fn covers(&self, key: &AlertKey, now: i64) -> bool {
        self.store == key.store
            && self.starts_at <= now
            && now < self.ends_at
            && self.device.as_ref().is_none_or(|d| *d == key.subject)
            && self.rule.as_ref().is_none_or(|r| *r == key.rule)
    }
}

/// Why an alert opens no ticket now, if it does not: a silence, or its store's gateway
/// being offline (which has its own store ticket).
pub fn muted(
    key: &AlertKey,
    rule: &Rule,
    gateway_offline: bool,
    silences: &[Silence],
    now: i64,
) -> Option<String> {
    if let Some(s) = silences.iter().find(|s| s.covers(key, now)) {
        return Some(format!("silenced by {}: {}", s.created_by, s.reason));
    }
    if gateway_offline && !rule.is_gateway_offline() {
        return Some("muted: the store's gateway is offline (one store ticket)".into());
    }
    None
}

/// A routine run as remediation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Run id.
    pub id: String,
    /// Routine.
    pub routine: String,
    /// The device it looked after.
    pub device: Option<String>,
    /// Started, ms.
    pub started_at: i64,
    /// Finished, ms.
    pub finished_at: i64,
    /// Outcome.
    pub outcome: String,
}

/// What the self-heal says about an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No routine bound to the rule: a ticket now.
    NotBound,
    /// Waiting for the routine's outcome until this time, ms.
    Wait(i64),
    /// The routine healed it (run id); no ticket while the alert clears.
    Healed(String),
    /// The routine ran and did not fix it: a ticket, with these runs.
    Failed(String),
    /// The routine has failed this often lately: do not wait, escalate.
    Breaker(usize),
    /// No outcome arrived in time: a ticket.
    TimedOut,
}

/// Circuit breaker settings.
#[derive(Debug, Clone, Copy)]
pub struct Breaker {
    /// Failures within the window that open it.
    pub failures: usize,
    /// The window, ms.
    pub window_ms: i64,
}

/// The self-heal verdict on an alert of `rule` on `subject` that began at `since` and
/// fired at `fired_at`, from the store's recent `runs`.
pub fn remediation(
    rule: &Rule,
    subject: &str,
    since: i64,
    fired_at: i64,
    runs: &[Run],
    breaker: Breaker,
    now: i64,
) -> Verdict {
    let Some(routine) = rule.routine.as_deref() else {
        return Verdict::NotBound;
    };
    let timeout = (rule.remediation_timeout_secs as i64) * 1000;
    let mine: Vec<&Run> = runs
        .iter()
        .filter(|r| r.routine == routine && r.device.as_deref().is_none_or(|d| d == subject))
        .collect();
    let failed = |r: &&&Run| matches!(r.outcome.as_str(), "failed" | "escalated");
    let recent_failures = mine
        .iter()
        .filter(|r| now - r.finished_at <= breaker.window_ms)
        .filter(failed)
        .count();
    // Runs for this fault: started after it began (with a little slack for clocks).
    let latest = mine
        .iter()
        .filter(|r| r.started_at >= since - 5_000)
        .max_by_key(|r| r.finished_at);
    match latest {
        Some(r) if matches!(r.outcome.as_str(), "healed" | "already_fine") => {
            if now - r.finished_at <= timeout {
                Verdict::Healed(r.id.clone())
            } else {
                Verdict::Failed(format!(
                    "{routine} reported {} at its run {}, but the fault persists",
                    r.outcome, r.id
                ))
            }
        }
        Some(r) => Verdict::Failed(format!("{routine} run {} ended {}", r.id, r.outcome)),
        None if recent_failures >= breaker.failures => Verdict::Breaker(recent_failures),
        None if now < fired_at + timeout => Verdict::Wait(fired_at + timeout),
        None => Verdict::TimedOut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::builtin;

    fn rule(name: &str) -> Rule {
        builtin().into_iter().find(|r| r.name == name).unwrap()
    }

    fn key(rule: &str, subject: &str) -> AlertKey {
        AlertKey {
            rule: rule.into(),
            store: "S1".into(),
            subject: subject.into(),
        }
    }

    const W: Windows = Windows {
        reopen_ms: 3_600_000,
        group_ms: 600_000,
    };

    fn brief(id: i64, dk: &str, opened_at: i64, resolved_at: Option<i64>) -> Brief {
        Brief {
            id,
            dedupe_key: dk.into(),
            store: "S1".into(),
            opened_at,
            open: resolved_at.is_none(),
            resolved_at,
            groupable: !dk.starts_with("gateway-offline"),
        }
    }

    #[test]
    fn the_same_problem_attaches_reopens_within_the_window_and_opens_after_it() {
        let k = key("printer-down", "printer-1");
        let r = rule("printer-down");
        let open = [brief(1, "printer-down/S1/printer-1", 0, None)];
        assert_eq!(place(&k, &r, &open, W, 10), Placement::Attach(1));
        let resolved = [brief(1, "printer-down/S1/printer-1", 0, Some(1_000))];
        assert_eq!(place(&k, &r, &resolved, W, 3_000_000), Placement::Reopen(1));
        assert_eq!(place(&k, &r, &resolved, W, 3_700_000), Placement::Open);
    }

    #[test]
    fn device_faults_at_once_in_one_store_group_but_not_into_a_store_ticket() {
        let k = key("fridge-too-warm", "fridge-1");
        let r = rule("fridge-too-warm");
        let t = [brief(7, "printer-down/S1/printer-1", 1_000, None)];
        assert_eq!(place(&k, &r, &t, W, 60_000), Placement::Attach(7));
        assert_eq!(place(&k, &r, &t, W, 700_000), Placement::Open);
        let store = [brief(8, "gateway-offline/S1/agent", 1_000, None)];
        assert_eq!(place(&k, &r, &store, W, 60_000), Placement::Open);
        let mut other = t.clone();
        other[0].store = "S2".into();
        assert_eq!(place(&k, &r, &other, W, 60_000), Placement::Open);
    }

    #[test]
    fn an_offline_gateway_mutes_device_alerts_and_silences_mute_what_they_cover() {
        let k = key("printer-down", "printer-1");
        assert!(muted(&k, &rule("printer-down"), true, &[], 0).is_some());
        let gk = key("gateway-offline", "agent-1");
        assert!(muted(&gk, &rule("gateway-offline"), true, &[], 0).is_none());
        let s = Silence {
            id: 1,
            store: "S1".into(),
            device: Some("printer-1".into()),
            rule: None,
            starts_at: 100,
            ends_at: 200,
            reason: "printer swap".into(),
            created_by: "user:ops".into(),
        };
        let sl = [s];
        assert!(muted(&k, &rule("printer-down"), false, &sl, 50).is_none());
        let why = muted(&k, &rule("printer-down"), false, &sl, 150).unwrap();
        assert!(why.contains("printer swap"), "{why}");
        assert!(muted(
            &key("printer-down", "printer-2"),
            &rule("printer-down"),
            false,
            &sl,
            150
        )
        .is_none());
        assert!(muted(&k, &rule("printer-down"), false, &sl, 200).is_none());
    }

    fn run(id: &str, started: i64, outcome: &str) -> Run {
        Run {
            id: id.into(),
            routine: "receipt-printer-unstick".into(),
            device: Some("printer-1".into()),
            started_at: started,
            finished_at: started + 10_000,
            outcome: outcome.into(),
        }
    }

    const B: Breaker = Breaker {
        failures: 3,
        window_ms: 86_400_000,
    };

    #[test]
    fn a_bound_routine_is_waited_for_and_its_outcome_decides() {
        let r = rule("printer-down");
        let t = 1_000_000;
        assert_eq!(
            remediation(&r, "printer-1", t, t + 60_000, &[], B, t + 61_000),
            Verdict::Wait(t + 360_000)
        );
        assert_eq!(
            remediation(&r, "printer-1", t, t + 60_000, &[], B, t + 360_000),
            Verdict::TimedOut
        );
        let healed = [run("r1", t + 120_000, "healed")];
        assert_eq!(
            remediation(&r, "printer-1", t, t + 60_000, &healed, B, t + 140_000),
            Verdict::Healed("r1".into())
        );
        // Healed but still down long after: the heal did not hold.
        assert!(matches!(
            remediation(&r, "printer-1", t, t + 60_000, &healed, B, t + 900_000),
            Verdict::Failed(_)
        ));
        let failed = [run("r2", t + 120_000, "failed")];
        assert!(matches!(
            remediation(&r, "printer-1", t, t + 60_000, &failed, B, t + 140_000),
            Verdict::Failed(m) if m.contains("r2")
        ));
        // A run from before the fault is not its outcome; another device's neither.
        let old = [run("r0", t - 600_000, "healed")];
        assert!(matches!(
            remediation(&r, "printer-1", t, t + 60_000, &old, B, t + 61_000),
            Verdict::Wait(_)
        ));
        assert_eq!(
            remediation(&rule("device-stale"), "x", t, t, &[], B, t),
            Verdict::NotBound
        );
    }

    #[test]
    fn a_routine_that_keeps_failing_trips_the_breaker() {
        let r = rule("printer-down");
        let t = 10_000_000;
        let runs = [
            run("a", t - 3_000_000, "failed"),
            run("b", t - 2_000_000, "escalated"),
            run("c", t - 1_000_000, "failed"),
        ];
        assert_eq!(
            remediation(&r, "printer-1", t, t + 60_000, &runs, B, t + 61_000),
            Verdict::Breaker(3)
        );
        let two = &runs[1..];
        assert!(matches!(
            remediation(&r, "printer-1", t, t + 60_000, two, B, t + 61_000),
            Verdict::Wait(_)
        ));
    }
}
