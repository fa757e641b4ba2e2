//! One pass of ticket work, in one database transaction: record what fired and cleared,
//! decide what each alert without a ticket becomes, fill in timelines, resolve what
//! cleared, escalate what nears or breaches its SLA, and assign what is unassigned.

use std::collections::{HashMap, HashSet};

use serde_json::json;
use storefleet_storage::{args, Sql, SqlExt as _};

use super::db::{self as tdb, NewTicket};
use super::lifecycle::Action;
use super::place::{self, Breaker, Placement, Run, Verdict, Windows};
use super::{standing, upkeep, Input, Report};
use crate::alerts::eval::{AlertKey, Change};
use crate::alerts::Rule;
use crate::db::DbError;

/// Telemetry around a fault put on its ticket: this long before it.
const TELEMETRY_BEFORE_MS: i64 = 30 * 60_000;

struct OpenAlert {
    id: i64,
    key: AlertKey,
    since: i64,
    fired_at: i64,
    detail: String,
    disposition: String,
    ticket: Option<i64>,
}

fn open_alerts(c: &dyn Sql) -> Result<Vec<OpenAlert>, DbError> {
    c.all(
        "SELECT id, rule, store_code, subject, since, fired_at, detail, disposition, ticket_id
         FROM alerts WHERE cleared_at IS NULL ORDER BY fired_at, id",
        args![],
        |r| {
            Ok(OpenAlert {
                id: r.i64("id")?,
                key: AlertKey {
                    rule: r.text("rule")?,
                    store: r.text("store_code")?,
                    subject: r.text("subject")?,
                },
                since: r.i64("since")?,
                fired_at: r.i64("fired_at")?,
                detail: r.text("detail")?,
                disposition: r.text("disposition")?,
                ticket: r.opt_i64("ticket_id")?,
            })
        },
    )
}

/// The alerts firing now (for restoring the evaluator after a restart).
pub fn firing(c: &dyn Sql) -> Result<Vec<(AlertKey, i64, i64)>, DbError> {
    Ok(open_alerts(c)?
        .into_iter()
        .map(|a| (a.key, a.since, a.fired_at))
        .collect())
}

fn runs(c: &dyn Sql, store: &str, from: i64) -> Result<Vec<(Run, serde_json::Value)>, DbError> {
    c.all(
        "SELECT id, routine, device, started_at, finished_at, outcome, steps, reason, trigger_type
         FROM routine_runs WHERE store_code = ?1 AND finished_at >= ?2 ORDER BY finished_at",
        args![store, from],
        |r| {
            let run = Run {
                id: r.text("id")?,
                routine: r.text("routine")?,
                device: r.opt_text("device")?,
                started_at: r.i64("started_at")?,
                finished_at: r.i64("finished_at")?,
                outcome: r.text("outcome")?,
            };
            let data = json!({
                "run_id": run.id, "routine": run.routine, "device": run.device,
                "started_at": run.started_at, "finished_at": run.finished_at, "outcome": run.outcome,
                "reason": r.text("reason")?, "trigger": r.text("trigger_type")?,
                "steps": serde_json::from_str::<serde_json::Value>(&r.text("steps")?).unwrap_or_default(),
            });
            Ok((run, data))
        },
    )
}

fn set_disposition(
    c: &dyn Sql,
    id: i64,
    d: &str,
    note: &str,
    ticket: Option<i64>,
) -> Result<(), DbError> {
    c.execute(
        "UPDATE alerts SET disposition = ?2, note = ?3, ticket_id = ?4 WHERE id = ?1",
        args![id, d, note, ticket],
    )?;
    Ok(())
}

/// The device's readings around the fault, for the timeline.
fn telemetry(
    c: &dyn Sql,
    store: &str,
    device: &str,
    until: i64,
) -> Result<serde_json::Value, DbError> {
    let mut by: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
    let rows = c.all(
        "SELECT s.metric, p.t, p.v FROM series s JOIN points p ON p.series_id = s.id
         WHERE s.store_code = ?1 AND s.device = ?2 AND p.t BETWEEN ?3 AND ?4 ORDER BY s.metric, p.t",
        args![store, device, until - TELEMETRY_BEFORE_MS, until],
        |r| Ok((r.text("metric")?, r.i64("t")?, r.f64("v")?)),
    )?;
    for (m, t, v) in rows {
        if let Some(a) = by
            .entry(m)
            .or_insert_with(|| serde_json::Value::Array(Vec::new()))
            .as_array_mut()
        {
            a.push(json!([t, v]));
        }
    }
    // At most the newest 60 points of each metric.
    for v in by.values_mut() {
        if let Some(a) = v.as_array_mut() {
            let cut = a.len().saturating_sub(60);
            a.drain(..cut);
        }
    }
    Ok(serde_json::Value::Object(by))
}

