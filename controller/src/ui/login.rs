//! Sign in and out.

use axum::extract::{Form, Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use storefleet_protocol::now_ms;

use super::page;
use crate::api::{cookie, SESSION_COOKIE};
use crate::auth;
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
pub(super) struct Next {
    next: Option<String>,
}

/// Only local paths, so the login cannot bounce a user to another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/".into(),
    }
}

fn login_page(next: &str, error: Option<&str>) -> Html<String> {
    Html(
        page(
            "Sign in",
            None,
            html! {
                form.login method="post" action="/login" {
                    h1 { "Sign in" }
                    @if let Some(e) = error { p.error { (e) } }
                    input type="hidden" name="next" value=(next);
                    label { "User" input name="user" autocomplete="username" required autofocus; }
                    label { "Password" input name="password" type="password" autocomplete="current-password" required; }
                    button type="submit" { "Sign in" }
                }
            },
        )
        .into_string(),
    )
}

pub(super) async fn form(Query(q): Query<Next>) -> Html<String> {
    login_page(&safe_next(q.next.as_deref()), None)
}

#[derive(Debug, Deserialize)]
pub(super) struct Login {
    user: String,
    password: String,
    next: Option<String>,
}

pub(super) async fn submit(State(s): State<AppState>, Form(f): Form<Login>) -> Response {
    let next = safe_next(f.next.as_deref());
    let user = f.user.clone();
    let hash = s.db.read(move |c| auth::password_hash(c, &user)).await;
    let password = f.password;
    // The hash check is deliberately slow: keep it off the async threads.
    let ok = match hash {
        Ok(Some(h)) => tokio::task::spawn_blocking(move || auth::check_password(&h, &password))
            .await
            .unwrap_or(false),
        _ => false,
    };
    if !ok {
        tracing::warn!(user = %f.user, "Failed sign-in");
        return (
            axum::http::StatusCode::UNAUTHORIZED,
            login_page(&next, Some("Unknown user or wrong password.")),
        )
            .into_response();
    }
    let hours = s.config.http.session_hours;
    let user = f.user.clone();
    match s
        .db
        .write(move |c| auth::create_session(c, &user, now_ms(), hours))
        .await
    {
        Ok(secret) => {
            let cookie = format!(
                "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
                hours * 3600
            );
            ([(SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
        }
        Err(e) => super::PageError::from(e).into_response(),
    }
}

pub(super) async fn logout(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let (mut parts, ()) = axum::http::Request::new(()).into_parts();
    parts.headers = headers;
    if let Some(c) = cookie(&parts, SESSION_COOKIE).map(str::to_owned) {
        let _ = s.db.write(move |db| auth::end_session(db, &c)).await;
    }
    (
        [(
            SET_COOKIE,
            format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
        )],
        Redirect::to("/login"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_only_returns_to_local_pages() {
        assert_eq!(safe_next(Some("/assets?q=1")), "/assets?q=1");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
