//! What placement stands on, and what people read and set of it: the open tickets (and those resolved recently
//! enough to reopen), the silences in force, and the alerts recorded.

use storefleet_storage::{args, Sql, SqlExt as _};

use super::lifecycle::Status;
use super::place::{Brief, Silence};
use crate::db::DbError;

/// Open tickets, and those resolved within `reopen_ms`, for placement; `store_wide` says
/// which rules open store tickets (which, like manual tickets, other alerts do not join).
pub fn briefs(
    c: &dyn Sql,
    now: i64,
    reopen_ms: i64,
    store_wide: impl Fn(&str) -> bool,
) -> Result<Vec<Brief>, DbError> {
    c.all(
        "SELECT id, dedupe_key, store_code, opened_at, status, resolved_at, rule, source FROM tickets
         WHERE status NOT IN ('resolved', 'closed', 'cancelled') OR (status = 'resolved' AND resolved_at >= ?1)",
        args![now - reopen_ms],
        |r| {
            Ok(Brief {
                id: r.i64("id")?,
                dedupe_key: r.text("dedupe_key")?,
                store: r.text("store_code")?,
                opened_at: r.i64("opened_at")?,
                open: Status::parse(&r.text("status")?).is_some_and(Status::is_open),
                resolved_at: r.opt_i64("resolved_at")?,
                groupable: r.text("source")? == "auto" && !store_wide(&r.text("rule")?),
            })
        },
    )
}

/// Silences in force at `now` (`active_only`), or all not yet over.
pub fn silences(c: &dyn Sql, now: i64, active_only: bool) -> Result<Vec<Silence>, DbError> {
    c.all(
        "SELECT id, store_code, device, rule, starts_at, ends_at, reason, created_by FROM silences
         WHERE ends_at > ?1 AND (NOT ?2 OR starts_at <= ?1) ORDER BY starts_at",
        args![now, active_only],
        |r| {
            Ok(Silence {
                id: r.i64("id")?,
                store: r.text("store_code")?,
                device: r.opt_text("device")?,
                rule: r.opt_text("rule")?,
                starts_at: r.i64("starts_at")?,
                ends_at: r.i64("ends_at")?,
                reason: r.text("reason")?,
                created_by: r.text("created_by")?,
            })
        },
    )
}

/// Records a silence (after checking its store); returns its id.
pub fn create_silence(c: &dyn Sql, sil: &Silence, now: i64) -> Result<i64, DbError> {
    if crate::stores::get(c, &sil.store)?.is_none() {
        return Err(DbError::Invalid(format!(
            "store {:?} does not exist",
            sil.store
        )));
    }
    c.int(
        "INSERT INTO silences(store_code, device, rule, starts_at, ends_at, reason, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
        args![
            &sil.store,
            sil.device.as_deref(),
            sil.rule.as_deref(),
            sil.starts_at,
            sil.ends_at,
            &sil.reason,
            &sil.created_by,
            now
        ],
        "id",
    )
}

/// Ends silence `id` now; false when it is not in force or to come.
pub fn end_silence(c: &dyn Sql, id: i64, now: i64) -> Result<bool, DbError> {
    Ok(c.execute(
        "UPDATE silences SET ends_at = ?2 WHERE id = ?1 AND ends_at > ?2",
        args![id, now],
    )? > 0)
}

/// Recorded alerts, newest first: only those still firing (`open`), of one store.
pub fn alerts(
    c: &dyn Sql,
    open: bool,
    store: Option<&str>,
    limit: u32,
) -> Result<Vec<serde_json::Value>, DbError> {
    c.all(
        "SELECT id, rule, store_code, subject, since, fired_at, cleared_at, detail, disposition, note, ticket_id
         FROM alerts WHERE (NOT ?1 OR cleared_at IS NULL) AND (CAST(?2 AS TEXT) IS NULL OR store_code = ?2)
         ORDER BY fired_at DESC LIMIT ?3",
        args![open, store, limit.clamp(1, 5000)],
        |r| {
            Ok(serde_json::json!({
                "id": r.i64("id")?, "rule": r.text("rule")?,
                "store": r.text("store_code")?, "subject": r.text("subject")?,
                "since": r.i64("since")?, "fired_at": r.i64("fired_at")?,
                "cleared_at": r.opt_i64("cleared_at")?, "detail": r.text("detail")?,
                "disposition": r.text("disposition")?, "note": r.text("note")?,
                "ticket": r.opt_i64("ticket_id")?,
            }))
        },
    )
}
