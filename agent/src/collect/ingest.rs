//! The local ingest endpoint on loopback, where store applications push readings and
//! events, and where the agent's health is served.
//!
//! - `POST /v1/telemetry`: `{"device": "pos-1"?, "series": [{"device"?, "metric": "m",
//!   "points": [{"t": <ms>?, "v": <number>}]}]}`. `t` defaults to now; a series without a
//!   device takes the top-level one, or none (the gateway).
//! - `POST /v1/events`: one event or an array of them: `{"id"?, "code": "app.pos.crash",
//!   "severity": "info|warning|error|critical", "message"?, "device"?, "ts"?, "data"?}`.
//!   An event with an `id` already buffered is accepted once (a retried request).
//! - `GET /metrics`: Prometheus text. `GET /v1/health`: JSON.
//!
//! Answers: `200 {"accepted": n}` only after the data is committed to the buffer; `400`
//! with the field path and what was expected; `413` over `ingest.max_body_bytes`; `415`
//! without a JSON content type; `503` with `Retry-After` when the event quota or the disk
//! is full. Nothing is ever half-accepted: a request is stored whole or not at all.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use storefleet_protocol::message::{Event, Severity};
use storefleet_protocol::now_ms;

use crate::buffer::{new_event_id, Buffer, BufferError, SeriesIn, MAX_NAME_LEN};
use crate::health::Health;

/// Shared state of the endpoint.
#[derive(Clone)]
pub struct IngestState {
    /// The buffer.
    pub buffer: Buffer,
    /// Counters.
    pub health: Arc<Health>,
    /// Largest body, bytes.
    pub max_body_bytes: usize,
    /// This agent's id (for `/v1/health`).
    pub agent_id: String,
}

/// The router.
pub fn router(state: IngestState) -> Router {
    Router::new()
        .route("/v1/telemetry", post(telemetry))
        .route("/v1/events", post(events))
        .route("/metrics", get(metrics))
        .route("/v1/health", get(health))
        .with_state(state)
}

fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": message.into() }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn buffer_error(e: &BufferError) -> Response {
    if e.is_transient() {
        let mut r = json_error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
        r
    } else {
        tracing::error!(error = %e, "Ingest could not store a request");
        json_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

/// Reads a JSON body within the size cap and decodes it, with the path of a bad field.
async fn read_json<T: serde::de::DeserializeOwned>(
    st: &IngestState,
    req: Request,
) -> Result<T, Response> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !is_json {
        Health::add(&st.health.ingest_rejected, 1);
        return Err(json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type: application/json",
        ));
    }
    let bytes = axum::body::to_bytes(req.into_body(), st.max_body_bytes)
        .await
        .map_err(|_| {
            Health::add(&st.health.ingest_rejected, 1);
            json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body larger than {} bytes", st.max_body_bytes),
            )
        })?;
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        Health::add(&st.health.ingest_rejected, 1);
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = if inner.is_syntax() || inner.is_eof() || path == "." {
            format!("invalid JSON body: {inner}")
        } else {
            format!("{path}: {inner}")
        };
        json_error(StatusCode::BAD_REQUEST, msg)
    })
}

fn bad(st: &IngestState, msg: String) -> Response {
    Health::add(&st.health.ingest_rejected, 1);
    json_error(StatusCode::BAD_REQUEST, msg)
}

