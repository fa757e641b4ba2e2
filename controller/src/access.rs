//! Every route with its access rule, and the guard that applies the rule.
//!
//! Routes are only ever added through [`Routes`], which records `(method, path, access)`
//! beside the handler; [`enforce`] runs on every matched route, finds the caller (a bearer
//! token or a session cookie) and refuses what the caller's role does not allow: 401 (or,
//! for a page, the sign-in page) without credentials, 403 with too few rights. A route that
//! somehow has no rule is refused for everyone. The list of rules is public so that a test
//! can try every route with every role ([`Routes::rules`]).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::Router;

use crate::api::{ApiError, Principal};
use crate::auth::{self, Access, Caller, Role};
use crate::state::AppState;

/// One route's rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Method.
    pub method: Method,
    /// Path pattern, as routed (`/api/v1/tickets/{id}`).
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
}

/// A router that knows the rule of each of its routes.
#[must_use]
pub struct Routes {
    router: Router<AppState>,
    rules: Vec<Rule>,
}

impl Default for Routes {
    fn default() -> Self {
        Routes {
            router: Router::new(),
            rules: Vec::new(),
        }
    }
}

impl Routes {
    fn add(
        mut self,
        method: Method,
        path: &'static str,
        access: Access,
        handler: MethodRouter<AppState>,
    ) -> Self {
        self.rules.push(Rule {
            method,
            path,
            access,
        });
        self.router = self.router.route(path, handler);
        self
    }

    /// A GET route (HEAD follows it).
    pub fn get(self, path: &'static str, access: Access, h: MethodRouter<AppState>) -> Self {
        self.add(Method::GET, path, access, h)
    }

    /// A POST route.
    pub fn post(self, path: &'static str, access: Access, h: MethodRouter<AppState>) -> Self {
        self.add(Method::POST, path, access, h)
    }

    /// A PUT route.
    pub fn put(self, path: &'static str, access: Access, h: MethodRouter<AppState>) -> Self {
        self.add(Method::PUT, path, access, h)
    }

    /// A PATCH route.
    pub fn patch(self, path: &'static str, access: Access, h: MethodRouter<AppState>) -> Self {
        self.add(Method::PATCH, path, access, h)
    }

    /// A DELETE route.
    pub fn delete(self, path: &'static str, access: Access, h: MethodRouter<AppState>) -> Self {
        self.add(Method::DELETE, path, access, h)
    }

    /// Both route sets together.
    pub fn merge(mut self, other: Routes) -> Self {
        self.rules.extend(other.rules);
        self.router = self.router.merge(other.router);
        self
    }

    /// Every rule, in the order the routes were added.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The router with [`enforce`] on every route.
    pub fn into_router(self, state: &AppState) -> Router<AppState> {
        let map: RuleMap = self
            .rules
            .iter()
            .map(|r| ((r.method.clone(), r.path.to_owned()), r.access))
            .collect();
        // The last layer runs first: who calls, then what they send.
        self.router
            .route_layer(axum::middleware::from_fn(crate::guard::json_only))
            .route_layer(axum::middleware::from_fn_with_state(
                (state.clone(), Arc::new(map)),
                enforce,
            ))
    }
}

/// Pages answer with the sign-in page or an error page; the rest with JSON.
fn is_page(path: &str) -> bool {
    !(path.starts_with("/api/") || path == "/metrics" || path.starts_with("/releases/"))
}

/// The caller of a request: a bearer token (which must be valid when given) or a session.
pub async fn caller(
    headers: &axum::http::HeaderMap,
    s: &AppState,
) -> Result<Option<Caller>, ApiError> {
    let now = storefleet_protocol::now_ms();
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned());
    if let Some(t) = bearer {
        let found = s.db.read(move |c| auth::api_token(c, &t, now)).await?;
        let Some((caller, due)) = found else {
            return Err(ApiError(
                StatusCode::UNAUTHORIZED,
                "unknown or revoked API token, or its user is disabled".into(),
            ));
        };
        if due {
            if let Some((id, _)) = caller.token.clone() {
                let db = s.db.clone();
                tokio::spawn(async move {
                    let _ = db.write(move |c| auth::tokens::touch(c, &id, now)).await;
                });
            }
        }
        return Ok(Some(caller));
    }
    let Some(cookie) = crate::api::cookie(headers, crate::api::SESSION_COOKIE).map(str::to_owned)
    else {
        return Ok(None);
    };
    let found =
        s.db.read(move |c| auth::session_user(c, &cookie, now))
            .await?;
    Ok(found.map(|(user, role, zone)| Caller {
        user,
        role,
        token: None,
        zone,
    }))
}

/// Each route's rule by method and path pattern.
type RuleMap = HashMap<(Method, String), Access>;

/// Applies the matched route's rule; puts the caller into the request for the handler.
async fn enforce(
    State((s, rules)): State<(AppState, Arc<RuleMap>)>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default();
    let method = if req.method() == Method::HEAD {
        Method::GET
    } else {
        req.method().clone()
    };
    let access = rules.get(&(method.clone(), path.clone())).copied();
    let need = match access {
        Some(Access::Public) => return next.run(req).await,
        Some(Access::Metrics) if s.config.http.metrics_public => return next.run(req).await,
        Some(Access::Metrics) => Role::Viewer,
        Some(Access::AtLeast(r)) => r,
        None => {
            tracing::error!(%method, path, "A route without an access rule was called; refused");
            return ApiError(
                StatusCode::FORBIDDEN,
                "no access rule for this route".into(),
            )
            .into_response();
        }
    };
    let page = is_page(req.uri().path());
    let headers = req.headers().clone();
    let who = match caller(&headers, &s).await {
        Ok(Some(c)) => c,
        Ok(None) if page => {
            let here = req
                .uri()
                .path_and_query()
                .map_or("/".into(), ToString::to_string);
            return crate::ui::ToLogin(here).into_response();
        }
        Ok(None) => {
            return ApiError(
                StatusCode::UNAUTHORIZED,
                "authentication required: Authorization: Bearer <API token>".into(),
            )
            .into_response()
        }
        Err(e) => return e.into_response(),
    };
    if who.role < need {
        let e = ApiError(
            StatusCode::FORBIDDEN,
            format!(
                "{} needs the {need} role; {} has {}",
                req.uri().path(),
                who.actor(),
                who.role
            ),
        );
        return if page {
            crate::ui::PageError::from(e).into_response()
        } else {
            e.into_response()
        };
    }
    req.extensions_mut().insert(Principal::from(who));
    next.run(req).await
}
