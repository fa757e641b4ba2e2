//! The fleet overview: tiles of the whole fleet, the open problems, and the stores that
//! need a look. A chain's fleet is thousands of stores, so the page does not list every
//! one: a small fleet (up to [`LISTED`] stores) is listed whole, a larger one by its stores
//! that are not well, and any store is found by code, name or region. The tiles filter the
//! list by health.

use axum::extract::{Query, State};
use axum::response::Html;
use maud::html;
use serde::Deserialize;
use storefleet_protocol::now_ms;

use super::pages::badge;
use super::{fmt, page, url_encode, PageError, PageResult, User};
use crate::api::ApiError;
use crate::fleet::{self, StoreStatus};
use crate::state::AppState;

/// Stores listed at most; problems too.
pub const LISTED: usize = 200;

/// Store healths a tile filters by.
const HEALTHS: [&str; 4] = ["ok", "degraded", "offline", "empty"];

/// Longest search text accepted.
const MAX_SEARCH: usize = 100;

#[derive(Debug, Default, Deserialize)]
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
        if !self.health.is_empty() && !HEALTHS.contains(&self.health.as_str()) {
            return Err(bad(format!(
                "unknown health {:?}: one of {}",
                self.health,
                HEALTHS.join(", ")
            )));
        }
        Ok(())
    }

    fn filtering(&self) -> bool {
        !self.q.trim().is_empty() || !self.health.is_empty()
    }

    fn matches(&self, s: &StoreStatus) -> bool {
        let q = self.q.trim().to_lowercase();
        let text = |t: &str| t.to_lowercase().contains(&q);
        (self.health.is_empty() || s.health() == self.health)
            && (q.is_empty() || text(&s.store.code) || text(&s.store.name) || text(&s.store.region))
    }
}

/// The stores the page lists (at most [`LISTED`]) and how many there were to list.
fn listed<'a>(stores: &'a [StoreStatus], find: &Find) -> (Vec<&'a StoreStatus>, usize) {
    let chosen: Vec<&StoreStatus> = if find.filtering() {
        stores.iter().filter(|s| find.matches(s)).collect()
    } else if stores.len() <= LISTED {
        stores.iter().collect()
    } else {
        stores.iter().filter(|s| s.health() != "ok").collect()
    };
    let total = chosen.len();
    (chosen.into_iter().take(LISTED).collect(), total)
}

pub(super) async fn show(
    State(s): State<AppState>,
    user: User,
    Query(find): Query<Find>,
) -> PageResult {
    find.check()?;
    let rules = s.rules();
    let ov = s.db.read(move |c| fleet::overview(c, &rules)).await?;
    let now = now_ms();
    let count = |h: &str| ov.stores.iter().filter(|x| x.health() == h).count();
    let devices: u32 = ov.stores.iter().map(|x| x.devices).sum();
    let stale: u32 = ov.stores.iter().map(|x| x.devices_stale).sum();
    let down: u32 = ov.stores.iter().map(|x| x.devices_down).sum();
    let (rows, total) = listed(&ov.stores, &find);
    let caption = if find.filtering() {
        format!("{total} stores match")
    } else if ov.stores.len() <= LISTED {
        format!("All {} stores", ov.stores.len())
    } else {
        format!(
            "{total} of {} stores need a look; find any store by code, name or region",
            ov.stores.len()
        )
    };
    let body = html! {
        meta http-equiv="refresh" content="30";
        h1 { "Fleet" }
        div.tiles {
            a.tile href="/" { b #stores-total { (ov.stores.len()) } "stores" }
            a.tile href="/?health=ok" { b { (count("ok")) } "all well" }
            a.tile href="/?health=offline" { b #stores-offline { (count("offline")) } "gateway offline" }
            a.tile href="/?health=degraded" { b #stores-degraded { (count("degraded")) } "stores degraded" }
            div.tile { b { (devices) } "devices" }
            div.tile { b #devices-down { (down) } "devices down" }
            div.tile { b #devices-stale { (stale) } "devices stale" }
            div.tile { b #problems-open { (ov.problems.len()) } "open problems" }
        }
        h2 { "Open problems" }
        @if ov.problems.is_empty() { p.muted { "None." } } @else {
            @if ov.problems.len() > LISTED { p.muted { "The newest " (LISTED) " of " (ov.problems.len()) "." } }
            table #problems {
                tr { th { "Store" } th { "Problem" } th { "What" } th { "Since" } th { "Details" } }
                @for p in ov.problems.iter().take(LISTED) {
                    tr {
                        td { a href={"/stores/" (url_encode(&p.store))} { (p.store) } }
                        td { (p.kind) }
                        td { (p.subject) }
                        td { (fmt::ago(now, p.since)) }
                        td.muted { (p.note) }
                    }
                }
            }
        }
        h2 { "Stores" }
        form #find-store method="get" action="/" {
            input type="search" name="q" value=(find.q) maxlength=(MAX_SEARCH) placeholder="Store code, name or region";
            @if !find.health.is_empty() { input type="hidden" name="health" value=(find.health); }
            button type="submit" { "Find" }
            @if find.filtering() { " " a href="/" { "Clear" } }
        }
        p.muted #stores-caption {
            (caption)
            @if total > rows.len() { " (the first " (rows.len()) " shown; narrow the search)" }
        }
        table #stores {
            tr { th { "Store" } th { "Name" } th { "Region" } th { "State" } th { "Gateway" } th { "Devices" } th { "Down" } th { "Stale" } }
            @for st in &rows {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stores::Store;

    fn status(code: &str, name: &str, agents: u32, online: u32, down: u32) -> StoreStatus {
        StoreStatus {
            store: Store {
                code: code.into(),
                name: name.into(),
                region: "north".into(),
                address: String::new(),
                timezone: "UTC".into(),
                trading_hours: String::new(),
                tags: Vec::new(),
            },
            agents,
            agents_online: online,
            devices: 3,
            devices_down: down,
            devices_stale: 0,
        }
    }

    #[test]
    fn a_large_fleet_lists_its_stores_that_are_not_well_and_finds_any_store() {
        let mut fleet: Vec<StoreStatus> = (0..LISTED + 50)
            .map(|i| status(&format!("S{i:04}"), &format!("Store {i}"), 1, 1, 0))
            .collect();
        fleet[7].devices_down = 1;
        fleet[9].agents_online = 0;
        let (rows, total) = listed(&fleet, &Find::default());
        let codes: Vec<&str> = rows.iter().map(|s| s.store.code.as_str()).collect();
        assert_eq!((codes, total), (vec!["S0007", "S0009"], 2));

        let find = |q: &str, health: &str| Find {
            q: q.into(),
            health: health.into(),
        };
        let (rows, _) = listed(&fleet, &find("store 123", ""));
        assert_eq!(rows[0].store.code, "S0123");
        let (_, total) = listed(&fleet, &find("", "ok"));
        assert_eq!(total, LISTED + 48);
        let (rows, total) = listed(&fleet, &find("NORTH", ""));
        assert_eq!((rows.len(), total), (LISTED, LISTED + 50));
        let (rows, _) = listed(&fleet, &find("", "offline"));
        assert_eq!(rows[0].store.code, "S0009");
        assert!(find("", "burning").check().is_err());
        assert!(find(&"x".repeat(MAX_SEARCH + 1), "").check().is_err());
        assert!(find("S0001", "degraded").check().is_ok());

        // A small fleet is listed whole.
        let (rows, total) = listed(&fleet[..10], &Find::default());
        assert_eq!((rows.len(), total), (10, 10));
    }
}
