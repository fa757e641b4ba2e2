//! Tickets in SQLite: opening, reading, acting on them, escalating; each change with its
//! timeline entry and its webhook deliveries in the same transaction.

use rusqlite::{params, Connection, OptionalExtension as _, Row};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::lifecycle::{self, Action, Lifecycle, Status};
use super::{Ctx, Entry, Ticket, TicketAsset};
use crate::db::DbError;
use crate::webhooks;

const COLUMNS: &str = "t.id, t.title, t.store_code, COALESCE(s.name, ''), COALESCE(s.region, ''),
    COALESCE(s.address, ''), COALESCE(s.timezone, 'UTC'), COALESCE(s.trading_hours, ''), t.source, t.rule,
    t.skill, t.severity, t.impact, t.priority, t.status, t.engineer_id, t.escalation, t.vendor_repair,
    t.opened_at, t.detected_at, t.fault_since, t.accepted_at, t.on_site_at, t.resolved_at, t.closed_at,
    t.response_due, t.resolution_due, t.held_ms, t.report, t.rating, t.reopened, t.dedupe_key";

const FROM: &str = "FROM tickets t LEFT JOIN stores s ON s.code = t.store_code";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Ticket> {
    // Deadlines as they stand: moved by the time spent on hold.
    let held_ms: i64 = r.get(27)?;
    Ok(Ticket {
        id: r.get(0)?,
        title: r.get(1)?,
        store: r.get(2)?,
        store_name: r.get(3)?,
        region: r.get(4)?,
        address: r.get(5)?,
        timezone: r.get(6)?,
        trading_hours: r.get(7)?,
        source: r.get(8)?,
        rule: r.get(9)?,
        skill: r.get(10)?,
        severity: r.get(11)?,
        impact: r.get(12)?,
        priority: r.get(13)?,
        status: r.get(14)?,
        engineer: r.get(15)?,
        escalation: r.get(16)?,
        vendor_repair: r.get(17)?,
        opened_at: r.get(18)?,
        detected_at: r.get(19)?,
        fault_since: r.get(20)?,
        accepted_at: r.get(21)?,
        on_site_at: r.get(22)?,
        resolved_at: r.get(23)?,
        closed_at: r.get(24)?,
        response_due: r.get::<_, i64>(25)? + held_ms,
        resolution_due: r.get::<_, i64>(26)? + held_ms,
        held_ms,
        report: r.get(28)?,
        rating: r.get(29)?,
        reopened: r.get(30)?,
        dedupe_key: r.get(31)?,
        assets: Vec::new(),
    })
}

