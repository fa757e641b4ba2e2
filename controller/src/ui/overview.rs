//! The fleet overview: tiles of the whole fleet, the open problems, and the stores that
//! need a look. A chain's fleet is thousands of stores, so the page does not list every
//! one: a small fleet (up to [`LISTED`] stores) is listed whole, a larger one by its stores
//! that are not well, and any store is found by code, name or region. The tiles filter the
//! list by health.

use axum::extract::{Query, State};
use axum::response::Html;
use maud::{html, Markup};
use serde::Deserialize;
use storefleet_protocol::now_ms;

use super::pages::badge;
use super::tickets::{sla_badge, status_label, status_tone};
use super::{fmt, page, url_encode, PageError, PageResult, User};
use crate::api::ApiError;
use crate::fleet::Problem;
use crate::fleet::{self, Listing};
use crate::state::AppState;
use crate::tickets::db as tdb;
use crate::tickets::Ticket;

/// Stores listed at most; problems too.
pub const LISTED: usize = 200;

/// Longest search text accepted.
const MAX_SEARCH: usize = 100;

#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct Find {
    /// Text in a store's code, name or region (any case).
    #[serde(default)]
    q: String,
    /// One health (`ok`, `degraded`, `offline`, `empty`).
    #[serde(default)]
    health: String,
}

impl Find {
    fn check(&self) -> Result<(), PageError> {
        let bad = |m: String| PageError(ApiError(axum::http::StatusCode::BAD_REQUEST, m));
        if self.q.chars().count() > MAX_SEARCH {
            return Err(bad(format!(
                "search text longer than {MAX_SEARCH} characters"
            )));
        }
        if !self.health.is_empty() && !fleet::HEALTHS.contains(&self.health.as_str()) {
            return Err(bad(format!(
                "unknown health {:?}: one of {}",
                self.health,
                fleet::HEALTHS.join(", ")
            )));
        }
        Ok(())
    }

    fn listing(&self) -> Listing<'_> {
        Listing {
            q: &self.q,
            health: &self.health,
            limit: LISTED,
        }
    }
}

/// The open ticket of a problem: the one opened for this very subject at its store, else
/// the store's ticket when its gateway is offline (one ticket covers the store then).
fn ticket_of<'a>(open: &'a [Ticket], p: &Problem) -> Option<&'a Ticket> {
    let own = format!("/{}/{}", p.store, p.subject);
    open.iter()
        .find(|t| t.store == p.store && t.dedupe_key.ends_with(&own))
        .or_else(|| {
            open.iter()
                .find(|t| t.store == p.store && p.kind == "agent.offline" && t.impact == "store")
        })
}

/// A problem with its ticket, engineer and SLA clock.
fn problem_row(p: &Problem, t: Option<&Ticket>, now: i64, sla_now: i64) -> Markup {
    html! {
        tr {
            td { a href={"/stores/" (url_encode(&p.store))} { (p.store) } }
            td { (p.kind) }
            td { (p.subject) " " span.muted { (p.note) } }
            td { (fmt::ago(now, p.since)) }
            @match t {
                Some(t) => {
                    td { a.ticket-link href={"/tickets/" (t.id)} { "#" (t.id) } " " span class={"badge " (status_tone(&t.status))} { (status_label(&t.status)) } }
                    td { (t.engineer.as_deref().unwrap_or("in the queue")) }
                    td { (sla_badge(t, sla_now)) }
                }
                None => { td.muted colspan="3" { "no ticket (healing on site, muted, or not yet due)" } }
            }
        }
    }
}

