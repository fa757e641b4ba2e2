//! The Storefleet store-gateway agent.
//!
//! # Layout
//!
//! - [`config`]: typed configuration, loading and validation.
//! - [`identity`]: the agent's key pair and id.
//! - [`buffer`]: the durable local buffer (SQLite, one owner thread).
//! - [`health`]: the agent's own counters and gauges.

pub mod buffer;
pub mod config;
pub mod health;
pub mod identity;
