//! Fleet task pages: the list, and one task with its waves and per-target table.

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse as _, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;
use storefleet_protocol::now_ms;

use super::{fmt, page, url_encode, PageError, PageResult, User};
use crate::rollout::TargetState;
use crate::service::Principal;
use crate::state::AppState;
use crate::tasks::db::{self as tasks, Request};
use crate::tasks::TaskSummary;

/// The colour class of a target state.
fn tone(state: &str) -> &'static str {
    match state {
        "succeeded" => "ok",
        "failed" | "timed_out" | "rejected" => "down",
        "sent" | "running" => "stale",
        _ => "unknown",
    }
}

fn phase_tone(phase: &str) -> &'static str {
    match phase {
        "completed" => "ok",
        "aborted" => "down",
        "running" => "stale",
        _ => "unknown",
    }
}

/// A stacked bar of target states, widths in percent of `total`.
fn bar(counts: &std::collections::BTreeMap<String, u64>, total: u64) -> Markup {
    html! {
        div.bar title={ @for (k, n) in counts { (k) " " (n) "  " } } {
            @for k in TargetState::NAMES {
                @if let Some(n) = counts.get(k).filter(|n| **n > 0) {
                    span class={"seg " (tone(k))} style={ "width:" (format!("{:.2}", *n as f64 * 100.0 / total.max(1) as f64)) "%" } {}
                }
            }
        }
    }
}

pub(super) async fn list(State(s): State<AppState>, user: User) -> PageResult {
    let all = s.db.read(|c| tasks::list(c, 100)).await?;
    let now = now_ms();
    let body = html! {
        meta http-equiv="refresh" content="10";
        h1 { "Fleet tasks" }
        p.muted {
            @if user.1 >= crate::auth::Role::Admin { a #push-task href="/tasks/new" { "Push a task" } " (with a preview of its targets), " }
            "or " code { "storefleet task push ROUTINE.toml --select … --canary N --waves 10,50,100" } ", or " code { "POST /api/v1/tasks" } "."
        }
        @if all.is_empty() { p.muted { "None yet." } } @else {
            table #tasks {
                tr { th { "Task" } th { "Name" } th { "Phase" } th { "Progress" } th { "Targets" } th { "Pushed" } th { "By" } }
                @for t in &all {
                    tr {
                        td { a href={"/tasks/" (url_encode(&t.id))} { (t.id) } }
                        td { (t.name) }
                        td { span class={"badge " (phase_tone(&t.phase))} { (t.phase) } }
                        td { (bar(&t.counts, t.total)) }
                        td { (t.total) }
                        td { (fmt::ago(now, Some(t.created_at))) }
                        td.muted { (t.created_by) }
                    }
                }
            }
        }
    };
    Ok(Html(page("Fleet tasks", Some(&user), body).into_string()))
}

#[derive(Debug, Deserialize)]
pub(super) struct TaskQuery {
    state: Option<String>,
}

fn waves(t: &TaskSummary, now: i64) -> Markup {
    let canary = t.spec.plan.canary > 0;
    let over = t.finished_at.is_some();
    html! {
        table #waves {
            tr { th { "Wave" } th { "Progress" } th { "Finished" } th { "Failed" } th { "Opened" } }
            @for w in &t.waves {
                tr {
                    td { @if canary && w.wave == 0 { "canary" } @else { "wave " (w.wave) } }
                    td {
                        div.bar {
                            span class="seg ok" style={ "width:" (format!("{:.2}", w.finished.saturating_sub(w.failures + w.cancelled) as f64 * 100.0 / w.targets.max(1) as f64)) "%" } {}
                            span class="seg down" style={ "width:" (format!("{:.2}", w.failures as f64 * 100.0 / w.targets.max(1) as f64)) "%" } {}
                        }
                    }
                    @if w.never_started(over) {
                        td.never { "never started (" (w.cancelled) " cancelled)" }
                    } @else {
                        td { (w.finished) " / " (w.targets) }
                    }
                    td { (w.failures) }
                    td {
                        @if w.opened_at.is_some() { (fmt::ago(now, w.opened_at)) }
                        @else if over { span.muted { "never" } }
                        @else { span.muted { "not yet" } }
                    }
                }
            }
        }
    }
}

