//! The asset registry: search with filters, CSV, one asset with its history and an edit form.

use axum::extract::{Form, Path, Query, RawQuery, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use storefleet_protocol::now_ms;

use super::{fmt, not_found, page, url_encode, PageError, PageResult, User};
use crate::assets::query::{self, Filter};
use crate::assets::{self, Edit, LIFECYCLES};
use crate::auth::Role;
use crate::state::AppState;

const PAGE: u32 = 100;

pub(super) async fn registry(
    State(s): State<AppState>,
    user: User,
    Query(mut f): Query<Filter>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    f.limit = Some(PAGE);
    let offset = f.offset.unwrap_or(0);
    let f2 = f.clone();
    let ((items, total), classes, regions) =
        s.db.read(move |c| {
            Ok((
                query::search(c, &f2, now_ms())?,
                query::classes(c)?,
                query::regions(c)?,
            ))
        })
        .await?;
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    let csv_query = raw.unwrap_or_default();
    let keep: String = csv_query
        .split('&')
        .filter(|kv| !kv.starts_with("offset=") && !kv.starts_with("limit=") && !kv.is_empty())
        .collect::<Vec<_>>()
        .join("&");
    let now = now_ms();
    let body = html! {
        h1 { "Assets" }
        form.filters #asset-search method="get" action="/assets" {
            label { "Search" input name="q" value=(v(&f.q)) placeholder="serial, model, host..."; }
            label { "Store" input name="store" value=(v(&f.store)) size="8"; }
            label { "Region" select name="region" { option value="" { "any" } @for r in &regions { option value=(r) selected[f.region.as_deref() == Some(r.as_str())] { (r) } } } }
            label { "Class" select name="class" { option value="" { "any" } @for c in &classes { option value=(c) selected[f.class.as_deref() == Some(c.as_str())] { (c) } } } }
            label { "Model" input name="model" value=(v(&f.model)) size="10"; }
            label { "Firmware" input name="firmware" value=(v(&f.firmware)) size="8"; }
            label { "Lifecycle" select name="lifecycle" { option value="" { "any" } @for l in LIFECYCLES { option value=(l) selected[f.lifecycle.as_deref() == Some(*l)] { (l) } } } }
            label { "Warranty ends within (days)" input name="warranty_days" type="number" min="0" value=(f.warranty_days.map(|d| d.to_string()).unwrap_or_default()) size="5"; }
            button type="submit" { "Search" }
            a #csv-link href={"/api/v1/assets.csv?" (keep)} { "Download CSV" }
        }
        @if user.1 >= Role::Dispatcher {
            details #new-asset {
                summary { "Add a device record by hand" }
                form.filters method="post" action="/assets" {
                    label { "Store" input name="store" required size="8"; }
                    label { "Slot (its id at the store)" input name="slot" required size="12" placeholder="printer-2"; }
                    label { "Class" input name="class" required size="14" placeholder="receipt-printer"; }
                    label { "Vendor" input name="vendor" size="10"; }
                    label { "Model" input name="model" size="10"; }
                    label { "Serial" input name="serial" size="12"; }
                    label { "Lifecycle" select name="lifecycle" { @for l in LIFECYCLES { option value=(l) selected[*l == "active"] { (l) } } } }
                    label { "Purchase date" input name="purchase_date" type="date"; }
                    label { "Warranty end" input name="warranty_end" type="date"; }
                    button type="submit" { "Add" }
                }
                p.muted { "Many at once: " code { "storefleet assets import FILE.csv" } " (the CSV export's columns)." }
            }
        }
        p.muted #asset-count { (total) " assets" @if total > u64::from(PAGE) { ", showing " (offset + 1) " to " ((u64::from(offset) + items.len() as u64)) } }
        table #assets {
            tr { th { "Id" } th { "Store" } th { "Slot" } th { "Class" } th { "Vendor / model" } th { "Serial" } th { "Firmware" } th { "Lifecycle" } th { "Warranty" } th { "Seen" } }
            @for a in &items {
                tr {
                    td { a.asset-link href={"/assets/" (a.id)} { (a.id) } }
                    td { (v(&a.store)) }
                    td { (v(&a.slot)) }
                    td { (a.class) }
                    td { (a.vendor) " " (a.model) }
                    td { (a.serial) }
                    td { (a.firmware) }
                    td { (a.lifecycle) }
                    td { (a.warranty_end) }
                    td { (fmt::ago(now, a.last_seen)) }
                }
            }
        }
        p {
            @if offset > 0 { a href={"/assets?" (keep) "&offset=" (offset.saturating_sub(PAGE))} { "Previous" } " " }
            @if u64::from(offset + PAGE) < total { a href={"/assets?" (keep) "&offset=" (offset + PAGE)} { "Next" } }
        }
    };
    Ok(Html(page("Assets", Some(&user), body).into_string()))
}

