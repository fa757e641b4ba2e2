//! Opening a ticket by hand from the UI (`/tickets/new`, dispatchers): a store called in,
//! what `storefleet tickets open` and `POST /api/v1/tickets` do. Dispatch then chooses the
//! engineer as for any ticket, and the ticket's page says whom and why.

use axum::extract::{Form, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use storefleet_core::alerts::{Impact, Severity};
use storefleet_core::engineer::Level;

use super::{page, PageError, PageResult, User};
use crate::api::Principal;
use crate::service::tickets as service;
use crate::state::AppState;
use crate::tickets::db::NewTicket;

/// `?store=` fills the store in (from a store's page).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Prefill {
    store: String,
}

pub(super) async fn form(
    State(s): State<AppState>,
    user: User,
    Query(q): Query<Prefill>,
) -> PageResult {
    let stores = s.db.read(crate::stores::list).await?;
    let body = html! {
        h1 { "Open a ticket" }
        p.muted { "For what a store reports by phone; faults the gateways see open their own tickets." }
        form.act #ticket-form method="post" action="/tickets/new" {
            label { "Store " select name="store" required {
                @for st in &stores { option value=(st.code) selected[st.code == q.store] { (st.code) " " (st.name) } }
            } }
            label { "What is wrong " input name="title" required maxlength="200" size="40"; }
            label { "Skill " input name="skill" required placeholder="printers"; }
            label { "Level " select name="level" {
                @for l in [Level::Junior, Level::Senior, Level::Specialist] { option value=(l.name()) { (l.name()) } }
            } }
            label { "Severity " select name="severity" {
                @for (v, l) in [("minor", "minor: degraded"), ("major", "major: a till or key device out"), ("critical", "critical: trading at risk")] { option value=(v) { (l) } }
            } }
            label { "Impact " select name="impact" {
                @for (v, l) in [("peripheral", "a peripheral"), ("device", "a device"), ("store", "the whole store")] { option value=(v) { (l) } }
            } }
            label { "Device " input name="device" placeholder="printer-1"; }
            textarea name="description" rows="3" placeholder="what the store said" {}
            button type="submit" { "Open" }
        }
    };
    Ok(Html(page("Open a ticket", Some(&user), body).into_string()))
}

/// What the form sends.
#[derive(Debug, Deserialize)]
pub(super) struct TicketForm {
    store: String,
    title: String,
    skill: String,
    level: Level,
    severity: Severity,
    impact: Impact,
    #[serde(default)]
    device: String,
    #[serde(default)]
    description: String,
}

pub(super) async fn open(
    State(s): State<AppState>,
    p: Principal,
    Form(f): Form<TicketForm>,
) -> Response {
    let device = Some(f.device.trim().to_owned()).filter(|d| !d.is_empty());
    let n = NewTicket {
        store: f.store,
        title: f.title.trim().to_owned(),
        skill: f.skill.trim().to_owned(),
        level: f.level,
        severity: f.severity,
        impact: f.impact,
        device,
        description: f.description.trim().to_owned(),
        dedupe_key: String::new(),
        rule: String::new(),
        detected_at: None,
        fault_since: None,
        escalation: 0,
    };
    match service::create(&s, &p, n).await {
        Ok(t) => Redirect::to(&format!("/tickets/{}", t.id)).into_response(),
        Err(e) => PageError::from(e).into_response(),
    }
}
