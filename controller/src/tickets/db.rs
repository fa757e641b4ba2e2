//! Tickets in the database: opening, reading, acting on them, escalating; each change with its
//! timeline entry and its webhook deliveries in the same transaction.

use serde::{Deserialize, Serialize};
use serde_json::json;
use storefleet_storage::{args, Row, Sql, SqlExt as _, Value};

use super::lifecycle::{self, Action, Lifecycle, Status};
use super::{Ctx, Entry, Ticket, TicketAsset};
use crate::db::DbError;
use crate::webhooks;

pub use storefleet_client::tickets::NewTicket;

const COLUMNS: &str = "t.id, t.title, t.store_code, COALESCE(s.name, '') AS store_name,
    COALESCE(s.region, '') AS region, COALESCE(s.address, '') AS address,
    COALESCE(s.timezone, 'UTC') AS timezone, COALESCE(s.trading_hours, '') AS trading_hours, t.source, t.rule,
    t.skill, t.severity, t.impact, t.priority, t.status, t.engineer_id, t.escalation, t.vendor_repair,
    t.opened_at, t.detected_at, t.fault_since, t.accepted_at, t.on_site_at, t.resolved_at, t.closed_at,
    t.response_due, t.resolution_due, t.held_ms, t.report, t.rating, t.reopened, t.dedupe_key, t.level, t.visits";

const FROM: &str = "FROM tickets t LEFT JOIN stores s ON s.code = t.store_code";

fn from_row(r: &Row) -> Result<Ticket, DbError> {
    // Deadlines as they stand: moved by the time spent on hold.
    let held_ms = r.i64("held_ms")?;
    Ok(Ticket {
        id: r.i64("id")?,
        title: r.text("title")?,
        store: r.text("store_code")?,
        store_name: r.text("store_name")?,
        region: r.text("region")?,
        address: r.text("address")?,
        timezone: r.text("timezone")?,
        trading_hours: r.text("trading_hours")?,
        source: r.text("source")?,
        rule: r.text("rule")?,
        skill: r.text("skill")?,
        level: storefleet_core::engineer::Level::parse(&r.text("level")?).unwrap_or_default(),
        severity: r.text("severity")?,
        impact: r.text("impact")?,
        priority: r.int("priority")?,
        status: r.text("status")?,
        engineer: r.opt_text("engineer_id")?,
        escalation: r.int("escalation")?,
        vendor_repair: r.bool("vendor_repair")?,
        opened_at: r.i64("opened_at")?,
        detected_at: r.opt_i64("detected_at")?,
        fault_since: r.opt_i64("fault_since")?,
        accepted_at: r.opt_i64("accepted_at")?,
        on_site_at: r.opt_i64("on_site_at")?,
        resolved_at: r.opt_i64("resolved_at")?,
        closed_at: r.opt_i64("closed_at")?,
        response_due: r.i64("response_due")? + held_ms,
        resolution_due: r.i64("resolution_due")? + held_ms,
        held_ms,
        report: r.text("report")?,
        rating: r.opt_i64("rating")?.map(|x| x.clamp(0, 255) as u8),
        reopened: r.int("reopened")?,
        dedupe_key: r.text("dedupe_key")?,
        assets: Vec::new(),
        visits: r.int("visits")?,
        parts: Vec::new(),
    })
}

fn assets(c: &dyn Sql, id: i64) -> Result<Vec<TicketAsset>, DbError> {
    let today = today(storefleet_protocol::now_ms());
    c.all(
        "SELECT a.id, COALESCE(a.slot, a.hostname) AS slot, a.class, a.vendor, a.model, a.serial, a.warranty_end
         FROM ticket_assets ta JOIN assets a ON a.id = ta.asset_id WHERE ta.ticket_id = ?1 ORDER BY a.id",
        args![id],
        |r| {
            let warranty_end = r.text("warranty_end")?;
            Ok(TicketAsset {
                id: r.i64("id")?,
                slot: r.text("slot")?,
                class: r.text("class")?,
                vendor: r.text("vendor")?,
                model: r.text("model")?,
                serial: r.text("serial")?,
                under_warranty: !warranty_end.is_empty() && warranty_end >= today,
                warranty_end,
            })
        },
    )
}

