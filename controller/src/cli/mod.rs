//! The admin commands: each talks to the controller's HTTP API with an API token and prints
//! a table, or the API's JSON with `--json`.

mod commands;
mod connect;
pub mod release;
mod table;
pub mod task;
pub mod tickets;
pub mod users;

use std::time::Duration;

pub use commands::{run, AdminCmd};
pub use connect::Connect;
use serde_json::Value;
use storefleet_support::http::{self, Request};

/// Percent-encodes one path segment (a `/` in an id cannot reach another route).
pub(crate) fn enc(s: &str) -> String {
    crate::ui::url_encode(s).replace('/', "%2F")
}

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

/// A client of the API.
#[derive(Debug, Clone)]
pub struct Client {
    /// Base URL, e.g. `https://127.0.0.1:8080`.
    pub base: String,
    /// Bearer token.
    pub token: String,
    /// What `https://` trusts: the controller's pinned key, a CA file, or the system's CAs.
    pub trust: http::Trust,
}

impl Client {
    /// A client of `base` with `token`, trusting the system's CAs.
    pub fn new(base: impl Into<String>, token: impl Into<String>) -> Client {
        Client {
            base: base.into(),
            token: token.into(),
            trust: http::Trust::default(),
        }
    }

    /// Sends a request with a JSON body; returns the body (JSON, or text as a JSON string).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
        self.call_with(method, path, Vec::new(), body).await
    }

    /// Sends a request with extra headers and any body; answers as [`Client::call`].
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        mut headers: Vec<(&str, String)>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Value, CliError> {
        let url = format!("{}{path}", self.base.trim_end_matches('/'));
        headers.push(("authorization", format!("Bearer {}", self.token)));
        // A release upload may take minutes on a slow line; everything else, one.
        let big = body.as_ref().is_some_and(|b| b.1.len() > 1 << 20);
        let resp = http::Client::new(&self.trust)?
            .send(
                Request {
                    method,
                    url: &url,
                    headers,
                    body,
                },
                Duration::from_secs(if big { 300 } else { 60 }),
            )
            .await?;
        let is_json = resp
            .content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("application/json"));
        if !(200..300).contains(&resp.status) {
            let message = if is_json {
                serde_json::from_slice::<Value>(&resp.body)
                    .ok()
                    .and_then(|v| v["error"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| resp.text())
            } else {
                resp.text()
            };
            return Err(CliError::Api {
                status: resp.status,
                message,
            });
        }
        if resp.body.is_empty() {
            return Ok(Value::Null);
        }
        if is_json {
            serde_json::from_slice(&resp.body).map_err(|e| CliError::Api {
                status: resp.status,
                message: format!("unreadable JSON: {e}"),
            })
        } else {
            Ok(Value::String(resp.text()))
        }
    }
}
