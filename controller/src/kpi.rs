//! The fleet's service KPIs over a period, fleet-wide and per region.
//!
//! - Faults: alert episodes that fired (not muted; those that joined one ticket count
//!   once), plus tickets people opened by hand.
//! - Detected automatically: the share of faults that were alert episodes.
//! - Mean time to detect: from when the condition began (the device's `down` time, the
//!   last data before silence) to when its alert fired.
//! - Self-heal success rate: of the automatic routine runs (condition or task) that had
//!   something to fix, the share that healed.
//! - Mean time to resolve: from the fault's start (or the ticket's opening) to resolution.
//! - SLA compliance: of the tickets resolved, the share accepted and resolved in time.
//! - Fixed without a visit: of the faults that ended, the share that needed no engineer on
//!   site (healed by a routine, cleared by itself, or resolved remotely).
//! - First-time fix: of the tickets resolved with a visit, the share fixed on the first one
//!   (one check-in, never reopened).
//! - Rating: the mean of the ratings people gave at close (1 to 5), of the tickets resolved.
//!
//! Per region and fleet-wide, per engineer (the tickets they resolved), and for one store
//! when asked (`store`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use storefleet_storage::{args, Sql};

use crate::db::DbError;

/// The figures of one scope.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Faults in the period.
    pub faults: u64,
    /// Of them, detected by a rule.
    pub detected_automatically: u64,
    /// `detected_automatically / faults`.
    pub detected_automatically_share: Option<f64>,
    /// Mean time to detect, ms.
    pub mean_time_to_detect_ms: Option<f64>,
    /// Automatic runs that healed.
    pub self_heal_healed: u64,
    /// Automatic runs that failed or escalated.
    pub self_heal_failed: u64,
    /// `healed / (healed + failed)`.
    pub self_heal_success_rate: Option<f64>,
    /// Tickets opened.
    pub tickets_opened: u64,
    /// Tickets resolved.
    pub tickets_resolved: u64,
    /// Mean time to resolve, ms.
    pub mean_time_to_resolve_ms: Option<f64>,
    /// Resolved tickets that met both deadlines.
    pub sla_met: u64,
    /// `sla_met / tickets_resolved`.
    pub sla_compliance: Option<f64>,
    /// Faults ended with no engineer on site.
    pub fixed_without_visit: u64,
    /// Faults ended.
    pub faults_ended: u64,
    /// `fixed_without_visit / faults_ended`.
    pub fixed_without_visit_share: Option<f64>,
    /// Resolved tickets with at least one visit on site.
    #[serde(default)]
    pub visited: u64,
    /// Of them, fixed on the first visit and never reopened.
    #[serde(default)]
    pub first_time_fixes: u64,
    /// `first_time_fixes / visited`.
    #[serde(default)]
    pub first_time_fix_rate: Option<f64>,
    /// Resolved tickets that were rated at close.
    #[serde(default)]
    pub rated: u64,
    /// Their mean rating (1 to 5).
    #[serde(default)]
    pub mean_rating: Option<f64>,
    /// Spare parts fitted on the resolved tickets.
    #[serde(default)]
    pub parts_used: u64,
}

/// One day's counts, for charts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Day {
    /// Start of the day (UTC), ms.
    pub day: i64,
    /// Tickets opened.
    pub opened: u64,
    /// Tickets resolved.
    pub resolved: u64,
    /// Faults healed by a routine.
    pub healed: u64,
}

/// KPIs of a period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Kpis {
    /// From, ms.
    pub from: i64,
    /// To, ms.
    pub to: i64,
    /// The whole fleet.
    pub fleet: Figures,
    /// Per region.
    pub regions: BTreeMap<String, Figures>,
    /// Per engineer: the tickets they resolved.
    #[serde(default)]
    pub engineers: BTreeMap<String, Figures>,
    /// Per day.
    pub days: Vec<Day>,
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

#[derive(Default)]
struct Acc {
    f: Figures,
    detect_sum: f64,
    resolve_sum: f64,
    rating_sum: f64,
}

/// One resolved ticket, as the figures count it.
struct Resolved {
    took_ms: i64,
    sla_met: bool,
    visits: i64,
    reopened: i64,
    rating: Option<i64>,
    parts_used: i64,
}

