//! Enrollment tokens (create, list, revoke) and redeeming one: registering an agent's key.
//!
//! The token text is shown once at creation; only the secret's SHA-256 is stored. A token
//! has an expiry, an optional number of uses (1 by default: single-use), and can be revoked.
//! Redeeming checks, in order: the token's form, that it exists, its secret, revocation,
//! expiry, uses, the store, the agent id and key, the request's signature and time, and
//! the agent id's binding. Each refusal says which check failed.
//!
//! An agent id is bound to the key it first enrolled with. Enrolling it again with the same
//! key (a reinstalled gateway) is allowed and may move it to the token's store; with another
//! key it is refused, and so is any enrollment of a revoked agent, until an admin re-enrolls
//! it explicitly ([`allow_reenroll`], `storefleet agents reenroll ID`): that revokes the old
//! key at once and lets one new key enroll within [`REENROLL_WINDOW_MS`].

use base64::Engine as _;
use rand::RngCore as _;
use storefleet_protocol::enroll::{EnrollRequest, EnrollResponse, EnrollToken};
use storefleet_protocol::topic::valid_agent_id;
use storefleet_protocol::PublicKey;
use storefleet_storage::{args, Row, Sql, SqlExt as _};

use crate::db::DbError;
use crate::stores;

pub use storefleet_client::enroll::{CreatedToken, NewToken, TokenInfo};

/// Clock difference tolerated between the agent and the controller, ms.
pub const ENROLL_SKEW_MS: i64 = 10 * 60 * 1000;

/// How long an admin's re-enrollment stays open for a new key, ms.
pub const REENROLL_WINDOW_MS: i64 = 72 * 3_600_000;

/// Where tokens point agents to.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// API base URL.
    pub api: String,
    /// Broker URL.
    pub mqtt: String,
    /// Controller public key.
    pub key: PublicKey,
    /// The release key, which agents pin for updates.
    pub release_key: Option<PublicKey>,
    /// The pin of the API's TLS key; empty without TLS.
    pub tls_pin: String,
}