pub(super) async fn show(
    State(s): State<AppState>,
    user: User,
    Path(id): Path<String>,
    Query(q): Query<TaskQuery>,
) -> PageResult {
    let state = q
        .state
        .filter(|st| TargetState::NAMES.contains(&st.as_str()));
    let task = id.clone();
    let filter = state.clone();
    let now = s.clock.now();
    let (t, targets) =
        s.db.read(move |c| {
            let mut t = tasks::get(c, &task)?;
            t.window_opens = crate::tasks::window::opens(c, &t, now)?;
            Ok((t, tasks::targets(c, &task, filter.as_deref())?))
        })
        .await?;
    let running = t.finished_at.is_none();
    let action = match &t.spec.action {
        crate::tasks::TaskAction::Routine { name, document, .. } if name.is_empty() => {
            format!("routine document ({} bytes)", document.len())
        }
        crate::tasks::TaskAction::Routine { name, .. } => {
            format!("routine {name} (the agents' own)")
        }
        crate::tasks::TaskAction::Update {
            version,
            confirm_secs,
        } => format!("agent update to {version} (confirmed within {confirm_secs} s)"),
        crate::tasks::TaskAction::Config { name, toml } => {
            format!("config change {name} ({} bytes)", toml.len())
        }
        crate::tasks::TaskAction::Ping => "ping (version and uptime)".into(),
        crate::tasks::TaskAction::Reload => "reload the agents' configuration".into(),
    };
    let base = format!("/tasks/{}", url_encode(&t.id));
    let body = html! {
        @if running { meta http-equiv="refresh" content="5"; }
        h1 { "Task " (t.id) ": " (t.name) }
        p {
            span #phase class={"badge " (phase_tone(&t.phase))} { (t.phase) }
            @if !t.phase_note.is_empty() { " " span.muted { (t.phase_note) } }
            " · " (action) " · pushed " (fmt::ago(now, Some(t.created_at))) " by " (t.created_by)
        }
        @if let Some(w) = &t.window_opens {
            p #window-wait {
                "Waiting for its window: it starts " (crate::fmt::ahead(now, w.at))
                ", " (crate::tasks::window::local(w.at, &w.timezone)) " at " (w.store) "."
            }
        }
        (bar(&t.counts, t.total))
        p #counts {
            @for k in TargetState::NAMES {
                @if let Some(n) = t.counts.get(k).filter(|n| **n > 0) {
                    a href={(base) "?state=" (k)} { span class={"badge " (tone(k))} { (k) " " (n) } } " "
                }
            }
            a href=(base) { "all " (t.total) }
        }
        @if running {
            div.actions {
                @if t.phase == "paused" {
                    form method="post" action={(base) "/resume"} { button type="submit" { "Resume" } }
                } @else {
                    form method="post" action={(base) "/pause"} { button type="submit" { "Pause" } }
                }
                form method="post" action={(base) "/cancel"} { button type="submit" { "Cancel what was not sent" } }
            }
        }
        h2 { "Waves" }
        (waves(&t, now))
        p.muted {
            "Plan: canary " (t.spec.plan.canary) ", waves " (format!("{:?}", t.spec.plan.waves)) "%"
            ", per-region cap " (if t.spec.plan.region_concurrency == 0 { "none".to_owned() } else { t.spec.plan.region_concurrency.to_string() })
            ", timeout " (t.spec.plan.target_timeout_ms / 1000) " s"
            ", abort above " (format!("{:.0}", t.spec.plan.abort_failure_rate * 100.0)) "% failed after " (t.spec.plan.abort_min_finished)
            ", offline expiry " (t.spec.plan.expiry_ms / 60_000) " min"
            ", window " (format!("{:?}", t.spec.window.when).to_lowercase())
            @if t.spec.window.margin_minutes > 0 { " ±" (t.spec.window.margin_minutes) " min" }
            @if !t.spec.window.avoid.is_empty() { ", never " (t.spec.window.avoid) }
            " (each store's own hours and zone)"
        }
        h2 { "Targets" @if let Some(st) = &state { " (" (st) ")" } }
        table #targets {
            tr { th { "Store" } th { "Region" } th { "Wave" } th { "State" } th { "Outcome" } th { "Sent" } th { "Message" } }
            @for r in targets.iter().take(2000) {
                tr {
                    td { a href={"/stores/" (url_encode(&r.store))} { (r.store) } }
                    td { (r.region) }
                    td { (r.wave) }
                    td { span class={"badge " (tone(&r.state))} { (r.state) } }
                    td { (r.outcome) }
                    td { @if r.sent_at.is_some() { (fmt::ago(now, r.sent_at)) } }
                    td.muted { (r.message) }
                }
            }
        }
        @if targets.len() > 2000 { p.muted { "First 2000 of " (targets.len()) " shown; filter by state or use the API." } }
    };
    Ok(Html(
        page(&format!("Task {}", t.id), Some(&user), body).into_string(),
    ))
}

async fn request(s: AppState, user: Principal, id: String, r: Request) -> Response {
    match crate::service::tasks::request(&s, &user, &id, r).await {
        Ok(_) => Redirect::to(&format!("/tasks/{}", url_encode(&id))).into_response(),
        Err(e) => PageError::from(e).into_response(),
    }
}

pub(super) async fn pause(
    State(s): State<AppState>,
    user: Principal,
    Path(id): Path<String>,
) -> Response {
    request(s, user, id, Request::Pause).await
}

pub(super) async fn resume(
    State(s): State<AppState>,
    user: Principal,
    Path(id): Path<String>,
) -> Response {
    request(s, user, id, Request::Resume).await
}

pub(super) async fn cancel(
    State(s): State<AppState>,
    user: Principal,
    Path(id): Path<String>,
) -> Response {
    request(s, user, id, Request::Cancel).await
}
