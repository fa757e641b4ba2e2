//! `POST /api/v1/stores/import` and `POST /api/v1/assets/import`: CSV in (`text/csv`),
//! all or nothing ([`crate::import`]). `?dry_run=true` checks and counts only. A refused
//! file is a 422 whose `error` names each bad row and whose `errors` list them.

use std::fmt::Write as _;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use storefleet_protocol::now_ms;

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;

use super::fleet::query;
use super::{ApiResult, Principal};
use crate::import::{ImportReport, RowError};
use crate::state::AppState;

/// Bytes in one file at most.
pub const MAX_BYTES: usize = 32 << 20;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct ImportQuery {
    dry_run: bool,
}

fn answer(r: Result<ImportReport, Vec<RowError>>) -> Response {
    match r {
        Ok(report) => Json(report).into_response(),
        Err(errors) => {
            let mut text = format!(
                "{} {} refused, nothing imported:",
                errors.len(),
                if errors.len() == 1 { "row" } else { "rows" }
            );
            for e in errors.iter().take(50) {
                let col = if e.column.is_empty() {
                    String::new()
                } else {
                    format!(" {}", e.column)
                };
                let _ = write!(text, "\n  line {}{col}: {}", e.row, e.error);
            }
            if errors.len() > 50 {
                let _ = write!(text, "\n  and {} more", errors.len() - 50);
            }
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(serde_json::json!({ "error": text, "errors": errors })),
            )
                .into_response()
        }
    }
}

pub(super) async fn stores(
    State(s): State<AppState>,
    p: Principal,
    q: Result<Query<ImportQuery>, QueryRejection>,
    body: Bytes,
) -> ApiResult<Response> {
    let q = query(q)?;
    let r =
        s.db.write(move |c| crate::import::stores(c, &body, q.dry_run, &p.actor, now_ms()))
            .await?;
    Ok(answer(r))
}

pub(super) async fn assets(
    State(s): State<AppState>,
    p: Principal,
    q: Result<Query<ImportQuery>, QueryRejection>,
    body: Bytes,
) -> ApiResult<Response> {
    let q = query(q)?;
    let actor = p.actor.clone();
    let r =
        s.db.write(move |c| crate::assets::import::import(c, &body, q.dry_run, &actor, now_ms()))
            .await?;
    Ok(answer(r))
}
