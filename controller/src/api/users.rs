//! People and their tokens: `/api/v1/me`, `/users` (admins), `/tokens` (everyone's own;
//! admins see and revoke all).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use storefleet_protocol::now_ms;

use super::{parse_json, ApiError, ApiResult, Principal};
use crate::auth::tokens::CreatedApiToken;
use crate::auth::users::{NewUser, PasswordChange, PasswordChanged, UserChange};
use crate::auth::{self, tokens, users, ApiToken, NewToken, Role, User};
use crate::state::AppState;

pub(super) async fn me(p: Principal) -> Json<Value> {
    Json(json!({ "user": p.user, "role": p.role, "actor": p.actor, "token": p.token }))
}

pub(super) async fn list(State(s): State<AppState>, _p: Principal) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(s.db.read(users::list).await?))
}

pub(super) async fn create(
    State(s): State<AppState>,
    p: Principal,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<User>)> {
    let u: NewUser = parse_json(&body)?;
    let created =
        s.db.write(move |c| users::create(c, &u.name, &u.password, u.role, now_ms()))
            .await?;
    tracing::info!(user = ?created.name, role = %created.role, by = %p.actor, "User created");
    Ok((StatusCode::CREATED, Json(created)))
}

pub(super) async fn update(
    State(s): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<User>> {
    let ch: UserChange = parse_json(&body)?;
    let n = name.clone();
    let u =
        s.db.write(move |c| {
            let mut u = users::get(c, &n)?
                .ok_or_else(|| crate::db::DbError::NotFound(format!("no user {n:?}")))?;
            if let Some(r) = ch.role {
                u = users::set_role(c, &n, r)?;
            }
            if let Some(d) = ch.disabled {
                u = users::set_disabled(c, &n, d, now_ms())?;
            }
            Ok(u)
        })
        .await?;
    tracing::info!(user = ?name, role = %u.role, disabled = u.disabled_at.is_some(), by = %p.actor, "User changed");
    Ok(Json(u))
}

pub(super) async fn delete(
    State(s): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let n = name.clone();
    s.db.write(move |c| users::delete(c, &n, now_ms())).await?;
    tracing::info!(user = ?name, by = %p.actor, "User deleted; their sessions ended and tokens revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// A new password: an admin sets anyone's; a user changes their own with the old one.
/// Every other session of that user ends.
pub(super) async fn password(
    State(s): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> ApiResult<Json<PasswordChanged>> {
    let ch: PasswordChange = parse_json(&body)?;
    let own = name == p.user;
    if !own {
        p.require(Role::Admin)?;
    } else if p.role < Role::Admin {
        let old = ch.old_password.clone().unwrap_or_default();
        let n = name.clone();
        let hash = s.db.read(move |c| auth::password_hash(c, &n)).await?;
        let ok = tokio::task::spawn_blocking(move || {
            hash.is_some_and(|h| auth::check_password(&h, &old).ok)
        })
        .await
        .unwrap_or(false);
        if !ok {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                "old_password: wrong or missing".into(),
            ));
        }
    }
    // The caller's own session stays; any other ends.
    let keep = super::cookie(&headers, super::SESSION_COOKIE).map(str::to_owned);
    let n = name.clone();
    let ended =
        s.db.write(move |c| users::change_password(c, &n, &ch.password, keep.as_deref()))
            .await?;
    tracing::info!(user = ?name, sessions_ended = ended, by = %p.actor, "Password changed");
    Ok(Json(PasswordChanged {
        user: name,
        sessions_ended: ended,
    }))
}

pub(super) async fn tokens_list(
    State(s): State<AppState>,
    p: Principal,
) -> ApiResult<Json<Vec<ApiToken>>> {
    let only = (p.role < Role::Admin).then(|| p.user.clone());
    Ok(Json(
        s.db.read(move |c| tokens::list(c, only.as_deref())).await?,
    ))
}

pub(super) async fn token_create(
    State(s): State<AppState>,
    p: Principal,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<CreatedApiToken>)> {
    let req: NewToken = parse_json(&body)?;
    let (user, role) = (p.user.clone(), p.role);
    let (info, text) =
        s.db.write(move |c| auth::create_api_token(c, &user, role, &req, now_ms()))
            .await?;
    tracing::info!(token = %info.id, name = ?info.name, role = %info.role, by = %p.actor, "API token created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiToken { token: text, info }),
    ))
}

pub(super) async fn token_revoke(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiToken>> {
    let i = id.clone();
    let t =
        s.db.read(move |c| tokens::get(c, &i))
            .await?
            .filter(|t| t.user == p.user || p.role == Role::Admin)
            .ok_or_else(|| {
                ApiError(
                    StatusCode::NOT_FOUND,
                    format!("no API token {id:?} of yours"),
                )
            })?;
    let info =
        s.db.write(move |c| tokens::revoke(c, &t.id, now_ms()))
            .await?;
    tracing::info!(token = %info.id, by = %p.actor, "API token revoked");
    Ok(Json(info))
}
