//! The field engineer's view, made for a phone: my tickets, the next stop with what is
//! broken and what the agent already tried, and the one step that comes next (accept, on
//! the way, check in, resolve with a report). An engineer's UI login is their engineer id;
//! a dispatcher can look through anyone's eyes with `?engineer=ID`.

use axum::extract::{Form, Query, State};
use axum::response::{Html, IntoResponse as _, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::tickets::{allowed, facts, sla_badge, status_label, status_tone};
use super::{page, url_encode, PageError, User};
use crate::engineers::{self, Engineer};
use crate::guard::Framing;
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
                (one("en_route", "Leaving: I come back (a part, another visit)"))
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

/// Whose eyes: a dispatcher may look through any engineer's; an engineer sees their own.
fn whose(user: &User, asked: &str) -> String {
    if asked.trim().is_empty() || user.1 < crate::auth::Role::Dispatcher {
        user.0.clone()
    } else {
        asked.trim().to_owned()
    }
}

/// The engineer `id` (if there is one), every engineer, and `id`'s open tickets in work order.
async fn load(
    s: &AppState,
    id: String,
) -> Result<(Option<Engineer>, Vec<Engineer>, Vec<Ticket>), PageError> {
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
    mine.sort_by_key(|t| (stage(&t.status), t.priority, t.resolution_due));
    Ok((me, all, mine))
}

/// What the view shows, in 16 characters: the engineer's status and their open tickets,
/// each with its status, in work order (FNV-1a). The live strip compares it with the one
/// the page was drawn from.
fn fingerprint(me: &Engineer, mine: &[Ticket]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(me.status.as_bytes());
    for t in mine {
        eat(&t.id.to_le_bytes());
        eat(t.status.as_bytes());
        eat(&[0]);
    }
    format!("{h:016x}")
}

pub(super) async fn view(
    State(s): State<AppState>,
    user: User,
    Query(q): Query<FieldQuery>,
) -> Result<Response, PageError> {
    let who = whose(&user, &q.engineer);
    let (me, all, mine) = load(&s, who.clone()).await?;
    let Some(me) = me else {
        return Ok(
            Html(page("Field view", Some(&user), picker(&all, &who)).into_string()).into_response(),
        );
    };
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
    // The page never reloads itself: it holds what the engineer types. A small frame of
    // this controller's own checks for changes and offers to show them.
    let live = format!(
        "/field/live?engineer={}&v={}&shown={}",
        url_encode(&me.id),
        fingerprint(&me, &mine),
        mine.iter()
            .map(|t| t.id.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let body = html! {
        div.field {
            iframe.live #live src=(live) title="Changes to my tickets" {}
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
                        p { a href={"/tickets/" (t.id) "#parts"} { "Spare parts: " (t.parts.len()) " noted" } }
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
    let mut res = Html(page("My tickets", Some(&user), body).into_string()).into_response();
    res.extensions_mut().insert(Framing::HostsFrame);
    Ok(res)
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub(super) struct LiveQuery {
    engineer: String,
    /// The fingerprint of what the page shows.
    v: String,
    /// The ids of the tickets the page shows, comma-separated.
    shown: String,
}

/// The field view's live strip, in a frame of the view: every 30 s it compares the
/// engineer's tickets with what the view shows and, when they differ, names what is new and
/// offers to show it. Only the strip reloads, never the form the engineer types in.
pub(super) async fn live(
    State(s): State<AppState>,
    user: User,
    Query(q): Query<LiveQuery>,
) -> Result<Response, PageError> {
    let (me, _, mine) = load(&s, whose(&user, &q.engineer)).await?;
    let now = s.clock.now();
    let body = match &me {
        None => html! { p.muted { "No such engineer." } },
        Some(me) => {
            let shown: Vec<i64> = q
                .shown
                .split(',')
                .filter_map(|i| i.trim().parse().ok())
                .collect();
            let new: Vec<&Ticket> = mine.iter().filter(|t| !shown.contains(&t.id)).collect();
            let show = format!("/field?engineer={}", url_encode(&me.id));
            let at = crate::fmt::zoned(now, &me.timezone, "%H:%M %Z");
            html! {
                @if fingerprint(me, &mine) == q.v {
                    p.muted #live-state { "Up to date · checked " (at) }
                } @else {
                    p.changed #live-state {
                        @if new.is_empty() { "Your tickets changed. " } @else {
                            "New: " @for (i, t) in new.iter().enumerate() { @if i > 0 { ", " } "#" (t.id) " " (t.title) " at " (t.store) } ". "
                        }
                        a.show href=(show) target="_top" { "Show" }
                        " (what you typed here is not sent)"
                    }
                }
            }
        }
    };
    let doc = html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content="30";
                link rel="stylesheet" href="/static/app.css";
            }
            body.live { (body) }
        }
    };
    let mut res = Html(doc.into_string()).into_response();
    res.extensions_mut().insert(Framing::Framed);
    Ok(res)
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
