//! Opening new stores: store formats, each new store's opening (its format and the day it
//! opens), the go-live checks people tick, and the readiness board that sets what a
//! store's gateway reports against what its format expects.
//!
//! The [`watch`] pass (in the engines) pushes a format's tasks to a store's gateway once it
//! is enrolled and online, and warns (an event and a ticket) when a store is not ready a
//! few days before it opens.

pub mod judge;
pub mod watch;

use std::collections::HashMap;

use storefleet_storage::{args, Sql, SqlExt as _};

use crate::db::DbError;
use crate::fleet::Rules;
pub use storefleet_client::openings::{Check, Opening, Readiness, State, StoreFormat, TaskCheck};

fn invalid(e: storefleet_client::tasks::Invalid) -> DbError {
    DbError::Invalid(e.0)
}

/// Creates or replaces a format.
pub fn put_format(c: &dyn Sql, f: &StoreFormat, by: &str, now: i64) -> Result<(), DbError> {
    f.validate().map_err(invalid)?;
    let body = serde_json::to_string(f).map_err(|e| DbError::Backend(e.to_string()))?;
    c.execute(
        "INSERT INTO formats(name, body, updated_at, updated_by) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(name) DO UPDATE SET body = ?2, updated_at = ?3, updated_by = ?4",
        args![&f.name, body, now, by],
    )?;
    Ok(())
}

fn parse_format(body: &str) -> Result<StoreFormat, DbError> {
    serde_json::from_str(body).map_err(|e| DbError::Backend(format!("a stored format: {e}")))
}

/// One format.
pub fn format(c: &dyn Sql, name: &str) -> Result<Option<StoreFormat>, DbError> {
    c.one("SELECT body FROM formats WHERE name = ?1", args![name])?
        .map(|r| parse_format(&r.text("body")?))
        .transpose()
}

/// Every format, by name.
pub fn formats(c: &dyn Sql) -> Result<Vec<StoreFormat>, DbError> {
    c.all("SELECT body FROM formats ORDER BY name", args![], |r| {
        parse_format(&r.text("body")?)
    })
}

/// Deletes a format no opening uses.
pub fn delete_format(c: &dyn Sql, name: &str) -> Result<(), DbError> {
    let users = c.all(
        "SELECT store_code FROM openings WHERE format = ?1 ORDER BY store_code LIMIT 5",
        args![name],
        |r| r.text("store_code"),
    )?;
    if !users.is_empty() {
        return Err(DbError::Conflict(format!(
            "format {name} is the format of opening stores ({}); change their openings first",
            users.join(", ")
        )));
    }
    if c.execute("DELETE FROM formats WHERE name = ?1", args![name])? == 0 {
        return Err(DbError::NotFound(format!("no format {name:?}")));
    }
    Ok(())
}

/// The day `s` (`YYYY-MM-DD`).
pub fn parse_day(s: &str) -> Result<jiff::civil::Date, DbError> {
    s.parse::<jiff::civil::Date>()
        .ok()
        .filter(|_| s.len() == 10)
        .ok_or_else(|| DbError::Invalid(format!("opens_on {s:?}: expected a day, YYYY-MM-DD")))
}

/// Today in the IANA zone `zone` at `now` (UTC when the zone is unknown).
pub fn today(now: i64, zone: &str) -> jiff::civil::Date {
    let tz = jiff::tz::TimeZone::get(zone).unwrap_or(jiff::tz::TimeZone::UTC);
    jiff::Timestamp::from_millisecond(now)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned(tz)
        .date()
}

/// The day `days` after today in `zone` at `now`, `YYYY-MM-DD`.
pub fn day_after(now: i64, zone: &str, days: i64) -> String {
    let today = today(now, zone);
    today
        .checked_add(jiff::Span::new().days(days))
        .unwrap_or(today)
        .to_string()
}

/// When the day `day` (`YYYY-MM-DD`) begins in the IANA zone `zone` (UTC when unknown), ms.
pub fn day_start(day: &str, zone: &str) -> Result<i64, DbError> {
    let tz = jiff::tz::TimeZone::get(zone).unwrap_or(jiff::tz::TimeZone::UTC);
    parse_day(day)?
        .to_zoned(tz)
        .map(|z| z.timestamp().as_millisecond())
        .map_err(|e| DbError::Invalid(format!("opens_on {day}: {e}")))
}

