//! Webhooks to external ITSM systems: ticket events as signed JSON posts.
//!
//! A delivery is a row of `webhook_outbox`, written in the same transaction as the ticket
//! change it tells of, so none is lost when the controller stops: the delivery task sends
//! what is due after a restart. Each post carries `X-Storefleet-Event`,
//! `X-Storefleet-Delivery` (the row id, for the receiver to dedupe) and
//! `X-Storefleet-Signature: sha256=<hex HMAC-SHA256 of the body with the hook's secret>`.
//! A 2xx answer delivers it; anything else (an error status, no answer within 10 s) is
//! retried with exponential backoff and jitter from 1 s up to 10 minutes, for at most
//! [`MAX_ATTEMPTS`] attempts (about two days), after which the row is marked failed and
//! counted. Secrets are never logged.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use storefleet_storage::{args, Sql, SqlExt as _};
use storefleet_support::http::{self, Request};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::WebhookConfig;
use crate::db::{Db, DbError};

/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: i64 = 300;
/// Deliveries taken per round.
const BATCH: i64 = 50;

/// Queues `event` with `payload` for every hook that wants it.
pub fn enqueue(
    c: &dyn Sql,
    hooks: &[WebhookConfig],
    event: &str,
    payload: &serde_json::Value,
    now: i64,
) -> Result<usize, DbError> {
    let mut n = 0;
    for h in hooks
        .iter()
        .filter(|h| h.events.is_empty() || h.events.iter().any(|e| e == event))
    {
        let body = serde_json::json!({ "event": event, "at": now, "data": payload }).to_string();
        c.execute(
            "INSERT INTO webhook_outbox(hook, event, body, created_at, next_at) VALUES (?1, ?2, ?3, ?4, ?4)",
            args![&h.name, event, body, now],
        )?;
        n += 1;
    }
    Ok(n)
}

/// The signature header value of `body` with `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, body);
    let mut s = String::with_capacity(7 + 64);
    s.push_str("sha256=");
    for b in tag.as_ref() {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Delay before attempt `attempts + 1`, ms: 1 s doubling to 10 minutes, with up to 20 %
/// jitter.
pub fn backoff_ms(attempts: i64) -> i64 {
    let base = 1000i64
        .saturating_mul(1 << attempts.clamp(0, 20))
        .min(600_000);
    base + rand::random_range(0..=base / 5)
}

/// Delivery counts, for the API and `/metrics`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Waiting (first try or retry).
    pub pending: i64,
    /// Delivered.
    pub delivered: i64,
    /// Given up.
    pub failed: i64,
}

/// How many deliveries are in each state.
pub fn counts(c: &dyn Sql) -> Result<Counts, DbError> {
    let r = c
        .one(
            "SELECT count(*) FILTER (WHERE delivered_at IS NULL AND failed_at IS NULL) AS pending,
                    count(*) FILTER (WHERE delivered_at IS NOT NULL) AS delivered,
                    count(*) FILTER (WHERE failed_at IS NOT NULL) AS failed
             FROM webhook_outbox",
            args![],
        )?
        .ok_or_else(|| DbError::Backend("webhook counts: no row".into()))?;
    Ok(Counts {
        pending: r.i64("pending")?,
        delivered: r.i64("delivered")?,
        failed: r.i64("failed")?,
    })
}

struct Due {
    id: i64,
    hook: String,
    event: String,
    body: String,
    attempts: i64,
}

