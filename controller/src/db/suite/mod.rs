//! The repositories' shared suite: each test runs on SQLite and on PostgreSQL
//! ([`super::testing::on_each_backend`]).

mod alerts;
mod assets;
mod gateways;
mod held;
mod openings;
mod overview;
mod people;
mod rollups;
mod tasks;
mod telemetry;