impl Acc {
    fn resolved(&mut self, r: &Resolved) {
        self.f.tickets_resolved += 1;
        self.resolve_sum += r.took_ms.max(0) as f64;
        self.f.sla_met += u64::from(r.sla_met);
        self.f.faults_ended += 1;
        if r.visits == 0 {
            self.f.fixed_without_visit += 1;
        } else {
            self.f.visited += 1;
            self.f.first_time_fixes += u64::from(r.visits == 1 && r.reopened == 0);
        }
        if let Some(x) = r.rating {
            self.f.rated += 1;
            self.rating_sum += x as f64;
        }
        self.f.parts_used += r.parts_used.max(0) as u64;
    }
}

const DAY: i64 = 86_400_000;

/// Computes the KPIs of `[from, to)`, of the whole fleet or of one store.
pub fn compute(c: &dyn Sql, from: i64, to: i64, store: Option<&str>) -> Result<Kpis, DbError> {
    if to <= from {
        return Err(DbError::Invalid("period: `to` must be after `from`".into()));
    }
    let mut by: BTreeMap<String, Acc> = BTreeMap::new();
    let mut days: BTreeMap<i64, Day> = BTreeMap::new();
    fn day(days: &mut BTreeMap<i64, Day>, t: i64) -> &mut Day {
        let d = t - t.rem_euclid(DAY);
        days.entry(d).or_insert(Day {
            day: d,
            ..Day::default()
        })
    }
    // Alert episodes.
    let rows = c.query(
        "SELECT COALESCE(s.region, '') AS region, a.since, a.fired_at, a.cleared_at, a.disposition, a.ticket_id
         FROM alerts a LEFT JOIN stores s ON s.code = a.store_code
         WHERE a.fired_at >= ?1 AND a.fired_at < ?2 AND a.disposition != 'muted'
           AND (CAST(?3 AS TEXT) IS NULL OR a.store_code = ?3) ORDER BY a.fired_at",
        args![from, to, store],
    )?;
    let mut tickets_seen = std::collections::HashSet::new();
    for r in rows {
        let (region, since, fired) = (r.text("region")?, r.i64("since")?, r.i64("fired_at")?);
        let (cleared, disposition, ticket) = (
            r.opt_i64("cleared_at")?,
            r.text("disposition")?,
            r.opt_i64("ticket_id")?,
        );
        // Alerts that joined one ticket (the device down, then its routine escalating)
        // are one fault, detected when the first fired.
        if ticket.is_some_and(|t| !tickets_seen.insert(t)) {
            continue;
        }
        let a = by.entry(region).or_default();
        a.f.faults += 1;
        a.f.detected_automatically += 1;
        a.detect_sum += (fired - since).max(0) as f64;
        if ticket.is_none() && cleared.is_some() {
            a.f.faults_ended += 1;
            a.f.fixed_without_visit += 1;
            if disposition == "healed" {
                day(&mut days, fired).healed += 1;
            }
        }
    }
    // Tickets opened (manual ones are faults people reported).
    let rows = c.query(
        "SELECT COALESCE(s.region, '') AS region, t.source, t.opened_at
         FROM tickets t LEFT JOIN stores s ON s.code = t.store_code
         WHERE t.opened_at >= ?1 AND t.opened_at < ?2 AND (CAST(?3 AS TEXT) IS NULL OR t.store_code = ?3)",
        args![from, to, store],
    )?;
    for r in rows {
        let (region, source, opened) = (r.text("region")?, r.text("source")?, r.i64("opened_at")?);
        let a = by.entry(region).or_default();
        a.f.tickets_opened += 1;
        if source == "manual" {
            a.f.faults += 1;
        }
        day(&mut days, opened).opened += 1;
    }
    // Tickets resolved.
    let rows = c.query(
        "SELECT COALESCE(s.region, '') AS region, t.opened_at, t.fault_since, t.resolved_at,
                t.on_site_at, t.accepted_at, t.response_due + t.held_ms AS response_due,
                t.resolution_due + t.held_ms AS resolution_due, t.engineer_id, t.visits, t.reopened,
                t.rating, (SELECT COALESCE(SUM(p.quantity), 0) FROM ticket_parts p
                           WHERE p.ticket_id = t.id AND p.state = 'used') AS parts_used
         FROM tickets t LEFT JOIN stores s ON s.code = t.store_code
         WHERE t.resolved_at >= ?1 AND t.resolved_at < ?2 AND (CAST(?3 AS TEXT) IS NULL OR t.store_code = ?3)",
        args![from, to, store],
    )?;
    let mut engineers: BTreeMap<String, Acc> = BTreeMap::new();
    for r in rows {
        let (opened, since) = (r.i64("opened_at")?, r.opt_i64("fault_since")?);
        let (resolved, accepted) = (r.i64("resolved_at")?, r.opt_i64("accepted_at")?);
        let (response_due, resolution_due) = (r.i64("response_due")?, r.i64("resolution_due")?);
        let one = Resolved {
            took_ms: resolved - since.unwrap_or(opened).min(opened),
            sla_met: resolved <= resolution_due && accepted.is_none_or(|t| t <= response_due),
            // Tickets from before visits were counted: on site once.
            visits: r
                .i64("visits")?
                .max(i64::from(r.opt_i64("on_site_at")?.is_some())),
            reopened: r.i64("reopened")?,
            rating: r.opt_i64("rating")?,
            parts_used: r.i64("parts_used")?,
        };
        by.entry(r.text("region")?).or_default().resolved(&one);
        if let Some(e) = r.opt_text("engineer_id")? {
            engineers.entry(e).or_default().resolved(&one);
        }
        day(&mut days, resolved).resolved += 1;
    }
    // Automatic self-heal runs.
    let rows = c.query(
        "SELECT COALESCE(s.region, '') AS region,
                count(*) FILTER (WHERE r.outcome = 'healed') AS healed,
                count(*) FILTER (WHERE r.outcome IN ('failed', 'escalated')) AS failed
         FROM routine_runs r LEFT JOIN stores s ON s.code = r.store_code
         WHERE r.finished_at >= ?1 AND r.finished_at < ?2 AND r.trigger_type IN ('condition', 'task')
           AND (CAST(?3 AS TEXT) IS NULL OR r.store_code = ?3)
         GROUP BY COALESCE(s.region, '')",
        args![from, to, store],
    )?;
    for r in rows {
        let (region, healed, failed) = (r.text("region")?, r.i64("healed")?, r.i64("failed")?);
        let a = by.entry(region).or_default();
        a.f.self_heal_healed += healed as u64;
        a.f.self_heal_failed += failed as u64;
    }
    let mut fleet = Acc::default();
    let mut regions = BTreeMap::new();
    for (region, a) in by {
        fleet.f.faults += a.f.faults;
        fleet.f.detected_automatically += a.f.detected_automatically;
        fleet.detect_sum += a.detect_sum;
        fleet.f.self_heal_healed += a.f.self_heal_healed;
        fleet.f.self_heal_failed += a.f.self_heal_failed;
        fleet.f.tickets_opened += a.f.tickets_opened;
        fleet.f.tickets_resolved += a.f.tickets_resolved;
        fleet.resolve_sum += a.resolve_sum;
        fleet.f.sla_met += a.f.sla_met;
        fleet.f.fixed_without_visit += a.f.fixed_without_visit;
        fleet.f.faults_ended += a.f.faults_ended;
        fleet.f.visited += a.f.visited;
        fleet.f.first_time_fixes += a.f.first_time_fixes;
        fleet.f.rated += a.f.rated;
        fleet.rating_sum += a.rating_sum;
        fleet.f.parts_used += a.f.parts_used;
        regions.insert(region, finish(a));
    }
    // Every day of the period is on the chart, with or without data.
    let mut d = from - from.rem_euclid(DAY);
    while d < to && days.len() < 400 {
        days.entry(d).or_insert(Day {
            day: d,
            ..Day::default()
        });
        d += DAY;
    }
    Ok(Kpis {
        from,
        to,
        fleet: finish(fleet),
        regions,
        engineers: engineers.into_iter().map(|(e, a)| (e, finish(a))).collect(),
        days: days.into_values().collect(),
    })
}

