//! Tasks and their targets in the database: creation, what people read, operators'
//! requests, the agents' reports (written by ingest), and what the engine stores.

use std::collections::BTreeMap;

use storefleet_protocol::message::{CommandResult, CommandStatus};
use storefleet_storage::{args, Row, Sql, SqlExt as _};

use super::{TargetRow, TaskSpec, TaskSummary, WaveProgress};
use crate::db::DbError;
use crate::rollout::{Phase, Rollout, Target, TargetState};

/// An operator's request to a running task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Stop sending; results still count.
    Pause,
    /// Continue.
    Resume,
    /// Cancel what was not sent.
    Cancel,
}

impl Request {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Request::Pause => "pause",
            Request::Resume => "resume",
            Request::Cancel => "cancel",
        }
    }

    fn parse(s: &str) -> Option<Request> {
        match s {
            "pause" => Some(Request::Pause),
            "resume" => Some(Request::Resume),
            "cancel" => Some(Request::Cancel),
            _ => None,
        }
    }
}

/// The stored name of a phase.
pub fn phase_name(p: &Phase) -> &'static str {
    match p {
        Phase::Running => "running",
        Phase::Paused => "paused",
        Phase::Aborted { .. } => "aborted",
        Phase::Cancelled => "cancelled",
        Phase::Completed => "completed",
    }
}

fn phase_from(name: &str, note: &str) -> Phase {
    match name {
        "paused" => Phase::Paused,
        "aborted" => {
            // The note starts "failures/finished".
            let (f, n) = note
                .split_whitespace()
                .next()
                .and_then(|x| x.split_once('/'))
                .map_or((0, 0), |(f, n)| {
                    (f.parse().unwrap_or(0), n.parse().unwrap_or(0))
                });
            Phase::Aborted {
                failures: f,
                finished: n,
            }
        }
        "cancelled" => Phase::Cancelled,
        "completed" => Phase::Completed,
        _ => Phase::Running,
    }
}

