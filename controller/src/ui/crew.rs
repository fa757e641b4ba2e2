//! Engineers (`/engineers`: load, status, last check-in; dispatchers add and change them)
//! and silences with maintenance windows (`/silences`), what `storefleet engineers` and
//! `storefleet silences` do.

use axum::extract::{Form, Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use storefleet_core::engineer::{Engineer, Level};

use super::{fmt, page, url_encode, PageError, PageResult, User};
use crate::api::Principal;
use crate::auth::Role;
use crate::service::tickets as service;
use crate::state::AppState;

const STATUSES: [&str; 4] = ["available", "off", "sick", "leave"];

pub(super) async fn engineers(State(s): State<AppState>, user: User) -> PageResult {
    let list = s.db.read(crate::engineers::list_with_load).await?;
    let now = s.clock.now();
    let may_edit = user.1 >= Role::Dispatcher;
    let body = html! {
        h1 { "Engineers" }
        table #engineers {
            tr { th { "Engineer" } th { "Level" } th { "Skills" } th { "Regions" } th { "Shift" } th { "Load" } th { "Last check-in" } th { "Status" } }
            @for l in &list {
                @let e = &l.engineer;
                tr {
                    td { b { (e.id) } " " (e.name) @if !e.phone.is_empty() { br; span.muted { (e.phone) } } }
                    td { (e.level.name()) }
                    td { (e.skills.join(", ")) }
                    td { (e.regions.join(", ")) }
                    td { (e.shift) " " span.muted { (e.timezone) } }
                    td { (l.load) "/" (e.capacity) }
                    td.muted { @if let Some(c) = &l.last_check_in { (c.store) ", " (fmt::ago(now, Some(c.at))) } }
                    td {
                        @if may_edit || (user.1 == Role::Engineer && user.0 == e.id) {
                            form.inline method="post" action={"/engineers/" (url_encode(&e.id)) "/status"} {
                                select name="status" {
                                    @for st in STATUSES { option value=(st) selected[st == e.status] { (st) } }
                                    @if !STATUSES.contains(&e.status.as_str()) { option value=(e.status) selected { (e.status) } }
                                }
                                button type="submit" { "Set" }
                            }
                        } @else { (e.status) }
                    }
                }
            }
        }
        @if may_edit {
            h2 { "Add or change an engineer" }
            p.muted { "The same id changes that engineer; skills and regions separated by commas (" code { "*" } ": every region)." }
            form.filters #engineer-form method="post" action="/engineers" {
                label { "Id" input name="id" required maxlength="64"; }
                label { "Name" input name="name" required; }
                label { "Skills" input name="skills" placeholder="printers, network"; }
                label { "Regions" input name="regions" placeholder="north"; }
                label { "Level" select name="level" { @for l in [Level::Junior, Level::Senior, Level::Specialist] { option value=(l.name()) selected[l == Level::Senior] { (l.name()) } } } }
                label { "Shift" input name="shift" value="Mo-Fr 08:00-17:00"; }
                label { "Time zone" input name="timezone" value="Europe/Berlin"; }
                label { "Capacity" input type="number" name="capacity" value="5" min="1" max="100"; }
                label { "Home (LAT,LON)" input name="home"; }
                label { "Phone" input name="phone"; }
                button type="submit" { "Save" }
            }
        }
    };
    Ok(Html(page("Engineers", Some(&user), body).into_string()))
}

/// The engineer form.
#[derive(Debug, Deserialize)]
pub(super) struct EngineerForm {
    id: String,
    name: String,
    #[serde(default)]
    skills: String,
    #[serde(default)]
    regions: String,
    level: Level,
    shift: String,
    timezone: String,
    capacity: u32,
    #[serde(default)]
    home: String,
    #[serde(default)]
    phone: String,
}

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(super) async fn save(
    State(s): State<AppState>,
    _user: User,
    Form(f): Form<EngineerForm>,
) -> Response {
    let home = match f.home.trim() {
        "" => None,
        h => match h.parse() {
            Ok(c) => Some(c),
            Err(e) => {
                return PageError::from(crate::api::ApiError::bad(format!("home: {e}")))
                    .into_response()
            }
        },
    };
    // A change keeps the engineer's status.
    let id = f.id.trim().to_owned();
    let i2 = id.clone();
    let status = match s.db.read(move |c| crate::engineers::get(c, &i2)).await {
        Ok(e) => e.map_or_else(|| "available".to_owned(), |e| e.status),
        Err(e) => return PageError::from(e).into_response(),
    };
    let e = Engineer {
        id,
        name: f.name.trim().to_owned(),
        skills: list(&f.skills),
        regions: list(&f.regions),
        timezone: f.timezone.trim().to_owned(),
        shift: f.shift.trim().to_owned(),
        capacity: f.capacity,
        status,
        phone: f.phone.trim().to_owned(),
        level: f.level,
        home,
    };
    match service::save_engineer(&s, e).await {
        Ok(_) => Redirect::to("/engineers").into_response(),
        Err(e) => PageError::from(e).into_response(),
    }
}

/// The status form.
#[derive(Debug, Deserialize)]
pub(super) struct StatusForm {
    status: String,
}

pub(super) async fn status(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Form(f): Form<StatusForm>,
) -> Response {
    match service::engineer_status(&s, &p, &id, &f.status).await {
        Ok(()) => Redirect::to("/engineers").into_response(),
        Err(e) => PageError::from(e).into_response(),
    }
}

