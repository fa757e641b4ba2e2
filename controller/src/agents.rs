//! Agents: enrolled gateways' keys and their presence (online, offline, last seen).
//!
//! An agent is online when its last presence said so and it was heard from within
//! `presence.offline_after_secs`; its last will (a signed `offline` presence) or silence
//! makes it offline.

use std::collections::HashMap;

use storefleet_protocol::PublicKey;
use storefleet_storage::many::lookup;
use storefleet_storage::{args, Row, Sql, SqlExt as _, Value};

use crate::db::DbError;

pub use storefleet_client::agents::Agent;

const COLUMNS: &str = "id, store_code, public_key, hostname, agent_version, enrolled_at, presence, presence_at, started_at, last_seen, revoked_at";

/// Stores past which [`Judge::of_stores`] reads every agent instead of looking them up.
pub const WHOLE_AFTER: usize = 256;

/// Turns rows into agents, judging `online` at `now`.
pub struct Judge {
    /// Now, ms.
    pub now: i64,
    /// Silence after which an agent is offline, ms.
    pub offline_after_ms: i64,
}

impl Judge {
    fn row(&self, r: &Row) -> Result<Agent, DbError> {
        let presence = r.text("presence")?;
        let last_seen = r.opt_i64("last_seen")?;
        let revoked_at = r.opt_i64("revoked_at")?;
        let online = presence == "online"
            && revoked_at.is_none()
            && last_seen.is_some_and(|t| self.now - t <= self.offline_after_ms);
        Ok(Agent {
            id: r.text("id")?,
            store: r.text("store_code")?,
            public_key: r.text("public_key")?,
            hostname: r.text("hostname")?,
            agent_version: r.text("agent_version")?,
            enrolled_at: r.i64("enrolled_at")?,
            presence,
            presence_at: r.opt_i64("presence_at")?,
            started_at: r.opt_i64("started_at")?,
            last_seen,
            online,
            revoked_at,
        })
    }

    /// Agents, optionally of one store.
    pub fn list(&self, c: &dyn Sql, store: Option<&str>) -> Result<Vec<Agent>, DbError> {
        c.all(
            &format!(
                "SELECT {COLUMNS} FROM agents WHERE (CAST(?1 AS TEXT) IS NULL OR store_code = ?1) ORDER BY store_code, id"
            ),
            args![store],
            |r| self.row(r),
        )
    }

    /// Only the agents that are offline by this judge (said so, or silent too long),
    /// not revoked and heard from at least once, of the whole fleet.
    pub fn offline(&self, c: &dyn Sql) -> Result<Vec<Agent>, DbError> {
        self.not_online(c, true)
    }

    /// Only the agents that are not online by this judge and not revoked, of the whole
    /// fleet; with `heard_only`, not those never heard from.
    pub fn not_online(&self, c: &dyn Sql, heard_only: bool) -> Result<Vec<Agent>, DbError> {
        c.all(
            &format!(
                "SELECT {COLUMNS} FROM agents
                 WHERE revoked_at IS NULL AND (?3 = 0 OR last_seen IS NOT NULL)
                   AND NOT (presence = 'online' AND last_seen IS NOT NULL AND ?1 - last_seen <= ?2)
                 ORDER BY store_code, id"
            ),
            args![self.now, self.offline_after_ms, i64::from(heard_only)],
            |r| self.row(r),
        )
    }

    /// The agents of the given stores that are not revoked, looked up by store; past
    /// [`WHOLE_AFTER`] stores (a fleet-wide outage), read with every agent in one go, which
    /// then costs less than a lookup per store.
    pub fn of_stores(&self, c: &dyn Sql, stores: &[&str]) -> Result<Vec<Agent>, DbError> {
        if stores.len() > WHOLE_AFTER {
            let wanted: std::collections::HashSet<&str> = stores.iter().copied().collect();
            return Ok(self
                .list(c, None)?
                .into_iter()
                .filter(|a| a.revoked_at.is_none() && wanted.contains(a.store.as_str()))
                .collect());
        }
        let keys: Vec<Vec<Value>> = stores.iter().map(|s| vec![(*s).into()]).collect();
        lookup(
            c,
            &format!(
                "SELECT {COLUMNS} FROM agents WHERE revoked_at IS NULL AND store_code IN (VALUES "
            ),
            1,
            ")",
            &keys,
        )?
        .iter()
        .map(|r| self.row(r))
        .collect()
    }

    /// One agent.
    pub fn get(&self, c: &dyn Sql, id: &str) -> Result<Option<Agent>, DbError> {
        c.one(
            &format!("SELECT {COLUMNS} FROM agents WHERE id = ?1"),
            args![id],
        )?
        .map(|r| self.row(&r))
        .transpose()
    }
}

/// The registered keys of agents that are not revoked, with their stores.
pub fn keys(c: &dyn Sql) -> Result<HashMap<String, (PublicKey, String)>, DbError> {
    let mut out = HashMap::new();
    for r in c.query(
        "SELECT id, public_key, store_code FROM agents WHERE revoked_at IS NULL",
        args![],
    )? {
        let id = r.text("id")?;
        match PublicKey::from_base64(&r.text("public_key")?) {
            Ok(k) => {
                out.insert(id, (k, r.text("store_code")?));
            }
            Err(e) => {
                tracing::error!(agent_id = %id, error = %e, "Registered key unreadable; agent ignored");
            }
        }
    }
    Ok(out)
}

/// One unrevoked agent's key and store; `None` when it is unknown, revoked, or its key
/// unreadable.
pub fn key(c: &dyn Sql, id: &str) -> Result<Option<(PublicKey, String)>, DbError> {
    let Some(r) = c.one(
        "SELECT public_key, store_code FROM agents WHERE id = ?1 AND revoked_at IS NULL",
        args![id],
    )?
    else {
        return Ok(None);
    };
    let store = r.text("store_code")?;
    Ok(PublicKey::from_base64(&r.text("public_key")?)
        .ok()
        .map(|k| (k, store)))
}

/// Revokes an agent's key: its messages are refused from now on.
pub fn revoke(c: &dyn Sql, id: &str, now: i64) -> Result<(), DbError> {
    let n = c.execute(
        "UPDATE agents SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1",
        args![id, now],
    )?;
    if n == 0 {
        return Err(DbError::NotFound(format!("no agent {id:?}")));
    }
    Ok(())
}
