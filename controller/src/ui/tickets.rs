//! Ticket pages for dispatchers: the list with filters, and one ticket with its store, its
//! assets, its SLA, its timeline (alert, readings, self-heal attempts, people) and the
//! actions its status allows. The field engineer's own view is in `field`.

use axum::extract::{Form, Path, Query, State};
use axum::response::{Html, IntoResponse as _, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::{chart, fmt, not_found, page, url_encode, PageError, PageResult, User};
use crate::engineers::{self, Engineer};
use crate::service::tickets as service;
use crate::state::AppState;
use crate::telemetry::Sample;
use crate::tickets::db::{self as tdb, Filter};
use crate::tickets::lifecycle::{self, Action, Lifecycle, SlaState, Status};
use crate::tickets::{Entry, Ticket};

/// The colour class of a status.
pub(super) fn status_tone(status: &str) -> &'static str {
    match status {
        "resolved" | "closed" => "ok",
        "new" => "down",
        "on_hold" | "cancelled" => "unknown",
        _ => "stale",
    }
}

/// A status as people read it.
pub(super) fn status_label(status: &str) -> String {
    status.replace('_', " ")
}

/// Where the ticket stands against its SLA, or `None` when its clock does not run.
pub(super) fn sla(t: &Ticket, now: i64) -> Option<SlaState> {
    let status = Status::parse(&t.status)?;
    if !status.is_open() || status == Status::OnHold {
        return None;
    }
    let clock = lifecycle::SlaClock {
        response_due: t.response_due,
        resolution_due: t.resolution_due,
    };
    Some(lifecycle::sla_state(t.opened_at, &clock, status, now))
}

/// "due in 2 h" / "overdue 5 min", for a deadline.
fn due(now: i64, at: i64) -> String {
    let left = at - now;
    let span = |ms: i64| {
        let m = ms.abs() / 60_000;
        match m {
            0..=59 => format!("{m} min"),
            60..=2879 => format!("{} h {} min", m / 60, m % 60),
            _ => format!("{} d", m / 1440),
        }
    };
    if left >= 0 {
        format!("due in {}", span(left))
    } else {
        format!("overdue {}", span(left))
    }
}

/// The SLA badge of a ticket.
pub(super) fn sla_badge(t: &Ticket, now: i64) -> Markup {
    let status = Status::parse(&t.status);
    let responded = status.is_some_and(Status::is_responded);
    let next = if responded {
        t.resolution_due
    } else {
        t.response_due
    };
    match sla(t, now) {
        None if t.status == "on_hold" => {
            html! { span.badge.unknown title="the clock is paused" { "SLA paused" } }
        }
        None => html! {},
        Some(SlaState::Ok) => html! { span.badge.ok.sla { (due(now, next)) } },
        Some(SlaState::NearBreach) => {
            html! { span.badge.stale.sla { "near breach · " (due(now, next)) } }
        }
        Some(SlaState::ResponseBreached) => html! { span.badge.down.sla { "response breached" } },
        Some(SlaState::ResolutionBreached) => {
            html! { span.badge.down.sla { "resolution breached" } }
        }
    }
}

/// The actions a ticket's status allows, by name (the lifecycle decides).
pub(super) fn allowed(t: &Ticket) -> Vec<&'static str> {
    let Some(status) = Status::parse(&t.status) else {
        return Vec::new();
    };
    let l = Lifecycle {
        status,
        held_from: None,
        engineer: t.engineer.clone(),
        hold_since: None,
        held_ms: t.held_ms,
    };
    let x = || "x".to_owned();
    [
        Action::Assign { engineer: x() },
        Action::Unassign,
        Action::Accept,
        Action::EnRoute,
        Action::CheckIn,
        Action::Hold { reason: x() },
        Action::Resume,
        Action::Resolve { report: x() },
        Action::Close { rating: 5 },
        Action::Cancel { reason: x() },
        Action::Reopen,
    ]
    .into_iter()
    .filter(|a| lifecycle::apply(&l, a, 0).is_ok())
    .map(|a| a.name())
    .collect()
}

/// An action form as posted by the pages.
#[derive(Debug, Deserialize)]
pub(super) struct ActForm {
    action: String,
    #[serde(default)]
    engineer: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    report: String,
    #[serde(default)]
    rating: String,
    #[serde(default)]
    text: String,
    /// Where to go afterwards: a page of this UI.
    #[serde(default)]
    back: String,
}

