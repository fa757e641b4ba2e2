//! One run of a routine as a pure state machine: ask [`Run::next`] what to do, do it, and
//! tell it with [`Run::report`] (after an attempt) or [`Run::waited`] (after a retry delay).

pub use storefleet_protocol::routine::{Outcome, StepRecord};

use super::doc::{Routine, StepKind};

/// Output kept per step, bytes (the shell caps what it reads; this caps what is recorded).
pub const MAX_OUTPUT: usize = 4096;

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Run this step; `attempt` counts from 1.
    Execute {
        /// Step index.
        step: usize,
        /// Attempt number.
        attempt: u32,
    },
    /// Wait before retrying this step.
    Wait {
        /// Step index.
        step: usize,
        /// Seconds.
        secs: u64,
    },
    /// The run is over.
    Done(Outcome),
}

/// A run in progress.
#[derive(Debug, Clone)]
pub struct Run<'r> {
    routine: &'r Routine,
    step: usize,
    attempt: u32,
    waiting: bool,
    records: Vec<StepRecord>,
    outcome: Option<Outcome>,
}

fn cap(s: &str) -> String {
    if s.len() <= MAX_OUTPUT {
        return s.to_owned();
    }
    let mut end = MAX_OUTPUT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl<'r> Run<'r> {
    /// A run of `routine` (already within its window).
    pub fn new(routine: &'r Routine) -> Run<'r> {
        Run {
            routine,
            step: 0,
            attempt: 1,
            waiting: false,
            records: Vec::new(),
            outcome: None,
        }
    }

    /// What to do next.
    pub fn next(&self) -> Next {
        match self.outcome {
            Some(o) => Next::Done(o),
            None if self.waiting => Next::Wait {
                step: self.step,
                secs: self.routine.steps[self.step].retry_delay_secs,
            },
            None => Next::Execute {
                step: self.step,
                attempt: self.attempt,
            },
        }
    }

    /// The step records so far.
    pub fn records(&self) -> &[StepRecord] {
        &self.records
    }

    /// The retry delay has passed.
    pub fn waited(&mut self) {
        if self.waiting {
            self.waiting = false;
            self.attempt += 1;
        }
    }

    /// The current step's attempt ended: `ok`, its output, how long it took.
    pub fn report(&mut self, ok: bool, output: &str, duration_ms: u64) {
        if self.outcome.is_some() || self.waiting {
            return;
        }
        let steps = &self.routine.steps;
        let s = &steps[self.step];
        match self.records.last_mut() {
            Some(r) if self.attempt > 1 && r.name == s.name => {
                r.attempts = self.attempt;
                r.ok = ok;
                r.output = cap(output);
                r.duration_ms += duration_ms;
            }
            _ => self.records.push(StepRecord {
                name: s.name.clone(),
                kind: s.kind,
                action: s.action.clone(),
                attempts: self.attempt,
                ok,
                output: cap(output),
                duration_ms,
            }),
        }
        if !ok && self.attempt <= s.retries {
            self.waiting = true;
            return;
        }
        let first_of = |k: StepKind| steps.iter().position(|x| x.kind == k);
        let after = self.step + 1;
        self.attempt = 1;
        match (s.kind, ok) {
            (StepKind::Check, true) => {
                if steps.get(after).is_some_and(|x| x.kind == StepKind::Check) {
                    self.step = after;
                } else {
                    self.outcome = Some(Outcome::AlreadyFine);
                }
            }
            // Something is wrong: act, or, with nothing to act with, call a person.
            (StepKind::Check, false) => match first_of(StepKind::Action) {
                Some(a) => self.step = a,
                None => self.outcome = Some(Outcome::Escalated),
            },
            (StepKind::Action, true) => {
                self.step = after; // validation guarantees a verification follows
            }
            (StepKind::Action, false) => self.outcome = Some(Outcome::Failed),
            (StepKind::Verify, true) => {
                if after < steps.len() {
                    self.step = after;
                } else {
                    self.outcome = Some(Outcome::Healed);
                }
            }
            (StepKind::Verify, false) => self.outcome = Some(Outcome::Escalated),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    fn routine(kinds: &[(StepKind, u32)]) -> Routine {
        let mut text = String::from("name = \"r\"\nversion = 1\n");
        for (i, (k, retries)) in kinds.iter().enumerate() {
            let k = match k {
                StepKind::Check => "check",
                StepKind::Action => "action",
                StepKind::Verify => "verify",
            };
            let _ = write!(
                text,
                "[[steps]]\nkind = \"{k}\"\nname = \"s{i}\"\naction = \"x\"\nretries = {retries}\nretry_delay_secs = 7\n"
            );
        }
        Routine::parse(&text, "test").unwrap()
    }

    /// Runs with `results` answering each execution in turn; returns the outcome and the
    /// sequence of steps executed (with waits as `None`).
    fn drive(r: &Routine, results: &[bool]) -> (Outcome, Vec<Option<usize>>) {
        let mut run = Run::new(r);
        let mut answers = results.iter();
        let mut trace = Vec::new();
        loop {
            match run.next() {
                Next::Execute { step, .. } => {
                    trace.push(Some(step));
                    run.report(
                        *answers.next().expect("more executions than answers"),
                        "out",
                        10,
                    );
                }
                Next::Wait { secs, .. } => {
                    assert_eq!(secs, 7);
                    trace.push(None);
                    run.waited();
                }
                Next::Done(o) => {
                    assert!(answers.next().is_none(), "answers left over");
                    return (o, trace);
                }
            }
        }
    }

    use StepKind::{Action as A, Check as C, Verify as V};

    #[test]
    fn all_checks_pass_means_already_fine_and_nothing_done() {
        let r = routine(&[(C, 0), (C, 0), (A, 0), (V, 0)]);
        assert_eq!(
            drive(&r, &[true, true]),
            (Outcome::AlreadyFine, vec![Some(0), Some(1)])
        );
    }

    #[test]
    fn a_failing_check_acts_then_verifies() {
        let r = routine(&[(C, 0), (C, 0), (A, 0), (A, 0), (V, 0)]);
        assert_eq!(drive(&r, &[false, true, true, true]).0, Outcome::Healed);
        let (_, trace) = drive(&r, &[false, true, true, true]);
        assert_eq!(
            trace,
            vec![Some(0), Some(2), Some(3), Some(4)],
            "remaining checks are not run"
        );
    }

    #[test]
    fn retries_wait_and_the_record_counts_attempts() {
        let r = routine(&[(A, 2), (V, 1)]);
        let (o, trace) = drive(&r, &[false, false, true, false, true]);
        assert_eq!(o, Outcome::Healed);
        assert_eq!(
            trace,
            vec![
                Some(0),
                None,
                Some(0),
                None,
                Some(0),
                Some(1),
                None,
                Some(1)
            ]
        );
        let mut run = Run::new(&r);
        run.report(false, "e1", 5);
        run.waited();
        run.report(true, "fine", 7);
        assert_eq!(run.records()[0].attempts, 2);
        assert_eq!(run.records()[0].duration_ms, 12);
        assert_eq!(run.records()[0].output, "fine");
    }

    #[test]
    fn an_action_failing_after_its_retries_fails_the_run() {
        let r = routine(&[(C, 0), (A, 1), (V, 0)]);
        assert_eq!(drive(&r, &[false, false, false]).0, Outcome::Failed);
        assert!(Outcome::Failed.needs_a_person());
    }

    #[test]
    fn a_verification_that_still_fails_escalates() {
        let r = routine(&[(A, 0), (V, 0), (V, 0)]);
        assert_eq!(drive(&r, &[true, true, false]).0, Outcome::Escalated);
    }

    #[test]
    fn a_check_only_routine_escalates_what_it_finds() {
        let r = routine(&[(C, 0)]);
        assert_eq!(drive(&r, &[false]).0, Outcome::Escalated);
        assert_eq!(drive(&r, &[true]).0, Outcome::AlreadyFine);
    }

    #[test]
    fn reports_after_the_end_or_while_waiting_change_nothing_and_output_is_capped() {
        let r = routine(&[(A, 1), (V, 0)]);
        let mut run = Run::new(&r);
        run.report(false, &"é".repeat(5000), 1);
        assert!(run.records()[0].output.len() <= MAX_OUTPUT + "…".len());
        run.report(true, "ignored while waiting", 1);
        assert_eq!(run.next(), Next::Wait { step: 0, secs: 7 });
        run.waited();
        run.report(true, "", 1);
        run.report(true, "", 1);
        assert_eq!(run.next(), Next::Done(Outcome::Healed));
        run.report(false, "late", 1);
        assert_eq!(run.next(), Next::Done(Outcome::Healed));
        assert_eq!(run.records().len(), 2);
    }
}
