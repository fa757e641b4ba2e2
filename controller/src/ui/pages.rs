//! Store, device charts, agent, and enrollment pages.

use axum::extract::{Form, Path, Query, State};
use axum::response::Html;
use maud::html;
use serde::Deserialize;
use storefleet_protocol::now_ms;

use super::{chart, fmt, not_found, page, url_encode, PageResult, User};
use crate::api::ApiError;
use crate::enroll::{self, NewToken};
use crate::events::{self, StoredEvent};
use crate::fleet;
use crate::runs::{self, StoredRun};
use crate::service::Principal;
use crate::state::AppState;
use crate::stores;
use crate::telemetry;
use crate::tickets::db as tdb;

pub(super) fn badge(state: &str) -> maud::Markup {
    html! { span class={"badge " (state)} { (state) } }
}

pub(super) async fn store(
    State(s): State<AppState>,
    user: User,
    Path(code): Path<String>,
) -> PageResult {
    let rules = s.rules();
    let c2 = code.clone();
    let month_ago = s.clock.now() - 30 * 86_400_000;
    let (store, agents, devices, series, events, runs, found, tickets, opening, service) =
        s.db.read(move |c| {
            let tickets = (
                tdb::list(
                    c,
                    &tdb::Filter {
                        store: Some(c2.clone()),
                        status: Some("open".into()),
                        ..Default::default()
                    },
                )?,
                tdb::ended(c, &c2, 5)?,
            );
            let ev = events::list(
                c,
                &events::Filter {
                    store: Some(c2.clone()),
                    limit: Some(30),
                    ..Default::default()
                },
            )?;
            let runs = runs::list(
                c,
                &runs::Filter {
                    store: Some(c2.clone()),
                    limit: Some(20),
                    ..Default::default()
                },
            )?;
            Ok((
                stores::get(c, &c2)?,
                rules.judge().list(c, Some(&c2))?,
                fleet::devices(c, Some(&c2), &rules)?,
                telemetry::series(c, &c2, Some(""))?,
                ev,
                runs,
                crate::discovered::list(c, &c2)?,
                tickets,
                crate::openings::readiness(c, &c2, &rules)?,
                crate::kpi::compute(c, month_ago, rules.now + 1, Some(&c2))?,
            ))
        })
        .await?;
    let Some(store) = store else {
        return Err(not_found(format!("no store {code:?}")));
    };
    let now = now_ms();
    let (open, recent) = tickets;
    let body = html! {
        meta http-equiv="refresh" content="30";
        h1 { "Store " (store.code) " · " (store.name) }
        p.muted { (store.region) " · " (store.address) " · " (store.timezone) " · " (store.trading_hours) }
        @if let Some(r) = &opening { (super::openings::summary(r, i64::from(s.config.tickets.opening_warn_days))) }
        section #store-tickets {
            h2 { "Open tickets (" (open.len()) ")" }
            @if open.is_empty() { p.muted { "None open." } } @else { (super::tickets::table(&open, s.clock.now(), false)) }
            @if !recent.is_empty() {
                h3 { "Recently resolved or closed" }
                (super::tickets::table(&recent, s.clock.now(), false))
            }
            p.muted {
                a href={"/tickets?status=all&store=" (url_encode(&store.code))} { "Every ticket of this store" }
                @if user.1 >= crate::auth::Role::Dispatcher { " · " a href={"/tickets/new?store=" (url_encode(&store.code))} { "Open a ticket" } }
            }
            h3 { "Service, last 30 days" }
            (super::kpi::store_tiles(&service))
        }
        @if user.1 >= crate::auth::Role::Admin {
            details #edit-store { summary { "Change this store" } (super::stores::form(Some(&store))) }
        }
        h2 { "Gateway" }
        @if agents.is_empty() { p.muted { "No agent enrolled yet. Create a token on the " a href="/enroll" { "enrollment page" } "." } }
        table #gateways {
            tr { th { "Agent" } th { "State" } th { "Host" } th { "Version" } th { "Last seen" } th { "Started" } }
            @for a in &agents {
                tr {
                    td { a href={"/agents/" (url_encode(&a.id))} { (a.id) } }
                    td { (badge(if a.online { "ok" } else { "offline" })) }
                    td { (a.hostname) }
                    td { (a.agent_version) }
                    td { (fmt::ago(now, a.last_seen)) }
                    td { (a.started_at.map(|t| fmt::at(t, &store.timezone)).unwrap_or_default()) }
                }
            }
        }
        h2 { "Devices" }
        table #devices {
            tr { th { "Device" } th { "Class" } th { "State" } th { "Last data" } th { "Note" } }
            @for d in &devices {
                tr {
                    td { a.device-link href={"/stores/" (url_encode(&store.code)) "/devices/" (url_encode(&d.device))} { (d.device) } }
                    td { (d.class) }
                    td { (badge(if d.state == "down" { "down" } else if d.stale { "stale" } else if d.state == "up" || d.last_seen.is_some() { "ok" } else { "unknown" })) }
                    td { (fmt::ago(now, d.last_seen)) }
                    td.muted { (d.note) }
                }
            }
        }
        @if !found.is_empty() {
            h2 { "Found on the network, not configured" }
            p.muted { "Devices the gateway's sweep found that it does not watch yet. "
                "On the gateway, " code { "storefleet-agent discover --toml" } " writes them as devices to add to its configuration." }
            table #discovered {
                tr { th { "Address" } th { "Seems to be" } th { "Answers" } th { "Maker and model" } th { "Serial" } th { "Found" } }
                @for d in &found {
                    tr {
                        td { (d.address) }
                        td { (d.class) }
                        td { (d.protocols.join(", ")) }
                        td { (d.vendor.as_deref().unwrap_or("")) " " (d.model.as_deref().unwrap_or(if d.vendor.is_none() { d.description.as_str() } else { "" })) }
                        td { (d.serial.as_deref().unwrap_or("")) }
                        td { (fmt::ago(now, Some(d.swept_at_ms))) }
                    }
                }
            }
        }
        h2 { "Gateway metrics" }
        table {
            tr { th { "Metric" } th { "Last value" } th { "At" } }
            @for m in &series {
                tr { td { (m.metric) } td { (m.last_v.map(fmt::num).unwrap_or_default()) } td { (fmt::ago(now, m.last_t)) } }
            }
        }
        h2 { "Maintenance runs" }
        (runs_table(&runs, now))
        h2 { "Recent events" }
        (events_table(&events, now))
    };
    Ok(Html(
        page(&format!("Store {}", store.code), Some(&user), body).into_string(),
    ))
}

