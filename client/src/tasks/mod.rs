//! Fleet tasks as asked for and as they stand: what to run ([`TaskAction`]), where
//! ([`Selector`]), how ([`Plan`]) and when ([`Window`]), with the checks the controller makes
//! before it accepts one, so that a client can make them before it sends.

pub mod select;

use serde::{Deserialize, Serialize};
use storefleet_core::rollout::Plan;
use storefleet_schedule::{When, Window};

pub use select::{Selector, VersionReq};

/// A task, or its selector, that cannot run as asked; the message says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// Longest per-target timeout: a command must expire within the agent's limit (7 days).
pub const MAX_TARGET_TIMEOUT_MS: i64 = 7 * 24 * 3600 * 1000;
/// Largest routine document carried in a task.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

fn default_confirm_secs() -> u64 {
    120
}

/// What a task runs on each target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TaskAction {
    /// A maintenance routine: one the agents have (`name`) or the document carried here.
    Routine {
        /// A routine in the agents' `routines.d/` or library.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        name: String,
        /// A routine document (TOML); the command's signature covers it.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        document: String,
        /// Run even outside the routine's own window (the task's window still holds).
        #[serde(default)]
        ignore_window: bool,
    },
    /// A config change: `toml` becomes each agent's drop-in `70-task-{name}.toml`, applied
    /// as a reload; agents accept only the sections their `controller.remote_config` lists.
    Config {
        /// 1 to 40 of `a-z`, `0-9`, `-`.
        name: String,
        /// The drop-in (TOML).
        toml: String,
    },
    /// An agent update to a published release (`storefleet release publish`): each agent
    /// takes the binary of its architecture, checks it with its pinned release key, and
    /// keeps it only if it is connected and reporting within `confirm_secs`.
    Update {
        /// The release's version.
        version: String,
        /// How long the new version has to confirm (10 to 3600 s).
        #[serde(default = "default_confirm_secs")]
        confirm_secs: u64,
    },
    /// Ask each agent for its version and uptime (`storefleet agents ping ID`).
    Ping,
    /// Have each agent read its configuration again (`storefleet agents reload ID`).
    Reload,
}

impl TaskAction {
    /// The routine's name: given, or read from the document.
    pub fn routine_name(&self) -> String {
        match self {
            TaskAction::Routine { name, document, .. } if name.is_empty() => {
                toml::from_str::<toml::Table>(document)
                    .ok()
                    .and_then(|t| t.get("name")?.as_str().map(str::to_owned))
                    .unwrap_or_default()
            }
            TaskAction::Routine { name, .. } => name.clone(),
            TaskAction::Config { name, .. } => format!("config {name}"),
            TaskAction::Update { version, .. } => format!("update {version}"),
            TaskAction::Ping => "ping".into(),
            TaskAction::Reload => "reload config".into(),
        }
    }

    /// `routine`, `config`, `update`, `ping` or `reload`.
    pub fn kind(&self) -> &'static str {
        match self {
            TaskAction::Routine { .. } => "routine",
            TaskAction::Config { .. } => "config",
            TaskAction::Update { .. } => "update",
            TaskAction::Ping => "ping",
            TaskAction::Reload => "reload",
        }
    }

    /// Checks the action on its own (a task spec checks it too).
    pub fn validate(&self) -> Result<(), Invalid> {
        let bad = |m: String| Err(Invalid(m));
        match self {
            TaskAction::Routine { name, document, .. } => {
                match (name.is_empty(), document.is_empty()) {
                    (true, true) | (false, false) => {
                        return bad("routine: give either name or document".into())
                    }
                    (false, true) => return Ok(()),
                    (true, false) => {}
                }
                if document.len() > MAX_DOCUMENT_BYTES {
                    return bad(format!(
                        "routine document: {} bytes, at most {MAX_DOCUMENT_BYTES}",
                        document.len()
                    ));
                }
                // The agent checks the document in full (actions, permissions); here only
                // what would make every target reject it.
                let t: toml::Table = toml::from_str(document)
                    .map_err(|e| Invalid(format!("routine document: {e}")))?;
                if !t.get("name").is_some_and(toml::Value::is_str) {
                    return bad("routine document: a string `name` is required".into());
                }
                if !t.get("steps").is_some_and(toml::Value::is_array) {
                    return bad("routine document: at least one [[steps]] is required".into());
                }
                Ok(())
            }
            TaskAction::Config { name, toml: text } => {
                if name.is_empty()
                    || name.len() > 40
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                {
                    return bad(format!(
                        "config name {name:?}: expected 1 to 40 of a-z, 0-9, '-'"
                    ));
                }
                if text.len() > MAX_DOCUMENT_BYTES {
                    return bad(format!("config: at most {MAX_DOCUMENT_BYTES} bytes"));
                }
                let t: toml::Table =
                    toml::from_str(text).map_err(|e| Invalid(format!("config: {e}")))?;
                if t.is_empty() {
                    return bad("config: empty".into());
                }
                Ok(())
            }
            TaskAction::Update {
                version,
                confirm_secs,
            } => {
                storefleet_protocol::release::check_version(version)
                    .map_err(|e| Invalid(e.to_string()))?;
                if !(10..=3600).contains(confirm_secs) {
                    return bad(format!(
                        "update confirm_secs {confirm_secs}: expected 10 to 3600"
                    ));
                }
                Ok(())
            }
            TaskAction::Ping | TaskAction::Reload => Ok(()),
        }
    }
}