fn assets(c: &Connection, id: i64) -> Result<Vec<TicketAsset>, DbError> {
    let today = today(storefleet_protocol::now_ms());
    let mut st = c.prepare_cached(
        "SELECT a.id, COALESCE(a.slot, a.hostname), a.class, a.vendor, a.model, a.serial, a.warranty_end
         FROM ticket_assets ta JOIN assets a ON a.id = ta.asset_id WHERE ta.ticket_id = ?1 ORDER BY a.id",
    )?;
    let rows = st.query_map([id], |r| {
        let warranty_end: String = r.get(6)?;
        Ok(TicketAsset {
            id: r.get(0)?,
            slot: r.get(1)?,
            class: r.get(2)?,
            vendor: r.get(3)?,
            model: r.get(4)?,
            serial: r.get(5)?,
            under_warranty: !warranty_end.is_empty() && warranty_end >= today,
            warranty_end,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// `YYYY-MM-DD` (UTC) of `ms`.
pub fn today(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// One ticket with its assets.
pub fn get(c: &Connection, id: i64) -> Result<Option<Ticket>, DbError> {
    let t = c
        .query_row(
            &format!("SELECT {COLUMNS} {FROM} WHERE t.id = ?1"),
            [id],
            from_row,
        )
        .optional()?;
    match t {
        Some(mut t) => {
            t.assets = assets(c, id)?;
            Ok(Some(t))
        }
        None => Ok(None),
    }
}

fn must(c: &Connection, id: i64) -> Result<Ticket, DbError> {
    get(c, id)?.ok_or_else(|| DbError::NotFound(format!("no ticket {id}")))
}

/// Filters for [`list`].
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Filter {
    /// A status, or `open` for every open status.
    pub status: Option<String>,
    /// Store code.
    pub store: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// Assigned engineer.
    pub engineer: Option<String>,
    /// Rows at most (default 200, at most 5,000).
    pub limit: Option<u32>,
}

/// Tickets matching `f`: open ones by priority and deadline, then the newest.
pub fn list(c: &Connection, f: &Filter) -> Result<Vec<Ticket>, DbError> {
    if let Some(s) = f.status.as_deref() {
        if s != "open" && Status::parse(s).is_none() {
            return Err(DbError::Invalid(format!(
                "status {s:?}: `open` or one of {}",
                Status::ALL.map(Status::name).join(", ")
            )));
        }
    }
    let mut st = c.prepare_cached(&format!(
        "SELECT {COLUMNS} {FROM}
         WHERE (?1 IS NULL OR (?1 = 'open' AND t.status NOT IN ('resolved', 'closed', 'cancelled')) OR t.status = ?1)
           AND (?2 IS NULL OR t.store_code = ?2) AND (?3 IS NULL OR s.region = ?3)
           AND (?4 IS NULL OR t.engineer_id = ?4)
         ORDER BY t.status IN ('resolved', 'closed', 'cancelled'), t.priority, t.resolution_due, t.id DESC
         LIMIT ?5"
    ))?;
    let limit = f.limit.unwrap_or(200).clamp(1, 5000);
    let rows = st.query_map(
        params![f.status, f.store, f.region, f.engineer, limit],
        from_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A ticket's timeline, oldest first.
pub fn timeline(c: &Connection, id: i64) -> Result<Vec<Entry>, DbError> {
    let mut st = c.prepare_cached(
        "SELECT id, ts, kind, actor, text, data FROM ticket_timeline WHERE ticket_id = ?1 ORDER BY ts, id",
    )?;
    let rows = st.query_map([id], |r| {
        let data: String = r.get(5)?;
        Ok(Entry {
            id: r.get(0)?,
            ts: r.get(1)?,
            kind: r.get(2)?,
            actor: r.get(3)?,
            text: r.get(4)?,
            data: serde_json::from_str(&data).unwrap_or_default(),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Adds a timeline entry; with `reference`, only once per ticket. `true` when added.
#[allow(clippy::too_many_arguments)]
pub fn add_entry(
    c: &Connection,
    id: i64,
    ts: i64,
    kind: &str,
    actor: &str,
    text: &str,
    data: &serde_json::Value,
    reference: Option<&str>,
) -> Result<bool, DbError> {
    let n = c
        .prepare_cached(
            "INSERT OR IGNORE INTO ticket_timeline(ticket_id, ts, kind, actor, text, data, ref)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            id,
            ts,
            kind,
            actor,
            text,
            data.to_string(),
            reference
        ])?;
    Ok(n > 0)
}

/// What a new ticket is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTicket {
    /// Store code.
    pub store: String,
    /// Title.
    pub title: String,
    /// The skill the fix needs.
    pub skill: String,
    /// `critical`, `major` or `minor`.
    pub severity: crate::alerts::Severity,
    /// `store`, `device` or `peripheral`.
    #[serde(default = "peripheral")]
    pub impact: crate::alerts::Impact,
    /// The device concerned (its assets go on the ticket).
    #[serde(default)]
    pub device: Option<String>,
    /// What was reported (first timeline entry).
    #[serde(default)]
    pub description: String,
    /// Dedupe key; manual tickets get their own.
    #[serde(default, skip_deserializing)]
    pub dedupe_key: String,
    /// The rule (auto tickets).
    #[serde(default, skip_deserializing)]
    pub rule: String,
    /// The alert fired, ms (auto tickets).
    #[serde(default, skip_deserializing)]
    pub detected_at: Option<i64>,
    /// The fault began, ms (auto tickets).
    #[serde(default, skip_deserializing)]
    pub fault_since: Option<i64>,
    /// Start at this escalation level (a tripped circuit breaker).
    #[serde(default, skip_deserializing)]
    pub escalation: u8,
}

fn peripheral() -> crate::alerts::Impact {
    crate::alerts::Impact::Peripheral
}

fn name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The JSON a webhook carries about `t`.
pub fn payload(t: &Ticket, ctx: &Ctx) -> serde_json::Value {
    json!({
        "id": t.id, "title": t.title, "store": t.store, "store_name": t.store_name,
        "region": t.region, "address": t.address, "priority": t.priority, "status": t.status,
        "skill": t.skill, "engineer": t.engineer, "escalation": t.escalation,
        "vendor_repair": t.vendor_repair, "response_due": t.response_due,
        "resolution_due": t.resolution_due, "assets": t.assets,
        "url": format!("{}/tickets/{}", ctx.public_url, t.id),
    })
}

fn notify(c: &Connection, ctx: &Ctx, event: &str, id: i64, now: i64) -> Result<(), DbError> {
    if ctx.hooks.is_empty() {
        return Ok(());
    }
    let t = must(c, id)?;
    webhooks::enqueue(c, &ctx.hooks, event, &payload(&t, ctx), now)?;
    Ok(())
}

/// Opens a ticket (`source` is `auto` or `manual`); returns its id.
pub fn create(
    c: &Connection,
    ctx: &Ctx,
    n: &NewTicket,
    source: &str,
    actor: &str,
    now: i64,
) -> Result<i64, DbError> {
    if crate::stores::get(c, &n.store)?.is_none() {
        return Err(DbError::Invalid(format!(
            "store {:?} does not exist",
            n.store
        )));
    }
    if n.title.trim().is_empty() || n.skill.trim().is_empty() {
        return Err(DbError::Invalid(
            "a ticket needs a title and the skill the fix needs".into(),
        ));
    }
    let priority = lifecycle::priority(n.severity, n.impact);
    let clock = lifecycle::sla(now, ctx.settings.sla(priority), 0, None, now);
    c.prepare_cached(
        "INSERT INTO tickets(dedupe_key, title, store_code, source, rule, skill, severity, impact, priority,
           status, escalation, opened_at, detected_at, fault_since, response_due, resolution_due, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'new', ?10, ?11, ?12, ?13, ?14, ?15, ?11)",
    )?
    .execute(params![
        n.dedupe_key,
        n.title,
        n.store,
        source,
        n.rule,
        n.skill,
        name(&n.severity),
        name(&n.impact),
        priority,
        n.escalation,
        now,
        n.detected_at,
        n.fault_since,
        clock.response_due,
        clock.resolution_due,
    ])?;
    let id = c.last_insert_rowid();
    if n.dedupe_key.is_empty() {
        c.execute(
            "UPDATE tickets SET dedupe_key = ?2 WHERE id = ?1",
            params![id, format!("manual/{id}")],
        )?;
    }
    if let Some(device) = &n.device {
        link_assets(c, id, &n.store, device, now)?;
    }
    let text = if n.description.is_empty() {
        format!("Opened: {} (P{priority})", n.title)
    } else {
        format!("Opened: {} (P{priority}): {}", n.title, n.description)
    };
    add_entry(
        c,
        id,
        now,
        "status",
        actor,
        &text,
        &json!({"status": "new"}),
        None,
    )?;
    notify(c, ctx, "ticket.created", id, now)?;
    Ok(id)
}

/// Puts the assets of `device` in `store` (a device slot, or an agent id for the gateway)
/// on ticket `id`, and flags vendor repair when one is under warranty.
pub fn link_assets(
    c: &Connection,
    id: i64,
    store: &str,
    device: &str,
    now: i64,
) -> Result<(), DbError> {
    c.prepare_cached(
        "INSERT OR IGNORE INTO ticket_assets(ticket_id, asset_id)
         SELECT ?1, id FROM assets WHERE store_code = ?2 AND lifecycle != 'retired'
           AND (slot = ?3 OR (kind = 'gateway' AND agent_id = ?3))",
    )?
    .execute(params![id, store, device])?;
    let under: bool = c.query_row(
        "SELECT EXISTS(SELECT 1 FROM ticket_assets ta JOIN assets a ON a.id = ta.asset_id
                       WHERE ta.ticket_id = ?1 AND a.warranty_end != '' AND a.warranty_end >= ?2)",
        params![id, today(now)],
        |r| r.get(0),
    )?;
    if under {
        let changed = c.execute(
            "UPDATE tickets SET vendor_repair = 1 WHERE id = ?1 AND vendor_repair = 0",
            [id],
        )?;
        if changed > 0 {
            add_entry(
                c,
                id,
                now,
                "note",
                "system",
                "Hardware under warranty: flagged for vendor repair",
                &json!({}),
                Some("vendor-repair"),
            )?;
        }
    }
    Ok(())
}

/// After an inventory of `store` recorded new or changed assets: they join the open
/// tickets of the store's firing alerts that concern them (a ticket may open before the
/// gateway's first inventory arrives).
pub fn link_reported_assets(c: &Connection, store: &str, now: i64) -> Result<(), DbError> {
    let mut st = c.prepare_cached(
        "SELECT DISTINCT ticket_id, subject FROM alerts
         WHERE store_code = ?1 AND cleared_at IS NULL AND ticket_id IS NOT NULL",
    )?;
    let open: Vec<(i64, String)> = st
        .query_map([store], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (ticket, subject) in open {
        link_assets(c, ticket, store, &subject, now)?;
    }
    Ok(())
}

fn lifecycle_of(c: &Connection, id: i64) -> Result<Lifecycle, DbError> {
    c.query_row(
        "SELECT status, held_from, engineer_id, hold_since, held_ms FROM tickets WHERE id = ?1",
        [id],
        |r| {
            let s: String = r.get(0)?;
            let h: Option<String> = r.get(1)?;
            Ok(Lifecycle {
                status: Status::parse(&s).unwrap_or(Status::New),
                held_from: h.as_deref().and_then(Status::parse),
                engineer: r.get(2)?,
                hold_since: r.get(3)?,
                held_ms: r.get(4)?,
            })
        },
    )
    .optional()?
    .ok_or_else(|| DbError::NotFound(format!("no ticket {id}")))
}

/// Applies `a` to ticket `id` as `actor`; records it and tells the webhooks.
pub fn act(
    c: &Connection,
    ctx: &Ctx,
    id: i64,
    a: &Action,
    actor: &str,
    now: i64,
) -> Result<Ticket, DbError> {
    let before = lifecycle_of(c, id)?;
    if let Action::Assign { engineer } = a {
        if crate::engineers::get(c, engineer)?.is_none() {
            return Err(DbError::Invalid(format!("no engineer {engineer}")));
        }
    }
    let after = lifecycle::apply(&before, a, now).map_err(DbError::Invalid)?;
    c.prepare_cached(
        "UPDATE tickets SET status = ?2, held_from = ?3, engineer_id = ?4, hold_since = ?5, held_ms = ?6,
           updated_at = ?7 WHERE id = ?1",
    )?
    .execute(params![
        id,
        after.status.name(),
        after.held_from.map(Status::name),
        after.engineer,
        after.hold_since,
        after.held_ms,
        now
    ])?;
    let set = |col: &str, v: &dyn rusqlite::ToSql| -> Result<(), DbError> {
        c.execute(
            &format!("UPDATE tickets SET {col} = ?2 WHERE id = ?1"),
            params![id, v],
        )?;
        Ok(())
    };
    let mut event = None;
    let text = match a {
        Action::Assign { engineer } => {
            event = Some("ticket.assigned");
            format!("Assigned to {engineer}")
        }
        Action::Unassign => "Back to the dispatch queue".to_owned(),
        Action::Accept => {
            set("accepted_at", &now)?;
            "Accepted".to_owned()
        }
        Action::EnRoute => "On the way".to_owned(),
        Action::CheckIn => {
            set("on_site_at", &now)?;
            "Checked in on site".to_owned()
        }
        Action::Hold { reason } => format!("On hold: {reason} (SLA clock stopped)"),
        Action::Resume => "Resumed (SLA clock running)".to_owned(),
        Action::Resolve { report } => {
            set("resolved_at", &now)?;
            set("report", report)?;
            event = Some("ticket.resolved");
            if report.is_empty() {
                "Resolved".to_owned()
            } else {
                format!("Resolved: {report}")
            }
        }
        Action::Close { rating } => {
            set("closed_at", &now)?;
            set("rating", rating)?;
            format!("Closed, rated {rating}/5")
        }
        Action::Cancel { reason } => format!("Cancelled: {reason}"),
        Action::Reopen => {
            c.execute(
                "UPDATE tickets SET resolved_at = NULL, reopened = reopened + 1 WHERE id = ?1",
                [id],
            )?;
            event = Some("ticket.reopened");
            "Reopened".to_owned()
        }
        Action::Note { text } => {
            if text.trim().is_empty() {
                return Err(DbError::Invalid("note: some text".into()));
            }
            text.clone()
        }
    };
    let kind = match a {
        Action::Note { .. } => "note",
        Action::Assign { .. } | Action::Unassign => "assignment",
        _ => "status",
    };
    add_entry(
        c,
        id,
        now,
        kind,
        actor,
        &text,
        &json!({"action": a.name(), "status": after.status.name()}),
        None,
    )?;
    if let Some(e) = event {
        notify(c, ctx, e, id, now)?;
    }
    must(c, id)
}

/// Raises ticket `id` to escalation `level` (only upwards), optionally raising its priority
/// by one; records why and tells the webhooks.
pub fn escalate(
    c: &Connection,
    ctx: &Ctx,
    id: i64,
    level: u8,
    raise_priority: bool,
    reason: &str,
    now: i64,
) -> Result<bool, DbError> {
    let n = c.execute(
        "UPDATE tickets SET escalation = ?2, priority = MAX(1, priority - ?3), updated_at = ?4
         WHERE id = ?1 AND escalation < ?2",
        params![id, level, i64::from(raise_priority), now],
    )?;
    if n == 0 {
        return Ok(false);
    }
    let p: u8 = c.query_row("SELECT priority FROM tickets WHERE id = ?1", [id], |r| {
        r.get(0)
    })?;
    add_entry(
        c,
        id,
        now,
        "escalation",
        "system",
        &format!("Escalated to level {level}: {reason}; priority now P{p}"),
        &json!({"level": level, "priority": p}),
        None,
    )?;
    notify(c, ctx, "ticket.escalated", id, now)?;
    Ok(true)
}
