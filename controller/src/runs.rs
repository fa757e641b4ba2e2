//! Routine runs as reported by agents: what each store's agent did by itself or for a task,
//! with every step's result. Listing with filters.

use serde::{Deserialize, Serialize};
use storefleet_storage::{args, Sql, SqlExt as _};

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
pub fn list(c: &dyn Sql, f: &Filter) -> Result<Vec<StoredRun>, DbError> {
    let limit = f.limit.unwrap_or(100).clamp(1, 5000);
    c.all(
        "SELECT agent_id, id, store_code, routine, version, trigger_type, trigger_detail, device,
                started_at, finished_at, outcome, reason, steps
         FROM routine_runs
         WHERE (CAST(?1 AS TEXT) IS NULL OR store_code = ?1) AND (CAST(?2 AS TEXT) IS NULL OR agent_id = ?2)
           AND (CAST(?3 AS TEXT) IS NULL OR routine = ?3) AND (CAST(?4 AS TEXT) IS NULL OR outcome = ?4)
           AND (CAST(?5 AS BIGINT) IS NULL OR finished_at >= ?5)
         ORDER BY finished_at DESC LIMIT ?6",
        args![
            f.store.as_deref(),
            f.agent.as_deref(),
            f.routine.as_deref(),
            f.outcome.as_deref(),
            f.since,
            limit
        ],
        |r| {
            Ok(StoredRun {
                agent_id: r.text("agent_id")?,
                id: r.text("id")?,
                store: r.text("store_code")?,
                routine: r.text("routine")?,
                version: r.int("version")?,
                trigger: r.text("trigger_type")?,
                trigger_detail: r.text("trigger_detail")?,
                device: r.opt_text("device")?,
                started_at: r.i64("started_at")?,
                finished_at: r.i64("finished_at")?,
                outcome: r.text("outcome")?,
                reason: r.text("reason")?,
                steps: serde_json::from_str(&r.text("steps")?).unwrap_or_default(),
            })
        },
    )
}
