//! Pushing a fleet task from the UI (`/tasks/new`, admins): the same choices as
//! `storefleet task push`, and the same preview as its `--dry-run` (every target and the
//! waves' sizes) before anything is sent.

use axum::extract::{Form, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::{page, url_encode, PageError, PageResult, User};
use crate::api::Principal;
use crate::cli::task::{duration_ms, selector};
use crate::state::AppState;
use crate::tasks::{Selector, TaskAction, TaskPreview, TaskSpec};

/// The form, as typed (kept across a preview).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct TaskForm {
    name: String,
    /// `routine`, `document`, `config`, `update`, `ping`, `reload`.
    kind: String,
    routine: String,
    document: String,
    config_name: String,
    version: String,
    select: String,
    canary: String,
    waves: String,
    region_cap: String,
    window: String,
    margin_minutes: String,
    avoid: String,
    timeout: String,
    ignore_window: Option<String>,
    #[serde(rename = "do")]
    what: String,
}

fn number<T: std::str::FromStr>(what: &str, s: &str, default: T) -> Result<T, String> {
    match s.trim() {
        "" => Ok(default),
        v => v
            .parse()
            .map_err(|_| format!("{what} {v:?}: a whole number")),
    }
}

impl TaskForm {
    fn spec(&self) -> Result<TaskSpec, String> {
        let ignore_window = self.ignore_window.is_some();
        let action = match self.kind.as_str() {
            "routine" => TaskAction::Routine {
                name: self.routine.trim().to_owned(),
                document: String::new(),
                ignore_window,
            },
            "document" => TaskAction::Routine {
                name: String::new(),
                document: self.document.clone(),
                ignore_window,
            },
            "config" => TaskAction::Config {
                name: self.config_name.trim().to_owned(),
                toml: self.document.clone(),
            },
            "update" => TaskAction::Update {
                version: self.version.trim().to_owned(),
                confirm_secs: 120,
            },
            "ping" => TaskAction::Ping,
            "reload" => TaskAction::Reload,
            other => return Err(format!("what to run {other:?}: choose one")),
        };
        let terms: Vec<String> = self.select.split_whitespace().map(str::to_owned).collect();
        if terms.is_empty() {
            return Err(
                "targets: all, or region=..., stores=..., tags=..., class=..., version=...".into(),
            );
        }
        let select: Selector =
            serde_json::from_value(selector(&terms)?).map_err(|e| format!("targets: {e}"))?;
        let waves = match self.waves.trim() {
            "" => vec![100],
            w => w
                .split(',')
                .map(|x| {
                    x.trim()
                        .parse::<u8>()
                        .map_err(|_| format!("waves {w:?}: percentages like 10,50,100"))
                })
                .collect::<Result<Vec<u8>, String>>()?,
        };
        let window = serde_json::from_value(serde_json::json!({
            "when": if self.window.is_empty() { "any" } else { self.window.as_str() },
            "margin_minutes": number("margin", &self.margin_minutes, 0u32)?,
            "avoid": self.avoid.trim(),
        }))
        .map_err(|e| format!("window: {e}"))?;
        let plan = crate::rollout::Plan {
            canary: number("canary", &self.canary, 1usize)?,
            waves,
            region_concurrency: number("region cap", &self.region_cap, 0usize)?,
            target_timeout_ms: duration_ms(if self.timeout.trim().is_empty() {
                "15m"
            } else {
                self.timeout.trim()
            })?,
            ..crate::rollout::Plan::default()
        };
        let spec = TaskSpec {
            name: self.name.trim().to_owned(),
            action,
            select,
            plan,
            window,
        };
        spec.validate().map_err(|e| e.0)?;
        Ok(spec)
    }
}

