//! Routine runs as reported by agents: what each store's agent did by itself or for a task,
//! with every step's result. Listing with filters.

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use crate::db::DbError;

/// A stored run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRun {
    /// Agent that ran it.
    pub agent_id: String,
    /// Run id (the command id for tasks).
    pub id: String,
    /// Store.
    pub store: String,
    /// Routine name.
    pub routine: String,
    /// Routine version.
    pub version: u32,
    /// `schedule`, `condition`, `task` or `manual`.
    pub trigger: String,
    /// The cron, the condition, or the task id.
    pub trigger_detail: String,
    /// Device the routine looks after.
    pub device: Option<String>,
    /// Start, ms.
    pub started_at: i64,
    /// End, ms.
    pub finished_at: i64,
    /// `already_fine`, `healed`, `failed`, `escalated` or `skipped`.
    pub outcome: String,
    /// Why it was skipped or interrupted.
    pub reason: String,
    /// The step records.
    pub steps: serde_json::Value,
}

/// Filters for [`list`].
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Filter {
    /// Store code.
    pub store: Option<String>,
    /// Agent id.
    pub agent: Option<String>,
    /// Routine name.
    pub routine: Option<String>,
    /// Outcome.
    pub outcome: Option<String>,
    /// Only runs finished at or after this time, ms.
    pub since: Option<i64>,
    /// Rows at most (default 100, at most 5,000).
    pub limit: Option<u32>,
}

/// Runs matching `f`, newest first.
pub fn list(c: &Connection, f: &Filter) -> Result<Vec<StoredRun>, DbError> {
    let mut st = c.prepare_cached(
        "SELECT agent_id, id, store_code, routine, version, trigger_type, trigger_detail, device,
                started_at, finished_at, outcome, reason, steps
         FROM routine_runs
         WHERE (?1 IS NULL OR store_code = ?1) AND (?2 IS NULL OR agent_id = ?2)
           AND (?3 IS NULL OR routine = ?3) AND (?4 IS NULL OR outcome = ?4)
           AND (?5 IS NULL OR finished_at >= ?5)
         ORDER BY finished_at DESC LIMIT ?6",
    )?;
    let limit = f.limit.unwrap_or(100).clamp(1, 5000);
    let rows = st.query_map(
        params![f.store, f.agent, f.routine, f.outcome, f.since, limit],
        |r| {
            let steps: String = r.get(12)?;
            Ok(StoredRun {
                agent_id: r.get(0)?,
                id: r.get(1)?,
                store: r.get(2)?,
                routine: r.get(3)?,
                version: r.get(4)?,
                trigger: r.get(5)?,
                trigger_detail: r.get(6)?,
                device: r.get(7)?,
                started_at: r.get(8)?,
                finished_at: r.get(9)?,
                outcome: r.get(10)?,
                reason: r.get(11)?,
                steps: serde_json::from_str(&steps).unwrap_or_default(),
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}
