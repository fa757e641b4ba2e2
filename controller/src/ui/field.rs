//! The field engineer's view, made for a phone: my tickets, the next stop with what is
//! broken and what the agent already tried, and the one step that comes next (accept, on
//! the way, check in, resolve with a report). An engineer's UI login is their engineer id;
//! a dispatcher can look through anyone's eyes with `?engineer=ID`.

use axum::extract::{Form, Query, State};
use axum::response::{Html, IntoResponse as _, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::tickets::{allowed, facts, sla_badge, status_label, status_tone};
use super::{page, url_encode, PageError, PageResult, User};
use crate::engineers::{self, Engineer};
use crate::service::Principal;
use crate::state::AppState;
use crate::tickets::db::{self as tdb, Filter};
use crate::tickets::{Entry, Ticket};

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub(super) struct FieldQuery {
    engineer: String,
}

/// Work order of an engineer's tickets: the one they are at, then on the way to, then
/// accepted, then new to them; within that by priority and deadline.
fn stage(status: &str) -> u8 {
    match status {
        "on_site" => 0,
        "en_route" => 1,
        "accepted" => 2,
        "assigned" => 3,
        "on_hold" => 4,
        _ => 5,
    }
}

/// The step that comes next for the engineer, as one big form.
fn next_step(t: &Ticket, back: &str) -> Markup {
    let allowed = allowed(t);
    let to = format!("/tickets/{}/act", t.id);
    let one = |action: &str, label: &str| {
        html! {
            form method="post" action=(to) {
                input type="hidden" name="action" value=(action);
                input type="hidden" name="back" value=(back);
                button.big type="submit" { (label) }
            }
        }
    };
    html! {
        div.next-step {
            @if t.status == "assigned" { (one("accept", "Accept")) }
            @if t.status == "accepted" { (one("en_route", "On my way")) }
            @if allowed.contains(&"check_in") && t.status != "assigned" { (one("check_in", "Check in: I am on site")) }
            @if t.status == "on_hold" { (one("resume", "Resume work")) }
            @if t.status == "on_site" {
                form.resolve method="post" action=(to) {
                    input type="hidden" name="action" value="resolve";
                    input type="hidden" name="back" value=(back);
                    label { "Service report" textarea name="report" rows="4" required placeholder="What was found, what was done, parts used" {} }
                    button.big type="submit" { "Resolve" }
                }
            }
            @if allowed.contains(&"hold") {
                form.act method="post" action=(to) {
                    input type="hidden" name="action" value="hold";
                    input type="hidden" name="back" value=(back);
                    input name="reason" placeholder="waiting for a part, the store…" required;
                    button type="submit" { "Hold" }
                }
            }
        }
    }
}

/// What the agent already tried, from the timeline.
fn tried(entries: &[Entry]) -> Markup {
    let attempts: Vec<&Entry> = entries.iter().filter(|e| e.kind == "self_heal").collect();
    html! {
        @if attempts.is_empty() { p.muted { "Nothing was tried remotely." } } @else {
            ul.tried {
                @for e in attempts {
                    li { (e.text) @if let Some(steps) = e.data.get("steps") { (super::pages::steps_folded(steps, e.data["reason"].as_str().unwrap_or_default())) } }
                }
            }
        }
    }
}

fn picker(engineers: &[Engineer], who: &str) -> Markup {
    html! {
        h1 { "Field view" }
        p { "No engineer has the id " code { (who) } ". Engineers sign in with their engineer id; a dispatcher picks one:" }
        ul.engineers {
            @for e in engineers { li { a href={"/field?engineer=" (url_encode(&e.id))} { (e.name) } " " span.muted { (e.skills.join(", ")) " · " (e.regions.join(", ")) } } }
        }
    }
}

pub(super) async fn view(
    State(s): State<AppState>,
    user: User,
    Query(q): Query<FieldQuery>,
) -> PageResult {
    // A dispatcher can look through any engineer's eyes; an engineer sees their own.
    let who = if q.engineer.trim().is_empty() || user.1 < crate::auth::Role::Dispatcher {
        user.0.clone()
    } else {
        q.engineer.trim().to_owned()
    };
    let id = who.clone();
    let (me, all, mut mine) =
        s.db.read(move |c| {
            let mine = tdb::list(
                c,
                &Filter {
                    status: Some("open".into()),
                    engineer: Some(id.clone()),
                    limit: Some(200),
                    ..Filter::default()
                },
            )?;
            Ok((engineers::get(c, &id)?, engineers::list(c)?, mine))
        })
        .await?;
    let Some(me) = me else {
        return Ok(Html(
            page("Field view", Some(&user), picker(&all, &who)).into_string(),
        ));
    };
    mine.sort_by_key(|t| (stage(&t.status), t.priority, t.resolution_due));
    let now = s.clock.now();
    let back = format!("/field?engineer={}", url_encode(&me.id));
    // The list leaves assets out; the next stop needs them, and its timeline.
    let next = match mine.first().map(|t| t.id) {
        Some(id) => {
            s.db.read(move |c| match tdb::get(c, id)? {
                Some(t) => Ok(Some((t, tdb::timeline(c, id)?))),
                None => Ok(None),
            })
            .await?
        }
        None => None,
    };
    let body = html! {
        meta http-equiv="refresh" content="60";
        div.field {
            h1 { (me.name) }
            form.act.status method="post" action="/field/status" {
                input type="hidden" name="engineer" value=(me.id);
                span class={"badge " (if me.status == "available" { "ok" } else { "unknown" })} #my-status { (me.status) } " "
                @if me.status == "available" {
                    input type="hidden" name="status" value="off";
                    button type="submit" { "Go off shift" }
                } @else {
                    input type="hidden" name="status" value="available";
                    button type="submit" { "Available again" }
                }
            }
            @match &next {
                None => { p #next-stop.muted { "No open tickets. Enjoy the quiet." } }
                Some((t, entries)) => {
                    section.card #next-stop {
                        h2 { "Next stop" }
                        h3 { a href={"/tickets/" (t.id)} { "#" (t.id) " " (t.title) } }
                        p { span class={"badge " (status_tone(&t.status))} #next-status { (status_label(&t.status)) } " " (sla_badge(t, now)) " P" (t.priority) }
                        (facts(t, now))
                        h4 { "Already tried" }
                        (tried(entries))
                        (next_step(t, &back))
                    }
                }
            }
            h2 { "My tickets (" (mine.len()) ")" }
            ul.my-tickets {
                @for t in &mine {
                    li.card {
                        a href={"/tickets/" (t.id)} { "#" (t.id) " " (t.title) }
                        div { span class={"badge " (status_tone(&t.status))} { (status_label(&t.status)) } " " (sla_badge(t, now)) }
                        div.muted { (t.store) " " (t.store_name) " · " (t.address) }
                    }
                }
            }
        }
    };
    Ok(Html(page("My tickets", Some(&user), body).into_string()))
}

#[derive(Debug, Deserialize)]
pub(super) struct StatusForm {
    engineer: String,
    status: String,
}

/// An engineer goes off shift or comes back; assignment follows.
pub(super) async fn status(
    State(s): State<AppState>,
    user: Principal,
    Form(f): Form<StatusForm>,
) -> Response {
    match crate::service::tickets::engineer_status(&s, &user, &f.engineer, &f.status).await {
        Ok(()) => {
            Redirect::to(&format!("/field?engineer={}", url_encode(&f.engineer))).into_response()
        }
        Err(e) => PageError::from(e).into_response(),
    }
}