/// Sends due deliveries until `token` is cancelled; `wake` says new ones were queued.
pub async fn deliver(
    db: Db,
    hooks: Arc<Vec<WebhookConfig>>,
    wake: Arc<Notify>,
    now: impl Fn() -> i64 + Send + 'static,
    token: CancellationToken,
) {
    if hooks.is_empty() {
        return;
    }
    loop {
        let t = now();
        let due = db
            .read(move |c| {
                c.all(
                    "SELECT id, hook, event, body, attempts FROM webhook_outbox
                     WHERE delivered_at IS NULL AND failed_at IS NULL AND next_at <= ?1
                     ORDER BY next_at, id LIMIT ?2",
                    args![t, BATCH],
                    |r| {
                        Ok(Due {
                            id: r.i64("id")?,
                            hook: r.text("hook")?,
                            event: r.text("event")?,
                            body: r.text("body")?,
                            attempts: r.i64("attempts")?,
                        })
                    },
                )
            })
            .await;
        let due = match due {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "Cannot read the webhook outbox; will retry");
                Vec::new()
            }
        };
        let full = due.len() as i64 == BATCH;
        for d in due {
            let outcome = match hooks.iter().find(|h| h.name == d.hook) {
                Some(h) => post(h, &d).await,
                None => Err(format!("no webhook named {:?} is configured now", d.hook)),
            };
            let (id, attempts, t) = (d.id, d.attempts + 1, now());
            let r = db
                .write(move |c| {
                    match &outcome {
                        Ok(()) => c.execute(
                            "UPDATE webhook_outbox SET delivered_at = ?2, attempts = ?3, last_error = '' WHERE id = ?1",
                            args![id, t, attempts],
                        )?,
                        Err(e) if attempts >= MAX_ATTEMPTS => c.execute(
                            "UPDATE webhook_outbox SET failed_at = ?2, attempts = ?3, last_error = ?4 WHERE id = ?1",
                            args![id, t, attempts, e.as_str()],
                        )?,
                        Err(e) => c.execute(
                            "UPDATE webhook_outbox SET next_at = ?2, attempts = ?3, last_error = ?4 WHERE id = ?1",
                            args![id, t + backoff_ms(attempts - 1), attempts, e.as_str()],
                        )?,
                    };
                    Ok(outcome)
                })
                .await;
            match r {
                Ok(Ok(())) => {
                    tracing::info!(hook = %d.hook, event = %d.event, delivery = id, attempts, "Webhook delivered");
                }
                Ok(Err(e)) if attempts >= MAX_ATTEMPTS => {
                    tracing::error!(hook = %d.hook, event = %d.event, delivery = id, attempts, error = %e, "Webhook given up");
                }
                Ok(Err(e)) => {
                    tracing::warn!(hook = %d.hook, event = %d.event, delivery = id, attempts, error = %e, "Webhook failed; will retry");
                }
                Err(e) => tracing::warn!(error = %e, "Cannot record a webhook attempt"),
            }
        }
        if full {
            continue;
        }
        tokio::select! {
            () = token.cancelled() => return,
            () = wake.notified() => {}
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

async fn post(h: &WebhookConfig, d: &Due) -> Result<(), String> {
    let id = d.id.to_string();
    let sig = signature(&h.secret, d.body.as_bytes());
    let req = Request {
        method: "POST",
        url: &h.url,
        headers: vec![
            ("x-storefleet-event", d.event.clone()),
            ("x-storefleet-delivery", id),
            ("x-storefleet-signature", sig),
        ],
        body: Some(("application/json", d.body.clone().into_bytes())),
    };
    let trust = http::Trust {
        pin: None,
        ca_file: h.ca_file.clone(),
    };
    let client = http::Client::new(&trust).map_err(|e| e.to_string())?;
    match client.send(req, Duration::from_secs(10)).await {
        Ok(r) if (200..300).contains(&r.status) => Ok(()),
        Ok(r) => Err(format!("answered {}", r.status)),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body_in_hex() {
        // RFC 4231 test case 2.
        let s = signature("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            s,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_grows_to_ten_minutes_with_bounded_jitter() {
        for a in 0..40 {
            let d = backoff_ms(a);
            let base = (1000i64 << a.min(20)).min(600_000);
            assert!(d >= base && d <= base + base / 5, "{a}: {d}");
        }
    }
}