fn form(f: &TaskForm) -> Markup {
    let kinds = [
        ("routine", "a routine the agents have"),
        ("document", "a routine document"),
        ("config", "a config change"),
        ("update", "an agent update"),
        ("ping", "ping"),
        ("reload", "reload config"),
    ];
    html! {
        form.filters #task-form method="post" action="/tasks/new" {
            label { "Name" input name="name" value=(f.name) placeholder="default: the routine's"; }
            label { "Run" select name="kind" {
                @for (k, label) in kinds { option value=(k) selected[f.kind == k] { (label) } }
            } }
            label { "Routine" input name="routine" value=(f.routine) placeholder="receipt-printer-unstick"; }
            label { "Config name" input name="config_name" value=(f.config_name) placeholder="lower-case-name"; }
            label { "Release" input name="version" value=(f.version) placeholder="0.3.0"; }
            label.wide { "Routine document or config (TOML)" textarea name="document" rows="6" { (f.document) } }
            label { "Targets" input name="select" required value=(f.select) placeholder="region=north tags=pilot"; }
            label { "Canary" input type="number" name="canary" min="0" value=(if f.canary.is_empty() { "1" } else { &f.canary }); }
            label { "Waves (%)" input name="waves" value=(if f.waves.is_empty() { "100" } else { &f.waves }); }
            label { "In flight per region" input type="number" name="region_cap" min="0" value=(f.region_cap); }
            label { "When (store time)" select name="window" {
                @for w in ["any", "closed", "open"] { option value=(w) selected[f.window == w] { (w) } }
            } }
            label { "Margin (min)" input type="number" name="margin_minutes" min="0" value=(f.margin_minutes); }
            label { "Never during" input name="avoid" value=(f.avoid) placeholder="Sa 10:00-14:00"; }
            label { "Timeout" input name="timeout" value=(if f.timeout.is_empty() { "15m" } else { &f.timeout }); }
            label { input type="checkbox" name="ignore_window" value="yes" checked[f.ignore_window.is_some()]; " outside the routine's own window" }
            button type="submit" name="do" value="preview" { "Preview" }
            button type="submit" name="do" value="push" { "Push" }
        }
    }
}

fn preview(p: &TaskPreview) -> Markup {
    html! {
        section #task-preview {
            h2 { "Preview: " (p.total) " target" @if p.total != 1 { "s" } }
            p { "Waves: " (p.waves.iter().enumerate().map(|(i, n)| format!("{}: {n}", if i == 0 { "canary".to_owned() } else { format!("wave {i}") })).collect::<Vec<_>>().join(", ")) }
            table {
                tr { th { "Agent" } th { "Store" } th { "Region" } }
                @for t in p.targets.iter().take(200) {
                    tr { td { (t.agent) } td { a href={"/stores/" (url_encode(&t.store))} { (t.store) } } td { (t.region) } }
                }
            }
            @if p.targets.len() > 200 { p.muted { "… and " (p.targets.len() - 200) " more." } }
        }
    }
}

fn body(f: &TaskForm, shown: &Markup) -> Markup {
    html! {
        h1 { "Push a fleet task" }
        p.muted { "Targets as " code { "storefleet task push --select" } " takes them, separated by spaces: "
            code { "all" } ", " code { "region=north,south" } ", " code { "stores=S1,S2" } ", " code { "tags=pilot" } ", "
            code { "class=receipt-printer" } ", " code { "version=<0.2.0" } ". Preview shows every target and the waves; nothing is sent until Push." }
        (form(f))
        (shown)
    }
}

pub(super) async fn new(user: User) -> PageResult {
    let f = TaskForm::default();
    Ok(Html(
        page("Push a task", Some(&user), body(&f, &html! {})).into_string(),
    ))
}

pub(super) async fn submit(
    State(s): State<AppState>,
    user: User,
    p: Principal,
    Form(f): Form<TaskForm>,
) -> Response {
    let refused = |msg: String| {
        let shown = html! { p.error #task-error { (msg) } };
        (
            axum::http::StatusCode::BAD_REQUEST,
            Html(page("Push a task", Some(&user), body(&f, &shown)).into_string()),
        )
            .into_response()
    };
    let spec = match f.spec() {
        Ok(spec) => spec,
        Err(e) => return refused(e),
    };
    if f.what == "push" {
        return match crate::service::tasks::push(&s, &p, spec).await {
            Ok(t) => Redirect::to(&format!("/tasks/{}", url_encode(&t.id))).into_response(),
            Err(e) => refused(crate::api::ApiError::from(e).1),
        };
    }
    match crate::service::tasks::preview(&s, &spec).await {
        Ok(pv) => Html(page("Push a task", Some(&user), body(&f, &preview(&pv))).into_string())
            .into_response(),
        Err(e) => PageError::from(e).into_response(),
    }
}