/// The note stored with a phase.
pub fn phase_note(p: &Phase) -> String {
    match p {
        Phase::Aborted { failures, finished } => {
            format!("{failures}/{finished} failed, over the abort threshold")
        }
        _ => String::new(),
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, DbError> {
    serde_json::to_string(v).map_err(|e| DbError::Backend(format!("encoding: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> Result<T, DbError> {
    serde_json::from_str(s).map_err(|e| DbError::Backend(format!("stored {what}: {e}")))
}

/// A spec from its stored name and JSON columns (action, selector, plan, window).
fn spec_from(
    name: String,
    [action, select, plan, window]: [String; 4],
) -> Result<TaskSpec, DbError> {
    Ok(TaskSpec {
        name,
        action: from_json(&action, "task action")?,
        select: from_json(&select, "task selector")?,
        plan: from_json(&plan, "task plan")?,
        window: from_json(&window, "task window")?,
    })
}

/// Creates task `id` from `spec`: resolves its targets now and stores them with their waves.
/// Returns the number of targets.
pub fn create(
    c: &dyn Sql,
    id: &str,
    spec: &TaskSpec,
    created_by: &str,
    now: i64,
) -> Result<usize, DbError> {
    spec.validate().map_err(super::select::invalid)?;
    if let super::TaskAction::Update { version, .. } = &spec.action {
        if crate::releases::manifests(c, version)?.is_empty() {
            return Err(DbError::Invalid(format!(
                "no release {version} is published (storefleet release publish FILE --version {version} --arch ...)"
            )));
        }
    }
    let targets = super::select::resolve(&spec.select, c)?;
    if targets.is_empty() {
        return Err(DbError::Invalid(
            "select: no enrolled agent matches; nothing to do".into(),
        ));
    }
    let waves = spec.plan.assign(targets.len());
    let name = if spec.name.trim().is_empty() {
        spec.action.routine_name()
    } else {
        spec.name.clone()
    };
    c.execute(
        "INSERT INTO tasks(id, name, kind, action, selector, plan, run_window, phase, created_by, created_at)
         VALUES (?1, ?2, ?9, ?3, ?4, ?5, ?6, 'running', ?7, ?8)",
        args![
            id,
            name,
            json(&spec.action)?,
            json(&spec.select)?,
            json(&spec.plan)?,
            json(&spec.window)?,
            created_by,
            now,
            spec.action.kind()
        ],
    )?;
    for (pos, (t, wave)) in targets.iter().zip(waves).enumerate() {
        c.execute(
            "INSERT INTO task_targets(task_id, agent_id, pos, store_code, region, wave, state, command_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7)",
            args![
                id,
                &t.agent,
                pos,
                &t.store,
                &t.region,
                wave,
                format!("{id}.{pos}")
            ],
        )?;
    }
    Ok(targets.len())
}

/// Asks the engine to pause, resume or cancel a task.
pub fn request(c: &dyn Sql, id: &str, r: Request) -> Result<(), DbError> {
    let phase = c
        .one("SELECT phase FROM tasks WHERE id = ?1", args![id])?
        .map(|r| r.text("phase"))
        .transpose()?;
    match phase.as_deref() {
        None => Err(DbError::NotFound(format!("task {id} not found"))),
        Some("running" | "paused") => {
            c.execute(
                "UPDATE tasks SET request = ?2 WHERE id = ?1",
                args![id, r.as_str()],
            )?;
            Ok(())
        }
        Some(p) => Err(DbError::Invalid(format!(
            "task {id} is {p}; it can no longer be changed"
        ))),
    }
}

const SUMMARY: &str = "SELECT id, name, phase, phase_note, action, selector, plan, run_window, created_by, created_at, finished_at, waves_opened FROM tasks";

fn summary(c: &dyn Sql, r: &Row) -> Result<TaskSummary, DbError> {
    let id = r.text("id")?;
    let spec = spec_from(
        r.text("name")?,
        [
            r.text("action")?,
            r.text("selector")?,
            r.text("plan")?,
            r.text("run_window")?,
        ],
    )?;
    let opened: Vec<Option<i64>> = from_json(&r.text("waves_opened")?, "task waves")?;
    let mut counts = BTreeMap::new();
    let mut total = 0;
    for row in c.query(
        "SELECT state, count(*) AS n FROM task_targets WHERE task_id = ?1 GROUP BY state",
        args![&id],
    )? {
        let n: u64 = row.int("n")?;
        total += n;
        counts.insert(row.text("state")?, n);
    }
    let mut waves = Vec::new();
    for row in c.query(
        "SELECT wave, count(*) AS n,
                count(*) FILTER (WHERE state NOT IN ('queued', 'sent', 'running')) AS done,
                count(*) FILTER (WHERE state IN ('failed', 'timed_out', 'rejected')) AS failures,
                count(*) FILTER (WHERE state = 'cancelled') AS cancelled
         FROM task_targets WHERE task_id = ?1 GROUP BY wave ORDER BY wave",
        args![&id],
    )? {
        let wave: u32 = row.int("wave")?;
        waves.push(WaveProgress {
            wave,
            targets: row.int("n")?,
            finished: row.int("done")?,
            failures: row.int("failures")?,
            cancelled: row.int("cancelled")?,
            opened_at: opened.get(wave as usize).copied().flatten(),
        });
    }
    Ok(TaskSummary {
        name: spec.name.clone(),
        id,
        phase: r.text("phase")?,
        phase_note: r.text("phase_note")?,
        spec,
        created_by: r.text("created_by")?,
        created_at: r.i64("created_at")?,
        finished_at: r.opt_i64("finished_at")?,
        counts,
        total,
        waves,
        window_opens: None,
    })
}

/// One task with its progress.
pub fn get(c: &dyn Sql, id: &str) -> Result<TaskSummary, DbError> {
    match c.one(&format!("{SUMMARY} WHERE id = ?1"), args![id])? {
        Some(r) => summary(c, &r),
        None => Err(DbError::NotFound(format!("task {id} not found"))),
    }
}

/// The newest tasks first.
pub fn list(c: &dyn Sql, limit: usize) -> Result<Vec<TaskSummary>, DbError> {
    c.query(
        &format!("{SUMMARY} ORDER BY created_at DESC, id DESC LIMIT ?1"),
        args![limit],
    )?
    .iter()
    .map(|r| summary(c, r))
    .collect()
}

/// A task's targets in rollout order, optionally only those in `state`.
pub fn targets(c: &dyn Sql, id: &str, state: Option<&str>) -> Result<Vec<TargetRow>, DbError> {
    if c.one("SELECT 1 AS one FROM tasks WHERE id = ?1", args![id])?
        .is_none()
    {
        return Err(DbError::NotFound(format!("task {id} not found")));
    }
    c.all(
        "SELECT agent_id, store_code, region, wave, state, sent_at, started_at, finished_at, command_id, outcome, message
         FROM task_targets WHERE task_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR state = ?2) ORDER BY pos",
        args![id, state],
        |r| {
            Ok(TargetRow {
                agent: r.text("agent_id")?,
                store: r.text("store_code")?,
                region: r.text("region")?,
                wave: r.int("wave")?,
                state: r.text("state")?,
                sent_at: r.opt_i64("sent_at")?,
                started_at: r.opt_i64("started_at")?,
                finished_at: r.opt_i64("finished_at")?,
                command_id: r.text("command_id")?,
                outcome: r.text("outcome")?,
                message: r.text("message")?,
            })
        },
    )
}

/// Ingest: what an agent reported about a command. Only the target's own agent counts, a
/// final report is kept once (a redelivery changes nothing), and a start after the end is
/// ignored. Returns whether a task target took it.
pub fn report(c: &dyn Sql, agent: &str, r: &CommandResult) -> Result<bool, DbError> {
    let n = if r.status == CommandStatus::Running {
        c.execute(
            "UPDATE task_targets SET started_at = ?3, pending = 1
             WHERE command_id = ?1 AND agent_id = ?2 AND started_at IS NULL AND reported IS NULL",
            args![&r.command_id, agent, r.finished_at],
        )?
    } else {
        let reported = match r.status {
            CommandStatus::Ok => "ok",
            CommandStatus::Failed => "failed",
            CommandStatus::Rejected => "rejected",
            CommandStatus::Skipped | CommandStatus::Running => "skipped",
        };
        let outcome = r
            .data
            .get("outcome")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let message: String = r.message.chars().take(500).collect();
        c.execute(
            "UPDATE task_targets SET reported = ?3, outcome = ?4, message = ?5, pending = 1
             WHERE command_id = ?1 AND agent_id = ?2 AND reported IS NULL",
            args![&r.command_id, agent, reported, outcome, message],
        )?
    };
    Ok(n > 0)
}

/// A task the engine drives, as stored.
pub struct Active {
    /// Task id.
    pub id: String,
    /// Its spec.
    pub spec: TaskSpec,
    /// The rollout, restored.
    pub rollout: Rollout,
    /// Each target agent's store and command id.
    pub places: std::collections::HashMap<String, (String, String)>,
    /// A pending operator request.
    pub request: Option<Request>,
}

/// Unfinished tasks with any pending operator request.
pub fn unfinished(c: &dyn Sql) -> Result<Vec<(String, Option<Request>)>, DbError> {
    c.all(
        "SELECT id, request FROM tasks WHERE finished_at IS NULL ORDER BY created_at, id",
        args![],
        |r| {
            Ok((
                r.text("id")?,
                r.opt_text("request")?.as_deref().and_then(Request::parse),
            ))
        },
    )
}

/// A task with its rollout restored, if it exists.
pub fn load(c: &dyn Sql, id: &str) -> Result<Option<Active>, DbError> {
    let Some(row) = c.one(
        "SELECT name, action, selector, plan, run_window, phase, phase_note, waves_opened, finished_at
         FROM tasks WHERE id = ?1",
        args![id],
    )?
    else {
        return Ok(None);
    };
    let spec = spec_from(
        row.text("name")?,
        [
            row.text("action")?,
            row.text("selector")?,
            row.text("plan")?,
            row.text("run_window")?,
        ],
    )?;
    let (phase, note) = (row.text("phase")?, row.text("phase_note")?);
    let (opened, finished) = (row.text("waves_opened")?, row.opt_i64("finished_at")?);
    let mut targets = Vec::new();
    let mut places = std::collections::HashMap::new();
    for t in c.query(
        "SELECT agent_id, region, wave, state, sent_at, store_code, command_id
         FROM task_targets WHERE task_id = ?1 ORDER BY pos",
        args![id],
    )? {
        let (agent, region, wave) = (t.text("agent_id")?, t.text("region")?, t.int("wave")?);
        let (state, sent_at) = (t.text("state")?, t.opt_i64("sent_at")?);
        let (store, command) = (t.text("store_code")?, t.text("command_id")?);
        let state = TargetState::from_stored(&state, sent_at).ok_or_else(|| {
            DbError::Backend(format!("task {id}: target {agent} has state {state:?}"))
        })?;
        places.insert(agent.clone(), (store, command));
        targets.push(Target {
            agent,
            region,
            wave,
            state,
        });
    }
    let rollout = Rollout::restore(
        spec.plan.clone(),
        targets,
        from_json(&opened, "task waves")?,
        phase_from(&phase, &note),
        finished.is_some(),
    )
    .map_err(|e| DbError::Backend(format!("task {id}: {e}")))?;
    Ok(Some(Active {
        id: id.to_owned(),
        spec,
        rollout,
        places,
        request: None,
    }))
}

/// An agent's report not yet taken by the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The agent.
    pub agent: String,
    /// It said it started.
    pub started: bool,
    /// Its final report (`ok`, `failed`, `rejected`, `skipped`), if any.
    pub reported: Option<String>,
}

/// Reports on `task` the engine has not taken yet.
pub fn pending_reports(c: &dyn Sql, task: &str) -> Result<Vec<Report>, DbError> {
    c.all(
        "SELECT agent_id, started_at IS NOT NULL AS started, reported FROM task_targets
         WHERE task_id = ?1 AND pending = 1",
        args![task],
        |r| {
            Ok(Report {
                agent: r.text("agent_id")?,
                started: r.bool("started")?,
                reported: r.opt_text("reported")?,
            })
        },
    )
}

/// Marks `reports` taken, unless the row changed since (a final report that came after
/// the start was read stays pending for the next turn).
pub fn clear_reports(c: &dyn Sql, task: &str, reports: &[Report]) -> Result<(), DbError> {
    for r in reports {
        c.execute(
            "UPDATE task_targets SET pending = 0
             WHERE task_id = ?1 AND agent_id = ?2 AND reported IS NOT DISTINCT FROM ?3",
            args![task, &r.agent, r.reported.as_deref()],
        )?;
    }
    Ok(())
}

/// Stores the engine's view of a task after a step: changed targets, waves, phase.
pub fn save(
    c: &dyn Sql,
    task: &str,
    changed: &[(String, TargetState)],
    r: &Rollout,
    now: i64,
) -> Result<(), DbError> {
    for (agent, state) in changed {
        let sent = match state {
            TargetState::Sent { at } | TargetState::Running { sent: at } => Some(*at),
            _ => None,
        };
        c.execute(
            "UPDATE task_targets SET state = ?3,
                 sent_at = coalesce(?4, sent_at),
                 finished_at = CASE WHEN ?5 THEN coalesce(finished_at, ?6) ELSE finished_at END
             WHERE task_id = ?1 AND agent_id = ?2",
            args![task, agent, state.as_str(), sent, state.is_final(), now],
        )?;
    }
    c.execute(
        "UPDATE tasks SET phase = ?2, phase_note = ?3, waves_opened = ?4,
             finished_at = CASE WHEN ?5 THEN coalesce(finished_at, ?6) ELSE NULL END
         WHERE id = ?1",
        args![
            task,
            phase_name(r.phase()),
            phase_note(r.phase()),
            json(&r.opened())?,
            r.finished(),
            now
        ],
    )?;
    Ok(())
}

/// Clears an operator request once the engine has applied it (unless a newer one came).
pub fn clear_request(c: &dyn Sql, task: &str, applied: Request) -> Result<(), DbError> {
    c.execute(
        "UPDATE tasks SET request = NULL WHERE id = ?1 AND request = ?2",
        args![task, applied.as_str()],
    )?;
    Ok(())
}
