//! `/api/v1/stores`: list, create, read, create-or-update.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use storefleet_protocol::now_ms;

use super::{parse_json, ApiError, ApiResult, Principal};
use crate::state::AppState;
use crate::stores::{self, Store};

pub(super) async fn list(State(s): State<AppState>, _p: Principal) -> ApiResult<Json<Vec<Store>>> {
    Ok(Json(s.db.read(stores::list).await?))
}

pub(super) async fn get(
    State(s): State<AppState>,
    _p: Principal,
    Path(code): Path<String>,
) -> ApiResult<Json<Store>> {
    let found =
        s.db.read(move |c| stores::get(c, &code).map(|x| (x, code)))
            .await?;
    match found {
        (Some(st), _) => Ok(Json(st)),
        (None, code) => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no store {code:?}"),
        )),
    }
}

pub(super) async fn create(
    State(s): State<AppState>,
    _p: Principal,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Store>)> {
    let store: Store = parse_json(&body)?;
    let st = store.clone();
    s.db.write(move |c| stores::put(c, &st, false, now_ms()))
        .await?;
    Ok((StatusCode::CREATED, Json(store)))
}

pub(super) async fn put(
    State(s): State<AppState>,
    _p: Principal,
    Path(code): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Store>> {
    let mut store: Store = parse_json(&body)?;
    if store.code.is_empty() {
        store.code.clone_from(&code);
    }
    if store.code != code {
        return Err(ApiError::bad(format!(
            "code {:?} in the body differs from {code:?} in the path",
            store.code
        )));
    }
    let st = store.clone();
    s.db.write(move |c| stores::put(c, &st, true, now_ms()))
        .await?;
    Ok(Json(store))
}

pub(super) async fn discovered(
    State(s): State<AppState>,
    _p: Principal,
    Path(code): Path<String>,
) -> ApiResult<Json<Vec<crate::discovered::DiscoveredDevice>>> {
    let c2 = code.clone();
    let (store, found) =
        s.db.read(move |c| Ok((stores::get(c, &c2)?, crate::discovered::list(c, &c2)?)))
            .await?;
    match store {
        Some(_) => Ok(Json(found)),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no store {code:?}"),
        )),
    }
}