/// Runs one pass.
pub fn run(c: &dyn Sql, i: &Input<'_>) -> Result<Report, DbError> {
    let mut rep = Report::default();
    let now = i.now;
    for ch in i.changes {
        match ch {
            Change::Fired {
                key,
                since,
                at,
                detail,
            } => {
                rep.fired += 1;
                // Once: a pass whose commit was lost on the way back (the engine then fires
                // again) finds the alert already open.
                c.execute(
                    "INSERT INTO alerts(rule, store_code, subject, since, fired_at, detail)
                     SELECT ?1, ?2, ?3, CAST(?4 AS BIGINT), CAST(?5 AS BIGINT), ?6 WHERE NOT EXISTS
                         (SELECT 1 FROM alerts WHERE rule = ?1 AND store_code = ?2 AND subject = ?3 AND cleared_at IS NULL)",
                    args![&key.rule, &key.store, &key.subject, *since, *at, detail],
                )?;
            }
            Change::Cleared {
                key, clear_since, ..
            } => {
                rep.cleared += 1;
                // No open row (cleared by hand, or never recorded) is no ticket; a failing
                // query is an error like any other.
                let ticket = c
                    .one(
                        "SELECT ticket_id FROM alerts WHERE rule = ?1 AND store_code = ?2 AND subject = ?3 AND cleared_at IS NULL",
                        args![&key.rule, &key.store, &key.subject],
                    )?
                    .map(|r| r.opt_i64("ticket_id"))
                    .transpose()?
                    .flatten();
                c.execute(
                    "UPDATE alerts SET cleared_at = ?4 WHERE rule = ?1 AND store_code = ?2 AND subject = ?3 AND cleared_at IS NULL",
                    args![&key.rule, &key.store, &key.subject, *clear_since],
                )?;
                if let Some(t) = ticket {
                    tdb::add_entry(
                        c,
                        t,
                        now,
                        "alert",
                        "system",
                        &format!("Alert cleared: {}", key.dedupe_key()),
                        &json!({"key": key}),
                        None,
                    )?;
                }
            }
        }
    }
    place_alerts(c, i, &mut rep)?;
    upkeep::resolve_cleared(c, i, &mut rep)?;
    upkeep::sla(c, i, &mut rep)?;
    upkeep::assign_queue(c, i.ctx, now, &[], &mut rep)?;
    Ok(rep)
}

