//! When a task that waits for its window will start: the first instant a store it still
//! waits for enters the window, in that store's zone and hours. Asked when one task is
//! shown; the stores waiting are grouped by their hours and zone, so a fleet of thousands
//! of stores on a few schedules costs a few searches.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use storefleet_schedule::{StoreTime, When};
use storefleet_storage::{args, Sql, SqlExt as _};

use super::{TaskSummary, WindowOpens};
use crate::db::DbError;

/// How far ahead a window is looked for.
const HORIZON_DAYS: i64 = 8;

/// When `t` will start if it is waiting for its window everywhere at `now` (ms): `None` for
/// a finished task, one without a window, or one with a store inside its window now (it
/// waits, if at all, for its wave or its region's turn).
pub fn opens(c: &dyn Sql, t: &TaskSummary, now: i64) -> Result<Option<WindowOpens>, DbError> {
    let w = &t.spec.window;
    if t.finished_at.is_some() || (w.when == When::Any && w.avoid.trim().is_empty()) {
        return Ok(None);
    }
    let waiting = c.all(
        "SELECT DISTINCT s.code AS code, s.trading_hours AS hours, s.timezone AS zone
         FROM task_targets tt JOIN stores s ON s.code = tt.store_code
         WHERE tt.task_id = ?1 AND tt.state = 'queued' ORDER BY s.code",
        args![&t.id],
        |r| Ok((r.text("code")?, r.text("hours")?, r.text("zone")?)),
    )?;
    let Ok(from) = Timestamp::from_millisecond(now) else {
        return Ok(None);
    };
    let within = SignedDuration::from_hours(24 * HORIZON_DAYS);
    let mut found: HashMap<(String, String), Option<Timestamp>> = HashMap::new();
    let mut first: Option<WindowOpens> = None;
    for (store, hours, zone) in waiting {
        let next = *found
            .entry((hours.clone(), zone.clone()))
            .or_insert_with(|| {
                StoreTime::new(&hours, &zone)
                    .ok()
                    .and_then(|st| st.next_allowed(w, from, within))
            });
        let Some(at) = next else { continue };
        if at <= from {
            return Ok(None);
        }
        let at = at.as_millisecond();
        if first.as_ref().is_none_or(|f| at < f.at) {
            first = Some(WindowOpens {
                at,
                store,
                timezone: zone,
            });
        }
    }
    Ok(first)
}

/// `at` (ms) in `zone`, for people: `Mon 23 Nov 22:00 CET`.
pub fn local(at: i64, zone: &str) -> String {
    crate::fmt::zoned(at, zone, "%a %d %b %H:%M %Z")
}
