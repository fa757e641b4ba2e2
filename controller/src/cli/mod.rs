//! The admin commands: each talks to the controller's HTTP API with an API token and prints
//! a table, or the API's JSON with `--json`.

mod commands;
mod connect;
pub mod ingest;
pub mod release;
mod table;
pub mod task;
pub mod tickets;
pub mod users;

pub(crate) use crate::client::Client;
pub use commands::{run, AdminCmd};
pub use connect::Connect;
use storefleet_support::http;

pub(crate) use crate::client::enc;

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The controller could not be reached.
    #[error("cannot reach the controller: {0}")]
    Http(#[from] http::HttpError),
    /// The API answered with an error.
    #[error("the controller answered {status}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Its message.
        message: String,
    },
    /// The command ran but what it asked for did not happen (an agent did not answer).
    #[error("{0}")]
    Failed(String),
    /// No API token was given or found.
    #[error("no API token: pass --token, set STOREFLEET_TOKEN, or run where the controller's state directory is readable ({0})")]
    NoToken(String),
}
