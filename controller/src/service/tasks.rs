//! Fleet tasks as callers steer them: a pause, resume or cancel is recorded and the task
//! engine (on whichever replica runs it) wakes to act on it.

use crate::cluster::Wake;
use crate::state::AppState;
use crate::tasks::db::{self as tasks, Request};
use crate::tasks::{PreviewTarget, TaskPreview, TaskSpec, TaskSummary};

use super::{Principal, Result};

/// Records `r` for task `id` and returns the task as it stands.
pub async fn request(s: &AppState, p: &Principal, id: &str, r: Request) -> Result<TaskSummary> {
    let task = id.to_owned();
    let summary =
        s.db.write(move |c| {
            tasks::request(c, &task, r)?;
            tasks::get(c, &task)
        })
        .await?;
    tracing::info!(task = %id, request = r.as_str(), by = %p.actor, "Task request");
    s.signals.wake(Wake::Tasks);
    Ok(summary)
}

/// A new task id: `t-` and 12 hex digits.
pub fn new_id() -> String {
    format!("t-{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

/// Pushes a task: stores it with its targets and wakes the engine.
pub async fn push(s: &AppState, p: &Principal, spec: TaskSpec) -> Result<TaskSummary> {
    let id = new_id();
    let (task, actor) = (id.clone(), p.actor.clone());
    let summary =
        s.db.write(move |c| {
            tasks::create(c, &task, &spec, &actor, storefleet_protocol::now_ms())?;
            tasks::get(c, &task)
        })
        .await?;
    tracing::info!(task = %id, targets = summary.total, name = %summary.name, by = %p.actor, "Task pushed");
    s.signals.wake(Wake::Tasks);
    Ok(summary)
}

/// The targets and wave sizes `spec` would have; nothing is stored (`--dry-run`).
pub async fn preview(s: &AppState, spec: &TaskSpec) -> Result<TaskPreview> {
    spec.validate().map_err(crate::tasks::select::invalid)?;
    let select = spec.select.clone();
    let targets =
        s.db.read(move |c| crate::tasks::select::resolve(&select, c))
            .await?;
    let mut waves: Vec<usize> = Vec::new();
    for w in spec.plan.assign(targets.len()) {
        if waves.len() <= w {
            waves.resize(w + 1, 0);
        }
        waves[w] += 1;
    }
    Ok(TaskPreview {
        total: targets.len(),
        waves,
        targets: targets
            .into_iter()
            .map(|t| PreviewTarget {
                agent: t.agent,
                store: t.store,
                region: t.region,
            })
            .collect(),
    })
}

/// `ping` or `reload` one agent: a one-target task with a short timeout and expiry, so
/// that the answer (or its absence) is visible like any task's.
pub async fn agent_command(
    s: &AppState,
    p: &Principal,
    agent: String,
    action: crate::tasks::TaskAction,
) -> Result<TaskSummary> {
    let spec = TaskSpec {
        name: format!("{} {agent}", action.routine_name()),
        action,
        select: crate::tasks::Selector {
            agents: vec![agent],
            ..crate::tasks::Selector::default()
        },
        plan: crate::rollout::Plan {
            target_timeout_ms: 60_000,
            expiry_ms: 10 * 60_000,
            ..crate::rollout::Plan::default()
        },
        window: storefleet_schedule::Window::default(),
    };
    push(s, p, spec).await
}
