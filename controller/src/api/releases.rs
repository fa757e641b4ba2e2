//! Agent releases: publish (signed elsewhere), list, and the resumable download agents use.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use storefleet_protocol::release::Release;

use super::{ApiError, ApiResult, Principal};
use crate::releases::{self, Published};
use crate::state::AppState;

pub use storefleet_client::SIGNATURE_HEADER;

/// Largest release accepted, bytes.
pub const MAX_RELEASE_BYTES: usize = 200 * 1024 * 1024;

pub(super) async fn list(
    State(s): State<AppState>,
    _p: Principal,
) -> ApiResult<Json<Vec<Published>>> {
    Ok(Json(s.db.read(releases::list).await?))
}

/// `PUT /api/v1/releases/{version}/{arch}`: the binary as the body, the manifest's
/// signature in [`SIGNATURE_HEADER`]; the controller computes size and SHA-256 itself.
pub(super) async fn publish(
    State(s): State<AppState>,
    p: Principal,
    Path((version, arch)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Release>)> {
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::bad(format!(
                "the release's signature goes in the {SIGNATURE_HEADER} header (storefleet release publish does it)"
            ))
        })?;
    let r = Release {
        version,
        arch,
        size: body.len() as u64,
        sha256: storefleet_protocol::release::sha256_hex(&body),
        signature: signature.to_owned(),
    };
    let key = s.release_key;
    let dir = s.config.controller.state_dir.clone();
    let checked = r.clone();
    tokio::task::spawn_blocking(move || {
        releases::store_binary(&dir, key.as_ref(), &checked, &body)
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    let now = s.clock.now();
    let rec = r.clone();
    s.db.write(move |c| releases::record(c, &rec, &p.actor, now))
        .await?;
    tracing::info!(version = %r.version, arch = %r.arch, size = r.size, "Release published");
    Ok((StatusCode::CREATED, Json(r)))
}

/// Parses `bytes=START-` or `bytes=START-END` against a file of `len` bytes.
fn range(h: &str, len: u64) -> Option<(u64, u64)> {
    let spec = h.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let start: u64 = a.trim().parse().ok()?;
    let end: u64 = if b.trim().is_empty() {
        len.checked_sub(1)?
    } else {
        b.trim().parse::<u64>().ok()?.min(len.checked_sub(1)?)
    };
    (start <= end && start < len).then_some((start, end))
}

/// `GET /releases/{version}/{arch}`: the binary, whole or a range of it. No session: the
/// binary is no secret, and agents check it against their signed manifest.
pub(super) async fn download(
    State(s): State<AppState>,
    Path((version, arch)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = match releases::file(&s.config.controller.state_dir, &version, &arch) {
        Ok(p) => p,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let Ok(mut file) = tokio::fs::File::open(&path).await else {
        return ApiError(
            StatusCode::NOT_FOUND,
            format!("no release {version} for {arch}"),
        )
        .into_response();
    };
    let len = match file.metadata().await {
        Ok(m) => m.len(),
        Err(e) => {
            return ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
        }
    };
    // Streamed from the file: a whole fleet downloading at once costs no memory per agent.
    let wanted = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, end) = match wanted {
        None => (StatusCode::OK, 0, len.saturating_sub(1)),
        Some(h) => match range(h, len) {
            Some((a, b)) => (StatusCode::PARTIAL_CONTENT, a, b),
            None => {
                return (
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [(header::CONTENT_RANGE, format!("bytes */{len}"))],
                    Body::empty(),
                )
                    .into_response()
            }
        },
    };
    if start > 0 {
        use tokio::io::AsyncSeekExt as _;
        if let Err(e) = file.seek(std::io::SeekFrom::Start(start)).await {
            return ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
        }
    }
    let count = if len == 0 { 0 } else { end - start + 1 };
    use tokio::io::AsyncReadExt as _;
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
        file.take(count),
        64 * 1024,
    ));
    let mut resp = (
        status,
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::ACCEPT_RANGES, "bytes".to_owned()),
            (header::CONTENT_LENGTH, count.to_string()),
        ],
        body,
    )
        .into_response();
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = format!("bytes {start}-{end}/{len}").parse() {
            resp.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::range;

    #[test]
    fn ranges_resume_or_are_refused() {
        assert_eq!(range("bytes=0-", 10), Some((0, 9)));
        assert_eq!(range("bytes=4-", 10), Some((4, 9)));
        assert_eq!(range("bytes=4-5", 10), Some((4, 5)));
        assert_eq!(range("bytes=4-99", 10), Some((4, 9)));
        assert_eq!(range("bytes=10-", 10), None);
        assert_eq!(range("bytes=x-", 10), None);
        assert_eq!(range("items=0-", 10), None);
        assert_eq!(range("bytes=0-", 0), None);
    }
}