/// Days from `from` to `to`.
fn days(from: jiff::civil::Date, to: jiff::civil::Date) -> i64 {
    from.until(to).map_or(0, |s| i64::from(s.get_days()))
}

/// Sets a store's opening. A new day may warn again; the format's tasks that ended other
/// than succeeded are pushed again.
pub fn set(c: &dyn Sql, store: &str, o: &Opening, by: &str, now: i64) -> Result<(), DbError> {
    if crate::stores::get(c, store)?.is_none() {
        return Err(DbError::NotFound(format!("no store {store:?}")));
    }
    if format(c, &o.format)?.is_none() {
        return Err(DbError::Invalid(format!(
            "no format {:?} (storefleet formats put FILE)",
            o.format
        )));
    }
    parse_day(&o.opens_on)?;
    c.execute(
        "INSERT INTO openings(store_code, format, opens_on, set_at, set_by) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(store_code) DO UPDATE SET format = ?2, set_at = ?4, set_by = ?5,
             warned_at = CASE WHEN openings.opens_on = ?3 THEN openings.warned_at END,
             opens_on = ?3",
        args![store, &o.format, &o.opens_on, now, by],
    )?;
    c.execute(
        "DELETE FROM opening_tasks WHERE store_code = ?1 AND NOT EXISTS
           (SELECT 1 FROM task_targets t WHERE t.task_id = opening_tasks.task_id
              AND t.state IN ('succeeded', 'queued', 'sent', 'running'))",
        args![store],
    )?;
    Ok(())
}

/// Takes a store off the board (it opened, or will not).
pub fn clear(c: &dyn Sql, store: &str) -> Result<(), DbError> {
    if c.execute("DELETE FROM openings WHERE store_code = ?1", args![store])? == 0 {
        return Err(DbError::NotFound(format!("store {store:?} has no opening")));
    }
    c.execute(
        "DELETE FROM opening_checks WHERE store_code = ?1",
        args![store],
    )?;
    c.execute(
        "DELETE FROM opening_tasks WHERE store_code = ?1",
        args![store],
    )?;
    Ok(())
}

/// Ticks (or unticks) one of the format's checklist items.
pub fn tick(
    c: &dyn Sql,
    store: &str,
    item: &str,
    done: bool,
    by: &str,
    now: i64,
) -> Result<(), DbError> {
    let (o, f) = opening_of(c, store)?
        .ok_or_else(|| DbError::NotFound(format!("store {store:?} has no opening")))?;
    if !f.checklist.iter().any(|i| i == item) {
        return Err(DbError::Invalid(format!(
            "format {} has no check {item:?}; its checks: {}",
            o.format,
            f.checklist.join("; ")
        )));
    }
    if done {
        c.execute(
            "INSERT INTO opening_checks(store_code, item, done_by, done_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(store_code, item) DO NOTHING",
            args![store, item, by, now],
        )?;
    } else {
        c.execute(
            "DELETE FROM opening_checks WHERE store_code = ?1 AND item = ?2",
            args![store, item],
        )?;
    }
    Ok(())
}

/// A store's opening and its format.
pub fn opening_of(c: &dyn Sql, store: &str) -> Result<Option<(Opening, StoreFormat)>, DbError> {
    let Some(r) = c.one(
        "SELECT o.format, o.opens_on, f.body FROM openings o JOIN formats f ON f.name = o.format
         WHERE o.store_code = ?1",
        args![store],
    )?
    else {
        return Ok(None);
    };
    Ok(Some((
        Opening {
            format: r.text("format")?,
            opens_on: r.text("opens_on")?,
        },
        parse_format(&r.text("body")?)?,
    )))
}

/// The stores with an opening, by opening day.
pub fn stores(c: &dyn Sql) -> Result<Vec<String>, DbError> {
    c.all(
        "SELECT store_code FROM openings ORDER BY opens_on, store_code",
        args![],
        |r| r.text("store_code"),
    )
}