pub(super) async fn show(
    State(s): State<AppState>,
    user: User,
    Query(find): Query<Find>,
) -> PageResult {
    find.check()?;
    let rules = s.rules();
    let want = find.clone();
    let (ov, places, open) =
        s.db.read(move |c| {
            Ok((
                fleet::summary(c, &rules, &want.listing())?,
                crate::stores::places(c)?,
                tdb::list(
                    c,
                    &tdb::Filter {
                        status: Some("open".into()),
                        limit: Some(5000),
                        ..tdb::Filter::default()
                    },
                )?,
            ))
        })
        .await?;
    let sla_now = s.clock.now();
    let now = now_ms();
    let (rows, total, t) = (&ov.listed, ov.matched, &ov.tally);
    let caption = if find.listing().filtering() {
        format!("{total} stores match")
    } else if t.stores <= LISTED as u64 {
        format!("All {} stores", t.stores)
    } else {
        format!(
            "{total} of {} stores need a look; find any store by code, name or region",
            t.stores
        )
    };
    let body = html! {
        meta http-equiv="refresh" content="30";
        h1 { "Fleet" }
        div.tiles {
            a.tile href="/" { b #stores-total { (t.stores) } "stores" }
            a.tile href="/?health=ok" { b { (t.count("ok")) } "all well" }
            a.tile href="/?health=offline" { b #stores-offline { (t.count("offline")) } "gateway offline" }
            a.tile href="/?health=degraded" { b #stores-degraded { (t.count("degraded")) } "stores degraded" }
            div.tile { b { (t.devices) } "devices" }
            div.tile { b #devices-down { (t.devices_down) } "devices down" }
            div.tile { b #devices-stale { (t.devices_stale) } "devices stale" }
            div.tile { b #problems-open { (t.problems_total) } "open problems" }
        }
        @if now - t.at >= 2_000 {
            p.muted #tally-at { "Counts and problems as judged " (fmt::ago(now, Some(t.at))) "; the stores listed, now." }
        }
        h2 { "Open problems" }
        @if t.problems.is_empty() { p.muted { "None." } } @else {
            @if t.problems_total > LISTED as u64 { p.muted { "The newest " (LISTED) " of " (t.problems_total) "." } }
            @let (stale, broken): (Vec<&Problem>, Vec<&Problem>) =
                t.problems.iter().take(LISTED).partition(|p| p.kind == "device.stale");
            @if !broken.is_empty() {
                table #problems {
                    tr { th { "Store" } th { "Problem" } th { "What" } th { "Since" } th { "Ticket" } th { "Engineer" } th { "SLA" } }
                    @for p in &broken { (problem_row(p, ticket_of(&open, p), now, sla_now)) }
                }
            }
            @if !stale.is_empty() {
                details #stale-problems {
                    summary { (stale.len()) " devices send no fresh data (stale) at "
                        (stale.iter().map(|p| p.store.as_str()).collect::<std::collections::BTreeSet<_>>().len()) " stores" }
                    table {
                        tr { th { "Store" } th { "Problem" } th { "What" } th { "Since" } th { "Ticket" } th { "Engineer" } th { "SLA" } }
                        @for p in &stale { (problem_row(p, ticket_of(&open, p), now, sla_now)) }
                    }
                }
            }
        }
        (super::map::fleet(&places, t))
        h2 { "Stores" }
        form #find-store method="get" action="/" {
            input type="search" name="q" value=(find.q) maxlength=(MAX_SEARCH) placeholder="Store code, name or region";
            @if !find.health.is_empty() { input type="hidden" name="health" value=(find.health); }
            button type="submit" { "Find" }
            @if find.listing().filtering() { " " a href="/" { "Clear" } }
        }
        p.muted #stores-caption {
            (caption)
            @if total > rows.len() as u64 { " (the first " (rows.len()) " shown; narrow the search)" }
        }
        table #stores {
            tr { th { "Store" } th { "Name" } th { "Region" } th { "State" } th { "Gateway" } th { "Devices" } th { "Down" } th { "Stale" } }
            @for st in rows {
                tr {
                    td { a.store-link href={"/stores/" (url_encode(&st.store.code))} { (st.store.code) } }
                    td { (st.store.name) }
                    td { (st.store.region) }
                    td { (badge(st.health())) }
                    td { (st.agents_online) "/" (st.agents) " online" }
                    td { (st.devices) }
                    td { (st.devices_down) }
                    td { (st.devices_stale) }
                }
            }
        }
    };
    Ok(Html(page("Fleet", Some(&user), body).into_string()))
}
