//! Fleet tasks as callers steer them: a pause, resume or cancel is recorded and the task
//! engine (on whichever replica runs it) wakes to act on it.

use crate::cluster::Wake;
use crate::state::AppState;
use crate::tasks::db::{self as tasks, Request};
use crate::tasks::TaskSummary;

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
