//! The JSON HTTP API under `/api/v1/`, documented by the OpenAPI document at
//! `/api/v1/openapi.json`.
//!
//! Every route but `health`, `openapi.json` and `enroll` (which carries its own token)
//! needs a bearer API token (`Authorization: Bearer sft_...`) or a signed-in UI session.
//! Errors are JSON `{"error": "..."}` with a 4xx status naming what was wrong, or 5xx when
//! the controller failed.

mod assets;
mod fleet;
mod openapi;
pub mod releases;
mod stores;
mod tasks;
pub mod tickets;
mod tokens;

pub use tokens::endpoints;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;

use crate::auth;
use crate::db::DbError;
use crate::state::AppState;

/// Name of the UI's session cookie.
pub const SESSION_COOKIE: &str = "sf_session";

/// An API error: a status and a message for people.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl ApiError {
    /// 400 with `msg`.
    pub fn bad(msg: impl Into<String>) -> ApiError {
        ApiError(StatusCode::BAD_REQUEST, msg.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound(m) => ApiError(StatusCode::NOT_FOUND, m),
            DbError::Invalid(m) => ApiError(StatusCode::BAD_REQUEST, m),
            DbError::Conflict(m) => ApiError(StatusCode::CONFLICT, m),
            DbError::Closed => ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                "the controller is stopping".into(),
            ),
            DbError::Sqlite(m) => {
                tracing::error!(error = %m, "Database error while serving a request");
                ApiError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "database error; see the controller's log".into(),
                )
            }
        }
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// Parses a JSON body; the error names the field and what was expected.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ApiError::bad(format!("invalid JSON body: {inner}"))
        } else {
            ApiError::bad(format!("invalid JSON body: field `{path}`: {inner}"))
        }
    })
}

/// Who is calling: `token:<name>` or `user:<name>`.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The actor as written into history.
    pub actor: String,
}

/// The value of cookie `name` in the request.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The signed-in UI user, if any.
pub async fn session_user(parts: &Parts, state: &AppState) -> Option<String> {
    let c = cookie(parts, SESSION_COOKIE)?.to_owned();
    let now = storefleet_protocol::now_ms();
    state
        .db
        .read(move |db| auth::session_user(db, &c, now))
        .await
        .ok()
        .flatten()
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let bearer = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_owned());
        if let Some(t) = bearer {
            let found = state.db.read(move |c| auth::api_token_name(c, &t)).await?;
            return match found {
                Some((_, name)) => Ok(Principal {
                    actor: format!("token:{name}"),
                }),
                None => Err(ApiError(
                    StatusCode::UNAUTHORIZED,
                    "unknown or revoked API token".into(),
                )),
            };
        }
        if let Some(user) = session_user(parts, state).await {
            return Ok(Principal {
                actor: format!("user:{user}"),
            });
        }
        Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "authentication required: Authorization: Bearer <API token>".into(),
        ))
    }
}

async fn health(
    axum::extract::State(s): axum::extract::State<AppState>,
) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "ingest_connected": s.stats.connected(),
    }))
}

async fn metrics(
    axum::extract::State(s): axum::extract::State<AppState>,
    who: Result<Principal, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    if !s.config.http.metrics_public {
        who?;
    }
    let mut out = String::new();
    s.stats.render(&mut out);
    s.http_stats.render(&mut out);
    render_ticket_metrics(&s, &mut out).await;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    ))
}

