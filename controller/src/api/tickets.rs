//! Tickets, engineers, alerts, silences and KPIs.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::filters::{self, known, Names};
use super::{parse_json, ApiError, ApiResult, Principal};
use crate::engineers::{self, Engineer};
use crate::service::tickets as service;
use crate::state::AppState;
use crate::tickets::db::{Filter, NewTicket};
use crate::tickets::lifecycle::Action;
use crate::tickets::place::Silence;
use crate::tickets::{Ticket, TicketView};

fn query<T>(q: Result<Query<T>, QueryRejection>) -> ApiResult<T> {
    Ok(q.map_err(|e| ApiError::bad(e.body_text()))?.0)
}

pub(super) async fn list(
    State(s): State<AppState>,
    p: Principal,
    q: Result<Query<Filter>, QueryRejection>,
) -> ApiResult<Json<Vec<Ticket>>> {
    let f = query(q)?;
    known(
        &s,
        Names {
            store: f.store.clone(),
            region: f.region.clone(),
            engineer: f.engineer.clone(),
            ..Names::default()
        },
    )
    .await?;
    Ok(Json(service::list(&s, &p, f).await?))
}

pub(super) async fn create(
    State(s): State<AppState>,
    p: Principal,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Ticket>)> {
    let n: NewTicket = parse_json(&body)?;
    Ok((StatusCode::CREATED, Json(service::create(&s, &p, n).await?)))
}

pub(super) async fn get(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
) -> ApiResult<Json<TicketView>> {
    let (ticket, timeline) = service::get(&s, &p, id).await?;
    Ok(Json(TicketView { ticket, timeline }))
}

pub(super) async fn act(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
    body: Bytes,
) -> ApiResult<Json<Ticket>> {
    let a: Action = parse_json(&body)?;
    Ok(Json(service::act(&s, &p, id, a).await?))
}

pub(super) async fn add_part(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
    body: Bytes,
) -> ApiResult<(axum::http::StatusCode, Json<crate::tickets::parts::Part>)> {
    let n = parse_json(&body)?;
    let part = service::add_part(&s, &p, id, n).await?;
    Ok((axum::http::StatusCode::CREATED, Json(part)))
}

pub(super) async fn change_part(
    State(s): State<AppState>,
    p: Principal,
    Path((id, part)): Path<(i64, i64)>,
    body: Bytes,
) -> ApiResult<Json<crate::tickets::parts::Part>> {
    let ch = parse_json(&body)?;
    Ok(Json(service::change_part(&s, &p, id, part, ch).await?))
}

pub(super) async fn engineers_list(
    State(s): State<AppState>,
    _p: Principal,
) -> ApiResult<Json<Vec<engineers::EngineerLoad>>> {
    Ok(Json(s.db.read(engineers::list_with_load).await?))
}

pub(super) async fn engineer_put(
    State(s): State<AppState>,
    _p: Principal,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Engineer>> {
    let e: Engineer = parse_json(&body)?;
    if e.id != id {
        return Err(ApiError::bad(format!(
            "the body's id {:?} is not the path's {id:?}",
            e.id
        )));
    }
    Ok(Json(service::save_engineer(&s, e).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: String,
}

pub(super) async fn engineer_status(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let b: StatusBody = parse_json(&body)?;
    service::engineer_status(&s, &p, &id, &b.status).await?;
    Ok(Json(json!({"status": b.status})))
}

#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct AlertQuery {
    /// Only those not cleared.
    open: bool,
    store: Option<String>,
    limit: Option<u32>,
}

pub(super) async fn alerts(
    State(s): State<AppState>,
    _p: Principal,
    q: Result<Query<AlertQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<Value>>> {
    let q = query(q)?;
    known(&s, filters::store(q.store.as_deref())).await?;
    Ok(Json(
        s.db.read(move |c| {
            crate::tickets::standing::alerts(c, q.open, q.store.as_deref(), q.limit.unwrap_or(200))
        })
        .await?,
    ))
}

pub(super) async fn silence_create(
    State(s): State<AppState>,
    p: Principal,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Silence>)> {
    let n: service::NewSilence = parse_json(&body)?;
    Ok((
        StatusCode::CREATED,
        Json(service::silence(&s, &p, n).await?),
    ))
}

pub(super) async fn silences(
    State(s): State<AppState>,
    _p: Principal,
) -> ApiResult<Json<Vec<Silence>>> {
    let now = s.clock.now();
    Ok(Json(
        s.db.read(move |c| crate::tickets::standing::silences(c, now, false))
            .await?,
    ))
}

pub(super) async fn silence_delete(
    State(s): State<AppState>,
    _p: Principal,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let now = s.clock.now();
    let ended =
        s.db.write(move |c| crate::tickets::standing::end_silence(c, id, now))
            .await?;
    if !ended {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no active silence {id}"),
        ));
    }
    s.signals.wake(crate::cluster::Wake::Tickets);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct Period {
    from: Option<i64>,
    to: Option<i64>,
    days: Option<u32>,
    store: Option<String>,
}

impl Period {
    /// `[from, to)`: given, or the last `days` (default 7) up to now.
    pub(super) fn resolve(&self, now: i64) -> (i64, i64) {
        let to = self.to.unwrap_or(now + 1);
        let from = self
            .from
            .unwrap_or(to - i64::from(self.days.unwrap_or(7).clamp(1, 366)) * 86_400_000);
        (from, to)
    }
}

pub(super) async fn kpis(
    State(s): State<AppState>,
    _p: Principal,
    q: Result<Query<Period>, QueryRejection>,
) -> ApiResult<Json<crate::kpi::Kpis>> {
    let q = query(q)?;
    known(&s, filters::store(q.store.as_deref())).await?;
    let (from, to) = q.resolve(s.clock.now());
    Ok(Json(
        s.db.read(move |c| crate::kpi::compute(c, from, to, q.store.as_deref()))
            .await?,
    ))
}

pub(super) async fn webhooks(State(s): State<AppState>, _p: Principal) -> ApiResult<Json<Value>> {
    let counts = s.db.read(crate::webhooks::counts).await?;
    let hooks: Vec<Value> = s
        .tickets
        .hooks
        .iter()
        .map(|h| json!({"name": h.name, "url": h.url, "events": h.events}))
        .collect();
    Ok(Json(json!({"hooks": hooks, "deliveries": counts})))
}
