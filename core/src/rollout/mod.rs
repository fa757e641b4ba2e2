//! Staged rollouts of fleet tasks: a pure state machine. It owns no clock, no socket and no
//! database: the caller feeds it what happened (a target started, a result arrived, time
//! passed) and what the world looks like now (which targets are online, which are inside
//! their store's window), and it answers with what to do (send to these targets) and how
//! each target stands. The database keeps the states; the task engine turns `Send` into
//! signed commands.
//!
//! A rollout goes in waves: the canary targets first, then waves by cumulative percentage
//! of the rest. A wave opens only when every target of the waves before it has finished
//! (succeeded, failed, timed out, rejected, skipped or cancelled). Inside the open waves a
//! target is sent its command when it is online, inside its window, and its region has fewer
//! than the cap in flight. When the failure rate (failed, timed out or rejected, over those
//! finished) passes the threshold after the minimum number finished, the rollout aborts and
//! every target not yet sent is cancelled. Targets that stay offline past the expiry after
//! their wave opened are skipped.

mod machine;
mod plan;
mod target;
#[cfg(test)]
mod tests;

pub use machine::{Action, Phase, Rollout, World};
pub use plan::{Plan, PlanError};
pub use target::{Outcome, Target, TargetState};