/// The targets and wave sizes a spec would have (`/api/v1/tasks/preview`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskPreview {
    /// Targets in all.
    pub total: usize,
    /// Targets per wave, the canary first.
    pub waves: Vec<usize>,
    /// Each target.
    pub targets: Vec<PreviewTarget>,
}

/// One target of a preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewTarget {
    /// The agent.
    pub agent: String,
    /// Its store.
    pub store: String,
    /// The store's region.
    pub region: String,
}

/// A task as asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// A name for people; the routine's name when empty.
    #[serde(default)]
    pub name: String,
    /// What to run.
    pub action: TaskAction,
    /// Which agents.
    pub select: Selector,
    /// How to roll it out.
    #[serde(default)]
    pub plan: Plan,
    /// When, in each store's own time.
    #[serde(default)]
    pub window: Window,
}

impl TaskSpec {
    /// Checks everything but the targets.
    pub fn validate(&self) -> Result<(), Invalid> {
        self.action.validate()?;
        self.select.validate()?;
        self.plan.validate().map_err(|e| Invalid(e.to_string()))?;
        if self.plan.target_timeout_ms > MAX_TARGET_TIMEOUT_MS {
            return Err(Invalid(
                "rollout plan: target_timeout_ms must be at most 7 days (commands expire)".into(),
            ));
        }
        if !self.window.avoid.trim().is_empty() {
            self.window
                .avoid
                .parse::<storefleet_schedule::TradingHours>()
                .map_err(|e| Invalid(format!("window.avoid: {e}")))?;
        }
        if self.name.len() > 200 {
            return Err(Invalid("name: at most 200 characters".into()));
        }
        Ok(())
    }

    /// Whether the task holds to a window at all.
    pub fn has_window(&self) -> bool {
        self.window.when != When::Any || !self.window.avoid.trim().is_empty()
    }
}

/// How a task stands, as stored and shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSummary {
    /// Task id.
    pub id: String,
    /// Name.
    pub name: String,
    /// `running`, `paused`, `aborted`, `cancelled` or `completed`.
    pub phase: String,
    /// Why it stopped (aborted: the failures), if it did.
    pub phase_note: String,
    /// The spec.
    pub spec: TaskSpec,
    /// Who pushed it.
    pub created_by: String,
    /// When, ms.
    pub created_at: i64,
    /// When every target had finished, ms.
    pub finished_at: Option<i64>,
    /// Targets per state.
    pub counts: std::collections::BTreeMap<String, u64>,
    /// Targets in all.
    pub total: u64,
    /// Per wave: (wave, targets, finished).
    pub waves: Vec<WaveProgress>,
    /// While every store it waits for is outside its window: when the first of them opens
    /// (asked of one task; absent in lists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_opens: Option<WindowOpens>,
}

/// When a task waiting for its window will start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowOpens {
    /// The instant, ms.
    pub at: i64,
    /// The store whose window opens first.
    pub store: String,
    /// That store's time zone.
    pub timezone: String,
}

/// One wave's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveProgress {
    /// Wave number (0 is the canary when there is one).
    pub wave: u32,
    /// Targets in it.
    pub targets: u64,
    /// Finished ones (cancelled ones too).
    pub finished: u64,
    /// Failed, timed out or rejected ones.
    pub failures: u64,
    /// Cancelled ones (never sent: the task was cancelled or aborted first).
    #[serde(default)]
    pub cancelled: u64,
    /// When it opened, ms.
    pub opened_at: Option<i64>,
}

impl WaveProgress {
    /// Whether it will never run: it did not open and its task has finished.
    pub fn never_started(&self, task_finished: bool) -> bool {
        task_finished && self.opened_at.is_none()
    }
}

/// One target as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetRow {
    /// Agent id.
    pub agent: String,
    /// Store.
    pub store: String,
    /// Region.
    pub region: String,
    /// Wave.
    pub wave: u32,
    /// State (see [`storefleet_core::rollout::TargetState::as_str`]).
    pub state: String,
    /// When sent, ms.
    pub sent_at: Option<i64>,
    /// When the agent said it started, ms.
    pub started_at: Option<i64>,
    /// When it finished, ms.
    pub finished_at: Option<i64>,
    /// The command id (also the routine run's id on the agent).
    pub command_id: String,
    /// The routine's outcome as the agent reported it.
    pub outcome: String,
    /// The agent's one-line message.
    pub message: String,
}
