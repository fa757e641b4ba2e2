//! `http.check`: an `http://` endpoint answers with the expected status and, optionally,
//! a body containing a text (a POS server's health page, a signage player's status).
//!
//! ```toml
//! action = "http.check"
//! args = { url = "http://127.0.0.1:8080/health", expect_status = 200, contains = "\"ok\"" }
//! ```

use std::fmt::Write as _;
use std::time::Duration;

use serde::Deserialize;
use storefleet_support::http::{send, Request};

use super::Done;

fn ok_status() -> u16 {
    200
}

fn ten() -> u64 {
    10
}

/// `http.check`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// `http://host[:port]/path`.
    pub url: String,
    /// Expected status.
    #[serde(default = "ok_status")]
    pub expect_status: u16,
    /// Text the body must contain.
    #[serde(default)]
    pub contains: String,
    /// Seconds to wait for the whole answer.
    #[serde(default = "ten")]
    pub timeout_secs: u64,
}

impl Check {
    /// Runs it.
    pub async fn run(&self) -> Done {
        let req = Request {
            method: "GET",
            url: &self.url,
            ..Request::default()
        };
        let started = std::time::Instant::now();
        match send(req, Duration::from_secs(self.timeout_secs)).await {
            Err(e) => Done::fail(e.to_string()),
            Ok(r) => {
                let ms = started.elapsed().as_millis();
                let status_ok = r.status == self.expect_status;
                let body_ok = self.contains.is_empty() || r.text().contains(&self.contains);
                let mut out = format!("{}: {} in {ms} ms", self.url, r.status);
                if !status_ok {
                    let _ = write!(out, ", expected {}", self.expect_status);
                }
                if !body_ok {
                    let _ = write!(out, ", body lacks {:?}", self.contains);
                }
                Done::from(status_ok && body_ok, out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn server() -> std::net::SocketAddr {
        use axum::http::StatusCode;
        use axum::routing::get;
        let app = axum::Router::new()
            .route("/health", get(|| async { "{\"status\":\"ok\"}" }))
            .route(
                "/down",
                get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "busy") }),
            );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await });
        addr
    }

    fn check(url: String, contains: &str) -> Check {
        Check {
            url,
            expect_status: 200,
            contains: contains.into(),
            timeout_secs: 5,
        }
    }

    #[tokio::test]
    async fn status_and_body_are_judged_against_a_real_server() {
        let addr = server().await;
        let ok = check(format!("http://{addr}/health"), "\"ok\"").run().await;
        assert!(ok.ok, "{}", ok.output);
        let down = check(format!("http://{addr}/down"), "").run().await;
        assert!(
            !down.ok && down.output.contains(": 503 ") && down.output.contains("expected 200"),
            "{}",
            down.output
        );
        let body = check(format!("http://{addr}/health"), "ready").run().await;
        assert!(
            !body.ok && body.output.contains("body lacks"),
            "{}",
            body.output
        );
    }
}
