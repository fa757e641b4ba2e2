//! The readiness board (`/openings`), a new store's readiness (`/stores/{code}/readiness`)
//! with its go-live checks, and the store formats (`/formats`).

use axum::extract::{Form, Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;
use storefleet_protocol::now_ms;

use super::{fmt, not_found, page, url_encode, PageError, PageResult, User};
use crate::auth::Role;
use crate::openings::{self, Opening, Readiness, State as Is, StoreFormat};
use crate::state::AppState;

/// The badge class of a state.
fn class(s: Is) -> &'static str {
    match s {
        Is::Ready => "ok",
        Is::Down | Is::Missing => "down",
        Is::Misconfigured => "degraded",
        Is::Pending => "unknown",
    }
}

use crate::fmt::days;

/// How an opening stands for the board: ready, on track, at risk (inside the warning's
/// days), late (past its day).
fn standing(r: &Readiness, warn_days: i64) -> (&'static str, &'static str) {
    match (r.ready, r.days_left) {
        (true, _) => ("ready", "ok"),
        (false, d) if d < 0 => ("late", "down"),
        (false, d) if d <= warn_days => ("at risk", "degraded"),
        _ => ("on track", "unknown"),
    }
}

pub(super) async fn board(State(s): State<AppState>, user: User) -> PageResult {
    let rules = s.rules();
    let (board, formats) =
        s.db.read(move |c| Ok((openings::board(c, &rules)?, openings::formats(c)?)))
            .await?;
    let warn = i64::from(s.config.tickets.opening_warn_days);
    let body = html! {
        h1 { "Store openings" }
        p.muted { "Every store with an opening, by day: what its gateway reports against its format. A store not ready "
            (warn) " days before its day gets an event and a ticket." }
        @if board.is_empty() { p.muted { "No store is opening." } } @else {
            table #board {
                tr { th { "Store" } th { "Region" } th { "Format" } th { "Opens" } th { "Devices ready" } th { "Standing" } th { "Not ready" } }
                @for r in &board {
                    @let (ok, all) = r.devices_ready();
                    @let (word, cls) = standing(r, warn);
                    tr {
                        td { a.opening href={"/stores/" (url_encode(&r.store)) "/readiness"} { (r.store) } " " span.muted { (r.name) } }
                        td { (r.region) }
                        td { (r.format) }
                        td { (r.opens_on) " " span.muted { "(" (days(r.days_left)) ")" } }
                        td { (ok) "/" (all) }
                        td { span class={"badge " (cls)} { (word) } }
                        td { @if !r.ready { (r.summary()) } }
                    }
                }
            }
        }
        @if user.1 >= Role::Admin { (open_form(&formats)) }
        p { a href="/formats" { "Store formats (" (formats.len()) ")" } }
    };
    Ok(Html(page("Openings", Some(&user), body).into_string()))
}

fn open_form(formats: &[StoreFormat]) -> Markup {
    html! {
        h2 { "Open a store" }
        @if formats.is_empty() { p.muted { "Add a store format first." } } @else {
            p.muted { "A new store (give its name) or one already registered (its code is enough)." }
            form.filters #open-store method="post" action="/openings" {
                label { "Code" input name="code" required maxlength="32"; }
                label { "Name" input name="name"; }
                label { "Region" input name="region"; }
                label { "Time zone" input name="timezone" placeholder="Europe/Berlin"; }
                label { "Trading hours" input name="hours" placeholder="Mo-Sa 08:00-20:00"; }
                label { "Place (LAT,LON)" input name="at" placeholder="53.55,9.99"; }
                label { "Format" select name="format" { @for f in formats { option value=(f.name) { (f.name) } } } }
                label { "Opens on" input type="date" name="opens_on" required; }
                button type="submit" { "Open" }
            }
        }
    }
}

/// The board's form: a store (new or known) and its opening.
#[derive(Debug, Deserialize)]
pub(super) struct OpenForm {
    code: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    timezone: String,
    #[serde(default)]
    hours: String,
    #[serde(default)]
    at: String,
    format: String,
    opens_on: String,
}