impl ActForm {
    fn action(&self) -> Result<Action, String> {
        let need = |v: &str, what: &str| {
            if v.trim().is_empty() {
                Err(format!("{}: {what}", self.action.replace('_', " ")))
            } else {
                Ok(v.trim().to_owned())
            }
        };
        Ok(match self.action.as_str() {
            "assign" => Action::Assign {
                engineer: need(&self.engineer, "pick an engineer")?,
            },
            "unassign" => Action::Unassign,
            "accept" => Action::Accept,
            "en_route" => Action::EnRoute,
            "check_in" => Action::CheckIn,
            "hold" => Action::Hold {
                reason: need(&self.reason, "say what it waits for")?,
            },
            "resume" => Action::Resume,
            "resolve" => Action::Resolve {
                report: self.report.trim().to_owned(),
            },
            "close" => Action::Close {
                rating: need(&self.rating, "a rating from 1 to 5")?
                    .parse()
                    .map_err(|_| format!("close: rating {:?}: 1 to 5", self.rating))?,
            },
            "cancel" => Action::Cancel {
                reason: need(&self.reason, "say why it is not needed")?,
            },
            "reopen" => Action::Reopen,
            "note" => Action::Note {
                text: need(&self.text, "the note's text")?,
            },
            other => return Err(format!("unknown action {other:?}")),
        })
    }
}

/// Applies a posted action as the signed-in user, then goes back.
pub(super) async fn act(
    State(s): State<AppState>,
    user: crate::api::Principal,
    Path(id): Path<i64>,
    Form(f): Form<ActForm>,
) -> Response {
    let a = match f.action() {
        Ok(a) => a,
        Err(e) => return refused(id, &f, crate::api::ApiError::bad(e)),
    };
    // Only pages of this UI: a form cannot send anyone elsewhere.
    let back = if f.back.starts_with('/') && !f.back.starts_with("//") {
        f.back.clone()
    } else {
        format!("/tickets/{id}")
    };
    match service::act(&s, &user, id, a).await {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(e) => refused(id, &f, e.into()),
    }
}

/// A refused action's page: what was wrong, and what the person typed (a report, a reason,
/// a note) kept in a form that sends it again, so that nothing typed is lost.
fn refused(id: i64, f: &ActForm, e: crate::api::ApiError) -> Response {
    let typed = [
        ("report", &f.report),
        ("reason", &f.reason),
        ("text", &f.text),
    ]
    .into_iter()
    .find(|(_, v)| !v.trim().is_empty());
    let Some((field, value)) = typed else {
        return PageError::from(e).into_response();
    };
    let crate::api::ApiError(status, msg) = e;
    let body = html! {
        h1 { "Not done: " (f.action.replace('_', " ")) " on ticket #" (id) }
        p.error #refused { (msg) }
        p { "What you typed is kept here; send it again once the ticket allows it, or copy it." }
        form.act method="post" action={"/tickets/" (id) "/act"} {
            input type="hidden" name="action" value=(f.action);
            input type="hidden" name="back" value=(f.back);
            @if !f.engineer.is_empty() { input type="hidden" name="engineer" value=(f.engineer); }
            @if !f.rating.is_empty() { input type="hidden" name="rating" value=(f.rating); }
            textarea #kept name=(field) rows="6" { (value) }
            button type="submit" { "Send again" }
        }
        p { a href={"/tickets/" (id)} { "The ticket" } }
    };
    (status, Html(page("Not done", None, body).into_string())).into_response()
}

/// `GET /tickets` filters.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub(super) struct ListQuery {
    status: String,
    region: String,
    engineer: String,
    store: String,
}

fn some(s: &str) -> Option<String> {
    (!s.trim().is_empty()).then(|| s.trim().to_owned())
}