/// Names of devices and metrics: 1 to 128 of ASCII letters, digits, `.`, `_`, `-`, `:`, `/`.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':' | b'/'))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TelemetryIn {
    #[serde(default)]
    device: Option<String>,
    series: Vec<SeriesBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeriesBody {
    #[serde(default)]
    device: Option<String>,
    metric: String,
    points: Vec<PointBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PointBody {
    #[serde(default)]
    t: Option<i64>,
    v: f64,
}

async fn telemetry(State(st): State<IngestState>, req: Request) -> Response {
    let body: TelemetryIn = match read_json(&st, req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let now = now_ms();
    let mut series = Vec::with_capacity(body.series.len());
    for (i, s) in body.series.into_iter().enumerate() {
        let device = s.device.or_else(|| body.device.clone());
        if let Some(d) = &device {
            if !valid_name(d) {
                return bad(&st, format!("series[{i}].device: {d:?} is not a valid name (1-128 of A-Z a-z 0-9 . _ - : /)"));
            }
        }
        if !valid_name(&s.metric) {
            return bad(
                &st,
                format!(
                    "series[{i}].metric: {:?} is not a valid name (1-128 of A-Z a-z 0-9 . _ - : /)",
                    s.metric
                ),
            );
        }
        let mut points = Vec::with_capacity(s.points.len());
        for (j, p) in s.points.into_iter().enumerate() {
            if !p.v.is_finite() {
                return bad(
                    &st,
                    format!("series[{i}].points[{j}].v: must be a finite number"),
                );
            }
            let t = p.t.unwrap_or(now);
            if t <= 0 {
                return bad(
                    &st,
                    format!("series[{i}].points[{j}].t: must be milliseconds since 1970, got {t}"),
                );
            }
            points.push((t, p.v));
        }
        series.push(SeriesIn {
            device,
            metric: s.metric,
            points,
        });
    }
    let n: usize = series.iter().map(|s| s.points.len()).sum();
    if n == 0 {
        return bad(&st, "series: no points".into());
    }
    match st.buffer.add_points(series).await {
        Ok(n) => ok(n, 0),
        Err(e) => buffer_error(&e),
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum EventsIn {
    Many(Vec<EventBody>),
    One(EventBody),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventBody {
    #[serde(default)]
    id: Option<String>,
    code: String,
    severity: Severity,
    #[serde(default)]
    message: String,
    #[serde(default)]
    device: Option<String>,
    #[serde(default)]
    ts: Option<i64>,
    #[serde(default)]
    data: serde_json::Map<String, serde_json::Value>,
}

async fn events(State(st): State<IngestState>, req: Request) -> Response {
    let body: serde_json::Value = match read_json(&st, req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    // Decode per shape so that the error names the field, not "no variant matched".
    let list = if body.is_array() {
        serde_path_to_error::deserialize::<_, Vec<EventBody>>(body).map(EventsIn::Many)
    } else {
        serde_path_to_error::deserialize::<_, EventBody>(body).map(EventsIn::One)
    };
    let list = match list {
        Ok(EventsIn::Many(v)) => v,
        Ok(EventsIn::One(e)) => vec![e],
        Err(e) => {
            let path = e.path().to_string();
            return bad(&st, format!("{path}: {}", e.into_inner()));
        }
    };
    if list.is_empty() {
        return bad(&st, "no events".into());
    }
    let now = now_ms();
    let mut events = Vec::with_capacity(list.len());
    for (i, e) in list.into_iter().enumerate() {
        if !valid_name(&e.code) {
            return bad(
                &st,
                format!(
                    "[{i}].code: {:?} is not a valid name (1-128 of A-Z a-z 0-9 . _ - : /)",
                    e.code
                ),
            );
        }
        if let Some(d) = &e.device {
            if !valid_name(d) {
                return bad(&st, format!("[{i}].device: {d:?} is not a valid name"));
            }
        }
        if let Some(id) = &e.id {
            if id.is_empty() || id.len() > MAX_NAME_LEN {
                return bad(&st, format!("[{i}].id: 1 to {MAX_NAME_LEN} characters"));
            }
        }
        if e.message.len() > 4096 {
            return bad(&st, format!("[{i}].message: at most 4096 bytes"));
        }
        events.push(Event {
            id: e.id.unwrap_or_else(new_event_id),
            ts: e.ts.unwrap_or(now),
            device: e.device,
            code: e.code,
            severity: e.severity,
            message: e.message,
            data: e.data,
        });
    }
    match st.buffer.add_events(events).await {
        Ok((accepted, duplicates)) => ok(accepted, duplicates),
        Err(e) => buffer_error(&e),
    }
}

fn ok(accepted: usize, duplicates: usize) -> Response {
    let body = serde_json::json!({ "accepted": accepted, "duplicates": duplicates }).to_string();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn metrics(State(st): State<IngestState>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        Body::from(st.health.render_prometheus(now_ms())),
    )
        .into_response()
}

async fn health(State(st): State<IngestState>) -> Response {
    use std::sync::atomic::Ordering::Relaxed;
    let h = &st.health;
    let body = serde_json::json!({
        "agent_id": st.agent_id,
        "connected": h.connected.load(Relaxed) == 1,
        "buffer_points": h.buffer_points.load(Relaxed),
        "buffer_events": h.buffer_events.load(Relaxed),
        "buffer_outbox": h.buffer_outbox.load(Relaxed),
        "oldest_record_age_s": h.oldest_age_secs(now_ms()),
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
