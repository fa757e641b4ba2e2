//! Events as stored from agents: listing with filters.

use serde::{Deserialize, Serialize};
use storefleet_storage::{args, Sql, SqlExt as _};

use crate::db::DbError;

pub use storefleet_client::events::StoredEvent;

/// Filters for [`list`].
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
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
pub fn list(c: &dyn Sql, f: &Filter) -> Result<Vec<StoredEvent>, DbError> {
    let limit = f.limit.unwrap_or(100).clamp(1, 5000);
    c.all(
        "SELECT id, agent_id, store_code, event_id, ts, device, code, severity, message, data FROM events
         WHERE (CAST(?1 AS TEXT) IS NULL OR store_code = ?1) AND (CAST(?2 AS TEXT) IS NULL OR device = ?2)
           AND (CAST(?3 AS TEXT) IS NULL OR agent_id = ?3) AND (CAST(?4 AS BIGINT) IS NULL OR ts >= ?4)
         ORDER BY ts DESC, id DESC LIMIT ?5",
        args![f.store.as_deref(), f.device.as_deref(), f.agent.as_deref(), f.since, limit],
        |r| {
            Ok(StoredEvent {
                id: r.i64("id")?,
                agent_id: r.text("agent_id")?,
                store: r.text("store_code")?,
                event_id: r.text("event_id")?,
                ts: r.i64("ts")?,
                device: r.text("device")?,
                code: r.text("code")?,
                severity: r.text("severity")?,
                message: r.text("message")?,
                data: serde_json::from_str(&r.text("data")?).unwrap_or_default(),
            })
        },
    )
}
