//! `/api/v1/assets`: search, CSV export, one asset, a person's edit, history.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use storefleet_protocol::now_ms;

use super::filters::{known, Names};
use super::fleet::query;
use super::{parse_json, ApiError, ApiResult, Principal};
use crate::assets::query::{self as q, Filter};
use crate::assets::{self, Asset, Change, Edit};
use crate::state::AppState;

pub(super) async fn search(
    State(s): State<AppState>,
    _p: Principal,
    f: Result<Query<Filter>, QueryRejection>,
) -> ApiResult<Json<q::AssetPage>> {
    let f = query(f)?;
    known(&s, names(&f)).await?;
    let (items, total) = s.db.read(move |c| q::search(c, &f, now_ms())).await?;
    Ok(Json(q::AssetPage { total, items }))
}

fn names(f: &Filter) -> Names {
    Names {
        store: f.store.clone(),
        region: f.region.clone(),
        ..Names::default()
    }
}

/// Every matching asset as CSV (all pages).
pub(super) async fn csv(
    State(s): State<AppState>,
    _p: Principal,
    f: Result<Query<Filter>, QueryRejection>,
) -> ApiResult<impl IntoResponse> {
    let mut f = query(f)?;
    known(&s, names(&f)).await?;
    let text =
        s.db.read(move |c| {
            let mut out = String::from(q::CSV_HEADER);
            out.push_str("\r\n");
            let mut offset = 0;
            loop {
                f.offset = Some(offset);
                f.limit = Some(5000);
                let (items, _) = q::search(c, &f, now_ms())?;
                for a in &items {
                    out.push_str(&q::csv_row(a));
                    out.push_str("\r\n");
                }
                if items.len() < 5000 {
                    break;
                }
                offset += 5000;
            }
            Ok(out)
        })
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"assets.csv\"",
            ),
        ],
        text,
    ))
}

pub(super) async fn get(
    State(s): State<AppState>,
    _p: Principal,
    Path(id): Path<i64>,
) -> ApiResult<Json<Asset>> {
    s.db.read(move |c| assets::get(c, id))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no asset {id}")))
}

/// A device record made by hand.
pub(super) async fn create(
    State(s): State<AppState>,
    p: Principal,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Asset>)> {
    let n: crate::assets::import::NewAsset = parse_json(&body)?;
    let a =
        s.db.write(move |c| crate::assets::import::create(c, &n, &p.actor, now_ms()))
            .await?;
    Ok((StatusCode::CREATED, Json(a)))
}

pub(super) async fn edit(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
    body: Bytes,
) -> ApiResult<Json<Asset>> {
    let e: Edit = parse_json(&body)?;
    Ok(Json(
        s.db.write(move |c| assets::edit(c, id, &e, &p.actor, now_ms()))
            .await?,
    ))
}

pub(super) async fn history(
    State(s): State<AppState>,
    _p: Principal,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<Change>>> {
    let (found, h) =
        s.db.read(move |c| Ok((assets::get(c, id)?.is_some(), assets::history(c, id)?)))
            .await?;
    if !found {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("no asset {id}")));
    }
    Ok(Json(h))
}
