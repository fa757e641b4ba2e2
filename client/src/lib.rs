//! The controller's HTTP API as a contract (`/api/v1`, described by the controller at
//! `/api/v1/openapi.json`): the types of its requests and answers, the checks the controller
//! makes on a task before it accepts one, and [`Client`], a typed client.
//!
//! The controller serves these same types, so a change of the API that a client does not
//! follow fails to compile, not at run time. The CLI, the simulator, the benchmarks and the
//! tests use [`Client`]; an outside Rust client needs this crate only, not the controller
//! and its databases.

pub mod agents;
pub mod assets;
pub mod auth;
pub mod broker;
mod client;
pub mod engineers;
pub mod enroll;
pub mod events;
pub mod imports;
pub mod ingest;
pub mod openings;
pub mod releases;
pub mod stores;
pub mod tasks;
pub mod tickets;

pub use client::Client;
use storefleet_support::http;

/// The header that carries a release manifest's signature on a publish
/// (`PUT /api/v1/releases/{version}/{arch}`).
pub const SIGNATURE_HEADER: &str = "storefleet-release-signature";

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
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
    /// The call ran but what it asked for did not happen (an agent did not answer).
    #[error("{0}")]
    Failed(String),
    /// No API token was given or found.
    #[error("no API token: pass --token, set STOREFLEET_TOKEN, or run where the controller's state directory is readable ({0})")]
    NoToken(String),
}

/// Percent-encodes `s` for a URL, leaving unreserved characters and `/` as they are.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Percent-encodes one path segment (a `/` in an id cannot reach another route).
pub fn enc(s: &str) -> String {
    url_encode(s).replace('/', "%2F")
}
