//! The Storefleet controller: enrollment, ingest, asset records, the HTTP API, the web UI
//! and the admin CLI, with an embedded MQTT broker and SQLite by default.
//!
//! # Layout
//!
//! - [`config`]: typed configuration, layered like the agent's.
//! - [`db`]: SQLite with one writer thread, group commit, migrations.
//! - [`server`]: starts the broker, database, ingest, HTTP and housekeeping.
//! - [`ingest`]: the MQTT subscription, verification, batching, and [`ingest::write`], which
//!   stores each `(agent, seq)` once.
//! - [`enroll`], [`agents`], [`stores`]: tokens, registered keys and presence, stores.
//! - [`assets`]: asset records, identity matching, history, search and CSV.
//! - [`telemetry`], [`events`], [`fleet`]: reading data back and judging live state.
//! - [`auth`]: users, roles, sessions, API tokens; [`access`]: every route's rule and its guard. [`http`]: serving with timeouts and caps.
//! - [`api`] and [`ui`]: the JSON API (with its OpenAPI document) and the web pages.
//! - [`cli`]: the admin commands, which talk to the API through [`client`].
//!
//! The API's request and answer types live in `storefleet-client` ([`client`]), which the
//! modules here re-export where they store and serve them.
//! - [`rollout`]: the staged rollout of fleet tasks, a pure state machine.
//! - [`tasks`]: fleet tasks: targets, the engine that drives rollouts, signed commands.
//! - [`alerts`]: alert rules, their pure evaluator, and reading conditions from the data.
//! - [`tickets`]: dispatch tickets: placement, lifecycle, SLA, assignment, the engine.
//! - [`engineers`]: field engineers. [`webhooks`]: signed ticket events to ITSM systems.
//! - [`releases`]: agent releases signed with the release key.
//! - [`kpi`]: the service KPIs. [`fmt`]: times and numbers for people.

pub mod access;
pub mod agents;
pub mod alerts;
pub mod api;
pub mod assets;
pub mod auth;
pub mod broker_auth;
pub mod broker_config;
pub mod broker_tls;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod db;
pub mod discovered;
pub mod engineers;
pub mod enroll;
pub mod events;
pub mod fleet;
pub mod fmt;
pub mod guard;
pub mod http;
pub mod https;
pub mod import;
pub mod ingest;
pub mod kpi;
pub mod openings;
pub mod releases;
pub use storefleet_core::rollout;
pub mod runs;
pub mod server;
pub mod service;
pub mod state;
pub mod stores;
pub mod tasks;
pub mod telemetry;
pub mod tickets;
pub mod ui;
pub mod webhooks;

pub use storefleet_client as client;
