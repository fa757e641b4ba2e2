//! One target of a rollout and its state machine.

use serde::{Deserialize, Serialize};

/// Where a target stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TargetState {
    /// Waiting for its wave, its window, its region's turn or its agent.
    Queued,
    /// Its command was sent at this time (ms).
    Sent {
        /// When.
        at: i64,
    },
    /// The agent said it started (ms); the timeout still counts from `sent`.
    Running {
        /// When it was sent.
        sent: i64,
    },
    /// Done and healthy.
    Succeeded,
    /// Ran and failed.
    Failed,
    /// Sent, and no result within the plan's timeout.
    TimedOut,
    /// Never sent: offline past the expiry; or the agent did not run it (outside the
    /// routine's own window).
    Skipped,
    /// Never sent: the rollout was cancelled or aborted.
    Cancelled,
    /// The agent refused it (not allowed by its config, or unknown to it).
    Rejected,
}

impl TargetState {
    /// Finished: nothing more will happen to it.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            TargetState::Queued | TargetState::Sent { .. } | TargetState::Running { .. }
        )
    }

    /// Sent and not finished.
    pub fn in_flight(self) -> bool {
        matches!(self, TargetState::Sent { .. } | TargetState::Running { .. })
    }

    /// Counts against the abort threshold.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            TargetState::Failed | TargetState::TimedOut | TargetState::Rejected
        )
    }
}

/// What an agent reported at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Succeeded.
    Succeeded,
    /// Failed.
    Failed,
    /// Refused.
    Rejected,
    /// Not run: the agent found the routine outside its own window.
    Skipped,
}

impl TargetState {
    /// The stored name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Queued => "queued",
            TargetState::Sent { .. } => "sent",
            TargetState::Running { .. } => "running",
            TargetState::Succeeded => "succeeded",
            TargetState::Failed => "failed",
            TargetState::TimedOut => "timed_out",
            TargetState::Skipped => "skipped",
            TargetState::Cancelled => "cancelled",
            TargetState::Rejected => "rejected",
        }
    }

    /// The state from its stored name and, for sent and running, when it was sent.
    pub fn from_stored(name: &str, sent_at: Option<i64>) -> Option<TargetState> {
        Some(match (name, sent_at) {
            ("queued", _) => TargetState::Queued,
            ("sent", Some(at)) => TargetState::Sent { at },
            ("running", Some(sent)) => TargetState::Running { sent },
            ("succeeded", _) => TargetState::Succeeded,
            ("failed", _) => TargetState::Failed,
            ("timed_out", _) => TargetState::TimedOut,
            ("skipped", _) => TargetState::Skipped,
            ("cancelled", _) => TargetState::Cancelled,
            ("rejected", _) => TargetState::Rejected,
            _ => return None,
        })
    }

    /// Every stored name, in the order a progress bar shows them.
    pub const NAMES: [&'static str; 9] = [
        "succeeded",
        "failed",
        "timed_out",
        "rejected",
        "skipped",
        "cancelled",
        "running",
        "sent",
        "queued",
    ];
}

/// A target: an agent, with the store facts the plan needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// Agent id.
    pub agent: String,
    /// Region (for the concurrency cap).
    pub region: String,
    /// Wave number.
    pub wave: usize,
    /// State.
    pub state: TargetState,
}