pub(super) async fn asset(
    State(s): State<AppState>,
    user: User,
    Path(id): Path<i64>,
) -> PageResult {
    let (a, history) =
        s.db.read(move |c| Ok((assets::get(c, id)?, assets::history(c, id)?)))
            .await?;
    let Some(a) = a else {
        return Err(not_found(format!("no asset {id}")));
    };
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    let attrs = serde_json::to_string_pretty(&a.attrs).unwrap_or_default();
    let body = html! {
        h1 { "Asset " (a.id) ": " (a.class) " " (v(&a.slot)) }
        @if let Some(st) = &a.store { p { a href={"/stores/" (url_encode(st))} { "Store " (st) } " · region " (a.region) } }
        table #asset {
            tr { th { "Kind" } td { (a.kind) } }
            tr { th { "Vendor" } td { (a.vendor) } }
            tr { th { "Model" } td { (a.model) } }
            tr { th { "Serial" } td { (a.serial) } }
            tr { th { "Firmware" } td #firmware { (a.firmware) } }
            @if !a.hostname.is_empty() { tr { th { "Host" } td { (a.hostname) } } }
            @if !a.macs.is_empty() { tr { th { "MACs" } td { (a.macs) } } }
            @if let Some(ag) = &a.agent_id { tr { th { "Agent" } td { a href={"/agents/" (url_encode(ag))} { (ag) } } } }
            @if let Some(p) = a.parent_id { tr { th { "Parent" } td { a href={"/assets/" (p)} { "asset " (p) } } } }
            tr { th { "First seen" } td { (fmt::at(a.first_seen, user.zone())) } }
            tr { th { "Attributes" } td { pre { (attrs) } } }
        }
        h2 { "Edit" }
        form.filters #asset-edit method="post" action={"/assets/" (a.id)} {
            label { "Class" input name="class" value=(a.class) required size="14"; }
            label { "Vendor" input name="vendor" value=(a.vendor) size="10"; }
            label { "Model" input name="model" value=(a.model) size="10"; }
            label { "Serial" input name="serial" value=(a.serial) size="12"; }
            label { "Lifecycle" select name="lifecycle" { @for l in LIFECYCLES { option value=(l) selected[a.lifecycle == *l] { (l) } } } }
            label { "Purchase date" input name="purchase_date" type="date" value=(a.purchase_date); }
            label { "Warranty end" input name="warranty_end" type="date" value=(a.warranty_end); }
            button type="submit" { "Save" }
        }
        h2 { "History" }
        table #history {
            tr { th { "When" } th { "Who" } th { "Field" } th { "Before" } th { "After" } }
            @for h in history.iter().rev() {
                tr { td { (fmt::at(h.ts, user.zone())) } td { (h.actor) } td { (h.field) } td { (v(&h.before)) } td { (v(&h.after)) } }
            }
        }
    };
    Ok(Html(
        page(&format!("Asset {}", a.id), Some(&user), body).into_string(),
    ))
}

#[derive(Debug, Deserialize)]
pub(super) struct EditForm {
    lifecycle: Option<String>,
    purchase_date: Option<String>,
    warranty_end: Option<String>,
    class: Option<String>,
    vendor: Option<String>,
    model: Option<String>,
    serial: Option<String>,
}

pub(super) async fn save(
    State(s): State<AppState>,
    user: User,
    Path(id): Path<i64>,
    Form(f): Form<EditForm>,
) -> Response {
    if f.class.as_deref().is_some_and(|c| c.trim().is_empty()) {
        return PageError::from(crate::api::ApiError::bad("class: what the device is"))
            .into_response();
    }
    let e = Edit {
        lifecycle: f.lifecycle,
        purchase_date: f.purchase_date,
        warranty_end: f.warranty_end,
        class: f.class.map(|c| c.trim().to_owned()),
        vendor: f.vendor,
        model: f.model,
        serial: f.serial,
        ..Default::default()
    };
    let actor = format!("user:{}", user.0);
    match s
        .db
        .write(move |c| assets::edit(c, id, &e, &actor, now_ms()))
        .await
    {
        Ok(_) => Redirect::to(&format!("/assets/{id}")).into_response(),
        Err(e) => PageError::from(e).into_response(),
    }
}

/// A device record made by hand from the registry's form.
pub(super) async fn create(
    State(s): State<AppState>,
    user: User,
    Form(n): Form<assets::import::NewAsset>,
) -> Response {
    let actor = format!("user:{}", user.0);
    match s
        .db
        .write(move |c| assets::import::create(c, &n, &actor, now_ms()))
        .await
    {
        Ok(a) => Redirect::to(&format!("/assets/{}", a.id)).into_response(),
        Err(e) => PageError::from(e).into_response(),
    }
}