pub(super) async fn open(
    State(s): State<AppState>,
    user: User,
    Form(f): Form<OpenForm>,
) -> Response {
    let place = match f.at.trim() {
        "" => None,
        at => match at.parse::<storefleet_core::geo::Coord>() {
            Ok(p) => Some(p),
            Err(e) => {
                return PageError::from(crate::api::ApiError::bad(format!("place: {e}")))
                    .into_response()
            }
        },
    };
    let actor = format!("user:{}", user.0);
    let code = f.code.trim().to_owned();
    let c2 = code.clone();
    let done =
        s.db.write(move |c| {
            let now = now_ms();
            if crate::stores::get(c, &c2)?.is_none() {
                if f.name.trim().is_empty() {
                    return Err(crate::db::DbError::Invalid(format!(
                        "store {c2} is new: give its name"
                    )));
                }
                let mut st = crate::stores::Store::blank(&c2);
                f.name.trim().clone_into(&mut st.name);
                f.region.trim().clone_into(&mut st.region);
                if !f.timezone.trim().is_empty() {
                    f.timezone.trim().clone_into(&mut st.timezone);
                }
                f.hours.trim().clone_into(&mut st.trading_hours);
                st.place = place;
                crate::stores::put(c, &st, false, now)?;
            }
            let o = Opening {
                format: f.format,
                opens_on: f.opens_on,
            };
            openings::set(c, &c2, &o, &actor, now)
        })
        .await;
    match done {
        Ok(()) => Redirect::to(&format!("/stores/{}/readiness", url_encode(&code))).into_response(),
        Err(e) => PageError::from(e).into_response(),
    }
}

pub(super) async fn readiness(
    State(s): State<AppState>,
    user: User,
    Path(code): Path<String>,
) -> PageResult {
    let rules = s.rules();
    let c2 = code.clone();
    let (r, formats) =
        s.db.read(move |c| Ok((openings::readiness(c, &c2, &rules)?, openings::formats(c)?)))
            .await?;
    let Some(r) = r else {
        return Err(not_found(format!("store {code:?} has no opening")));
    };
    let now = s.clock.now();
    let warn = i64::from(s.config.tickets.opening_warn_days);
    let (word, cls) = standing(&r, warn);
    let (ok, all) = r.devices_ready();
    let may_tick = user.1 >= Role::Dispatcher;
    let body = html! {
        h1 { "Opening of " a href={"/stores/" (url_encode(&r.store))} { (r.store) } " · " (r.name) }
        p #readiness-head {
            span class={"badge " (cls)} { (word) } " "
            "format " b { (r.format) } ", opens " b { (r.opens_on) } " (" (days(r.days_left)) ")"
            @if !r.ready { " · " (r.summary()) }
        }
        h2 { "Devices ready: " (ok) "/" (all) }
        table #expected {
            tr { th { "State" } th { "Class" } th { "Profile" } th { "Device" } th { "Note" } }
            @for d in &r.devices {
                tr {
                    td { span class={"badge " (class(d.state))} { (d.state.as_str()) } }
                    td { (d.class) }
                    td { (d.profile) }
                    td { @if let Some(id) = &d.device { a href={"/stores/" (url_encode(&r.store)) "/devices/" (url_encode(id))} { (id) } } }
                    td { (d.note) }
                }
            }
        }
        @if !r.extra.is_empty() { p.muted { "Reported but not in the format: " (r.extra.join(", ")) } }
        @if !r.tasks.is_empty() {
            h2 { "Tasks on the gateway" }
            table #opening-tasks {
                tr { th { "State" } th { "Task" } th { "Note" } }
                @for t in &r.tasks {
                    tr {
                        td { span class={"badge " (class(t.state))} { (t.state.as_str()) } }
                        td { @if let Some(id) = &t.task { a href={"/tasks/" (url_encode(id))} { (t.name) } } @else { (t.name) } }
                        td { (t.note) }
                    }
                }
            }
        }
        h2 { "Go-live checklist" }
        ul #checklist {
            @for c in &r.checklist {
                li.(if c.done { "done" } else { "open" }) {
                    (if c.done { "☑ " } else { "☐ " }) (c.item)
                    @if c.auto { span.muted { " (the controller: " (c.note) ")" } }
                    @if let (Some(by), Some(at)) = (&c.by, c.at) { span.muted { " · " (by) ", " (fmt::ago(now, Some(at))) } }
                    @if may_tick && !c.auto {
                        form.inline method="post" action={"/stores/" (url_encode(&r.store)) "/checks"} {
                            input type="hidden" name="item" value=(c.item);
                            input type="hidden" name="done" value=(if c.done { "false" } else { "true" });
                            button type="submit" { (if c.done { "Untick" } else { "Tick" }) }
                        }
                    }
                }
            }
        }
        @if user.1 >= Role::Admin {
            h2 { "Change the opening" }
            form.filters #change-opening method="post" action="/openings" {
                input type="hidden" name="code" value=(r.store);
                label { "Format" select name="format" { @for f in &formats { option value=(f.name) selected[f.name == r.format] { (f.name) } } } }
                label { "Opens on" input type="date" name="opens_on" value=(r.opens_on) required; }
                button type="submit" { "Save" }
            }
            form.inline method="post" action={"/stores/" (url_encode(&r.store)) "/opened"} {
                button type="submit" { "Opened: take it off the board" }
            }
        }
        p { a href="/openings" { "All openings" } }
    };
    Ok(Html(
        page(&format!("Opening {}", r.store), Some(&user), body).into_string(),
    ))
}