/// `YYYY-MM-DD` (UTC) of `ms`.
pub fn today(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// One ticket with its assets.
pub fn get(c: &dyn Sql, id: i64) -> Result<Option<Ticket>, DbError> {
    let t = c
        .one(
            &format!("SELECT {COLUMNS} {FROM} WHERE t.id = ?1"),
            args![id],
        )?
        .as_ref()
        .map(from_row)
        .transpose()?;
    match t {
        Some(mut t) => {
            t.assets = assets(c, id)?;
            t.parts = super::parts::list(c, id)?;
            Ok(Some(t))
        }
        None => Ok(None),
    }
}

fn must(c: &dyn Sql, id: i64) -> Result<Ticket, DbError> {
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
pub fn list(c: &dyn Sql, f: &Filter) -> Result<Vec<Ticket>, DbError> {
    if let Some(s) = f.status.as_deref() {
        if s != "open" && Status::parse(s).is_none() {
            return Err(DbError::Invalid(format!(
                "status {s:?}: `open` or one of {}",
                Status::ALL.map(Status::name).join(", ")
            )));
        }
    }
    let limit = f.limit.unwrap_or(200).clamp(1, 5000);
    c.all(
        &format!(
            "SELECT {COLUMNS} {FROM}
             WHERE (CAST(?1 AS TEXT) IS NULL OR (?1 = 'open' AND t.status NOT IN ('resolved', 'closed', 'cancelled'))
                    OR t.status = ?1)
               AND (CAST(?2 AS TEXT) IS NULL OR t.store_code = ?2) AND (CAST(?3 AS TEXT) IS NULL OR s.region = ?3)
               AND (CAST(?4 AS TEXT) IS NULL OR t.engineer_id = ?4)
             ORDER BY t.status IN ('resolved', 'closed', 'cancelled'), t.priority, t.resolution_due, t.id DESC
             LIMIT ?5"
        ),
        args![
            f.status.as_deref(),
            f.store.as_deref(),
            f.region.as_deref(),
            f.engineer.as_deref(),
            limit
        ],
        from_row,
    )
}

/// A store's `n` tickets that ended last (resolved, closed or cancelled), newest first.
pub fn ended(c: &dyn Sql, store: &str, n: u32) -> Result<Vec<Ticket>, DbError> {
    c.all(
        &format!(
            "SELECT {COLUMNS} {FROM}
             WHERE t.store_code = ?1 AND t.status IN ('resolved', 'closed', 'cancelled')
             ORDER BY COALESCE(t.closed_at, t.resolved_at, t.opened_at) DESC, t.id DESC LIMIT ?2"
        ),
        args![store, n],
        from_row,
    )
}

/// A ticket's timeline, oldest first.
pub fn timeline(c: &dyn Sql, id: i64) -> Result<Vec<Entry>, DbError> {
    c.all(
        "SELECT id, ts, kind, actor, text, data FROM ticket_timeline WHERE ticket_id = ?1 ORDER BY ts, id",
        args![id],
        |r| {
            Ok(Entry {
                id: r.i64("id")?,
                ts: r.i64("ts")?,
                kind: r.text("kind")?,
                actor: r.text("actor")?,
                text: r.text("text")?,
                data: serde_json::from_str(&r.text("data")?).unwrap_or_default(),
            })
        },
    )
}

/// Adds a timeline entry; with `reference`, only once per ticket. `true` when added.
#[allow(clippy::too_many_arguments)]
pub fn add_entry(
    c: &dyn Sql,
    id: i64,
    ts: i64,
    kind: &str,
    actor: &str,
    text: &str,
    data: &serde_json::Value,
    reference: Option<&str>,
) -> Result<bool, DbError> {
    let n = c.execute(
        "INSERT INTO ticket_timeline(ticket_id, ts, kind, actor, text, data, ref)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
        args![id, ts, kind, actor, text, data.to_string(), reference],
    )?;
    Ok(n > 0)
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

fn notify(c: &dyn Sql, ctx: &Ctx, event: &str, id: i64, now: i64) -> Result<(), DbError> {
    if ctx.hooks.is_empty() {
        return Ok(());
    }
    let t = must(c, id)?;
    webhooks::enqueue(c, &ctx.hooks, event, &payload(&t, ctx), now)?;
    Ok(())
}

/// Opens a ticket (`source` is `auto` or `manual`); returns its id.
pub fn create(
    c: &dyn Sql,
    ctx: &Ctx,
    n: &NewTicket,
    source: &str,
    actor: &str,
    now: i64,
) -> Result<i64, DbError> {
    let Some(store) = crate::stores::get(c, &n.store)? else {
        return Err(DbError::Invalid(format!(
            "store {:?} does not exist",
            n.store
        )));
    };
    if n.title.trim().is_empty() || n.skill.trim().is_empty() {
        return Err(DbError::Invalid(
            "a ticket needs a title and the skill the fix needs".into(),
        ));
    }
    let priority = lifecycle::priority(n.severity, n.impact);
    let targets = ctx.settings.sla(priority);
    let mut clock = lifecycle::sla(now, targets, 0, None, now);
    // On the region's business calendar, the clock runs in its working hours only.
    let calendar = super::calendar::of_region(&ctx.settings.calendars, &store.region)
        .and_then(|cfg| Some((cfg, super::calendar::Calendar::new(cfg).ok()?)));
    if let Some((_, cal)) = &calendar {
        clock.response_due = cal.add(now, targets.response_minutes);
        clock.resolution_due = cal.add(now, targets.resolution_minutes);
    }
    let id = c.int(
        "INSERT INTO tickets(dedupe_key, title, store_code, source, rule, skill, severity, impact, priority,
           status, escalation, opened_at, detected_at, fault_since, response_due, resolution_due, updated_at, level)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'new', ?10, ?11, ?12, ?13, ?14, ?15, ?11, ?16)
         RETURNING id",
        args![
            &n.dedupe_key,
            &n.title,
            &n.store,
            source,
            &n.rule,
            &n.skill,
            name(&n.severity),
            name(&n.impact),
            priority,
            n.escalation,
            now,
            n.detected_at,
            n.fault_since,
            clock.response_due,
            clock.resolution_due,
            n.level.name()
        ],
        "id",
    )?;
    if n.dedupe_key.is_empty() {
        c.execute(
            "UPDATE tickets SET dedupe_key = ?2 WHERE id = ?1",
            args![id, format!("manual/{id}")],
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
    if let Some((cfg, cal)) = &calendar {
        add_entry(
            c,
            id,
            now,
            "note",
            "system",
            &format!(
                "SLA on the business calendar {}: response due {}, resolution due {} (UTC)",
                cal.describe(cfg),
                crate::fmt::utc(clock.response_due),
                crate::fmt::utc(clock.resolution_due)
            ),
            &json!({"calendar": cfg.name}),
            None,
        )?;
    }
    notify(c, ctx, "ticket.created", id, now)?;
    Ok(id)
}

/// Puts the assets of `device` in `store` (a device slot, or an agent id for the gateway)
/// on ticket `id`, and flags vendor repair when one is under warranty.
pub fn link_assets(
    c: &dyn Sql,
    id: i64,
    store: &str,
    device: &str,
    now: i64,
) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO ticket_assets(ticket_id, asset_id)
         SELECT CAST(?1 AS BIGINT), id FROM assets WHERE store_code = ?2 AND lifecycle != 'retired'
           AND (slot = ?3 OR (kind = 'gateway' AND agent_id = ?3))
         ON CONFLICT DO NOTHING",
        args![id, store, device],
    )?;
    let under = c
        .one(
            "SELECT 1 AS one FROM ticket_assets ta JOIN assets a ON a.id = ta.asset_id
             WHERE ta.ticket_id = ?1 AND a.warranty_end != '' AND a.warranty_end >= ?2 LIMIT 1",
            args![id, today(now)],
        )?
        .is_some();
    if under {
        let changed = c.execute(
            "UPDATE tickets SET vendor_repair = 1 WHERE id = ?1 AND vendor_repair = 0",
            args![id],
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
pub fn link_reported_assets(c: &dyn Sql, store: &str, now: i64) -> Result<(), DbError> {
    let open = c.all(
        "SELECT DISTINCT ticket_id, subject FROM alerts
         WHERE store_code = ?1 AND cleared_at IS NULL AND ticket_id IS NOT NULL",
        args![store],
        |r| Ok((r.i64("ticket_id")?, r.text("subject")?)),
    )?;
    for (ticket, subject) in open {
        link_assets(c, ticket, store, &subject, now)?;
    }
    Ok(())
}

fn lifecycle_of(c: &dyn Sql, id: i64) -> Result<Lifecycle, DbError> {
    let r = c
        .one(
            "SELECT status, held_from, engineer_id, hold_since, held_ms FROM tickets WHERE id = ?1",
            args![id],
        )?
        .ok_or_else(|| DbError::NotFound(format!("no ticket {id}")))?;
    Ok(Lifecycle {
        status: Status::parse(&r.text("status")?).unwrap_or(Status::New),
        held_from: r.opt_text("held_from")?.as_deref().and_then(Status::parse),
        engineer: r.opt_text("engineer_id")?,
        hold_since: r.opt_i64("hold_since")?,
        held_ms: r.i64("held_ms")?,
    })
}

/// Applies `a` to ticket `id` as `actor`; records it and tells the webhooks.
pub fn act(
    c: &dyn Sql,
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
    c.execute(
        "UPDATE tickets SET status = ?2, held_from = ?3, engineer_id = ?4, hold_since = ?5, held_ms = ?6,
           updated_at = ?7 WHERE id = ?1",
        args![
            id,
            after.status.name(),
            after.held_from.map(Status::name),
            after.engineer.as_deref(),
            after.hold_since,
            after.held_ms,
            now
        ],
    )?;
    let set = |col: &str, v: Value| -> Result<(), DbError> {
        c.execute(
            &format!("UPDATE tickets SET {col} = ?2 WHERE id = ?1"),
            &[Value::from(id), v],
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
            set("accepted_at", now.into())?;
            "Accepted".to_owned()
        }
        Action::EnRoute => "On the way".to_owned(),
        Action::CheckIn => {
            set("on_site_at", now.into())?;
            c.execute(
                "UPDATE tickets SET visits = visits + 1 WHERE id = ?1",
                args![id],
            )?;
            if let Some(engineer) = after.engineer.as_deref() {
                crate::engineers::checked_in(c, engineer, id, now)?;
            }
            "Checked in on site".to_owned()
        }
        Action::Hold { reason } => format!("On hold: {reason} (SLA clock stopped)"),
        Action::Resume => "Resumed (SLA clock running)".to_owned(),
        Action::Resolve { report } => {
            set("resolved_at", now.into())?;
            set("report", report.into())?;
            event = Some("ticket.resolved");
            if report.is_empty() {
                "Resolved".to_owned()
            } else {
                format!("Resolved: {report}")
            }
        }
        Action::Close { rating } => {
            set("closed_at", now.into())?;
            set("rating", (*rating).into())?;
            format!("Closed, rated {rating}/5")
        }
        Action::Cancel { reason } => format!("Cancelled: {reason}"),
        Action::Reopen => {
            c.execute(
                "UPDATE tickets SET resolved_at = NULL, reopened = reopened + 1 WHERE id = ?1",
                args![id],
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
    c: &dyn Sql,
    ctx: &Ctx,
    id: i64,
    level: u8,
    raise_priority: bool,
    reason: &str,
    now: i64,
) -> Result<bool, DbError> {
    let raised = c.one(
        "UPDATE tickets SET escalation = ?2,
             priority = CASE WHEN priority - ?3 < 1 THEN 1 ELSE priority - ?3 END, updated_at = ?4
         WHERE id = ?1 AND escalation < ?2 RETURNING priority",
        args![id, level, i64::from(raise_priority), now],
    )?;
    let Some(raised) = raised else {
        return Ok(false);
    };
    let p: u8 = raised.int("priority")?;
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
