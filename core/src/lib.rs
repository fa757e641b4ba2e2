//! Storefleet's pure domain: the rules that decide what the controller does, with no clock,
//! socket or database in them. Callers feed them what happened and what the world looks
//! like now, and they answer with what to do; the controller's engines own the I/O.
//!
//! - [`alerts`]: alert rules and the state machine that fires and clears them.
//! - [`lifecycle`]: a ticket's statuses, the actions between them, priority and SLA clocks.
//! - [`assign`]: the best engineer for a ticket, and why.
//! - [`geo`]: coordinates, distances and drive times.
//! - [`rollout`]: staged rollouts of fleet tasks in waves.
//!
//! Being its own crate keeps it pure: it cannot reach the database or the network because
//! it does not depend on them, and its tests need neither.

pub mod alerts;
pub mod assign;
pub mod engineer;
pub mod geo;
pub mod lifecycle;
pub mod rollout;
