//! Events as stored from agents: listing with filters.

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use crate::db::DbError;

/// A stored event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Row id.
    pub id: i64,
    /// Agent that sent it.
    pub agent_id: String,
    /// Store.
    pub store: String,
    /// The agent's event id.
    pub event_id: String,
    /// When it happened, ms.
    pub ts: i64,
    /// Device; empty for the gateway.
    pub device: String,
    /// Dotted code.
    pub code: String,
    /// Severity.
    pub severity: String,
    /// Message.
    pub message: String,
    /// Structured details.
    pub data: serde_json::Value,
}

/// Filters for [`list`].
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Filter {
    /// Store code.
    pub store: Option<String>,
    /// Device id.
    pub device: Option<String>,
    /// Agent id.
    pub agent: Option<String>,
    /// Only events at or after this time, ms.
    pub since: Option<i64>,
    /// Rows at most (default 100, at most 5,000).
    pub limit: Option<u32>,
}

/// Events matching `f`, newest first.
pub fn list(c: &Connection, f: &Filter) -> Result<Vec<StoredEvent>, DbError> {
    let mut st = c.prepare_cached(
        "SELECT id, agent_id, store_code, event_id, ts, device, code, severity, message, data FROM events
         WHERE (?1 IS NULL OR store_code = ?1) AND (?2 IS NULL OR device = ?2) AND (?3 IS NULL OR agent_id = ?3)
           AND (?4 IS NULL OR ts >= ?4)
         ORDER BY ts DESC, id DESC LIMIT ?5",
    )?;
    let limit = f.limit.unwrap_or(100).clamp(1, 5000);
    let rows = st.query_map(params![f.store, f.device, f.agent, f.since, limit], |r| {
        let data: String = r.get(9)?;
        Ok(StoredEvent {
            id: r.get(0)?,
            agent_id: r.get(1)?,
            store: r.get(2)?,
            event_id: r.get(3)?,
            ts: r.get(4)?,
            device: r.get(5)?,
            code: r.get(6)?,
            severity: r.get(7)?,
            message: r.get(8)?,
            data: serde_json::from_str(&data).unwrap_or_default(),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