/// Routine runs with each step's result folded under the row.
fn runs_table(runs: &[StoredRun], now: i64) -> maud::Markup {
    html! {
        @if runs.is_empty() { p.muted { "None yet." } } @else {
            table #runs {
                tr { th { "When" } th { "Routine" } th { "Started by" } th { "Device" } th { "Outcome" } th { "Steps" } }
                @for r in runs {
                    tr {
                        td { (fmt::ago(now, Some(r.finished_at))) }
                        td { (r.routine) " v" (r.version) }
                        td { (r.trigger) @if !r.trigger_detail.is_empty() { ": " (r.trigger_detail) } }
                        td { (r.device.clone().unwrap_or_default()) }
                        td { (badge(match r.outcome.as_str() { "healed" | "already_fine" => "ok", "skipped" => "unknown", _ => "down" })) " " (r.outcome) }
                        td { (steps_folded(&r.steps, &r.reason)) }
                    }
                }
            }
        }
    }
}

/// A run's step records folded under a summary line.
pub(super) fn steps_folded(steps: &serde_json::Value, reason: &str) -> maud::Markup {
    html! {
        details {
            summary { (steps.as_array().map_or(0, Vec::len)) " step(s)" @if !reason.is_empty() { " · " (reason) } }
            ol.steps {
                @for st in steps.as_array().into_iter().flatten() {
                    li {
                        (if st["ok"].as_bool().unwrap_or(false) { "ok " } else { "FAIL " })
                        (st["name"].as_str().unwrap_or_default())
                        " · " (st["output"].as_str().unwrap_or_default())
                    }
                }
            }
        }
    }
}

