//! Routines on the agent's loopback endpoint, for `storefleet-agent routine ...` on the
//! gateway:
//!
//! - `GET /v1/routines`: the loaded routines.
//! - `POST /v1/routines/{name}/run` with `{"ignore_window": false}`: runs it now and answers
//!   with the run record when it ends (`404` unknown, `409` running already, `403` refused).
//!
//! Both need `Authorization: Bearer TOKEN`, the token the agent writes at start to
//! `local-api.token` (mode 0600) in its state directory: a process that cannot read the
//! agent's state cannot make it act.

use std::path::{Path, PathBuf};

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use serde::Deserialize;
use storefleet_protocol::routine::Trigger;

use super::runner::{RunError, Runner};
use super::triggers::run_id;

/// File name of the local API token in the state directory.
pub const TOKEN_FILE: &str = "local-api.token";

/// The token file of a state directory.
pub fn token_path(state_dir: &Path) -> PathBuf {
    state_dir.join(TOKEN_FILE)
}

/// Makes a new token and writes it (0600).
pub fn new_token(state_dir: &Path) -> Result<String, String> {
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>());
    let path = token_path(state_dir);
    storefleet_support::keyfile::write_private(&path, token.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(token)
}

#[derive(Clone)]
struct ApiState {
    runner: Runner,
    token: String,
}

/// The routes (merged into the ingest endpoint's router).
pub fn router(runner: Runner, token: String) -> Router {
    Router::new()
        .route("/v1/routines", get(list))
        .route("/v1/routines/{name}/run", post(run))
        .with_state(ApiState { runner, token })
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    let body = serde_json::to_string(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn error(status: StatusCode, message: &str) -> Response {
    json(status, &serde_json::json!({ "error": message }))
}

fn authorized(st: &ApiState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    // Compared without an early exit, so the time taken says nothing about the token.
    let same = given.len() == st.token.len()
        && given
            .bytes()
            .zip(st.token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            &format!("routines need the agent's local token ({TOKEN_FILE} in its state directory)"),
        )))
    }
}

async fn list(State(st): State<ApiState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorized(&st, &headers) {
        return *r;
    }
    let routines: Vec<serde_json::Value> = st
        .runner
        .list()
        .iter()
        .map(|p| {
            let r = &p.routine;
            serde_json::json!({
                "name": r.name,
                "version": r.version,
                "description": r.description,
                "device": r.device,
                "window": r.window,
                "triggers": r.triggers,
                "steps": r.steps.len(),
            })
        })
        .collect();
    json(StatusCode::OK, &serde_json::json!({ "routines": routines }))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RunBody {
    #[serde(default)]
    ignore_window: bool,
}

async fn run(
    State(st): State<ApiState>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = authorized(&st, &headers) {
        return *r;
    }
    let req: RunBody = if body.is_empty() {
        RunBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("body: {e}")),
        }
    };
    let Some(p) = st.runner.get(&name) else {
        return error(StatusCode::NOT_FOUND, &RunError::Unknown(name).to_string());
    };
    match st
        .runner
        .run(p, run_id(), Trigger::Manual, req.ignore_window)
        .await
    {
        Ok(record) => json(StatusCode::OK, &record),
        Err(e @ RunError::Busy(_)) => error(StatusCode::CONFLICT, &e.to_string()),
        Err(e) => error(StatusCode::FORBIDDEN, &e.to_string()),
    }
}
