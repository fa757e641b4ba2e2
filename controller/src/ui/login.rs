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

/// Only local paths, so the login cannot bounce a user to another site. Browsers drop tabs
/// and line breaks from URLs and read `\\` as `/` (`/\t/evil.example` is
/// `//evil.example`), so any control character, space or backslash makes it `/`.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            n.to_owned()
        }
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

pub(super) async fn submit(
    State(s): State<AppState>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    Form(f): Form<Login>,
) -> Response {
    let next = safe_next(f.next.as_deref());
    let ip = peer.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |p| p.0 .0.ip());
    // Names longer than any user's are cut, so a key cannot be made arbitrarily large.
    let name: String = f.user.chars().take(64).collect();
    let now = now_ms();
    if let Err(limited) = s.login_limiter.check(&name, ip, now) {
        // Debug formatting: a name cannot forge log lines.
        tracing::warn!(user = ?name, %ip, by = limited.by, "Sign-in refused: too many failed attempts");
        return (
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            [(
                axum::http::header::RETRY_AFTER,
                limited.retry_after_secs.to_string(),
            )],
            login_page(
                &next,
                Some(&format!(
                    "Too many failed attempts; try again in {} s.",
                    limited.retry_after_secs
                )),
            ),
        )
            .into_response();
    }
    let user = name.clone();
    let hash = s.db.read(move |c| auth::password_hash(c, &user)).await;
    let password = f.password;
    // The hash check is deliberately slow: keep it off the async threads. A name that is not
    // a user costs the same work.
    let checked = tokio::task::spawn_blocking(move || {
        let checked = match hash {
            Ok(Some(h)) => auth::check_password(&h, &password),
            _ => auth::password::check_unknown_user(&password),
        };
        let rehash = (checked.ok && checked.rehash).then(|| auth::hash_password(&password));
        (checked.ok, rehash)
    })
    .await;
    let Ok((true, rehash)) = checked else {
        s.login_limiter.failed(&name, ip, now);
        tracing::warn!(user = ?name, %ip, "Failed sign-in");
        return (
            axum::http::StatusCode::UNAUTHORIZED,
            login_page(&next, Some("Unknown user or wrong password.")),
        )
            .into_response();
    };
    s.login_limiter.succeeded(&name);
    if let Some(h) = rehash {
        let user = name.clone();
        if let Err(e) = s.db.write(move |c| auth::replace_hash(c, &user, &h)).await {
            tracing::warn!(error = %e, "Could not store the upgraded password hash");
        }
    }
    let hours = s.config.http.session_hours;
    let user = name;
    match s
        .db
        .write(move |c| auth::create_session(c, &user, now_ms(), hours))
        .await
    {
        Ok(secret) => {
            // Over HTTPS the browser never sends the cookie over plain HTTP.
            let secure = if s.config.public_url().starts_with("https://") {
                "; Secure"
            } else {
                ""
            };
            let cookie = format!(
                "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
                hours * 3600
            );
            ([(SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
        }
        Err(e) => super::PageError::from(e).into_response(),
    }
}

pub(super) async fn logout(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(c) = cookie(&headers, SESSION_COOKIE).map(str::to_owned) {
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
        // Regression: a tab after the first slash was let through, and browsers drop it.
        assert_eq!(safe_next(Some("/\t/evil.example/")), "/");
        assert_eq!(safe_next(Some("/\n/evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example/")), "/");
        assert_eq!(safe_next(Some("/ /evil.example/")), "/");
    }
}
