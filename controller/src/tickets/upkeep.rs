//! The upkeep part of a ticket pass: resolving tickets whose alerts cleared, escalating
//! what nears or breaches its SLA, assigning what waits in the dispatch queue.

use serde_json::json;
use storefleet_storage::{args, Sql, SqlExt as _};

use super::assign::{self, Candidate, Need};
use super::db as tdb;
use super::lifecycle::{self, Action, SlaState, Status};
use super::{Ctx, Input, Report};
use crate::db::DbError;

pub(super) fn resolve_cleared(c: &dyn Sql, i: &Input<'_>, rep: &mut Report) -> Result<(), DbError> {
    let rows = c.all(
        "SELECT t.id, t.status, t.rule, MAX(a.cleared_at) AS cleared,
                count(*) FILTER (WHERE a.cleared_at IS NULL) AS still_open
         FROM tickets t JOIN alerts a ON a.ticket_id = t.id
         WHERE t.source = 'auto' AND t.status NOT IN ('resolved', 'closed', 'cancelled')
         GROUP BY t.id, t.status, t.rule",
        args![],
        |r| {
            Ok((
                r.i64("id")?,
                r.text("status")?,
                r.text("rule")?,
                r.opt_i64("cleared")?,
                r.i64("still_open")?,
            ))
        },
    )?;
    for (id, status, rule, cleared, still_open) in rows {
        let Some(cleared) = cleared else { continue };
        if still_open > 0 {
            continue;
        }
        let grace = i.rules.get(&rule).map_or(300, |r| r.resolve_grace_secs) as i64 * 1000;
        if i.now - cleared < grace {
            continue;
        }
        if status == "on_site" || status == "on_hold" {
            tdb::add_entry(
                c,
                id,
                i.now,
                "note",
                "system",
                "The alert has cleared; the engineer resolves with a report",
                &json!({}),
                Some(&format!("cleared:{cleared}")),
            )?;
            continue;
        }
        let report = format!(
            "Alert clear for {} s: resolved automatically without a visit",
            grace / 1000
        );
        tdb::act(c, i.ctx, id, &Action::Resolve { report }, "system", i.now)?;
        rep.resolved += 1;
    }
    Ok(())
}

pub(super) fn sla(c: &dyn Sql, i: &Input<'_>, rep: &mut Report) -> Result<(), DbError> {
    let open = tdb::list(
        c,
        &tdb::Filter {
            status: Some("open".into()),
            limit: Some(5000),
            ..tdb::Filter::default()
        },
    )?;
    for t in open {
        let Some(status) = Status::parse(&t.status) else {
            continue;
        };
        if status == Status::OnHold {
            continue;
        }
        let clock = lifecycle::SlaClock {
            response_due: t.response_due,
            resolution_due: t.resolution_due,
        };
        let (level, why) = match lifecycle::sla_state(t.opened_at, &clock, status, i.now) {
            SlaState::Ok => continue,
            SlaState::NearBreach => (1, "SLA near breach (80 % of the time used)"),
            SlaState::ResponseBreached => (2, "response SLA breached: not accepted in time"),
            SlaState::ResolutionBreached => (3, "resolution SLA breached"),
        };
        if level <= t.escalation {
            continue;
        }
        if tdb::escalate(c, i.ctx, t.id, level, level >= 2, why, i.now)? {
            rep.escalated += 1;
            tracing::warn!(ticket = t.id, level, reason = why, "Ticket escalated");
        }
        if level == 2 {
            if let Some(e) = &t.engineer {
                // Reassign: someone else may answer in time.
                tdb::act(c, i.ctx, t.id, &Action::Unassign, "system", i.now)?;
                assign_queue(c, i.ctx, i.now, std::slice::from_ref(e), rep)?;
            }
        }
    }
    Ok(())
}

pub(super) fn assign_queue(
    c: &dyn Sql,
    ctx: &Ctx,
    now: i64,
    exclude: &[String],
    rep: &mut Report,
) -> Result<(), DbError> {
    let queue = tdb::list(
        c,
        &tdb::Filter {
            status: Some("new".into()),
            limit: Some(5000),
            ..tdb::Filter::default()
        },
    )?;
    if queue.is_empty() {
        return Ok(());
    }
    let engineers = crate::engineers::list(c)?;
    let mut loads = crate::engineers::loads(c)?;
    let seen = crate::engineers::check_ins(c)?;
    let places = crate::stores::places(c)?;
    for t in queue.iter().filter(|t| t.engineer.is_none()) {
        let cands: Vec<Candidate<'_>> = engineers
            .iter()
            .map(|e| Candidate {
                engineer: e,
                load: loads.get(&e.id).copied().unwrap_or(0),
                position: crate::engineers::position(e, seen.get(&e.id), now),
            })
            .collect();
        let need = Need {
            skill: &t.skill,
            level: t.level,
            region: &t.region,
            priority: t.priority,
            response_due: t.response_due,
            resolution_due: t.resolution_due,
            exclude,
            store_at: places.get(&t.store).copied(),
        };
        let choice = assign::choose(&need, &cands, now);
        match choice.engineer {
            Some(e) => {
                tdb::add_entry(
                    c,
                    t.id,
                    now,
                    "assignment",
                    "system",
                    &choice.explanation,
                    &json!({"engineer": e}),
                    None,
                )?;
                tdb::act(
                    c,
                    ctx,
                    t.id,
                    &Action::Assign {
                        engineer: e.clone(),
                    },
                    "system",
                    now,
                )?;
                *loads.entry(e).or_insert(0) += 1;
                rep.assigned += 1;
            }
            None => {
                // Said once per ticket, not every pass.
                tdb::add_entry(
                    c,
                    t.id,
                    now,
                    "assignment",
                    "system",
                    &choice.explanation,
                    &json!({}),
                    Some("queue"),
                )?;
            }
        }
    }
    Ok(())
}