pub(super) async fn list(
    State(s): State<AppState>,
    user: User,
    Query(q): Query<ListQuery>,
) -> PageResult {
    let status = if q.status.is_empty() {
        "open".to_owned()
    } else {
        q.status.clone()
    };
    let mut f = Filter {
        status: (status != "all").then(|| status.clone()),
        store: some(&q.store),
        region: some(&q.region),
        engineer: some(&q.engineer),
        limit: Some(500),
    };
    service::own_only(&mut f, &user.0, user.1);
    let (list, engineers, queue) =
        s.db.read(move |c| {
            let queue = tdb::list(
                c,
                &Filter {
                    status: Some("new".into()),
                    limit: Some(5000),
                    ..Filter::default()
                },
            )?
            .len();
            Ok((tdb::list(c, &f)?, engineers::list(c)?, queue))
        })
        .await?;
    let now = s.clock.now();
    let breached = list
        .iter()
        .filter(|t| {
            matches!(
                sla(t, now),
                Some(SlaState::ResponseBreached | SlaState::ResolutionBreached)
            )
        })
        .count();
    let body = html! {
        meta http-equiv="refresh" content="30";
        h1 { "Tickets" }
        div.tiles {
            div.tile { b #tickets-shown { (list.len()) } (status_label(&status)) }
            div.tile { b #tickets-queue { (queue) } "in the dispatch queue" }
            div.tile { b #tickets-breached { (breached) } "SLA breached" }
        }
        form.filters method="get" action="/tickets" {
            label { "Status" select name="status" {
                @for st in ["open", "all"].into_iter().chain(Status::ALL.iter().map(|s| s.name())) {
                    option value=(st) selected[st == status] { (status_label(st)) }
                }
            } }
            label { "Region" input name="region" value=(q.region) size="8"; }
            label { "Store" input name="store" value=(q.store) size="8"; }
            label { "Engineer" select name="engineer" {
                option value="" { "anyone" }
                @for e in &engineers { option value=(e.id) selected[e.id == q.engineer] { (e.name) } }
            } }
            button type="submit" { "Filter" }
        }
        @if list.is_empty() { p.muted { "No tickets match." } } @else {
            (table(&list, now, true))
        }
        p.muted {
            @if user.1 >= crate::auth::Role::Dispatcher { a #open-ticket href="/tickets/new" { "Open a ticket" } " (a store called in). " }
            "Engineers see their own tickets at " a href="/field" { "/field" } "; KPIs are at " a href="/kpis" { "/kpis" } "."
        }
    };
    Ok(Html(page("Tickets", Some(&user), body).into_string()))
}

/// Tickets as rows; `with_store` adds the store's column (the store page leaves it out).
pub(super) fn table(list: &[Ticket], now: i64, with_store: bool) -> Markup {
    html! {
        table #tickets {
            tr { th { "#" } th { "P" } th { "Problem" } th { "Status" } th { "SLA" } @if with_store { th { "Store" } } th { "Engineer" } th { "Opened" } }
            @for t in list {
                tr {
                    td { a.ticket-link href={"/tickets/" (t.id)} { (t.id) } }
                    td { "P" (t.priority) }
                    td { (t.title) @if t.escalation > 0 { " " span.badge.down { "esc " (t.escalation) } } }
                    td { span class={"badge " (status_tone(&t.status))} { (status_label(&t.status)) } }
                    td { (sla_badge(t, now)) }
                    @if with_store { td { a href={"/stores/" (url_encode(&t.store))} { (t.store) } " " span.muted { (t.region) } } }
                    td { (t.engineer.as_deref().unwrap_or("queue")) }
                    td { (fmt::ago(now, Some(t.opened_at))) }
                }
            }
        }
    }
}

/// The ticket's store, assets and deadlines.
pub(super) fn facts(t: &Ticket, now: i64) -> Markup {
    html! {
        dl.facts {
            dt { "Store" } dd { a href={"/stores/" (url_encode(&t.store))} { (t.store) " " (t.store_name) } " · " (t.region) }
            dt { "Address" } dd.address { (t.address) }
            dt { "Hours" } dd { (if t.trading_hours.is_empty() { "not recorded" } else { &t.trading_hours }) " (" (t.timezone) ")" }
            dt { "Priority" } dd { "P" (t.priority) " · " (t.severity) ", " (t.impact) " impact · needs " b { (t.skill) } @if t.level > storefleet_core::engineer::Level::Junior { " (" (t.level.name()) " or above)" } }
            dt { "Response" } dd { (fmt::at(t.response_due, &t.timezone)) @if t.accepted_at.is_none() { " · " (due(now, t.response_due)) } }
            dt { "Resolution" } dd { (fmt::at(t.resolution_due, &t.timezone)) @if t.resolved_at.is_none() { " · " (due(now, t.resolution_due)) } }
        }
        @if t.vendor_repair { p.vendor { span.badge.stale { "under warranty" } " Hardware under warranty: send it for vendor repair." } }
        @if !t.assets.is_empty() {
            table.assets {
                tr { th { "Device" } th { "Class" } th { "Model" } th { "Serial" } th { "Warranty" } }
                @for a in &t.assets {
                    tr {
                        td { a href={"/assets/" (a.id)} { (a.slot) } }
                        td { (a.class) }
                        td { (a.vendor) " " (a.model) }
                        td { code { (a.serial) } }
                        td { @if a.under_warranty { span.badge.ok { "until " (a.warranty_end) } } @else if a.warranty_end.is_empty() { span.muted { "unknown" } } @else { span.muted { "ended " (a.warranty_end) } } }
                    }
                }
            }
        }
    }
}

/// Readings stored on a `telemetry` entry, `{metric: [[t, v], ...]}`, as small charts.
fn readings(data: &serde_json::Value, zone: &str) -> Markup {
    let Some(map) = data.as_object() else {
        return html! {};
    };
    html! {
        @for (metric, points) in map {
            @let samples: Vec<Sample> = points.as_array().into_iter().flatten().filter_map(|p| {
                let t = p.get(0)?.as_i64()?;
                let v = p.get(1)?.as_f64()?;
                Some(Sample { t, v, min: v, max: v })
            }).collect();
            @if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
                (chart::line(metric, &samples, first.t, last.t.max(first.t + 1), zone))
            }
        }
    }
}

/// The timeline, oldest first, in the store's zone; self-heal attempts with their steps.
pub(super) fn timeline(entries: &[Entry], zone: &str) -> Markup {
    html! {
        ol.timeline #timeline {
            @for e in entries {
                li class={"entry " (e.kind)} {
                    div { span.muted { (fmt::at(e.ts, zone)) " · " (e.kind.replace('_', " ")) " · " (e.actor) } }
                    div { (e.text) }
                    @if e.kind == "telemetry" { details { summary { "Charts" } (readings(&e.data, zone)) } }
                    @if let Some(steps) = e.data.get("steps") { (super::pages::steps_folded(steps, e.data["reason"].as_str().unwrap_or_default())) }
                }
            }
        }
    }
}

fn action_forms(t: &Ticket, engineers: &[Engineer]) -> Markup {
    let allowed = allowed(t);
    let to = format!("/tickets/{}/act", t.id);
    let simple = [
        ("accept", "Accept"),
        ("en_route", "En route"),
        ("check_in", "Check in on site"),
        ("resume", "Resume"),
        ("unassign", "Back to the queue"),
        ("reopen", "Reopen"),
    ];
    html! {
        div.actions.wrap {
            @for (name, label) in simple {
                @if allowed.contains(&name) {
                    form method="post" action=(to) { input type="hidden" name="action" value=(name); button type="submit" name="do" value=(name) { (label) } }
                }
            }
        }
        @if allowed.contains(&"assign") {
            form.act method="post" action=(to) {
                input type="hidden" name="action" value="assign";
                select name="engineer" required {
                    option value="" { "engineer…" }
                    @for e in engineers { option value=(e.id) selected[t.engineer.as_deref() == Some(e.id.as_str())] { (e.name) " (" (e.skills.join(", ")) ")" } }
                }
                button type="submit" { "Assign" }
            }
        }
        @if allowed.contains(&"hold") {
            form.act method="post" action=(to) {
                input type="hidden" name="action" value="hold";
                input name="reason" placeholder="waiting for…" required;
                button type="submit" { "Put on hold" }
            }
        }
        @if allowed.contains(&"resolve") {
            form.act method="post" action=(to) {
                input type="hidden" name="action" value="resolve";
                textarea name="report" rows="2" placeholder="service report: what was found and done" {}
                button type="submit" { "Resolve" }
            }
        }
        @if allowed.contains(&"close") {
            form.act method="post" action=(to) {
                input type="hidden" name="action" value="close";
                select name="rating" { @for r in (1..=5).rev() { option value=(r) { (r) " / 5" } } }
                button type="submit" { "Close with rating" }
            }
        }
        @if allowed.contains(&"cancel") {
            form.act method="post" action=(to) {
                input type="hidden" name="action" value="cancel";
                input name="reason" placeholder="why it is not needed" required;
                button type="submit" { "Cancel ticket" }
            }
        }
        form.act method="post" action=(to) {
            input type="hidden" name="action" value="note";
            input name="text" placeholder="a note for the timeline" required;
            button type="submit" { "Add note" }
        }
    }
}

pub(super) async fn show(State(s): State<AppState>, user: User, Path(id): Path<i64>) -> PageResult {
    let (t, entries, engineers) =
        s.db.read(move |c| Ok((tdb::get(c, id)?, tdb::timeline(c, id)?, engineers::list(c)?)))
            .await?;
    let t = t.ok_or_else(|| not_found(format!("no ticket {id}")))?;
    service::may_see(&t, &user.0, user.1)?;
    let now = s.clock.now();
    let body = html! {
        h1 { "Ticket " (t.id) ": " (t.title) }
        p {
            span #status class={"badge " (status_tone(&t.status))} { (status_label(&t.status)) } " "
            (sla_badge(&t, now))
            @if t.escalation > 0 { " " span.badge.down #escalation { "escalation " (t.escalation) } }
            " · " span #engineer { (t.engineer.as_deref().unwrap_or("in the dispatch queue")) }
            " · opened " (fmt::ago(now, Some(t.opened_at))) " (" (t.source) @if !t.rule.is_empty() { ", rule " (t.rule) } ")"
            @if t.reopened > 0 { " · reopened " (t.reopened) "×" }
        }
        (facts(&t, now))
        (super::parts::section(&t, user.1 >= crate::auth::Role::Engineer, now))
        @if !t.report.is_empty() { h2 { "Service report" } p #report { (t.report) } }
        @if let Some(r) = t.rating { p { "Rating: " (r) " / 5" } }
        h2 { "Actions" }
        (action_forms(&t, &engineers))
        h2 { "Timeline" }
        (timeline(&entries, &t.timezone))
    };
    Ok(Html(
        page(&format!("Ticket {}", t.id), Some(&user), body).into_string(),
    ))
}
