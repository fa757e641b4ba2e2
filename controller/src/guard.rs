//! Request guards every route passes through, whatever its handler does.
//!
//! - [`security_headers`]: a content security policy that allows no script at all, no
//!   framing (`frame-ancestors 'none'`; a page that asks for it with [`Framing`] may frame,
//!   or be framed by, this controller's own pages only), forms only to this origin;
//!   `nosniff`; a referrer policy that keeps URLs on this site.
//! - [`same_origin`]: a request that changes something and rides on a browser's session
//!   cookie (or signs in) must come from this controller's own pages: its `Origin` (or,
//!   without one, its `Referer`) must be this controller. Another site cannot post a form
//!   with a signed-in user's cookie. Requests with a bearer token carry no ambient
//!   credentials and are not checked.
//! - [`json_only`]: an API request with a body must say `Content-Type: application/json`
//!   (release uploads: `application/octet-stream`, imports: `text/csv`), so that a cross-site `text/plain` form
//!   post is never read as JSON.

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::{ApiError, SESSION_COOKIE};
use crate::state::AppState;

/// The content security policy of every answer.
pub const CSP: &str =
    "default-src 'none'; connect-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The policy of a page that shows a frame of this controller's own pages.
const CSP_HOSTS_FRAME: &str =
    "default-src 'none'; connect-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The policy of a page that this controller's own pages (and only they) may frame.
const CSP_FRAMED: &str =
    "default-src 'none'; connect-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
form-action 'self'; frame-ancestors 'self'; base-uri 'none'";

/// A page's part in framing, set as a response extension by its handler. Without one an
/// answer neither frames nor may be framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Shows a frame of this controller's own pages (`frame-src 'self'`).
    HostsFrame,
    /// May be framed by this controller's own pages (`frame-ancestors 'self'`).
    Framed,
}

/// Adds the security headers.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let framing = res.extensions().get::<Framing>().copied();
    let (csp, frame_options) = match framing {
        None => (CSP, "DENY"),
        Some(Framing::HostsFrame) => (CSP_HOSTS_FRAME, "DENY"),
        Some(Framing::Framed) => (CSP_FRAMED, "SAMEORIGIN"),
    };
    let h = res.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, csp),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, frame_options),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    res
}

fn changes_something(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// `scheme://host[:port]` of a URL, lower-case.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    (!host.is_empty()).then(|| format!("{scheme}://{host}").to_ascii_lowercase())
}

/// Whether `origin` is this controller: its public URL, or the host the request was sent to.
pub fn is_own_origin(origin: &str, host: Option<&str>, public_url: &str) -> bool {
    let origin = origin.trim().to_ascii_lowercase();
    if origin_of(public_url).is_some_and(|o| o == origin) {
        return true;
    }
    let Some(host) = host else { return false };
    let host = host.trim().to_ascii_lowercase();
    origin == format!("http://{host}") || origin == format!("https://{host}")
}

/// Refuses a cross-site request that changes something with a session cookie.
pub async fn same_origin(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let h = req.headers();
    let rides_on_cookie = crate::api::cookie(h, SESSION_COOKIE).is_some();
    let bearer = h.contains_key(header::AUTHORIZATION);
    let signs_in = req.uri().path() == "/login";
    if changes_something(req.method()) && !bearer && (rides_on_cookie || signs_in) {
        let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
        let claimed = h
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| {
                h.get(header::REFERER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(origin_of)
            });
        let ok = claimed
            .as_deref()
            .is_some_and(|o| is_own_origin(o, host, &s.config.public_url()));
        if !ok {
            tracing::warn!(origin = ?claimed, path = %req.uri().path(), "Refused a cross-site request");
            return ApiError(
                StatusCode::FORBIDDEN,
                "cross-site request refused: it must come from this controller's own pages".into(),
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// Refuses an API body that is not declared as JSON (or, for releases, as a binary).
pub async fn json_only(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let has_body = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() != "0")
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    if path.starts_with("/api/") && changes_something(req.method()) && has_body {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let wanted = if path.starts_with("/api/v1/releases/") {
            "application/octet-stream"
        } else if path.ends_with("/import") {
            // Not a type a cross-site form can send either.
            "text/csv"
        } else {
            "application/json"
        };
        if !ct.starts_with(wanted) {
            return ApiError(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Content-Type must be {wanted}"),
            )
            .into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_origin_is_the_public_url_or_the_requested_host() {
        assert!(is_own_origin(
            "https://hq.example",
            None,
            "https://hq.example/"
        ));
        assert!(is_own_origin(
            "HTTP://127.0.0.1:8080",
            Some("127.0.0.1:8080"),
            ""
        ));
        assert!(!is_own_origin(
            "http://evil.example",
            Some("127.0.0.1:8080"),
            ""
        ));
        assert!(!is_own_origin(
            "null",
            Some("127.0.0.1:8080"),
            "https://hq.example"
        ));
        assert!(!is_own_origin(
            "http://127.0.0.1:8080.evil",
            Some("127.0.0.1:8080"),
            ""
        ));
    }

    #[test]
    fn the_origin_of_a_referer_drops_the_path() {
        assert_eq!(
            origin_of("http://127.0.0.1:8080/tickets/7?x=1").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin_of("nonsense"), None);
    }
}