fn events_table(events: &[StoredEvent], now: i64) -> maud::Markup {
    html! {
        @if events.is_empty() { p.muted { "None." } } @else {
            table.events {
                tr { th { "When" } th { "Device" } th { "Code" } th { "Severity" } th { "Message" } }
                @for e in events {
                    tr { td { (fmt::ago(now, Some(e.ts))) } td { (e.device) } td { (e.code) } td { (e.severity) } td { (e.message) } }
                }
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Range {
    hours: Option<u32>,
}

pub(super) async fn device(
    State(s): State<AppState>,
    user: User,
    Path((code, device)): Path<(String, String)>,
    Query(r): Query<Range>,
) -> PageResult {
    let hours = r.hours.unwrap_or(6).clamp(1, 24 * 90);
    let to = now_ms();
    let from = to - i64::from(hours) * 3_600_000;
    let res = telemetry::auto_resolution(from, to);
    let (c2, d2) = (code.clone(), device.clone());
    let (series, samples, events) =
        s.db.read(move |c| {
            let series = telemetry::series(c, &c2, Some(&d2))?;
            let mut samples = Vec::new();
            for sr in &series {
                samples.push(telemetry::samples(c, sr.id, from, to, res, 2000)?);
            }
            let ev = events::list(
                c,
                &events::Filter {
                    store: Some(c2.clone()),
                    device: Some(d2.clone()),
                    limit: Some(20),
                    ..Default::default()
                },
            )?;
            Ok((series, samples, ev))
        })
        .await?;
    if series.is_empty() && events.is_empty() {
        return Err(not_found(format!(
            "no data for device {device:?} in store {code:?}"
        )));
    }
    let base = format!(
        "/stores/{}/devices/{}",
        url_encode(&code),
        url_encode(&device)
    );
    let body = html! {
        h1 { "Device " (device) }
        p { a href={"/stores/" (url_encode(&code))} { "Store " (code) } }
        p.ranges { "Range: " @for h in [1u32, 6, 24, 168, 720] { a href={(base) "?hours=" (h)} { @if h < 24 { (h) " h" } @else { (h / 24) " d" } } " " } }
        @for (sr, pts) in series.iter().zip(&samples) {
            (chart::line(&sr.metric, pts, from, to, user.zone()))
        }
        h2 { "Recent events" }
        (events_table(&events, to))
    };
    Ok(Html(
        page(&format!("{device} in {code}"), Some(&user), body).into_string(),
    ))
}

pub(super) async fn agent(
    State(s): State<AppState>,
    user: User,
    Path(id): Path<String>,
) -> PageResult {
    let judge = s.rules().judge();
    let i = id.clone();
    let (agent, events) =
        s.db.read(move |c| {
            Ok((
                judge.get(c, &i)?,
                events::list(
                    c,
                    &events::Filter {
                        agent: Some(i.clone()),
                        limit: Some(50),
                        ..Default::default()
                    },
                )?,
            ))
        })
        .await?;
    let Some(a) = agent else {
        return Err(not_found(format!("no agent {id:?}")));
    };
    let now = now_ms();
    let body = html! {
        h1 { "Agent " (a.id) }
        table #agent {
            tr { th { "Store" } td { a href={"/stores/" (url_encode(&a.store))} { (a.store) } } }
            tr { th { "State" } td { (badge(if a.online { "ok" } else { "offline" })) " (said " (a.presence) " " (fmt::ago(now, a.presence_at)) ")" } }
            tr { th { "Host" } td { (a.hostname) } }
            tr { th { "Version" } td { (a.agent_version) } }
            tr { th { "Last seen" } td { (fmt::ago(now, a.last_seen)) } }
            tr { th { "Started" } td { (a.started_at.map(|t| fmt::at(t, user.zone())).unwrap_or_default()) } }
            tr { th { "Enrolled" } td { (fmt::at(a.enrolled_at, user.zone())) } }
            tr { th { "Public key" } td { code { (a.public_key) } } }
            @if let Some(r) = a.revoked_at { tr { th { "Revoked" } td.error { (fmt::at(r, user.zone())) } } }
        }
        p { a href={"/assets?q=" (url_encode(&a.hostname))} { "Asset record of this gateway" } }
        @if user.1 >= crate::auth::Role::Admin {
            div.actions #agent-actions {
                @for (what, label) in [("ping", "Ping"), ("reload", "Reload its config"), ("reenroll", "Re-enroll (new key within 72 h)"), ("revoke", "Revoke its key")] {
                    @if a.revoked_at.is_none() || what == "reenroll" {
                        form.inline method="post" action={"/agents/" (url_encode(&a.id)) "/do"} {
                            input type="hidden" name="what" value=(what);
                            button type="submit" { (label) }
                        }
                    }
                }
            }
        }
        h2 { "Events" }
        (events_table(&events, now))
    };
    Ok(Html(
        page(&format!("Agent {}", a.id), Some(&user), body).into_string(),
    ))
}

async fn enroll_page(
    s: &AppState,
    user: &User,
    created: Option<String>,
    error: Option<String>,
) -> PageResult {
    let (tokens, stores) =
        s.db.read(|c| Ok((enroll::list(c)?, stores::list(c)?)))
            .await?;
    let now = now_ms();
    let body = html! {
        h1 { "Enrollment tokens" }
        @if let Some(t) = &created {
            p { "New token (shown once). On the gateway run:" }
            pre.token #new-token { "storefleet-agent enroll " (t) }
        }
        @if let Some(e) = &error { p.error { (e) } }
        form.filters method="post" action="/enroll" {
            label { "Store" select name="store" { @for st in &stores { option value=(st.code) { (st.code) " · " (st.name) } } } }
            label { "Valid for (hours)" input name="ttl_hours" type="number" min="1" max="8760" value=(s.config.enrollment.token_ttl_hours); }
            label { "Uses (0: any)" input name="max_uses" type="number" min="0" value="1"; }
            label { "Note" input name="note"; }
            button type="submit" { "Create token" }
        }
        table {
            tr { th { "Token" } th { "Store" } th { "State" } th { "Uses" } th { "Expires" } th { "By" } th { "Note" } }
            @for t in &tokens {
                tr {
                    td { code { (t.id) } }
                    td { (t.store) }
                    td { @if t.revoked_at.is_some() { "revoked" } @else if t.expires_at < now { "expired" } @else if t.max_uses.is_some_and(|m| t.uses >= m) { "used" } @else { "valid" } }
                    td { (t.uses) @if let Some(m) = t.max_uses { " of " (m) } }
                    td { (fmt::at(t.expires_at, user.zone())) }
                    td { (t.created_by) }
                    td { (t.note) }
                }
            }
        }
    };
    Ok(Html(page("Enrollment", Some(user), body).into_string()))
}

pub(super) async fn enroll(State(s): State<AppState>, user: User) -> PageResult {
    enroll_page(&s, &user, None, None).await
}

#[derive(Debug, Deserialize)]
pub(super) struct TokenForm {
    store: String,
    ttl_hours: Option<u64>,
    max_uses: Option<i64>,
    #[serde(default)]
    note: String,
}

pub(super) async fn enroll_create(
    State(s): State<AppState>,
    user: User,
    p: Principal,
    Form(f): Form<TokenForm>,
) -> PageResult {
    let req = NewToken {
        store: f.store,
        ttl_hours: f.ttl_hours,
        ttl_secs: None,
        max_uses: f.max_uses,
        note: f.note,
    };
    match crate::service::agents::create_token(&s, &p, req).await {
        Ok((_, text)) => enroll_page(&s, &user, Some(text), None).await,
        Err(e) => {
            let ApiError(_, msg) = e.into();
            enroll_page(&s, &user, None, Some(msg)).await
        }
    }
}

/// An agent page's button.
#[derive(Debug, Deserialize)]
pub(super) struct AgentDo {
    what: String,
}

/// Ping and reload become one-target tasks (their page shows the answer); revoke and
/// re-enroll act at once.
pub(super) async fn agent_do(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Form(f): Form<AgentDo>,
) -> axum::response::Response {
    use crate::tasks::TaskAction;
    use axum::response::{IntoResponse, Redirect};
    let back = format!("/agents/{}", url_encode(&id));
    let done = match f.what.as_str() {
        "ping" | "reload" => {
            let action = if f.what == "ping" {
                TaskAction::Ping
            } else {
                TaskAction::Reload
            };
            crate::service::tasks::agent_command(&s, &p, id, action)
                .await
                .map(|t| format!("/tasks/{}", url_encode(&t.id)))
        }
        "revoke" => crate::service::agents::revoke(&s, &p, &id)
            .await
            .map(|()| back),
        "reenroll" => crate::service::agents::reopen(&s, &p, &id)
            .await
            .map(|_| back),
        other => Err(crate::service::Error::Db(crate::db::DbError::Invalid(
            format!("unknown action {other:?}"),
        ))),
    };
    match done {
        Ok(to) => Redirect::to(&to).into_response(),
        Err(e) => super::PageError::from(e).into_response(),
    }
}
