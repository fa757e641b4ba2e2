//! Stores as records (`/stores`: every store with its region, zone, hours, tags and place;
//! admins add one, and change one from its page), what `storefleet stores` does.

use axum::extract::{Form, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;
use storefleet_protocol::now_ms;

use super::{page, url_encode, PageError, PageResult, User};
use crate::auth::Role;
use crate::state::AppState;
use crate::stores::{self, Store};

/// The store form, empty for a new store or filled with `s`.
pub(super) fn form(s: Option<&Store>) -> Markup {
    let v = |f: fn(&Store) -> String| s.map(f).unwrap_or_default();
    html! {
        form.filters.store-form method="post" action="/stores" {
            @if let Some(st) = s {
                input type="hidden" name="code" value=(st.code);
                input type="hidden" name="update" value="true";
            } @else {
                label { "Code" input name="code" required maxlength="32"; }
            }
            label { "Name" input name="name" required value=(v(|s| s.name.clone())); }
            label { "Region" input name="region" value=(v(|s| s.region.clone())); }
            label { "Address" input name="address" value=(v(|s| s.address.clone())); }
            label { "Time zone" input name="timezone" value=(s.map_or("Europe/Berlin".into(), |s| s.timezone.clone())); }
            label { "Trading hours" input name="hours" value=(v(|s| s.trading_hours.clone())) placeholder="Mo-Sa 08:00-20:00"; }
            label { "Tags" input name="tags" value=(v(|s| s.tags.join(","))) placeholder="pilot,mall"; }
            label { "Place (LAT,LON)" input name="at" value=(v(|s| s.place.map(|p| format!("{},{}", p.lat, p.lon)).unwrap_or_default())); }
            button type="submit" { (if s.is_some() { "Save" } else { "Add" }) }
        }
    }
}

pub(super) async fn list(State(s): State<AppState>, user: User) -> PageResult {
    let all = s.db.read(stores::list).await?;
    let body = html! {
        h1 { "Stores (" (all.len()) ")" }
        @if user.1 >= Role::Admin {
            details #add-store {
                summary { "Add a store" }
                (form(None))
                p.muted { "Many at once: " code { "storefleet stores import FILE.csv" } "; one that opens on a day from a format: the " a href="/openings" { "openings" } " page." }
            }
        }
        table #stores {
            tr { th { "Store" } th { "Region" } th { "Time zone" } th { "Trading hours" } th { "Tags" } th { "Place" } th { "Address" } }
            @for st in &all {
                tr {
                    td { a href={"/stores/" (url_encode(&st.code))} { (st.code) } " " (st.name) }
                    td { (st.region) } td { (st.timezone) } td { (st.trading_hours) }
                    td { (st.tags.join(", ")) }
                    td.muted { @if let Some(p) = st.place { (format!("{:.4}, {:.4}", p.lat, p.lon)) } }
                    td.muted { (st.address) }
                }
            }
        }
    };
    Ok(Html(page("Stores", Some(&user), body).into_string()))
}

/// What the store form sends.
#[derive(Debug, Deserialize)]
pub(super) struct StoreForm {
    code: String,
    name: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    timezone: String,
    #[serde(default)]
    hours: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    at: String,
    #[serde(default)]
    update: bool,
}

pub(super) async fn save(
    State(s): State<AppState>,
    _user: User,
    Form(f): Form<StoreForm>,
) -> Response {
    let bad = |m: String| PageError::from(crate::api::ApiError::bad(m)).into_response();
    let place = match f.at.trim() {
        "" => None,
        at => match at.parse() {
            Ok(p) => Some(p),
            Err(e) => return bad(format!("place: {e}")),
        },
    };
    let store = Store {
        code: f.code.trim().to_owned(),
        name: f.name.trim().to_owned(),
        region: f.region.trim().to_owned(),
        address: f.address.trim().to_owned(),
        timezone: match f.timezone.trim() {
            "" => "UTC".into(),
            z => z.to_owned(),
        },
        trading_hours: f.hours.trim().to_owned(),
        tags: f
            .tags
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        place,
    };
    let code = store.code.clone();
    match s
        .db
        .write(move |c| stores::put(c, &store, f.update, now_ms()))
        .await
    {
        Ok(()) => Redirect::to(&format!("/stores/{}", url_encode(&code))).into_response(),
        Err(e) => PageError::from(e).into_response(),
    }
}
