//! Gateways' keys and enrollment tokens: revoking an agent or opening it for re-enrollment
//! takes its key out of every replica's registry at once (the broker and ingest refuse it
//! from then on); creating or revoking a token is recorded with who did it.

use storefleet_protocol::now_ms;

use crate::enroll::{self, NewToken, TokenInfo};
use crate::state::AppState;

use super::{Principal, Result};

/// Revokes agent `id`'s key: its messages and broker logins are refused from now on, on
/// every replica.
pub async fn revoke(s: &AppState, p: &Principal, id: &str) -> Result<()> {
    let agent = id.to_owned();
    s.db.write(move |c| crate::agents::revoke(c, &agent, now_ms()))
        .await?;
    forget(s, id);
    tracing::info!(agent_id = %id, by = %p.actor, "Agent key revoked");
    Ok(())
}

/// Revokes agent `id`'s key and lets it enroll again under the same id (a reinstalled
/// gateway); returns until when, ms.
pub async fn reopen(s: &AppState, p: &Principal, id: &str) -> Result<i64> {
    let agent = id.to_owned();
    let until =
        s.db.write(move |c| enroll::allow_reenroll(c, &agent, now_ms()))
            .await?;
    forget(s, id);
    tracing::warn!(agent_id = %id, by = %p.actor, until, "Agent opened for re-enrollment; its key is revoked");
    Ok(until)
}

/// Drops the key here and tells the other replicas.
fn forget(s: &AppState, id: &str) {
    s.registry.remove(id);
    s.signals.key_changed(id);
}

/// Creates an enrollment token; returns it with its text (shown once).
pub async fn create_token(
    s: &AppState,
    p: &Principal,
    req: NewToken,
) -> Result<(TokenInfo, String)> {
    let ends = crate::api::endpoints(s);
    let ttl = s.config.enrollment.token_ttl_hours;
    let actor = p.actor.clone();
    let (info, text) =
        s.db.write(move |c| enroll::create(c, &req, &actor, ttl, &ends, now_ms()))
            .await?;
    tracing::info!(token = %info.id, store = %info.store, by = %info.created_by, "Enrollment token created");
    Ok((info, text))
}

/// Revokes enrollment token `id`.
pub async fn revoke_token(s: &AppState, p: &Principal, id: &str) -> Result<TokenInfo> {
    let token = id.to_owned();
    let info =
        s.db.write(move |c| enroll::revoke(c, &token, now_ms()))
            .await?;
    tracing::info!(token = %info.id, by = %p.actor, "Enrollment token revoked");
    Ok(info)
}
