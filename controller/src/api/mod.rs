//! The JSON HTTP API under `/api/v1/`, documented by the OpenAPI document at
//! `/api/v1/openapi.json`.
//!
//! Every route but `health`, `openapi.json` and `enroll` (which carries its own token)
//! needs a bearer API token (`Authorization: Bearer sft_...`) or a signed-in UI session.
//! Errors are JSON `{"error": "..."}` with a 4xx status naming what was wrong, or 5xx when
//! the controller failed.

mod assets;
mod filters;
mod fleet;
mod imports;
mod openapi;
mod openings;
pub mod releases;
mod stores;
mod tasks;
pub mod tickets;
mod tokens;
mod users;

pub use tokens::endpoints;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use serde::de::DeserializeOwned;

use crate::access::Routes;
use crate::auth::Access;
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

impl From<storefleet_client::tasks::Invalid> for ApiError {
    fn from(e: storefleet_client::tasks::Invalid) -> Self {
        ApiError(StatusCode::BAD_REQUEST, e.0)
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
            DbError::Collision(m) => {
                tracing::warn!(error = %m, "A request's transaction collided with another writer");
                ApiError(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the request collided with another change; try again".into(),
                )
            }
            DbError::Unavailable(m) => {
                tracing::error!(error = %m, "Database unavailable while serving a request");
                ApiError(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the database is not available; try again shortly".into(),
                )
            }
            DbError::Refused(m) => {
                tracing::warn!(error = %m, "The database refused a request's data");
                ApiError(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("the data cannot be stored: {m}"),
                )
            }
            DbError::Backend(m) => {
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

pub use crate::service::Principal;

/// The value of cookie `name` in `headers`.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // Every route that takes a principal has a rule, and the guard put the caller here.
        parts.extensions.get::<Principal>().cloned().ok_or_else(|| {
            ApiError(
                StatusCode::UNAUTHORIZED,
                "authentication required: Authorization: Bearer <API token>".into(),
            )
        })
    }
}

impl From<crate::service::Error> for ApiError {
    fn from(e: crate::service::Error) -> Self {
        match e {
            crate::service::Error::Forbidden(m) => ApiError(StatusCode::FORBIDDEN, m),
            crate::service::Error::Db(e) => e.into(),
        }
    }
}

async fn health(
    axum::extract::State(s): axum::extract::State<AppState>,
) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "ingest_connected": s.stats.connected(),
        "replica": s.config.controller.replica,
        "engines": s.lease.held(),
    }))
}