fn place_alerts(c: &dyn Sql, i: &Input<'_>, rep: &mut Report) -> Result<(), DbError> {
    let now = i.now;
    let alerts = open_alerts(c)?;
    let offline_stores: HashSet<String> = alerts
        .iter()
        .filter(|a| {
            i.rules
                .get(&a.key.rule)
                .is_some_and(Rule::is_gateway_offline)
        })
        .map(|a| a.key.store.clone())
        .collect();
    let silences = standing::silences(c, now, true)?;
    let s = &i.ctx.settings;
    let windows = Windows {
        reopen_ms: (s.reopen_window_secs as i64) * 1000,
        group_ms: (s.group_window_secs as i64) * 1000,
    };
    let breaker = Breaker {
        failures: s.breaker_failures as usize,
        window_ms: (s.breaker_window_secs as i64) * 1000,
    };
    let mut briefs = standing::briefs(c, now, windows.reopen_ms, |r| {
        i.rules.get(r).is_some_and(Rule::is_gateway_offline)
    })?;
    let mut store_runs: HashMap<String, Vec<(Run, serde_json::Value)>> = HashMap::new();
    for a in alerts {
        let Some(rule) = i.rules.get(&a.key.rule) else {
            continue;
        };
        if !store_runs.contains_key(&a.key.store) {
            let from = now - breaker.window_ms.max(3_600_000);
            store_runs.insert(a.key.store.clone(), runs(c, &a.key.store, from)?);
        }
        let runs = &store_runs[&a.key.store];
        if let Some(t) = a.ticket {
            // Later self-heal attempts join the ticket's timeline.
            add_runs(c, t, &a, runs)?;
            continue;
        }
        if let Some(why) = place::muted(
            &a.key,
            rule,
            offline_stores.contains(&a.key.store),
            &silences,
            now,
        ) {
            if a.disposition != "muted" {
                set_disposition(c, a.id, "muted", &why, None)?;
            }
            continue;
        }
        let plain: Vec<Run> = runs.iter().map(|(r, _)| r.clone()).collect();
        let verdict = place::remediation(
            rule,
            &a.key.subject,
            a.since,
            a.fired_at,
            &plain,
            breaker,
            now,
        );
        let (note, escalate) = match verdict {
            Verdict::Wait(until) => {
                if a.disposition != "waiting" {
                    let note = format!(
                        "waiting for self-heal {} until {}",
                        rule.routine.as_deref().unwrap_or_default(),
                        crate::fmt::utc(until)
                    );
                    set_disposition(c, a.id, "waiting", &note, None)?;
                }
                continue;
            }
            Verdict::Healed(run) => {
                if a.disposition != "healed" {
                    rep.healed += 1;
                    set_disposition(c, a.id, "healed", &format!("healed by run {run}"), None)?;
                }
                continue;
            }
            Verdict::NotBound => (None, None),
            Verdict::Failed(why) => (Some(format!("Self-heal did not fix it: {why}")), None),
            Verdict::TimedOut => (
                Some(format!(
                    "No self-heal outcome from {} within {} s",
                    rule.routine.as_deref().unwrap_or_default(),
                    rule.remediation_timeout_secs
                )),
                None,
            ),
            Verdict::Breaker(n) => (
                None,
                Some(format!(
                    "circuit breaker: {} failed {n} times within {} h, not waiting for it",
                    rule.routine.as_deref().unwrap_or_default(),
                    s.breaker_window_secs / 3600
                )),
            ),
        };
        let ticket = match place::place(&a.key, rule, &briefs, windows, now) {
            Placement::Attach(t) => {
                rep.attached += 1;
                t
            }
            Placement::Reopen(t) => {
                rep.reopened += 1;
                tdb::act(c, i.ctx, t, &Action::Reopen, "system", now)?;
                tdb::add_entry(
                    c,
                    t,
                    now,
                    "note",
                    "system",
                    &format!("Recurrence within the reopen window: {}", a.detail),
                    &json!({}),
                    None,
                )?;
                if let Some(b) = briefs.iter_mut().find(|b| b.id == t) {
                    b.open = true;
                    b.resolved_at = None;
                }
                t
            }
            Placement::Open => {
                rep.opened += 1;
                let n = NewTicket {
                    store: a.key.store.clone(),
                    title: format!("{}: {}", rule.title(), a.key.subject),
                    skill: rule.skill.clone(),
                    level: rule.level,
                    severity: rule.severity,
                    impact: rule.impact,
                    device: Some(a.key.subject.clone()),
                    description: a.detail.clone(),
                    dedupe_key: a.key.dedupe_key(),
                    rule: rule.name.clone(),
                    detected_at: Some(a.fired_at),
                    fault_since: Some(a.since),
                    escalation: 0,
                };
                let t = tdb::create(c, i.ctx, &n, "auto", "system", now)?;
                tracing::info!(ticket = t, store = %a.key.store, rule = %rule.name, subject = %a.key.subject, "Ticket opened");
                briefs.push(place::Brief {
                    id: t,
                    dedupe_key: n.dedupe_key,
                    store: n.store,
                    opened_at: now,
                    open: true,
                    resolved_at: None,
                    groupable: !rule.is_gateway_offline(),
                });
                t
            }
        };
        set_disposition(c, a.id, "ticket", "", Some(ticket))?;
        tdb::link_assets(c, ticket, &a.key.store, &a.key.subject, now)?;
        tdb::add_entry(
            c,
            ticket,
            a.fired_at,
            "alert",
            "system",
            &format!(
                "Alert {} on {}: {} (held {} s before firing)",
                rule.title(),
                a.key.subject,
                a.detail,
                rule.for_secs
            ),
            &json!({"alert": a.id, "key": a.key, "since": a.since, "fired_at": a.fired_at, "severity": rule.severity}),
            Some(&format!("alert:{}", a.id)),
        )?;
        let readings = telemetry(c, &a.key.store, &a.key.subject, now)?;
        if readings.as_object().is_some_and(|m| !m.is_empty()) {
            tdb::add_entry(
                c,
                ticket,
                now,
                "telemetry",
                "system",
                &format!("Readings of {} in the 30 minutes before", a.key.subject),
                &readings,
                Some(&format!("telemetry:{}", a.id)),
            )?;
        }
        add_runs(c, ticket, &a, runs)?;
        if let Some(n) = note {
            tdb::add_entry(
                c,
                ticket,
                now,
                "self_heal",
                "system",
                &n,
                &json!({}),
                Some(&format!("verdict:{}", a.id)),
            )?;
        }
        if let Some(why) = escalate {
            if tdb::escalate(c, i.ctx, ticket, 1, false, &why, now)? {
                rep.escalated += 1;
            }
        }
    }
    Ok(())
}

fn add_runs(
    c: &dyn Sql,
    ticket: i64,
    a: &OpenAlert,
    runs: &[(Run, serde_json::Value)],
) -> Result<(), DbError> {
    for (r, data) in runs {
        let mine = r.device.as_deref().is_none_or(|d| d == a.key.subject);
        if !mine || r.started_at < a.since - 3_600_000 {
            continue;
        }
        tdb::add_entry(
            c,
            ticket,
            r.finished_at,
            "self_heal",
            &format!("agent ({})", r.routine),
            &format!(
                "Self-heal {} on {}: {}",
                r.routine,
                r.device.as_deref().unwrap_or("gateway"),
                r.outcome
            ),
            data,
            Some(&format!("run:{}", r.id)),
        )?;
    }
    Ok(())
}
