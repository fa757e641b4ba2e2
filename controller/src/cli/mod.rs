//! The admin commands: each talks to the controller's HTTP API with an API token and prints
//! a table, or the API's JSON with `--json`.

mod assets;
mod commands;
mod connect;
mod import;
pub mod ingest;
mod openings;
pub mod release;
mod table;
pub mod task;
pub mod tickets;
pub mod users;

pub(crate) use crate::client::Client;
pub use commands::{run, AdminCmd};
pub use connect::Connect;

pub(crate) use crate::client::enc;

/// Why an admin command failed: the client's error.
pub use storefleet_client::Error as CliError;
