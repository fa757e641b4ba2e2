//! The rollout state machine: inputs in, actions out.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::plan::{Plan, PlanError};
use super::target::{Outcome, Target, TargetState};

/// The rollout as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Sending and waiting.
    Running,
    /// Paused by an operator: nothing new is sent; results still count.
    Paused,
    /// Stopped by the failure threshold.
    Aborted {
        /// Failures and finished when it tripped.
        failures: usize,
        /// Finished targets then.
        finished: usize,
    },
    /// Stopped by an operator.
    Cancelled,
    /// Every target finished.
    Completed,
}

/// What the caller should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send the task's command to this agent.
    Send(String),
    /// The rollout reached a final phase (said once).
    Finished,
}

/// What the world looks like at `now`, as the caller knows it.
pub trait World {
    /// Whether the agent is online.
    fn online(&self, agent: &str) -> bool;
    /// Whether the agent's store is inside the task's window now.
    fn in_window(&self, agent: &str) -> bool;
}

/// A rollout in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    plan: Plan,
    targets: Vec<Target>,
    index: HashMap<String, usize>,
    /// When each wave opened (ms).
    opened: Vec<Option<i64>>,
    phase: Phase,
    announced: bool,
}

impl Rollout {
    /// A rollout of `plan` over `targets` (agent, region), in that order.
    pub fn new(plan: Plan, targets: Vec<(String, String)>) -> Result<Rollout, PlanError> {
        plan.validate()?;
        let waves = plan.assign(targets.len());
        let count = waves.iter().max().map_or(0, |w| w + 1);
        let mut index = HashMap::new();
        let targets: Vec<Target> = targets
            .into_iter()
            .zip(waves)
            .enumerate()
            .map(|(i, ((agent, region), wave))| {
                index.insert(agent.clone(), i);
                Target {
                    agent,
                    region,
                    wave,
                    state: TargetState::Queued,
                }
            })
            .collect();
        if index.len() != targets.len() {
            return Err(PlanError("a target is listed twice".into()));
        }
        Ok(Rollout {
            plan,
            targets,
            index,
            opened: vec![None; count],
            phase: Phase::Running,
            announced: false,
        })
    }

    /// A rollout as it was stored: its targets (with their waves and states), when each
    /// wave opened, its phase, and whether [`Action::Finished`] was already said.
    pub fn restore(
        plan: Plan,
        targets: Vec<Target>,
        opened: Vec<Option<i64>>,
        phase: Phase,
        finished: bool,
    ) -> Result<Rollout, PlanError> {
        plan.validate()?;
        let count = targets.iter().map(|t| t.wave + 1).max().unwrap_or(0);
        let mut index = HashMap::new();
        for (i, t) in targets.iter().enumerate() {
            if index.insert(t.agent.clone(), i).is_some() {
                return Err(PlanError("a target is listed twice".into()));
            }
        }
        let mut opened = opened;
        opened.resize(count, None);
        Ok(Rollout {
            plan,
            targets,
            index,
            opened,
            phase,
            announced: finished,
        })
    }