async fn metrics(
    axum::extract::State(s): axum::extract::State<AppState>,
) -> Result<impl IntoResponse, ApiError> {
    let mut out = String::new();
    s.stats.render(&mut out);
    s.http_stats.render(&mut out);
    {
        use std::fmt::Write as _;
        let _ = writeln!(
            out,
            "# HELP storefleet_controller_engines_held Whether this replica holds the engine lease (runs the task, ticket and webhook engines)\n# TYPE storefleet_controller_engines_held gauge\nstorefleet_controller_engines_held {}",
            u8::from(s.lease.held())
        );
        let _ = writeln!(
            out,
            "# HELP storefleet_broker_connections_refused_total Connections the embedded broker refused (credentials or client id)\n# TYPE storefleet_broker_connections_refused_total counter\nstorefleet_broker_connections_refused_total {}",
            s.broker_refusals.refused.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
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
            "Rule evaluations of the whole fleet",
            c.evaluations.load(Relaxed),
        ),
        (
            "storefleet_rule_store_looks_total",
            "Rule evaluations of a few stores (reported faults, due alerts)",
            c.looks.load(Relaxed),
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
    let _ = writeln!(
        out,
        "# HELP storefleet_rule_fleet_read_ms How long the last read of the whole fleet for the rules took\n# TYPE storefleet_rule_fleet_read_ms gauge\nstorefleet_rule_fleet_read_ms {}",
        c.fleet_read_ms.load(Relaxed)
    );
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

/// The API routes, each with its rule.
pub fn routes() -> Routes {
    use crate::auth::roles::{ADMIN, DISPATCHER, ENGINEER, PUBLIC, VIEWER};
    use axum::routing::{delete, patch, put};
    Routes::default()
        .get("/api/v1/health", PUBLIC, get(health))
        .get("/metrics", Access::Metrics, get(metrics))
        .get("/api/v1/openapi.json", PUBLIC, get(openapi::document))
        .post("/api/v1/enroll", PUBLIC, post(tokens::enroll))
        .get("/api/v1/enroll-tokens", ADMIN, get(tokens::list))
        .post("/api/v1/enroll-tokens", ADMIN, post(tokens::create))
        .post(
            "/api/v1/enroll-tokens/{id}/revoke",
            ADMIN,
            post(tokens::revoke),
        )
        .get("/api/v1/stores", VIEWER, get(stores::list))
        .post("/api/v1/stores", ADMIN, post(stores::create))
        .post(
            "/api/v1/stores/import",
            ADMIN,
            post(imports::stores).layer(axum::extract::DefaultBodyLimit::max(imports::MAX_BYTES)),
        )
        .get("/api/v1/stores/{code}", VIEWER, get(stores::get))
        .put("/api/v1/stores/{code}", ADMIN, put(stores::put))
        .get("/api/v1/stores/{code}/series", VIEWER, get(fleet::series))
        .get(
            "/api/v1/stores/{code}/discovered",
            VIEWER,
            get(stores::discovered),
        )
        .get(
            "/api/v1/stores/{code}/readiness",
            VIEWER,
            get(openings::readiness),
        )
        .put("/api/v1/stores/{code}/opening", ADMIN, put(openings::set))
        .delete(
            "/api/v1/stores/{code}/opening",
            ADMIN,
            delete(openings::clear),
        )
        .post(
            "/api/v1/stores/{code}/checks",
            DISPATCHER,
            post(openings::tick),
        )
        .get("/api/v1/openings", VIEWER, get(openings::board))
        .get("/api/v1/formats", VIEWER, get(openings::formats))
        .get("/api/v1/formats/{name}", VIEWER, get(openings::format))
        .put("/api/v1/formats/{name}", ADMIN, put(openings::put_format))
        .delete(
            "/api/v1/formats/{name}",
            ADMIN,
            delete(openings::delete_format),
        )
        .get("/api/v1/series/{id}/points", VIEWER, get(fleet::points))
        .get("/api/v1/fleet", VIEWER, get(fleet::overview))
        .get("/api/v1/agents", VIEWER, get(fleet::agents))
        .get("/api/v1/agents/{id}", VIEWER, get(fleet::agent))
        .post(
            "/api/v1/agents/{id}/revoke",
            ADMIN,
            post(fleet::revoke_agent),
        )
        .post(
            "/api/v1/agents/{id}/reenroll",
            ADMIN,
            post(fleet::reenroll_agent),
        )
        .post("/api/v1/agents/{id}/ping", ADMIN, post(tasks::ping_agent))
        .post(
            "/api/v1/agents/{id}/reload",
            ADMIN,
            post(tasks::reload_agent),
        )
        .get("/api/v1/ingest/held", ADMIN, get(fleet::held))
        .post(
            "/api/v1/ingest/held/{agent}/{seq}/retry",
            ADMIN,
            post(fleet::held_retry),
        )
        .delete(
            "/api/v1/ingest/held/{agent}/{seq}",
            ADMIN,
            delete(fleet::held_drop),
        )
        .get("/api/v1/devices", VIEWER, get(fleet::devices))
        .get("/api/v1/events", VIEWER, get(fleet::events))
        .get("/api/v1/runs", VIEWER, get(fleet::runs))
        .get("/api/v1/tasks", VIEWER, get(tasks::list))
        .post("/api/v1/tasks", ADMIN, post(tasks::create))
        .post("/api/v1/tasks/preview", ADMIN, post(tasks::preview))
        .get("/api/v1/tasks/{id}", VIEWER, get(tasks::get))
        .get("/api/v1/tasks/{id}/targets", VIEWER, get(tasks::targets))
        .post("/api/v1/tasks/{id}/pause", ADMIN, post(tasks::pause))
        .post("/api/v1/tasks/{id}/resume", ADMIN, post(tasks::resume))
        .post("/api/v1/tasks/{id}/cancel", ADMIN, post(tasks::cancel))
        .get("/api/v1/assets", VIEWER, get(assets::search))
        .post("/api/v1/assets", DISPATCHER, post(assets::create))
        .get("/api/v1/assets.csv", VIEWER, get(assets::csv))
        .post(
            "/api/v1/assets/import",
            DISPATCHER,
            post(imports::assets).layer(axum::extract::DefaultBodyLimit::max(imports::MAX_BYTES)),
        )
        .get("/api/v1/assets/{id}", VIEWER, get(assets::get))
        .patch("/api/v1/assets/{id}", DISPATCHER, patch(assets::edit))
        .get("/api/v1/assets/{id}/history", VIEWER, get(assets::history))
        .get("/api/v1/tickets", VIEWER, get(tickets::list))
        .post("/api/v1/tickets", DISPATCHER, post(tickets::create))
        .get("/api/v1/tickets/{id}", VIEWER, get(tickets::get))
        .post("/api/v1/tickets/{id}/actions", ENGINEER, post(tickets::act))
        .post(
            "/api/v1/tickets/{id}/parts",
            ENGINEER,
            post(tickets::add_part),
        )
        .patch(
            "/api/v1/tickets/{id}/parts/{part}",
            ENGINEER,
            patch(tickets::change_part),
        )
        .get("/api/v1/engineers", VIEWER, get(tickets::engineers_list))
        .put(
            "/api/v1/engineers/{id}",
            DISPATCHER,
            put(tickets::engineer_put),
        )
        .post(
            "/api/v1/engineers/{id}/status",
            ENGINEER,
            post(tickets::engineer_status),
        )
        .get("/api/v1/alerts", VIEWER, get(tickets::alerts))
        .get("/api/v1/silences", VIEWER, get(tickets::silences))
        .post(
            "/api/v1/silences",
            DISPATCHER,
            post(tickets::silence_create),
        )
        .delete(
            "/api/v1/silences/{id}",
            DISPATCHER,
            delete(tickets::silence_delete),
        )
        .get("/api/v1/kpis", VIEWER, get(tickets::kpis))
        .get("/api/v1/releases", VIEWER, get(releases::list))
        .put(
            "/api/v1/releases/{version}/{arch}",
            ADMIN,
            put(releases::publish).layer(axum::extract::DefaultBodyLimit::max(
                releases::MAX_RELEASE_BYTES,
            )),
        )
        .get(
            "/releases/{version}/{arch}",
            PUBLIC,
            get(releases::download),
        )
        .get("/api/v1/webhooks", DISPATCHER, get(tickets::webhooks))
        .get("/api/v1/broker/mosquitto", ADMIN, get(fleet::mosquitto))
        .get("/api/v1/me", VIEWER, get(users::me))
        .get("/api/v1/users", ADMIN, get(users::list))
        .post("/api/v1/users", ADMIN, post(users::create))
        .patch("/api/v1/users/{name}", ADMIN, patch(users::update))
        .delete("/api/v1/users/{name}", ADMIN, delete(users::delete))
        .post(
            "/api/v1/users/{name}/password",
            VIEWER,
            post(users::password),
        )
        .get("/api/v1/tokens", VIEWER, get(users::tokens_list))
        .post("/api/v1/tokens", VIEWER, post(users::token_create))
        .post(
            "/api/v1/tokens/{id}/revoke",
            VIEWER,
            post(users::token_revoke),
        )
}
