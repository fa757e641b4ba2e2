//! Fleet tasks: push, read, pause, resume, cancel.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::{parse_json, ApiError, ApiResult, Principal};
use crate::service::tasks::request;
use crate::state::AppState;
use crate::tasks::db::{self as tasks, Request};
use crate::tasks::{TargetRow, TaskPreview, TaskSpec, TaskSummary};

pub(super) async fn create(
    State(s): State<AppState>,
    p: Principal,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<TaskSummary>)> {
    let spec: TaskSpec = parse_json(&body)?;
    let t = crate::service::tasks::push(&s, &p, spec).await?;
    Ok((StatusCode::CREATED, Json(t)))
}

/// `POST /api/v1/agents/{id}/ping` and `/reload`: a one-target task with a short timeout
/// and expiry, so the answer (or its absence) is visible like any task's.
pub(super) async fn agent_command(
    s: AppState,
    p: Principal,
    agent: String,
    action: crate::tasks::TaskAction,
) -> ApiResult<(StatusCode, Json<TaskSummary>)> {
    let t = crate::service::tasks::agent_command(&s, &p, agent, action).await?;
    Ok((StatusCode::CREATED, Json(t)))
}

pub(super) async fn ping_agent(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<TaskSummary>)> {
    agent_command(s, p, id, crate::tasks::TaskAction::Ping).await
}

pub(super) async fn reload_agent(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<TaskSummary>)> {
    agent_command(s, p, id, crate::tasks::TaskAction::Reload).await
}

/// The targets and wave sizes a spec would have, without creating it.
pub(super) async fn preview(
    State(s): State<AppState>,
    _p: Principal,
    body: Bytes,
) -> ApiResult<Json<TaskPreview>> {
    let spec: TaskSpec = parse_json(&body)?;
    Ok(Json(crate::service::tasks::preview(&s, &spec).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    #[serde(default = "fifty")]
    limit: usize,
}

fn fifty() -> usize {
    50
}

pub(super) async fn list(
    State(s): State<AppState>,
    _p: Principal,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<TaskSummary>>> {
    let limit = q.map_err(|e| ApiError::bad(e.body_text()))?.limit.min(500);
    Ok(Json(s.db.read(move |c| tasks::list(c, limit)).await?))
}

pub(super) async fn get(
    State(s): State<AppState>,
    _p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<TaskSummary>> {
    let now = s.clock.now();
    Ok(Json(
        s.db.read(move |c| {
            let mut t = tasks::get(c, &id)?;
            t.window_opens = crate::tasks::window::opens(c, &t, now)?;
            Ok(t)
        })
        .await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TargetQuery {
    state: Option<String>,
}

pub(super) async fn targets(
    State(s): State<AppState>,
    _p: Principal,
    Path(id): Path<String>,
    q: Result<Query<TargetQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<TargetRow>>> {
    let state = q.map_err(|e| ApiError::bad(e.body_text()))?.0.state;
    if let Some(st) = &state {
        if !crate::rollout::TargetState::NAMES.contains(&st.as_str()) {
            return Err(ApiError::bad(format!(
                "state {st:?}: expected one of {}",
                crate::rollout::TargetState::NAMES.join(", ")
            )));
        }
    }
    Ok(Json(
        s.db.read(move |c| tasks::targets(c, &id, state.as_deref()))
            .await?,
    ))
}

pub(super) async fn pause(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<TaskSummary>> {
    Ok(Json(request(&s, &p, &id, Request::Pause).await?))
}

pub(super) async fn resume(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<TaskSummary>> {
    Ok(Json(request(&s, &p, &id, Request::Resume).await?))
}

pub(super) async fn cancel(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<TaskSummary>> {
    Ok(Json(request(&s, &p, &id, Request::Cancel).await?))
}