    /// When each wave opened (ms), for storing.
    pub fn opened(&self) -> &[Option<i64>] {
        &self.opened
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Whether [`Action::Finished`] was said.
    pub fn finished(&self) -> bool {
        self.announced
    }

    /// The phase.
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// The targets with their states.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// One target's state.
    pub fn state_of(&self, agent: &str) -> Option<TargetState> {
        self.index.get(agent).map(|i| self.targets[*i].state)
    }

    fn is_final_phase(&self) -> bool {
        matches!(
            self.phase,
            Phase::Aborted { .. } | Phase::Cancelled | Phase::Completed
        )
    }

    /// The agent said it started. Ignored unless it was sent.
    pub fn started(&mut self, agent: &str) {
        if let Some(t) = self.index.get(agent).map(|i| &mut self.targets[*i]) {
            if let TargetState::Sent { at } = t.state {
                t.state = TargetState::Running { sent: at };
            }
        }
    }

    /// The agent's result. Ignored unless the target is in flight, so a redelivered or late
    /// result (after a timeout) changes nothing.
    pub fn result(&mut self, agent: &str, outcome: Outcome) {
        if let Some(t) = self.index.get(agent).map(|i| &mut self.targets[*i]) {
            if t.state.in_flight() {
                t.state = match outcome {
                    Outcome::Succeeded => TargetState::Succeeded,
                    Outcome::Failed => TargetState::Failed,
                    Outcome::Rejected => TargetState::Rejected,
                    Outcome::Skipped => TargetState::Skipped,
                };
            }
        }
    }

    /// Operator: stop sending; results still count.
    pub fn pause(&mut self) {
        if self.phase == Phase::Running {
            self.phase = Phase::Paused;
        }
    }

    /// Operator: continue.
    pub fn resume(&mut self) {
        if self.phase == Phase::Paused {
            self.phase = Phase::Running;
        }
    }

    /// Operator: cancel what was not sent. What is in flight may still finish.
    pub fn cancel(&mut self) {
        if !self.is_final_phase() {
            self.phase = Phase::Cancelled;
            self.cancel_queued();
        }
    }

    fn cancel_queued(&mut self) {
        for t in &mut self.targets {
            if t.state == TargetState::Queued {
                t.state = TargetState::Cancelled;
            }
        }
    }

    /// (failures, finished) over all targets that ran or were due to run.
    fn tally(&self) -> (usize, usize) {
        let ran = |s: TargetState| {
            s.is_final() && !matches!(s, TargetState::Skipped | TargetState::Cancelled)
        };
        let finished = self.targets.iter().filter(|t| ran(t.state)).count();
        let failures = self.targets.iter().filter(|t| t.state.is_failure()).count();
        (failures, finished)
    }

    /// Advances to `now`: timeouts, the abort check, expiry, opening waves, and sending.
    pub fn step(&mut self, now: i64, world: &impl World) -> Vec<Action> {
        let mut actions = Vec::new();
        for t in &mut self.targets {
            if let TargetState::Sent { at } | TargetState::Running { sent: at } = t.state {
                if now - at >= self.plan.target_timeout_ms {
                    t.state = TargetState::TimedOut;
                }
            }
        }
        if !self.is_final_phase() {
            let (failures, finished) = self.tally();
            if finished >= self.plan.abort_min_finished
                && failures as f64 > self.plan.abort_failure_rate * finished as f64
            {
                self.phase = Phase::Aborted { failures, finished };
                self.cancel_queued();
            }
        }
        if self.phase == Phase::Running {
            self.dispatch(now, world, &mut actions);
        }
        if self.phase != Phase::Paused && self.targets.iter().all(|t| t.state.is_final()) {
            if !self.is_final_phase() {
                self.phase = Phase::Completed;
            }
            if !self.announced {
                self.announced = true;
                actions.push(Action::Finished);
            }
        }
        actions
    }

    fn dispatch(&mut self, now: i64, world: &impl World, actions: &mut Vec<Action>) {
        // Open every wave whose predecessors are all finished (several at once when a wave
        // ends up empty of work, e.g. all skipped).
        for w in 0..self.opened.len() {
            if self.opened[w].is_none() {
                let before_done = self
                    .targets
                    .iter()
                    .filter(|t| t.wave < w)
                    .all(|t| t.state.is_final());
                if !before_done {
                    break;
                }
                self.opened[w] = Some(now);
            }
        }
        let mut in_flight: HashMap<&str, usize> = HashMap::new();
        for t in self.targets.iter().filter(|t| t.state.in_flight()) {
            *in_flight.entry(t.region.as_str()).or_default() += 1;
        }
        let cap = self.plan.region_concurrency;
        let mut sends = Vec::new();
        let mut expired = Vec::new();
        for (i, t) in self.targets.iter().enumerate() {
            let Some(opened) = self.opened.get(t.wave).copied().flatten() else {
                continue;
            };
            if t.state != TargetState::Queued {
                continue;
            }
            let online = world.online(&t.agent);
            let room = cap == 0 || in_flight.get(t.region.as_str()).copied().unwrap_or(0) < cap;
            if online && room && world.in_window(&t.agent) {
                *in_flight.entry(t.region.as_str()).or_default() += 1;
                sends.push(i);
            } else if !online && now - opened >= self.plan.expiry_ms {
                // Only absence expires a target; a closed window or a full region waits.
                expired.push(i);
            }
        }
        for i in expired {
            self.targets[i].state = TargetState::Skipped;
        }
        for i in sends {
            self.targets[i].state = TargetState::Sent { at: now };
            actions.push(Action::Send(self.targets[i].agent.clone()));
        }
    }
}
