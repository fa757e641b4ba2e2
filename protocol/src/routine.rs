//! Routine runs: the record an agent sends (kind `routine-run`) after every run of a
//! maintenance routine, whatever started it, and the words both sides use for its steps and
//! outcome.
//!
//! ```json
//! {"id":"r-5f1c...","routine":"receipt-printer-unstick","version":3,
//!  "trigger":{"type":"condition","detail":"printer-1 down for 120 s"},
//!  "started_at":1700000000000,"finished_at":1700000004200,"outcome":"healed",
//!  "steps":[{"name":"queue ok","kind":"check","action":"cups.queue_state","attempts":1,
//!            "ok":false,"output":"queue receipt disabled, 3 jobs","duration_ms":40}, ...]}
//! ```
//!
//! A run started by a controller command has the command's id as its `id`, so the record,
//! the command result and the task target line up.

use serde::{Deserialize, Serialize};

/// What a step is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Looks; all checks passing means nothing needs doing.
    Check,
    /// Changes something.
    Action,
    /// Looks again after the actions.
    Verify,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every check passed; nothing was done.
    AlreadyFine,
    /// Actions ran and every verification passed.
    Healed,
    /// An action failed after its retries, or a step could not run at all.
    Failed,
    /// A problem remains that the routine cannot fix (a verification, or a check of a
    /// routine without actions, still fails).
    Escalated,
    /// Not run: outside its window.
    Skipped,
}

impl Outcome {
    /// Whether a person should hear of it (an escalation event carries the run record).
    pub fn needs_a_person(self) -> bool {
        matches!(self, Outcome::Failed | Outcome::Escalated)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::AlreadyFine => "already_fine",
            Outcome::Healed => "healed",
            Outcome::Failed => "failed",
            Outcome::Escalated => "escalated",
            Outcome::Skipped => "skipped",
        }
    }
}

/// The record of one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Step name.
    pub name: String,
    /// Its kind.
    pub kind: StepKind,
    /// The built-in action it ran.
    #[serde(default)]
    pub action: String,
    /// Attempts made.
    pub attempts: u32,
    /// Whether the last attempt succeeded.
    pub ok: bool,
    /// The last attempt's output, capped by the agent (4 KiB).
    pub output: String,
    /// Time spent in all attempts, ms.
    pub duration_ms: u64,
}

/// What started a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Trigger {
    /// Its cron schedule.
    Schedule {
        /// The schedule, e.g. `30 2 * * *`.
        cron: String,
    },
    /// A telemetry or device-state condition.
    Condition {
        /// What held, for people.
        detail: String,
    },
    /// A controller command (a fleet task).
    Task {
        /// The task id, when the command came from one.
        #[serde(default)]
        task: String,
    },
    /// A person on the gateway (`storefleet-agent routine run`).
    Manual,
}

/// One run of a routine, as the agent records and sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Run id: the command id for controller tasks, otherwise made by the agent.
    pub id: String,
    /// Routine name.
    pub routine: String,
    /// Routine version.
    pub version: u32,
    /// What started it.
    pub trigger: Trigger,
    /// The device the routine is bound to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Start, ms since the epoch.
    pub started_at: i64,
    /// End, ms since the epoch.
    pub finished_at: i64,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it was skipped or could not run, for people; empty otherwise.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Every step that ran, in order.
    pub steps: Vec<StepRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_with_its_wire_names() {
        let r = RunRecord {
            id: "r-1".into(),
            routine: "log-cleanup".into(),
            version: 2,
            trigger: Trigger::Schedule {
                cron: "0 3 * * *".into(),
            },
            device: None,
            started_at: 1,
            finished_at: 2,
            outcome: Outcome::AlreadyFine,
            reason: String::new(),
            steps: vec![StepRecord {
                name: "disk".into(),
                kind: StepKind::Check,
                action: "disk.check".into(),
                attempts: 1,
                ok: true,
                output: "12% used".into(),
                duration_ms: 3,
            }],
        };
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains(r#""outcome":"already_fine""#), "{json}");
        assert!(json.contains(r#""trigger":{"type":"schedule","cron":"0 3 * * *"}"#));
        assert_eq!(serde_json::from_str::<RunRecord>(&json).unwrap(), r);
        for o in [
            Outcome::AlreadyFine,
            Outcome::Healed,
            Outcome::Failed,
            Outcome::Escalated,
            Outcome::Skipped,
        ] {
            assert_eq!(
                serde_json::to_string(&o).unwrap(),
                format!("\"{}\"", o.as_str())
            );
        }
    }
}
