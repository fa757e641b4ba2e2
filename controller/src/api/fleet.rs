//! The fleet's live state: overview, agents, devices, events, telemetry series and points.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use storefleet_protocol::now_ms;

use super::filters::{self, known};
use super::{ApiError, ApiResult, Principal};
use crate::agents::Agent;
use crate::events::{self, StoredEvent};
use crate::fleet::{self, DeviceState, Overview};
use crate::runs::{self, StoredRun};
use crate::state::AppState;
use crate::telemetry::{self, Sample, SeriesInfo};

/// Turns a query-string rejection into a JSON 400.
pub(super) fn query<T>(q: Result<Query<T>, QueryRejection>) -> ApiResult<T> {
    q.map(|Query(v)| v)
        .map_err(|e| ApiError::bad(format!("invalid query: {}", e.body_text())))
}

pub(super) async fn overview(
    State(s): State<AppState>,
    _p: Principal,
) -> ApiResult<Json<Overview>> {
    let rules = s.rules();
    Ok(Json(s.db.read(move |c| fleet::overview(c, &rules)).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StoreQuery {
    store: Option<String>,
}

pub(super) async fn agents(
    State(s): State<AppState>,
    _p: Principal,
    q: Result<Query<StoreQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<Agent>>> {
    let q = query(q)?;
    known(&s, filters::store(q.store.as_deref())).await?;
    let judge = s.rules().judge();
    Ok(Json(
        s.db.read(move |c| judge.list(c, q.store.as_deref()))
            .await?,
    ))
}

pub(super) async fn agent(
    State(s): State<AppState>,
    _p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Agent>> {
    let judge = s.rules().judge();
    let i = id.clone();
    s.db.read(move |c| judge.get(c, &i))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no agent {id:?}")))
}

pub(super) async fn revoke_agent(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    crate::service::agents::revoke(&s, &p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn reenroll_agent(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<storefleet_client::agents::Reopened>> {
    let reenroll_until = crate::service::agents::reopen(&s, &p, &id).await?;
    Ok(Json(storefleet_client::agents::Reopened {
        agent_id: id,
        reenroll_until,
    }))
}

pub(super) async fn devices(
    State(s): State<AppState>,
    _p: Principal,
    q: Result<Query<StoreQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<DeviceState>>> {
    let q = query(q)?;
    known(&s, filters::store(q.store.as_deref())).await?;
    let rules = s.rules();
    Ok(Json(
        s.db.read(move |c| fleet::devices(c, q.store.as_deref(), &rules))
            .await?,
    ))
}

pub(super) async fn events(
    State(s): State<AppState>,
    _p: Principal,
    q: Result<Query<events::Filter>, QueryRejection>,
) -> ApiResult<Json<Vec<StoredEvent>>> {
    let f = query(q)?;
    known(
        &s,
        filters::store_and_agent(f.store.as_deref(), f.agent.as_deref()),
    )
    .await?;
    Ok(Json(s.db.read(move |c| events::list(c, &f)).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SeriesQuery {
    device: Option<String>,
}

pub(super) async fn series(
    State(s): State<AppState>,
    _p: Principal,
    Path(code): Path<String>,
    q: Result<Query<SeriesQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<SeriesInfo>>> {
    let q = query(q)?;
    known(&s, filters::store(Some(&code))).await?;
    Ok(Json(
        s.db.read(move |c| telemetry::series(c, &code, q.device.as_deref()))
            .await?,
    ))
}

/// Query of `/series/{id}/points`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointsQuery {
    /// Start, ms (default: `to` minus 6 hours).
    pub from: Option<i64>,
    /// End, ms (default: now).
    pub to: Option<i64>,
    /// 0 (raw), 60 or 3600; default chosen by the range.
    pub res: Option<u32>,
    /// Points at most (default 2,000, at most 20,000).
    pub limit: Option<u32>,
}

pub(super) async fn points(
    State(s): State<AppState>,
    _p: Principal,
    Path(id): Path<i64>,
    q: Result<Query<PointsQuery>, QueryRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let q = query(q)?;
    let to = q.to.unwrap_or_else(now_ms);
    let from = q.from.unwrap_or(to - 6 * 3_600_000);
    if from > to {
        return Err(ApiError::bad("from must not be after to"));
    }
    let res = q
        .res
        .unwrap_or_else(|| telemetry::auto_resolution(from, to));
    if ![0, 60, 3600].contains(&res) {
        return Err(ApiError::bad("res: 0 (raw), 60 or 3600"));
    }
    let limit = q.limit.unwrap_or(2000).clamp(1, 20_000);
    let (exists, samples): (bool, Vec<Sample>) =
        s.db.read(move |c| {
            Ok((
                telemetry::exists(c, id)?,
                telemetry::samples(c, id, from, to, res, limit)?,
            ))
        })
        .await?;
    if !exists {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("no series {id}")));
    }
    Ok(Json(
        serde_json::json!({ "series_id": id, "from": from, "to": to, "res": res, "points": samples }),
    ))
}

pub(super) async fn runs(
    State(s): State<AppState>,
    _p: Principal,
    q: Result<Query<runs::Filter>, QueryRejection>,
) -> ApiResult<Json<Vec<StoredRun>>> {
    let f = query(q)?;
    known(
        &s,
        filters::store_and_agent(f.store.as_deref(), f.agent.as_deref()),
    )
    .await?;
    Ok(Json(s.db.read(move |c| runs::list(c, &f)).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BrokerDir {
    #[serde(default = "default_broker_dir")]
    dir: String,
}

fn default_broker_dir() -> String {
    "/etc/mosquitto/conf.d".into()
}

/// The password and ACL files an external Mosquitto needs ([`crate::broker_config`]).
pub(super) async fn mosquitto(
    State(s): State<AppState>,
    _p: Principal,
    q: Result<Query<BrokerDir>, QueryRejection>,
) -> ApiResult<Json<crate::broker_config::MosquittoFiles>> {
    let q = query(q)?;
    let creds = s
        .config
        .mqtt_credentials()
        .map_err(ApiError::bad)?
        .ok_or_else(|| {
            ApiError::bad(
                "set [mqtt] url, username and password_file (the controller's login at \
                 Mosquitto) first",
            )
        })?;
    let hash = crate::broker_config::mosquitto_hash(&creds.password);
    let user = creds.username.clone();
    Ok(Json(
        s.db.read(move |c| crate::broker_config::mosquitto_files(c, &user, &hash, &q.dir))
            .await?,
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HeldQuery {
    limit: Option<u32>,
}

pub(super) async fn held(
    State(s): State<AppState>,
    _p: Principal,
    q: Result<Query<HeldQuery>, QueryRejection>,
) -> ApiResult<Json<crate::service::ingest::HeldList>> {
    let limit = query(q)?.limit.unwrap_or(200);
    Ok(Json(crate::service::ingest::list(&s, limit).await?))
}

pub(super) async fn held_retry(
    State(s): State<AppState>,
    p: Principal,
    Path((agent, seq)): Path<(String, u64)>,
) -> ApiResult<Json<storefleet_client::ingest::Retried>> {
    let stored = crate::service::ingest::retry(&s, &p, &agent, seq).await?;
    Ok(Json(storefleet_client::ingest::Retried {
        agent_id: agent,
        seq,
        stored,
    }))
}

pub(super) async fn held_drop(
    State(s): State<AppState>,
    p: Principal,
    Path((agent, seq)): Path<(String, u64)>,
) -> ApiResult<StatusCode> {
    crate::service::ingest::drop(&s, &p, &agent, seq).await?;
    Ok(StatusCode::NO_CONTENT)
}
