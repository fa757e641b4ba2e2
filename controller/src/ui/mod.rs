//! The web UI: server-rendered HTML (maud), no script build step; charts are SVG drawn on
//! the server. Pages: fleet overview, store, device charts, asset registry with filters,
//! history and CSV, agent, enrollment tokens, fleet tasks, tickets, the field engineer's
//! view (made for a phone) and service KPIs. Every page but the login needs a session.
//!
//! Sessions are random cookies (`HttpOnly`, `SameSite=Strict`, so another site cannot post
//! a form with them); only their hash is stored.

mod assets;
mod chart;
mod crew;
mod field;
pub(crate) use crate::fmt;
mod kpi;
mod login;
mod map;
mod openings;
mod overview;
mod pages;
mod parts;
mod people;
mod stores;
mod task_new;
mod tasks;
mod ticket_new;
mod tickets;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::access::Routes;
use crate::api::{ApiError, Principal};
use crate::auth::Role;
use crate::state::AppState;

/// The signed-in user and their role.
#[derive(Debug, Clone)]
pub struct User(pub String, pub Role, pub String);

impl User {
    /// The person's own time zone (UTC when they have not set one).
    pub fn zone(&self) -> &str {
        if self.2.is_empty() {
            "UTC"
        } else {
            &self.2
        }
    }
}

/// Not signed in: go to the login page and come back.
pub struct ToLogin(pub String);

impl IntoResponse for ToLogin {
    fn into_response(self) -> Response {
        let next: String = url_encode(&self.0);
        Redirect::to(&format!("/login?next={next}")).into_response()
    }
}

pub use crate::fmt::url_encode;

impl FromRequestParts<AppState> for User {
    type Rejection = ToLogin;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // The access guard resolved the caller of every page that needs one.
        match parts.extensions.get::<Principal>() {
            Some(p) => Ok(User(p.user.clone(), p.role, p.zone.clone())),
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
pub struct PageError(pub ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError(e)
    }
}

impl From<crate::service::Error> for PageError {
    fn from(e: crate::service::Error) -> Self {
        PageError(e.into())
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
                            a href="/stores" { "Stores" }
                            a href="/assets" { "Assets" }
                            a href="/tasks" { "Tasks" }
                            a href="/tickets" { "Tickets" }
                            a href="/openings" { "Openings" }
                            a href="/engineers" { "Engineers" }
                            a href="/silences" { "Silences" }
                            @if u.1 >= Role::Engineer { a href="/field" { "My tickets" } }
                            a href="/kpis" { "KPIs" }
                            @if u.1 >= Role::Admin { a href="/enroll" { "Enrollment" } a href="/people" { "People" } }
                            a href="/tokens" { "Account" }
                            a href="/api/v1/openapi.json" { "API" }
                        }
                        form.logout method="post" action="/logout" {
                            span.muted { (u.0) " (" (u.1) ")" } " "
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

/// The UI routes, each with its rule.
pub fn routes() -> Routes {
    use crate::auth::roles::{ADMIN, DISPATCHER, ENGINEER, PUBLIC, VIEWER};
    use axum::routing::post;
    Routes::default()
        .get("/static/app.css", PUBLIC, get(css))
        .get("/login", PUBLIC, get(login::form))
        .post("/login", PUBLIC, post(login::submit))
        .post("/logout", PUBLIC, post(login::logout))
        .get("/", VIEWER, get(overview::show))
        .get("/stores", VIEWER, get(stores::list))
        .post("/stores", ADMIN, post(stores::save))
        .get("/stores/{code}", VIEWER, get(pages::store))
        .get(
            "/stores/{code}/devices/{device}",
            VIEWER,
            get(pages::device),
        )
        .get("/stores/{code}/readiness", VIEWER, get(openings::readiness))
        .post("/stores/{code}/checks", DISPATCHER, post(openings::tick))
        .post("/stores/{code}/opened", ADMIN, post(openings::opened))
        .get("/openings", VIEWER, get(openings::board))
        .post("/openings", ADMIN, post(openings::open))
        .get("/formats", VIEWER, get(openings::formats))
        .post("/formats", ADMIN, post(openings::save_format))
        .get("/agents/{id}", VIEWER, get(pages::agent))
        .post("/agents/{id}/do", ADMIN, post(pages::agent_do))
        .get("/assets", VIEWER, get(assets::registry))
        .post("/assets", DISPATCHER, post(assets::create))
        .get("/assets/{id}", VIEWER, get(assets::asset))
        .post("/assets/{id}", DISPATCHER, post(assets::save))
        .get("/enroll", ADMIN, get(pages::enroll))
        .post("/enroll", ADMIN, post(pages::enroll_create))
        .get("/tasks", VIEWER, get(tasks::list))
        .get("/tasks/new", ADMIN, get(task_new::new))
        .post("/tasks/new", ADMIN, post(task_new::submit))
        .get("/tasks/{id}", VIEWER, get(tasks::show))
        .post("/tasks/{id}/pause", ADMIN, post(tasks::pause))
        .post("/tasks/{id}/resume", ADMIN, post(tasks::resume))
        .post("/tasks/{id}/cancel", ADMIN, post(tasks::cancel))
        .get("/tickets", VIEWER, get(tickets::list))
        .get("/tickets/new", DISPATCHER, get(ticket_new::form))
        .post("/tickets/new", DISPATCHER, post(ticket_new::open))
        .get("/tickets/{id}", VIEWER, get(tickets::show))
        .post("/tickets/{id}/act", ENGINEER, post(tickets::act))
        .post("/tickets/{id}/parts", ENGINEER, post(parts::add))
        .post("/tickets/{id}/parts/{part}", ENGINEER, post(parts::change))
        .get("/field", ENGINEER, get(field::view))
        .get("/field/live", ENGINEER, get(field::live))
        .post("/field/status", ENGINEER, post(field::status))
        .get("/kpis", VIEWER, get(kpi::page_kpis))
        .get("/engineers", VIEWER, get(crew::engineers))
        .post("/engineers", DISPATCHER, post(crew::save))
        .post("/engineers/{id}/status", ENGINEER, post(crew::status))
        .get("/silences", VIEWER, get(crew::silences))
        .post("/silences", DISPATCHER, post(crew::add_silence))
        .post("/silences/{id}/end", DISPATCHER, post(crew::end_silence))
        .get("/people", ADMIN, get(people::users_page))
        .post("/people", ADMIN, post(people::add_user))
        .post("/people/{name}", ADMIN, post(people::change_user))
        .get("/tokens", VIEWER, get(people::tokens_page))
        .post("/tokens", VIEWER, post(people::add_token))
        .post("/tokens/{id}/revoke", VIEWER, post(people::revoke_token))
        .post("/account/zone", VIEWER, post(people::set_zone))
}
