//! What placement stands on: the open tickets (and those resolved recently
//! enough to reopen) and the silences in force.

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