async fn render_ticket_metrics(s: &AppState, out: &mut String) {
    use std::fmt::Write as _;
    use std::sync::atomic::Ordering::Relaxed;
    let c = &s.ticket_counters;
    for (name, help, v) in [
        (
            "storefleet_rule_evaluations_total",
            "Rule evaluations run",
            c.evaluations.load(Relaxed),
        ),
        (
            "storefleet_alerts_fired_total",
            "Alerts fired",
            c.fired.load(Relaxed),
        ),
        (
            "storefleet_tickets_opened_total",
            "Tickets opened by rules",
            c.opened.load(Relaxed),
        ),
        (
            "storefleet_alerts_healed_total",
            "Alerts healed by their routine, no ticket",
            c.healed.load(Relaxed),
        ),
        (
            "storefleet_ticket_escalations_total",
            "Ticket escalations",
            c.escalated.load(Relaxed),
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
        );
    }
    if let Ok(w) = s.db.read(crate::webhooks::counts).await {
        let _ = writeln!(out, "# HELP storefleet_webhook_deliveries Webhook deliveries by state\n# TYPE storefleet_webhook_deliveries gauge");
        for (state, v) in [
            ("pending", w.pending),
            ("delivered", w.delivered),
            ("failed", w.failed),
        ] {
            let _ = writeln!(
                out,
                "storefleet_webhook_deliveries{{state=\"{state}\"}} {v}"
            );
        }
    }
}

/// The API routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/api/v1/enroll", post(tokens::enroll))
        .route(
            "/api/v1/enroll-tokens",
            get(tokens::list).post(tokens::create),
        )
        .route("/api/v1/enroll-tokens/{id}/revoke", post(tokens::revoke))
        .route("/api/v1/stores", get(stores::list).post(stores::create))
        .route("/api/v1/stores/{code}", get(stores::get).put(stores::put))
        .route("/api/v1/stores/{code}/series", get(fleet::series))
        .route("/api/v1/series/{id}/points", get(fleet::points))
        .route("/api/v1/fleet", get(fleet::overview))
        .route("/api/v1/agents", get(fleet::agents))
        .route("/api/v1/agents/{id}", get(fleet::agent))
        .route("/api/v1/agents/{id}/revoke", post(fleet::revoke_agent))
        .route("/api/v1/agents/{id}/reenroll", post(fleet::reenroll_agent))
        .route("/api/v1/agents/{id}/ping", post(tasks::ping_agent))
        .route("/api/v1/agents/{id}/reload", post(tasks::reload_agent))
        .route("/api/v1/devices", get(fleet::devices))
        .route("/api/v1/events", get(fleet::events))
        .route("/api/v1/runs", get(fleet::runs))
        .route("/api/v1/tasks", get(tasks::list).post(tasks::create))
        .route("/api/v1/tasks/preview", post(tasks::preview))
        .route("/api/v1/tasks/{id}", get(tasks::get))
        .route("/api/v1/tasks/{id}/targets", get(tasks::targets))
        .route("/api/v1/tasks/{id}/pause", post(tasks::pause))
        .route("/api/v1/tasks/{id}/resume", post(tasks::resume))
        .route("/api/v1/tasks/{id}/cancel", post(tasks::cancel))
        .route("/api/v1/assets", get(assets::search))
        .route("/api/v1/assets.csv", get(assets::csv))
        .route("/api/v1/assets/{id}", get(assets::get).patch(assets::edit))
        .route("/api/v1/assets/{id}/history", get(assets::history))
        .route("/api/v1/tickets", get(tickets::list).post(tickets::create))
        .route("/api/v1/tickets/{id}", get(tickets::get))
        .route("/api/v1/tickets/{id}/actions", post(tickets::act))
        .route("/api/v1/engineers", get(tickets::engineers_list))
        .route(
            "/api/v1/engineers/{id}",
            axum::routing::put(tickets::engineer_put),
        )
        .route(
            "/api/v1/engineers/{id}/status",
            post(tickets::engineer_status),
        )
        .route("/api/v1/alerts", get(tickets::alerts))
        .route(
            "/api/v1/silences",
            get(tickets::silences).post(tickets::silence_create),
        )
        .route(
            "/api/v1/silences/{id}",
            axum::routing::delete(tickets::silence_delete),
        )
        .route("/api/v1/kpis", get(tickets::kpis))
        .route("/api/v1/releases", get(releases::list))
        .route(
            "/api/v1/releases/{version}/{arch}",
            axum::routing::put(releases::publish).layer(axum::extract::DefaultBodyLimit::max(
                releases::MAX_RELEASE_BYTES,
            )),
        )
        .route("/releases/{version}/{arch}", get(releases::download))
        .route("/api/v1/webhooks", get(tickets::webhooks))
}
