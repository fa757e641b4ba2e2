//! Maintenance routines: declarative, versioned documents of check, action and verify
//! steps, run like a careful operator would: look first, act only when something is wrong,
//! then verify, and say plainly how it ended.
//!
//! - [`doc`]: the routine document (TOML), its triggers and its validation.
//! - [`run`]: the pure run state machine: which step to execute next, retries and delays,
//!   and the outcome. It never sleeps, spawns or reads a clock.
//! - [`actions`]: the built-in actions, one file each, and what the config allows.
//! - [`shell`]: executes a run: window, timeouts, retry delays, the record.
//! - [`runner`]: the loaded routines (`routines.d/`), one run at a time per routine, the
//!   buffered records and escalation events.
//! - [`triggers`]: cron schedules and conditions on the latest readings.
//! - [`local_api`]: `storefleet-agent routine ...` through the loopback endpoint.
//! - [`library`]: the retail routines shipped with the agent.
//!
//! Outcomes: `already_fine` (every check passed; nothing was done), `healed` (actions ran
//! and every verification passed), `failed` (an action failed after its retries),
//! `escalated` (actions ran but a verification still fails: a person is needed),
//! `skipped` (outside its window; decided before a run starts).

pub mod actions;
pub mod cli;
pub mod doc;
pub mod library;
pub mod local_api;
pub mod run;
pub mod runner;
pub mod shell;
pub mod triggers;

pub use doc::{DocError, Routine, Step, StepKind};
pub use run::{Next, Outcome, Run, StepRecord};
pub use runner::{RunError, Runner};