/// A check ticked or unticked from the readiness page.
#[derive(Debug, Deserialize)]
pub(super) struct TickForm {
    item: String,
    done: bool,
}

pub(super) async fn tick(
    State(s): State<AppState>,
    user: User,
    Path(code): Path<String>,
    Form(f): Form<TickForm>,
) -> Response {
    let actor = format!("user:{}", user.0);
    let c2 = code.clone();
    match s
        .db
        .write(move |c| openings::tick(c, &c2, &f.item, f.done, &actor, now_ms()))
        .await
    {
        Ok(()) => Redirect::to(&format!("/stores/{}/readiness", url_encode(&code))).into_response(),
        Err(e) => PageError::from(e).into_response(),
    }
}

pub(super) async fn opened(
    State(s): State<AppState>,
    _user: User,
    Path(code): Path<String>,
) -> Response {
    match s.db.write(move |c| openings::clear(c, &code)).await {
        Ok(()) => Redirect::to("/openings").into_response(),
        Err(e) => PageError::from(e).into_response(),
    }
}

/// What a store page shows of its opening, if it has one.
pub(super) fn summary(r: &Readiness, warn_days: i64) -> Markup {
    let (ok, all) = r.devices_ready();
    let (word, cls) = standing(r, warn_days);
    html! {
        section #store-readiness {
            h2 { "Opening" }
            p {
                span class={"badge " (cls)} { (word) } " "
                "format " (r.format) ", opens " (r.opens_on) " (" (days(r.days_left)) "), devices ready " (ok) "/" (all)
                @if !r.ready { " · " (r.summary()) }
                " · " a href={"/stores/" (url_encode(&r.store)) "/readiness"} { "readiness" }
            }
        }
    }
}

/// `?edit=NAME` puts that format's TOML in the form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct EditQuery {
    edit: String,
}

pub(super) async fn formats(
    State(s): State<AppState>,
    user: User,
    axum::extract::Query(q): axum::extract::Query<EditQuery>,
) -> PageResult {
    let list = s.db.read(openings::formats).await?;
    let editing = list
        .iter()
        .find(|f| f.name == q.edit)
        .and_then(|f| toml::to_string(f).ok())
        .unwrap_or_default();
    let body = html! {
        h1 { "Store formats" }
        @if list.is_empty() { p.muted { "None yet." } }
        @for f in &list {
            section.format id={"format-" (f.name)} {
                h2 { (f.name) }
                @if !f.description.is_empty() { p { (f.description) } }
                p { b { "Devices: " } (f.devices.iter().map(|d| if d.profile.is_empty() { format!("{} × {}", d.count, d.class) } else { format!("{} × {} ({})", d.count, d.class, d.profile) }).collect::<Vec<_>>().join(", ")) }
                @if !f.tasks.is_empty() { p { b { "Tasks: " } (f.tasks.iter().map(crate::tasks::TaskAction::routine_name).collect::<Vec<_>>().join(" → ")) } }
                @if !f.checklist.is_empty() { p { b { "Checklist: " } (f.checklist.join("; ")) } }
                @if user.1 >= Role::Admin { p { a href={"/formats?edit=" (url_encode(&f.name)) "#format-form"} { "Change" } } }
            }
        }
        @if user.1 >= Role::Admin {
            h2 { "Add or replace a format" }
            p.muted { "TOML, as " code { "storefleet formats put FILE" } " reads it." }
            form.act #format-form method="post" action="/formats" {
                textarea name="toml" rows="14" required placeholder="name = \"express\"\ndescription = \"Small city store\"\nchecklist = [\"Network cabled\", \"Staff trained\"]\n\n[[devices]]\nclass = \"receipt-printer\"\ncount = 2\nprofile = \"Epson TM-T88\"\n\n[[tasks]]\ntype = \"routine\"\nname = \"receipt-printer-unstick\"" { (editing) }
                button type="submit" { "Save format" }
            }
        }
    };
    Ok(Html(page("Store formats", Some(&user), body).into_string()))
}

/// The formats page's form.
#[derive(Debug, Deserialize)]
pub(super) struct FormatForm {
    toml: String,
}

pub(super) async fn save_format(
    State(s): State<AppState>,
    user: User,
    Form(f): Form<FormatForm>,
) -> Response {
    let parsed: Result<StoreFormat, _> = toml::from_str(&f.toml);
    let format = match parsed {
        Ok(x) => x,
        Err(e) => {
            return PageError::from(crate::api::ApiError::bad(format!("format: {e}")))
                .into_response()
        }
    };
    let actor = format!("user:{}", user.0);
    match s
        .db
        .write(move |c| openings::put_format(c, &format, &actor, now_ms()))
        .await
    {
        Ok(()) => Redirect::to("/formats").into_response(),
        Err(e) => PageError::from(e).into_response(),
    }
}