pub(super) async fn silences(State(s): State<AppState>, user: User) -> PageResult {
    let now = s.clock.now();
    let (list, zones) =
        s.db.read(move |c| {
            let list = crate::tickets::standing::silences(c, now, false)?;
            let zones: std::collections::HashMap<String, String> = crate::stores::list(c)?
                .into_iter()
                .map(|st| (st.code, st.timezone))
                .collect();
            Ok((list, zones))
        })
        .await?;
    let may_edit = user.1 >= Role::Dispatcher;
    let body = html! {
        h1 { "Silences and maintenance windows" }
        p.muted { "While one holds, the faults it covers open no ticket (they are still recorded)." }
        @if list.is_empty() { p.muted { "None active or planned." } } @else {
            table #silences {
                tr { th { "Store" } th { "Device" } th { "Rule" } th { "From" } th { "Until" } th { "Reason" } th { "By" } @if may_edit { th {} } }
                @for x in &list {
                    @let zone = zones.get(&x.store).map_or("UTC", String::as_str);
                    tr {
                        td { a href={"/stores/" (url_encode(&x.store))} { (x.store) } }
                        td { (x.device.as_deref().unwrap_or("every device")) }
                        td { (x.rule.as_deref().unwrap_or("every rule")) }
                        td { (fmt::zoned(x.starts_at, zone, "%Y-%m-%d %H:%M %Z")) }
                        td { (fmt::zoned(x.ends_at, zone, "%Y-%m-%d %H:%M %Z")) }
                        td { (x.reason) }
                        td.muted { (x.created_by) }
                        @if may_edit {
                            td { form.inline method="post" action={"/silences/" (x.id) "/end"} { button type="submit" { "End now" } } }
                        }
                    }
                }
            }
        }
        @if may_edit {
            h2 { "Silence now, or plan a maintenance window" }
            p.muted { "Give minutes from now, or a start and an end in the store's own time." }
            form.filters #silence-form method="post" action="/silences" {
                label { "Store" input name="store" required; }
                label { "Device (empty: all)" input name="device"; }
                label { "Rule (empty: all)" input name="rule"; }
                label { "Minutes" input type="number" name="minutes" min="1"; }
                label { "Or from" input type="datetime-local" name="starts"; }
                label { "until" input type="datetime-local" name="ends"; }
                label { "Reason" input name="reason" required; }
                button type="submit" { "Silence" }
            }
        }
    };
    Ok(Html(page("Silences", Some(&user), body).into_string()))
}

/// The silence form.
#[derive(Debug, Deserialize)]
pub(super) struct SilenceForm {
    store: String,
    #[serde(default)]
    device: String,
    #[serde(default)]
    rule: String,
    #[serde(default)]
    minutes: String,
    #[serde(default)]
    starts: String,
    #[serde(default)]
    ends: String,
    reason: String,
}

/// `YYYY-MM-DDTHH:MM` in `zone`, as ms.
fn local(s: &str, zone: &str, what: &str) -> Result<i64, String> {
    let t = jiff::civil::DateTime::strptime("%Y-%m-%dT%H:%M", s.trim())
        .map_err(|_| format!("{what} {s:?}: expected a day and a time"))?;
    let tz = jiff::tz::TimeZone::get(zone).map_err(|e| e.to_string())?;
    t.to_zoned(tz)
        .map(|z| z.timestamp().as_millisecond())
        .map_err(|e| format!("{what}: {e}"))
}

pub(super) async fn add_silence(
    State(s): State<AppState>,
    p: Principal,
    Form(f): Form<SilenceForm>,
) -> Response {
    let code = f.store.trim().to_owned();
    let c2 = code.clone();
    let store = match s.db.read(move |c| crate::stores::get(c, &c2)).await {
        Ok(Some(st)) => st,
        Ok(None) => {
            return PageError::from(crate::api::ApiError::bad(format!("no store {code:?}")))
                .into_response()
        }
        Err(e) => return PageError::from(e).into_response(),
    };
    let bad = |m: String| PageError::from(crate::api::ApiError::bad(m)).into_response();
    let minutes = match f.minutes.trim() {
        "" => None,
        m => match m.parse::<u32>() {
            Ok(m) => Some(m),
            Err(_) => return bad(format!("minutes {m:?}: a whole number")),
        },
    };
    let window = if f.starts.trim().is_empty() && f.ends.trim().is_empty() {
        (None, None)
    } else {
        match (
            local(&f.starts, &store.timezone, "from"),
            local(&f.ends, &store.timezone, "until"),
        ) {
            (Ok(a), Ok(b)) => (Some(a), Some(b)),
            (Err(e), _) | (_, Err(e)) => return bad(e),
        }
    };
    let n = service::NewSilence {
        store: store.code,
        device: Some(f.device),
        rule: Some(f.rule),
        minutes,
        starts_at: window.0,
        ends_at: window.1,
        reason: f.reason,
    };
    match service::silence(&s, &p, n).await {
        Ok(_) => Redirect::to("/silences").into_response(),
        Err(e) => PageError::from(e).into_response(),
    }
}

pub(super) async fn end_silence(
    State(s): State<AppState>,
    _user: User,
    Path(id): Path<i64>,
) -> Response {
    let now = s.clock.now();
    match s
        .db
        .write(move |c| crate::tickets::standing::end_silence(c, id, now))
        .await
    {
        Ok(true) => {
            s.signals.wake(crate::cluster::Wake::Tickets);
            Redirect::to("/silences").into_response()
        }
        Ok(false) => PageError::from(crate::api::ApiError(
            axum::http::StatusCode::NOT_FOUND,
            format!("no active silence {id}"),
        ))
        .into_response(),
        Err(e) => PageError::from(e).into_response(),
    }
}
