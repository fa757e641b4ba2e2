//! The service KPIs page: fleet-wide tiles, a table per region, and daily charts, over a
//! chosen period (`?days=N`). The same figures are at `GET /api/v1/kpis`.

use axum::extract::{Query, State};
use axum::response::Html;
use maud::{html, Markup};
use serde::Deserialize;

use super::{chart, page, PageResult, User};
use crate::kpi::{self, Day, Figures};
use crate::state::AppState;
use crate::telemetry::Sample;

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub(super) struct KpiQuery {
    days: Option<u32>,
    store: String,
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{:.0} %", v * 100.0))
}

fn minutes(ms: Option<f64>) -> String {
    match ms {
        None => "–".into(),
        Some(ms) if ms < 60_000.0 => format!("{:.0} s", ms / 1000.0),
        Some(ms) if ms < 3_600_000.0 => format!("{:.0} min", ms / 60_000.0),
        Some(ms) => format!("{:.1} h", ms / 3_600_000.0),
    }
}

/// The KPIs of one scope as (id, label, value) for tiles and table cells.
fn figures(f: &Figures) -> [(&'static str, &'static str, String); 9] {
    [
        ("faults", "faults", f.faults.to_string()),
        (
            "detected",
            "detected automatically",
            pct(f.detected_automatically_share),
        ),
        (
            "mttd",
            "mean time to detect",
            minutes(f.mean_time_to_detect_ms),
        ),
        (
            "self-heal",
            "self-heal success",
            pct(f.self_heal_success_rate),
        ),
        (
            "mttr",
            "mean time to resolve",
            minutes(f.mean_time_to_resolve_ms),
        ),
        ("sla", "SLA compliance", pct(f.sla_compliance)),
        (
            "no-visit",
            "fixed without a visit",
            pct(f.fixed_without_visit_share),
        ),
        ("ftf", "first-time fix", pct(f.first_time_fix_rate)),
        ("rating", "mean rating", rating(f)),
    ]
}

fn rating(f: &Figures) -> String {
    f.mean_rating
        .map_or_else(|| "–".into(), |r| format!("{r:.1} / 5 ({})", f.rated))
}

/// Each engineer's resolved tickets: how many, how fast, in time, fixed first time, rated.
pub(super) fn engineers(k: &kpi::Kpis) -> Markup {
    html! {
        @if k.engineers.is_empty() { p.muted { "No ticket resolved by an engineer in this period." } } @else {
            table #kpi-engineers {
                tr { th { "Engineer" } th { "Resolved" } th { "Mean time to resolve" } th { "SLA compliance" } th { "First-time fix" } th { "Mean rating" } th { "Parts used" } }
                @for (e, f) in &k.engineers {
                    tr {
                        td { (e) } td { (f.tickets_resolved) } td { (minutes(f.mean_time_to_resolve_ms)) }
                        td { (pct(f.sla_compliance)) } td { (pct(f.first_time_fix_rate)) " (" (f.first_time_fixes) "/" (f.visited) ")" }
                        td { (rating(f)) } td { (f.parts_used) }
                    }
                }
            }
        }
    }
}

/// One store's service over the last 30 days, for its page.
pub(super) fn store_tiles(k: &kpi::Kpis) -> Markup {
    let f = &k.fleet;
    html! {
        div.tiles #store-kpis {
            div.tile { b { (f.tickets_resolved) } "tickets resolved" }
            div.tile { b { (pct(f.sla_compliance)) } "SLA compliance" }
            div.tile { b { (pct(f.first_time_fix_rate)) } "first-time fix" }
            div.tile { b { (rating(f)) } "mean rating" }
            div.tile { b { (f.parts_used) } "parts used" }
        }
    }
}

fn daily(
    title: &str,
    days: &[Day],
    (from, to): (i64, i64),
    zone: &str,
    pick: fn(&Day) -> u64,
) -> Markup {
    let samples: Vec<Sample> = days
        .iter()
        .map(|d| {
            let v = pick(d) as f64;
            Sample {
                t: d.day,
                v,
                min: v,
                max: v,
            }
        })
        .collect();
    chart::line(title, &samples, from, to, zone)
}

pub(super) async fn page_kpis(
    State(s): State<AppState>,
    user: User,
    Query(q): Query<KpiQuery>,
) -> PageResult {
    let days = q.days.unwrap_or(7).clamp(1, 366);
    let to = s.clock.now() + 1;
    let from = to - i64::from(days) * 86_400_000;
    let store = Some(q.store.trim().to_owned()).filter(|s| !s.is_empty());
    let st = store.clone();
    let k =
        s.db.read(move |c| {
            if let Some(code) = &st {
                if crate::stores::get(c, code)?.is_none() {
                    return Err(crate::db::DbError::NotFound(format!("no store {code:?}")));
                }
            }
            kpi::compute(c, from, to, st.as_deref())
        })
        .await?;
    let body = html! {
        meta http-equiv="refresh" content="60";
        h1 { "Service KPIs" @if let Some(code) = &store { " of store " (code) } }
        form.filters method="get" action="/kpis" {
            label { "Period" select name="days" {
                @for (d, label) in [(1, "last 24 hours"), (7, "last 7 days"), (30, "last 30 days"), (90, "last 90 days")] {
                    option value=(d) selected[d == days] { (label) }
                }
            } }
            label { "Store (empty: the fleet)" input name="store" value=(q.store) size="8"; }
            button type="submit" { "Show" }
        }
        div.tiles #kpi-fleet {
            @for (id, label, value) in figures(&k.fleet) {
                div.tile { b id={"kpi-" (id)} { (value) } (label) }
            }
            div.tile { b #kpi-tickets { (k.fleet.tickets_opened) " / " (k.fleet.tickets_resolved) } "tickets opened / resolved" }
        }
        h2 { "Per region" }
        @if k.regions.is_empty() { p.muted { "No faults in this period." } } @else {
            table #kpi-regions {
                tr { th { "Region" } @for (_, label, _) in figures(&Figures::default()) { th { (label) } } }
                @for (region, f) in &k.regions {
                    tr { td { (if region.is_empty() { "(none)" } else { region }) } @for (_, _, v) in figures(f) { td { (v) } } }
                }
            }
        }
        h2 { "Per engineer" }
        (engineers(&k))
        h2 { "Per day" }
        (daily("Tickets opened", &k.days, (from, to), user.zone(), |d| d.opened))
        (daily("Tickets resolved", &k.days, (from, to), user.zone(), |d| d.resolved))
        (daily("Faults healed by a routine", &k.days, (from, to), user.zone(), |d| d.healed))
        p.muted { "How each figure is counted: the API's " code { "GET /api/v1/kpis" } " documentation. Faults are alert episodes (muted ones left out) and tickets opened by hand." }
    };
    Ok(Html(page("Service KPIs", Some(&user), body).into_string()))
}
