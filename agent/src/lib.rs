//! The Storefleet store-gateway agent.
//!
//! Collects the gateway's and its devices' telemetry, keeps it in a local buffer that
//! survives outages and power loss, and syncs it over MQTT with the controller, which can
//! send it signed commands.
//!
//! # Layout
//!
//! - [`agent`]: `run()`, wiring, reload and shutdown.
//! - [`config`]: typed configuration, loading and validation.
//! - [`identity`]: the agent's key pair and id.
//! - [`enroll`]: `enroll TOKEN`: registering the key, pinning the controller's.
//! - [`buffer`]: the durable local buffer (SQLite, one owner thread).
//! - [`sync`]: the MQTT connection: publishing from the buffer, PUBACK tracking, reconnects.
//! - [`routines`]: maintenance routines: the document and the pure run state machine.
//! - [`commands`]: verifying and running the controller's commands.
//! - [`collect`]: host metrics, device probes, inventory, the local ingest endpoint.
//! - [`discover`]: sweeping the store's subnets for devices.
//! - [`health`]: the agent's own counters and gauges.

pub mod agent;
pub mod buffer;
pub mod collect;
pub mod commands;
pub mod config;
pub mod discover;
pub mod enroll;
pub mod health;
pub mod identity;
pub mod latest;
pub mod process;
pub mod remote_config;
pub mod routines;
pub mod sync;
pub mod update;

pub use agent::{run, AgentError};