fn random_b64(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Creates a token; returns its listing and its text (shown once).
pub fn create(
    c: &dyn Sql,
    req: &NewToken,
    by: &str,
    default_ttl_hours: u64,
    ends: &Endpoints,
    now: i64,
) -> Result<(TokenInfo, String), DbError> {
    if stores::get(c, &req.store)?.is_none() {
        return Err(DbError::NotFound(format!(
            "unknown store {:?}; add it first (storefleet stores add {})",
            req.store, req.store
        )));
    }
    let ttl_secs = match (req.ttl_secs, req.ttl_hours) {
        (Some(s), _) => s,
        (None, Some(h)) => h.saturating_mul(3600),
        (None, None) => default_ttl_hours.saturating_mul(3600),
    };
    if ttl_secs == 0 || ttl_secs > 365 * 86_400 {
        return Err(DbError::Invalid(
            "token lifetime: 1 second to 365 days (ttl_secs or ttl_hours)".into(),
        ));
    }
    let max_uses = match req.max_uses {
        None => Some(1),
        Some(0) => None,
        Some(n) if n > 0 => Some(n),
        Some(_) => return Err(DbError::Invalid("max_uses: 0 (unlimited) or more".into())),
    };
    let id = format!("t-{}", &random_b64(9));
    let secret = random_b64(32);
    let exp = now + (ttl_secs as i64) * 1000;
    c.execute(
        "INSERT INTO enroll_tokens(id, secret_hash, store_code, created_at, created_by, expires_at, max_uses, note)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        args![&id, EnrollToken::secret_hash(&secret), &req.store, now, by, exp, max_uses, &req.note],
    )?;
    let token = EnrollToken {
        id: id.clone(),
        secret,
        api: ends.api.clone(),
        mqtt: ends.mqtt.clone(),
        key: ends.key.to_base64(),
        store: req.store.clone(),
        exp,
        release_key: ends.release_key.map(|k| k.to_base64()).unwrap_or_default(),
        tls_pin: ends.tls_pin.clone(),
    };
    let info = get(c, &id)?.ok_or_else(|| DbError::NotFound(id.clone()))?;
    Ok((info, token.encode()))
}

const COLUMNS: &str =
    "id, store_code, created_by, created_at, expires_at, max_uses, uses, revoked_at, note";

fn from_row(r: &Row) -> Result<TokenInfo, DbError> {
    Ok(TokenInfo {
        id: r.text("id")?,
        store: r.text("store_code")?,
        created_by: r.text("created_by")?,
        created_at: r.i64("created_at")?,
        expires_at: r.i64("expires_at")?,
        max_uses: r.opt_i64("max_uses")?,
        uses: r.i64("uses")?,
        revoked_at: r.opt_i64("revoked_at")?,
        note: r.text("note")?,
    })
}

/// One token.
pub fn get(c: &dyn Sql, id: &str) -> Result<Option<TokenInfo>, DbError> {
    c.one(
        &format!("SELECT {COLUMNS} FROM enroll_tokens WHERE id = ?1"),
        args![id],
    )?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// All tokens, newest first.
pub fn list(c: &dyn Sql) -> Result<Vec<TokenInfo>, DbError> {
    c.all(
        &format!("SELECT {COLUMNS} FROM enroll_tokens ORDER BY created_at DESC"),
        args![],
        from_row,
    )
}

/// Revokes a token; revoking twice is not an error.
pub fn revoke(c: &dyn Sql, id: &str, now: i64) -> Result<TokenInfo, DbError> {
    let n = c.execute(
        "UPDATE enroll_tokens SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1",
        args![id, now],
    )?;
    if n == 0 {
        return Err(DbError::NotFound(format!("no enrollment token {id:?}")));
    }
    get(c, id)?.ok_or_else(|| DbError::NotFound(id.to_owned()))
}

/// Redeems a token: checks everything and registers the agent's key. Returns the answer
/// and the public key registered.
/// With `broker_password`, the agent also gets a password for an external broker (its
/// Mosquitto hash is kept for `broker-config`).
pub fn redeem(
    c: &dyn Sql,
    req: &EnrollRequest,
    mqtt_url: &str,
    broker_password: bool,
    now: i64,
) -> Result<EnrollResponse, DbError> {
    let refuse = |m: String| DbError::Invalid(format!("enrollment refused: {m}"));
    let token = EnrollToken::decode(&req.token).map_err(|e| refuse(e.to_string()))?;
    let Some(row) = c.one(
        "SELECT secret_hash, store_code, expires_at, max_uses, uses, revoked_at
         FROM enroll_tokens WHERE id = ?1",
        args![&token.id],
    )?
    else {
        return Err(refuse(format!(
            "token {} is not known to this controller",
            token.id
        )));
    };
    let (hash, store, expires_at) = (
        row.blob("secret_hash")?,
        row.text("store_code")?,
        row.i64("expires_at")?,
    );
    let (max_uses, uses, revoked_at) = (
        row.opt_i64("max_uses")?,
        row.i64("uses")?,
        row.opt_i64("revoked_at")?,
    );
    if !crate::auth::same_bytes(&hash, &EnrollToken::secret_hash(&token.secret)) {
        return Err(refuse(format!("token {} has a wrong secret", token.id)));
    }
    if revoked_at.is_some() {
        return Err(refuse(format!("token {} was revoked", token.id)));
    }
    if now > expires_at {
        return Err(refuse(format!(
            "token {} expired {} minutes ago",
            token.id,
            (now - expires_at) / 60_000
        )));
    }
    if max_uses.is_some_and(|m| uses >= m) {
        return Err(refuse(format!(
            "token {} was already used ({uses} of {} uses)",
            token.id,
            max_uses.unwrap_or_default()
        )));
    }
    if !valid_agent_id(&req.agent_id) {
        return Err(refuse(format!("agent id {:?} is not valid", req.agent_id)));
    }
    if req
        .agent_id
        .starts_with(storefleet_protocol::broker::CONTROLLER_USER)
    {
        return Err(refuse(format!(
            "agent id {:?} is reserved for the controller",
            req.agent_id
        )));
    }
    let key =
        PublicKey::from_base64(&req.public_key).map_err(|e| refuse(format!("public key: {e}")))?;
    let sig = base64::engine::general_purpose::STANDARD
        .decode(req.signature.trim())
        .map_err(|_| refuse("signature is not base64".into()))?;
    let signed = EnrollRequest::signed_bytes(
        &token.id,
        &req.agent_id,
        &req.public_key,
        &req.hostname,
        req.ts,
    );
    if !key.verify(&signed, &sig) {
        return Err(refuse(
            "the request's signature does not match its key".into(),
        ));
    }
    if (now - req.ts).abs() > ENROLL_SKEW_MS {
        return Err(refuse(format!(
            "the gateway's clock is off by {} s; set its time and retry",
            (req.ts - now) / 1000
        )));
    }
    let bound = c.one(
        "SELECT public_key, revoked_at, reenroll_until FROM agents WHERE id = ?1",
        args![&req.agent_id],
    )?;
    if let Some(r) = bound {
        let (old_key, revoked_at, reenroll_until) = (
            r.text("public_key")?,
            r.opt_i64("revoked_at")?,
            r.opt_i64("reenroll_until")?,
        );
        let reenroll = reenroll_until.is_some_and(|until| now <= until);
        if !reenroll && revoked_at.is_some() {
            return Err(refuse(format!(
                "agent {} was revoked; an admin must re-enroll it (storefleet agents reenroll {})",
                req.agent_id, req.agent_id
            )));
        }
        if !reenroll && old_key != key.to_base64() {
            return Err(refuse(format!(
                "agent id {} is enrolled with another key; if this gateway replaces it, an \
                 admin must re-enroll it (storefleet agents reenroll {})",
                req.agent_id, req.agent_id
            )));
        }
    }
    // Counted only while uses are left, so that two gateways redeeming a single-use token
    // at once (on two replicas) cannot both get it.
    let counted = c.execute(
        "UPDATE enroll_tokens SET uses = uses + 1
         WHERE id = ?1 AND (max_uses IS NULL OR uses < max_uses)",
        args![&token.id],
    )?;
    if counted == 0 {
        return Err(refuse(format!("token {} was already used", token.id)));
    }
    c.execute(
        "INSERT INTO agents(id, public_key, store_code, enrolled_at, token_id, hostname, agent_version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(id) DO UPDATE SET public_key = ?2, store_code = ?3, enrolled_at = ?4,
             token_id = ?5, hostname = ?6, agent_version = ?7, revoked_at = NULL,
             reenroll_until = NULL",
        args![
            &req.agent_id,
            key.to_base64(),
            &store,
            now,
            &token.id,
            &req.hostname,
            &req.agent_version
        ],
    )?;
    let mqtt_password = if broker_password {
        let p = crate::broker_config::new_agent_password();
        c.execute(
            "UPDATE agents SET broker_pw_hash = ?2 WHERE id = ?1",
            args![&req.agent_id, crate::broker_config::mosquitto_hash(&p)],
        )?;
        p
    } else {
        String::new()
    };
    tracing::info!(agent_id = %req.agent_id, store = %store, token = %token.id, "Agent enrolled");
    Ok(EnrollResponse {
        agent_id: req.agent_id.clone(),
        store,
        mqtt_url: mqtt_url.to_owned(),
        mqtt_password,
    })
}

/// An admin's re-enrollment of `agent_id`: its current key is revoked now, and one new key
/// may enroll it with a valid token until the returned deadline (ms).
pub fn allow_reenroll(c: &dyn Sql, agent_id: &str, now: i64) -> Result<i64, DbError> {
    let until = now + REENROLL_WINDOW_MS;
    let n = c.execute(
        "UPDATE agents SET revoked_at = coalesce(revoked_at, ?2), reenroll_until = ?3
         WHERE id = ?1",
        args![agent_id, now, until],
    )?;
    if n == 0 {
        return Err(DbError::NotFound(format!("no agent {agent_id:?}")));
    }
    Ok(until)
}
