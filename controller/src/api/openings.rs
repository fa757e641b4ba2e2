//! Store formats, openings and the readiness board.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use storefleet_protocol::now_ms;

use super::{parse_json, ApiError, ApiResult, Principal};
use crate::openings::{self, Opening, Readiness, StoreFormat};
use crate::state::AppState;

pub(super) async fn formats(
    State(s): State<AppState>,
    _p: Principal,
) -> ApiResult<Json<Vec<StoreFormat>>> {
    Ok(Json(s.db.read(openings::formats).await?))
}

pub(super) async fn format(
    State(s): State<AppState>,
    _p: Principal,
    Path(name): Path<String>,
) -> ApiResult<Json<StoreFormat>> {
    let n = name.clone();
    s.db.read(move |c| openings::format(c, &n))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no format {name:?}")))
}

pub(super) async fn put_format(
    State(s): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<StoreFormat>> {
    let mut f: StoreFormat = parse_json(&body)?;
    if f.name.is_empty() {
        f.name.clone_from(&name);
    }
    if f.name != name {
        return Err(ApiError::bad(format!(
            "name {:?} in the body differs from {name:?} in the path",
            f.name
        )));
    }
    let put = f.clone();
    s.db.write(move |c| openings::put_format(c, &put, &p.actor, now_ms()))
        .await?;
    tracing::info!(format = %f.name, "Store format saved");
    Ok(Json(f))
}

pub(super) async fn delete_format(
    State(s): State<AppState>,
    _p: Principal,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    s.db.write(move |c| openings::delete_format(c, &name))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn board(
    State(s): State<AppState>,
    _p: Principal,
) -> ApiResult<Json<Vec<Readiness>>> {
    let rules = s.rules();
    Ok(Json(s.db.read(move |c| openings::board(c, &rules)).await?))
}

/// 404 naming the store, or that it has no opening.
fn no_opening(c: &dyn storefleet_storage::Sql, store: &str) -> crate::db::DbError {
    match crate::stores::get(c, store) {
        Ok(Some(_)) => crate::db::DbError::NotFound(format!(
            "store {store} has no opening (PUT /api/v1/stores/{store}/opening)"
        )),
        Ok(None) => crate::db::DbError::NotFound(format!("no store {store:?}")),
        Err(e) => e,
    }
}

pub(super) async fn readiness(
    State(s): State<AppState>,
    _p: Principal,
    Path(code): Path<String>,
) -> ApiResult<Json<Readiness>> {
    let rules = s.rules();
    let r = s
        .db
        .read(move |c| openings::readiness(c, &code, &rules)?.ok_or_else(|| no_opening(c, &code)))
        .await?;
    Ok(Json(r))
}

pub(super) async fn set(
    State(s): State<AppState>,
    p: Principal,
    Path(code): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Readiness>> {
    let o: Opening = parse_json(&body)?;
    let rules = s.rules();
    let r =
        s.db.write(move |c| {
            openings::set(c, &code, &o, &p.actor, now_ms())?;
            openings::readiness(c, &code, &rules)?.ok_or_else(|| no_opening(c, &code))
        })
        .await?;
    tracing::info!(store = %r.store, format = %r.format, opens_on = %r.opens_on, "Store opening set");
    Ok(Json(r))
}

pub(super) async fn clear(
    State(s): State<AppState>,
    _p: Principal,
    Path(code): Path<String>,
) -> ApiResult<StatusCode> {
    s.db.write(move |c| {
        if crate::stores::get(c, &code)?.is_none() {
            return Err(no_opening(c, &code));
        }
        openings::clear(c, &code)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/stores/{code}/checks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Tick {
    item: String,
    #[serde(default = "yes")]
    done: bool,
}

fn yes() -> bool {
    true
}

pub(super) async fn tick(
    State(s): State<AppState>,
    p: Principal,
    Path(code): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Readiness>> {
    let t: Tick = parse_json(&body)?;
    let rules = s.rules();
    let r =
        s.db.write(move |c| {
            if openings::opening_of(c, &code)?.is_none() {
                return Err(no_opening(c, &code));
            }
            openings::tick(c, &code, &t.item, t.done, &p.actor, now_ms())?;
            openings::readiness(c, &code, &rules)?.ok_or_else(|| no_opening(c, &code))
        })
        .await?;
    Ok(Json(r))
}
