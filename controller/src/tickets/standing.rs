//! What placement stands on, read in SQLite: the open tickets (and those resolved recently
//! enough to reopen) and the silences in force.

use rusqlite::{params, Connection};

use super::lifecycle::Status;
use super::place::{Brief, Silence};
use crate::db::DbError;

/// Open tickets, and those resolved within `reopen_ms`, for placement; `store_wide` says
/// which rules open store tickets (which, like manual tickets, other alerts do not join).
pub fn briefs(
    c: &Connection,
    now: i64,
    reopen_ms: i64,
    store_wide: impl Fn(&str) -> bool,
) -> Result<Vec<Brief>, DbError> {
    let mut st = c.prepare_cached(
        "SELECT id, dedupe_key, store_code, opened_at, status, resolved_at, rule, source FROM tickets
         WHERE status NOT IN ('resolved', 'closed', 'cancelled') OR (status = 'resolved' AND resolved_at >= ?1)",
    )?;
    let rows = st.query_map([now - reopen_ms], |r| {
        let status: String = r.get(4)?;
        let rule: String = r.get(6)?;
        let source: String = r.get(7)?;
        Ok(Brief {
            id: r.get(0)?,
            dedupe_key: r.get(1)?,
            store: r.get(2)?,
            opened_at: r.get(3)?,
            open: Status::parse(&status).is_some_and(Status::is_open),
            resolved_at: r.get(5)?,
            groupable: source == "auto" && !store_wide(&rule),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Silences in force at `now` (`active_only`), or all not yet over.
pub fn silences(c: &Connection, now: i64, active_only: bool) -> Result<Vec<Silence>, DbError> {
    let mut st = c.prepare_cached(
        "SELECT id, store_code, device, rule, starts_at, ends_at, reason, created_by FROM silences
         WHERE ends_at > ?1 AND (?2 = 0 OR starts_at <= ?1) ORDER BY starts_at",
    )?;
    let rows = st.query_map(params![now, active_only], |r| {
        Ok(Silence {
            id: r.get(0)?,
            store: r.get(1)?,
            device: r.get(2)?,
            rule: r.get(3)?,
            starts_at: r.get(4)?,
            ends_at: r.get(5)?,
            reason: r.get(6)?,
            created_by: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