fn finish(a: Acc) -> Figures {
    let mut f = a.f;
    f.detected_automatically_share = ratio(f.detected_automatically, f.faults);
    f.mean_time_to_detect_ms =
        (f.detected_automatically > 0).then(|| a.detect_sum / f.detected_automatically as f64);
    f.self_heal_success_rate = ratio(f.self_heal_healed, f.self_heal_healed + f.self_heal_failed);
    f.mean_time_to_resolve_ms =
        (f.tickets_resolved > 0).then(|| a.resolve_sum / f.tickets_resolved as f64);
    f.sla_compliance = ratio(f.sla_met, f.tickets_resolved);
    f.fixed_without_visit_share = ratio(f.fixed_without_visit, f.faults_ended);
    f.first_time_fix_rate = ratio(f.first_time_fixes, f.visited);
    f.mean_rating = (f.rated > 0).then(|| a.rating_sum / f.rated as f64);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_count_what_happened_per_region_and_fleet_wide() {
        crate::db::testing::on_each_backend("kpis", |backend, db| {
            db(&mut |c| {
                figures(c, backend);
                Ok(())
            })
            .unwrap();
        });
    }

    fn figures(c: &dyn Sql, backend: &str) {
        c.execute(
            "INSERT INTO stores(code, name, region, created_at) VALUES ('S1', 'a', 'north', 0), ('S2', 'b', 'south', 0)",
            args![],
        )
        .unwrap();
        // Two faults in the north: one healed (no ticket), one with a ticket resolved
        // remotely (its device alert and its routine's escalation: one fault); a manual
        // ticket in the south resolved on site, late.
        let setup = "INSERT INTO alerts(rule, store_code, subject, since, fired_at, cleared_at, disposition, ticket_id)
               VALUES ('printer-down', 'S1', 'p', 1000, 61000, 200000, 'healed', NULL),
                      ('printer-down', 'S1', 'p', 300000, 330000, NULL, 'ticket', 1),
                      ('routine-escalated', 'S1', 'p', 340000, 340000, NULL, 'ticket', 1);
             INSERT INTO tickets(id, dedupe_key, title, store_code, source, severity, impact, priority, status,
                 opened_at, fault_since, resolved_at, response_due, resolution_due, updated_at, accepted_at)
               VALUES (1, 'k', 't', 'S1', 'auto', 'major', 'peripheral', 4, 'resolved', 330000, 300000, 900000, 10000000, 20000000, 0, 400000),
                      (2, 'm', 't', 'S2', 'manual', 'major', 'peripheral', 4, 'resolved', 100000, NULL, 5000000, 200000, 4000000, 0, 150000);
             UPDATE tickets SET on_site_at = 3000000 WHERE id = 2;
             INSERT INTO routine_runs(agent_id, id, store_code, routine, version, trigger_type, trigger_detail,
                 started_at, finished_at, outcome, reason, steps, received_at)
               VALUES ('a', 'r1', 'S1', 'x', 1, 'condition', '', 100000, 110000, 'healed', '', '[]', 0),
                      ('a', 'r2', 'S1', 'x', 1, 'condition', '', 400000, 410000, 'failed', '', '[]', 0),
                      ('a', 'r3', 'S1', 'x', 1, 'manual', '', 400000, 410000, 'failed', '', '[]', 0)";
        for statement in setup.split(";\n") {
            c.execute(statement, args![]).unwrap();
        }
        let k = compute(c, 0, DAY, None).unwrap();
        let n = &k.regions["north"];
        assert_eq!(n.faults, 2, "{backend}");
        assert_eq!(n.detected_automatically_share, Some(1.0));
        assert_eq!(n.mean_time_to_detect_ms, Some(45_000.0));
        assert_eq!(n.self_heal_success_rate, Some(0.5));
        assert_eq!(n.sla_compliance, Some(1.0));
        assert_eq!(n.fixed_without_visit_share, Some(1.0));
        let s = &k.regions["south"];
        assert_eq!(s.sla_compliance, Some(0.0), "resolved after its deadline");
        assert_eq!(s.fixed_without_visit_share, Some(0.0));
        let f = &k.fleet;
        assert_eq!(f.faults, 3);
        assert!((f.detected_automatically_share.unwrap() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(f.tickets_resolved, 2);
        assert_eq!(
            f.mean_time_to_resolve_ms,
            Some(f64::midpoint(600_000.0, 4_900_000.0))
        );
        assert_eq!(k.days.len(), 1);
        assert_eq!(k.days[0].opened, 2);
        assert_eq!(k.days[0].healed, 1);
        assert!(compute(c, 5, 5, None).is_err());
    }
}
