//! The shell around the pure [`Run`]: checks the window, executes each step's action with
//! its timeout, waits out retry delays, and writes the run record. Stopping the agent
//! mid-run ends the run as failed with the reason, so the record still goes out.

use std::time::{Duration, Instant};

use storefleet_protocol::now_ms;
use storefleet_protocol::routine::{Outcome, RunRecord, Trigger};
use storefleet_schedule::{StoreTime, When};
use tokio_util::sync::CancellationToken;

use super::actions::{Action, Cx, Done};
use super::doc::Routine;
use super::run::{Next, Run};
use crate::config::RoutinesSection;

/// A routine whose every step is parsed and permitted by the config in force.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The document.
    pub routine: Routine,
    /// One action per step.
    pub actions: Vec<Action>,
}

impl Prepared {
    /// Parses every step's action and holds it to the config; the error names the step.
    pub fn new(routine: Routine, policy: &RoutinesSection) -> Result<Prepared, String> {
        let mut actions = Vec::with_capacity(routine.steps.len());
        for (i, s) in routine.steps.iter().enumerate() {
            let at =
                |e: String| format!("routine {:?} steps[{i}] ({:?}): {e}", routine.name, s.name);
            let a = Action::parse(&s.action, &s.args).map_err(at)?;
            a.permitted(&s.action, policy).map_err(at)?;
            actions.push(a);
        }
        Ok(Prepared { routine, actions })
    }
}

/// Why a run was not started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    /// Outside its window; the reason says which.
    Window(String),
}

/// Whether the routine may start at `now`.
pub fn window_allows(r: &Routine, store: &StoreTime, now: jiff::Timestamp) -> Result<(), Blocked> {
    if store.allows(&r.window, now) {
        return Ok(());
    }
    let w = &r.window;
    let when = match w.when {
        When::Closed => format!(
            "only when the store is closed (margin {} min)",
            w.margin_minutes
        ),
        When::Open => "only when the store is open".to_owned(),
        When::Any => "at any time".to_owned(),
    };
    let avoid = if w.avoid.is_empty() {
        String::new()
    } else {
        format!(", never {}", w.avoid)
    };
    Err(Blocked::Window(format!(
        "outside its window: {when}{avoid}; store time {}",
        store.local(now).strftime("%a %H:%M")
    )))
}

/// A record for a run that did not start.
pub fn skipped(r: &Routine, id: String, trigger: Trigger, reason: String) -> RunRecord {
    let now = now_ms();
    RunRecord {
        id,
        routine: r.name.clone(),
        version: r.version,
        trigger,
        device: r.device.clone(),
        started_at: now,
        finished_at: now,
        outcome: Outcome::Skipped,
        reason,
        steps: Vec::new(),
    }
}

/// Runs the routine to its end (the window already checked) and returns the record.
pub async fn execute(
    p: &Prepared,
    cx: &Cx,
    id: String,
    trigger: Trigger,
    stop: &CancellationToken,
) -> RunRecord {
    let started_at = now_ms();
    let steps = &p.routine.steps;
    let mut run = Run::new(&p.routine);
    let mut reason = String::new();
    let outcome = loop {
        match run.next() {
            Next::Done(o) => break o,
            Next::Execute { step, .. } => {
                let s = &steps[step];
                let t0 = Instant::now();
                let attempt = tokio::time::timeout(
                    Duration::from_secs(s.timeout_secs),
                    p.actions[step].run(cx),
                );
                let done = tokio::select! {
                    r = attempt => r.unwrap_or_else(|_| Done::fail(format!("timed out after {} s", s.timeout_secs))),
                    () = stop.cancelled() => {
                        run.report(false, "interrupted: the agent is stopping", t0.elapsed().as_millis() as u64);
                        reason = format!("interrupted in step {:?}: the agent stopped", s.name);
                        break Outcome::Failed;
                    }
                };
                run.report(done.ok, &done.output, t0.elapsed().as_millis() as u64);
            }
            Next::Wait { secs, .. } => {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(secs)) => run.waited(),
                    () = stop.cancelled() => {
                        reason = "interrupted while waiting to retry: the agent stopped".into();
                        break Outcome::Failed;
                    }
                }
            }
        }
    };
    RunRecord {
        id,
        routine: p.routine.name.clone(),
        version: p.routine.version,
        trigger,
        device: p.routine.device.clone(),
        started_at,
        finished_at: now_ms(),
        outcome,
        reason,
        steps: run.records().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_judged_in_the_store_zone_with_a_reason() {
        let r = Routine::parse(
            "name = \"w\"\nversion = 1\nwindow = { when = \"closed\", margin_minutes = 15 }\n\
             [[steps]]\nkind = \"check\"\nname = \"c\"\naction = \"disk.check\"\n",
            "test",
        )
        .unwrap();
        let store = StoreTime::new("Mo-Su 08:00-20:00", "Europe/Berlin").unwrap();
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        // 11:00 UTC is 12:00 in Berlin in November: open.
        let Err(Blocked::Window(why)) = window_allows(&r, &store, at("2026-11-23T11:00:00Z"))
        else {
            panic!("open store allowed a closed-only routine");
        };
        assert!(
            why.contains("only when the store is closed") && why.contains("Mon 12:00"),
            "{why}"
        );
        // 19:50 local is inside the margin before closing; 22:00 local is fine.
        assert!(window_allows(&r, &store, at("2026-11-23T18:50:00Z")).is_err());
        assert!(window_allows(&r, &store, at("2026-11-23T21:00:00Z")).is_ok());
    }
}
