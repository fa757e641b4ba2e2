//! End-to-end tests of the controller: the real `storefleet serve` process, the real
//! `storefleet-agent` binary, the embedded broker and (when `STOREFLEET_TEST_MQTT` is set,
//! as in CI) Mosquitto.

mod ack_order;
mod agent_commands;
mod api;
mod behind;
mod broker_auth;
mod browser;
mod browser_dispatch;
mod browser_openings;
mod browser_tickets;
mod common;
mod config;
mod demo;
mod discovered;
mod dispatch;
mod e2e;
mod held;
mod https;
mod imports;
mod lanes;
mod looks;
mod migrate_db;
mod mosquitto_acl;
mod openings;
mod parts;
mod replicas;
mod roles;
mod security;
mod session;
mod sla;
mod slow_http;
mod store_page;
mod tasks;
mod tickets;
mod ui_admin;
mod update;
mod web_security;
