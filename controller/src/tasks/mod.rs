//! Fleet tasks: one maintenance routine pushed to many stores in safe waves.
//!
//! A task is what to run ([`TaskAction`]), where ([`Selector`]), how ([`Plan`](crate::rollout::Plan): canary,
//! waves, region cap, timeout, abort threshold, expiry) and when ([`Window`](storefleet_schedule::Window), held in each
//! store's own zone and trading hours). Creating a task resolves the selector once into its
//! targets, one per agent, stored with their waves ([`db`]). The [`engine`] then drives the
//! pure [`crate::rollout`] machine: it feeds it presence, windows and the agents' reported
//! results, stores every target's state, and turns each `Send` into a signed `run-routine`
//! command whose id names the task and the target, so that the agent runs it at most once
//! and its result finds the target again.

pub mod db;
pub mod engine;
pub mod select;
pub mod window;

pub use select::Selector;
pub use storefleet_client::tasks::{
    PreviewTarget, TargetRow, TaskAction, TaskPreview, TaskSpec, TaskSummary, WaveProgress,
    WindowOpens, MAX_DOCUMENT_BYTES, MAX_TARGET_TIMEOUT_MS,
};
