//! Enrollment: `/api/v1/enroll-tokens` (operators) and `/api/v1/enroll` (agents).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use storefleet_protocol::enroll::{EnrollRequest, EnrollResponse};
use storefleet_protocol::{now_ms, PublicKey};

use super::{parse_json, ApiResult, Principal};
use crate::enroll::{self, CreatedToken, Endpoints, NewToken, TokenInfo};
use crate::state::AppState;

pub(super) async fn list(
    State(s): State<AppState>,
    _p: Principal,
) -> ApiResult<Json<Vec<TokenInfo>>> {
    Ok(Json(s.db.read(enroll::list).await?))
}

/// The endpoints tokens point agents to.
pub fn endpoints(s: &AppState) -> Endpoints {
    Endpoints {
        api: s.config.public_url(),
        mqtt: s.config.advertised_mqtt_url(),
        key: s.key.public_key(),
        release_key: s.release_key,
        tls_pin: s.tls_pin.clone(),
    }
}

pub(super) async fn create(
    State(s): State<AppState>,
    p: Principal,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let req: NewToken = parse_json(&body)?;
    let (info, token) = crate::service::agents::create_token(&s, &p, req).await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { token, info })))
}

pub(super) async fn revoke(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<TokenInfo>> {
    Ok(Json(
        crate::service::agents::revoke_token(&s, &p, &id).await?,
    ))
}

pub(super) async fn enroll(
    State(s): State<AppState>,
    body: Bytes,
) -> ApiResult<Json<EnrollResponse>> {
    let req: EnrollRequest = parse_json(&body)?;
    let mqtt = s.config.advertised_mqtt_url();
    let external = !s.config.mqtt.url.is_empty();
    let r = req.clone();
    let resp =
        s.db.write(move |c| enroll::redeem(c, &r, &mqtt, external, now_ms()))
            .await;
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            // Debug formatting: a hostile id cannot forge log lines.
            tracing::warn!(agent_id = ?req.agent_id, error = %e, "Enrollment refused");
            return Err(e.into());
        }
    };
    if let Ok(key) = PublicKey::from_base64(&req.public_key) {
        s.registry.insert(&resp.agent_id, key, &resp.store);
    }
    s.signals.key_changed(&resp.agent_id);
    Ok(Json(resp))
}
