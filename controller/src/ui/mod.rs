//! The web UI: server-rendered HTML (maud), no script build step; charts are SVG drawn on
//! the server. Pages: fleet overview, store, device charts, asset registry with filters,
//! history and CSV, agent, enrollment tokens, fleet tasks, tickets, the field engineer's
//! view (made for a phone) and service KPIs. Every page but the login needs a session.
//!
//! Sessions are random cookies (`HttpOnly`, `SameSite=Strict`, so another site cannot post
//! a form with them); only their hash is stored.

mod assets;
mod chart;
mod field;
pub(crate) use crate::fmt;
mod kpi;
mod login;
mod pages;
mod tasks;
mod tickets;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::api::{session_user, ApiError};
use crate::state::AppState;

/// The signed-in user.
#[derive(Debug, Clone)]
pub struct User(pub String);

/// Not signed in: go to the login page and come back.
pub struct ToLogin(String);

impl IntoResponse for ToLogin {
    fn into_response(self) -> Response {
        let next: String = url_encode(&self.0);
        Redirect::to(&format!("/login?next={next}")).into_response()
    }
}

/// Percent-encodes a query value.
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

impl FromRequestParts<AppState> for User {
    type Rejection = ToLogin;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match session_user(parts, state).await {
            Some(u) => Ok(User(u)),
            None => Err(ToLogin(
                parts
                    .uri
                    .path_and_query()
                    .map_or("/".into(), ToString::to_string),
            )),
        }
    }
}

/// An error page.
pub struct PageError(ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError(e)
    }
}

impl From<crate::db::DbError> for PageError {
    fn from(e: crate::db::DbError) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let ApiError(status, msg) = self.0;
        (status, Html(page("Error", None, html! { h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) } p.error { (msg) } p { a href="/" { "Back to the fleet" } } }).into_string())).into_response()
    }
}

/// Result of a page handler.
pub type PageResult = Result<Html<String>, PageError>;

/// Wraps `body` in the page layout.
pub fn page(title: &str, user: Option<&User>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Storefleet" }
                link rel="stylesheet" href="/static/app.css";
            }
            body {
                header.top {
                    a.brand href="/" { "Storefleet" }
                    @if let Some(u) = user {
                        nav {
                            a href="/" { "Fleet" }
                            a href="/assets" { "Assets" }
                            a href="/tasks" { "Tasks" }
                            a href="/tickets" { "Tickets" }
                            a href="/field" { "My tickets" }
                            a href="/kpis" { "KPIs" }
                            a href="/enroll" { "Enrollment" }
                            a href="/api/v1/openapi.json" { "API" }
                        }
                        form.logout method="post" action="/logout" {
                            span.muted { (u.0) } " "
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (PreEscaped(body.into_string())) }
            }
        }
    }
}

/// 404 for a missing thing.
pub fn not_found(what: String) -> PageError {
    PageError(ApiError(StatusCode::NOT_FOUND, what))
}

const CSS: &str = include_str!("app.css");

async fn css() -> impl IntoResponse {
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "max-age=3600"),
        ],
        CSS,
    )
}

/// The UI routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/static/app.css", get(css))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", axum::routing::post(login::logout))
        .route("/", get(pages::overview))
        .route("/stores/{code}", get(pages::store))
        .route("/stores/{code}/devices/{device}", get(pages::device))
        .route("/agents/{id}", get(pages::agent))
        .route("/assets", get(assets::registry))
        .route("/assets/{id}", get(assets::asset).post(assets::save))
        .route("/enroll", get(pages::enroll).post(pages::enroll_create))
        .route("/tasks", get(tasks::list))
        .route("/tasks/{id}", get(tasks::show))
        .route("/tasks/{id}/pause", axum::routing::post(tasks::pause))
        .route("/tasks/{id}/resume", axum::routing::post(tasks::resume))
        .route("/tasks/{id}/cancel", axum::routing::post(tasks::cancel))
        .route("/tickets", get(tickets::list))
        .route("/tickets/{id}", get(tickets::show))
        .route("/tickets/{id}/act", axum::routing::post(tickets::act))
        .route("/field", get(field::view))
        .route("/field/status", axum::routing::post(field::status))
        .route("/kpis", get(kpi::page_kpis))
}
