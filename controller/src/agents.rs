//! Agents: enrolled gateways' keys and their presence (online, offline, last seen).
//!
//! An agent is online when its last presence said so and it was heard from within
//! `presence.offline_after_secs`; its last will (a signed `offline` presence) or silence
//! makes it offline.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension as _, Row};
use serde::{Deserialize, Serialize};
use storefleet_protocol::PublicKey;

use crate::db::DbError;

/// An enrolled agent as shown to people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    /// Agent id.
    pub id: String,
    /// Store code.
    pub store: String,
    /// Public key (base64).
    pub public_key: String,
    /// Gateway host name at enrollment.
    pub hostname: String,
    /// Agent version last reported.
    pub agent_version: String,
    /// When enrolled, ms.
    pub enrolled_at: i64,
    /// Last presence said: `online`, `offline` or `unknown`.
    pub presence: String,
    /// When that presence was said, ms.
    pub presence_at: Option<i64>,
    /// When the agent process started, ms.
    pub started_at: Option<i64>,
    /// Last message of any kind, ms.
    pub last_seen: Option<i64>,
    /// Online now: said online and heard from recently.
    pub online: bool,
    /// When its key was revoked, ms.
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str = "id, store_code, public_key, hostname, agent_version, enrolled_at, presence, presence_at, started_at, last_seen, revoked_at";

/// Turns rows into agents, judging `online` at `now`.
pub struct Judge {
    /// Now, ms.
    pub now: i64,
    /// Silence after which an agent is offline, ms.
    pub offline_after_ms: i64,
}

impl Judge {
    fn row(&self, r: &Row<'_>) -> rusqlite::Result<Agent> {
        let presence: String = r.get(6)?;
        let last_seen: Option<i64> = r.get(9)?;
        let revoked_at: Option<i64> = r.get(10)?;
        let online = presence == "online"
            && revoked_at.is_none()
            && last_seen.is_some_and(|t| self.now - t <= self.offline_after_ms);
        Ok(Agent {
            id: r.get(0)?,
            store: r.get(1)?,
            public_key: r.get(2)?,
            hostname: r.get(3)?,
            agent_version: r.get(4)?,
            enrolled_at: r.get(5)?,
            presence,
            presence_at: r.get(7)?,
            started_at: r.get(8)?,
            last_seen,
            online,
            revoked_at,
        })
    }

    /// Agents, optionally of one store.
    pub fn list(&self, c: &Connection, store: Option<&str>) -> Result<Vec<Agent>, DbError> {
        let mut st = c.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM agents WHERE (?1 IS NULL OR store_code = ?1) ORDER BY store_code, id"
        ))?;
        let rows = st.query_map([store], |r| self.row(r))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One agent.
    pub fn get(&self, c: &Connection, id: &str) -> Result<Option<Agent>, DbError> {
        Ok(c.query_row(
            &format!("SELECT {COLUMNS} FROM agents WHERE id = ?1"),
            [id],
            |r| self.row(r),
        )
        .optional()?)
    }
}

/// The registered keys of agents that are not revoked, with their stores.
pub fn keys(c: &Connection) -> Result<HashMap<String, (PublicKey, String)>, DbError> {
    let mut st =
        c.prepare("SELECT id, public_key, store_code FROM agents WHERE revoked_at IS NULL")?;
    let mut out = HashMap::new();
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        let key: String = r.get(1)?;
        match PublicKey::from_base64(&key) {
            Ok(k) => {
                out.insert(id, (k, r.get(2)?));
            }
            Err(e) => {
                tracing::error!(agent_id = %id, error = %e, "Registered key unreadable; agent ignored");
            }
        }
    }
    Ok(out)
}

/// Revokes an agent's key: its messages are refused from now on.
pub fn revoke(c: &Connection, id: &str, now: i64) -> Result<(), DbError> {
    let n = c.execute(
        "UPDATE agents SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1",
        params![id, now],
    )?;
    if n == 0 {
        return Err(DbError::NotFound(format!("no agent {id:?}")));
    }
    Ok(())
}