/// What a readiness is judged from, read for one store or for the whole board at once.
#[derive(Default)]
struct Rows {
    /// By store: its opening, format and store record.
    openings: Vec<(Opening, StoreFormat, crate::stores::Store)>,
    devices: HashMap<String, Vec<crate::fleet::DeviceState>>,
    /// `vendor model` by (store, slot).
    models: HashMap<(String, String), String>,
    agents: HashMap<String, Vec<crate::agents::Agent>>,
    /// (task id, target state, message) by (store, step).
    pushed: HashMap<(String, i64), (String, Option<String>, String)>,
    /// (who, when) by item, by store.
    ticked: HashMap<String, HashMap<String, (String, i64)>>,
}

/// Reads the rows of the openings `only` names (all when `None`): six queries whatever
/// their number.
fn rows(c: &dyn Sql, only: Option<&str>, rules: &Rules) -> Result<Rows, DbError> {
    let mut out = Rows::default();
    let scope = "(CAST(?1 AS TEXT) IS NULL OR store_code = ?1)";
    let stores = c.all(
        "SELECT o.store_code, o.format, o.opens_on, f.body FROM openings o JOIN formats f ON f.name = o.format
         WHERE (CAST(?1 AS TEXT) IS NULL OR o.store_code = ?1) ORDER BY o.opens_on, o.store_code",
        args![only],
        |r| {
            Ok((
                r.text("store_code")?,
                Opening {
                    format: r.text("format")?,
                    opens_on: r.text("opens_on")?,
                },
                parse_format(&r.text("body")?)?,
            ))
        },
    )?;
    if stores.is_empty() {
        return Ok(out);
    }
    let records: HashMap<String, crate::stores::Store> = c
        .all(
            &format!(
                "SELECT {} FROM stores WHERE code IN (SELECT store_code FROM openings WHERE {scope})",
                crate::stores::COLUMNS
            ),
            args![only],
            crate::stores::from_row,
        )?
        .into_iter()
        .map(|s| (s.code.clone(), s))
        .collect();
    for d in c.all(
        &format!(
            "SELECT {} FROM devices WHERE store_code IN (SELECT store_code FROM openings WHERE {scope})",
            crate::fleet::DEVICE_COLUMNS
        ),
        args![only],
        |r| crate::fleet::device_row(r, rules),
    )? {
        out.devices.entry(d.store.clone()).or_default().push(d);
    }
    for (store, slot, model) in c.all(
        &format!(
            "SELECT store_code, slot, vendor, model FROM assets
             WHERE kind = 'device' AND slot IS NOT NULL AND lifecycle <> 'retired'
               AND store_code IN (SELECT store_code FROM openings WHERE {scope})"
        ),
        args![only],
        |r| {
            let m = format!("{} {}", r.text("vendor")?, r.text("model")?);
            Ok((r.text("store_code")?, r.text("slot")?, m.trim().to_owned()))
        },
    )? {
        out.models.insert((store, slot), model);
    }
    let codes: Vec<&str> = stores.iter().map(|s| s.0.as_str()).collect();
    for a in rules.judge().of_stores(c, &codes)? {
        out.agents.entry(a.store.clone()).or_default().push(a);
    }
    for (k, v) in c.all(
        "SELECT o.store_code, o.step, o.task_id, t.state, t.message FROM opening_tasks o
         LEFT JOIN task_targets t ON t.task_id = o.task_id
         WHERE (CAST(?1 AS TEXT) IS NULL OR o.store_code = ?1)",
        args![only],
        |r| {
            Ok((
                (r.text("store_code")?, r.i64("step")?),
                (
                    r.text("task_id")?,
                    r.opt_text("state")?,
                    r.opt_text("message")?.unwrap_or_default(),
                ),
            ))
        },
    )? {
        out.pushed.insert(k, v);
    }
    for (k, v) in c.all(
        &format!("SELECT store_code, item, done_by, done_at FROM opening_checks WHERE {scope}"),
        args![only],
        |r| {
            Ok((
                (r.text("store_code")?, r.text("item")?),
                (r.text("done_by")?, r.i64("done_at")?),
            ))
        },
    )? {
        out.ticked.entry(k.0).or_default().insert(k.1, v);
    }
    for (code, o, f) in stores {
        if let Some(s) = records.get(&code) {
            out.openings.push((o, f, s.clone()));
        }
    }
    Ok(out)
}

impl Rows {
    /// The readiness of each opening read.
    fn judge(&self, now: i64) -> Result<Vec<Readiness>, DbError> {
        let none = Vec::new();
        let mut out = Vec::new();
        for (o, f, s) in &self.openings {
            let devs = self.devices.get(&s.code).unwrap_or(&none);
            let reported: Vec<judge::Reported> = devs
                .iter()
                .map(|d| judge::Reported {
                    device: d,
                    model: self
                        .models
                        .get(&(s.code.clone(), d.device.clone()))
                        .cloned()
                        .unwrap_or_default(),
                })
                .collect();
            let (devices, extra) = judge::devices(f, &reported);
            let agents = self.agents.get(&s.code).map_or(&[][..], Vec::as_slice);
            let tasks = task_checks(&s.code, f, &self.pushed);
            let no_ticks = HashMap::new();
            let ticked = self.ticked.get(&s.code).unwrap_or(&no_ticks);
            let checklist = judge::checklist(f, gateway_check(agents, now), ticked);
            let ready = devices.iter().all(|d| d.state == State::Ready)
                && tasks.iter().all(|t| t.state == State::Ready)
                && checklist.iter().all(|c| c.done);
            let opens = parse_day(&o.opens_on)?;
            out.push(Readiness {
                store: s.code.clone(),
                name: s.name.clone(),
                region: s.region.clone(),
                format: o.format.clone(),
                days_left: days(today(now, &s.timezone), opens),
                opens_on: o.opens_on.clone(),
                ready,
                devices,
                extra,
                tasks,
                checklist,
            });
        }
        Ok(out)
    }
}

/// A store's readiness to open, judged by `rules`; none without an opening.
pub fn readiness(c: &dyn Sql, store: &str, rules: &Rules) -> Result<Option<Readiness>, DbError> {
    Ok(rows(c, Some(store), rules)?.judge(rules.now)?.pop())
}

/// The controller's own check: a gateway enrolled and online.
fn gateway_check(agents: &[crate::agents::Agent], now: i64) -> Check {
    let live: Vec<_> = agents.iter().filter(|a| a.revoked_at.is_none()).collect();
    let online = live.iter().find(|a| a.online);
    let note = match (online, live.first()) {
        (Some(a), _) => format!("{} online, agent {}", a.id, a.agent_version),
        (None, Some(a)) => format!(
            "{} enrolled, offline (last heard {})",
            a.id,
            crate::fmt::ago(now, a.last_seen)
        ),
        (None, None) => "no gateway enrolled yet (storefleet tokens create --store ...)".into(),
    };
    Check {
        item: "Gateway enrolled and reporting".into(),
        auto: true,
        done: online.is_some(),
        by: None,
        at: None,
        note,
    }
}

/// The format's tasks on the store's gateway, in the format's order.
fn task_checks(
    store: &str,
    f: &StoreFormat,
    pushed: &HashMap<(String, i64), (String, Option<String>, String)>,
) -> Vec<TaskCheck> {
    f.tasks
        .iter()
        .enumerate()
        .map(|(i, action)| {
            let name = action.routine_name();
            let Some((task, state, message)) = pushed.get(&(store.to_owned(), i as i64)) else {
                return TaskCheck {
                    name,
                    task: None,
                    state: State::Pending,
                    note: "pushed once the gateway is enrolled and online".into(),
                };
            };
            let (state, note) = match state.as_deref() {
                Some("succeeded") => (State::Ready, "done".to_owned()),
                Some(s @ ("queued" | "sent" | "running")) => (State::Pending, s.to_owned()),
                Some(s) => (
                    State::Misconfigured,
                    format!(
                        "{s}{}{message}; set the opening again to push it again",
                        if message.is_empty() { "" } else { ": " }
                    ),
                ),
                None => (State::Pending, "no target yet".into()),
            };
            TaskCheck {
                name,
                task: Some(task.clone()),
                state,
                note,
            }
        })
        .collect()
}

/// Every opening's readiness, by opening day (the same few reads whatever their number).
pub fn board(c: &dyn Sql, rules: &Rules) -> Result<Vec<Readiness>, DbError> {
    rows(c, None, rules)?.judge(rules.now)
}
