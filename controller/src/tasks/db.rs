//! Tasks and their targets in the database: creation, what people read, operators'
//! requests, the agents' reports (written by ingest), and what the engine stores.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension as _};
use storefleet_protocol::message::{CommandResult, CommandStatus};

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
    c: &Connection,
    id: &str,
    spec: &TaskSpec,
    created_by: &str,
    now: i64,
) -> Result<usize, DbError> {
    spec.validate()?;
    if let super::TaskAction::Update { version, .. } = &spec.action {
        if crate::releases::manifests(c, version)?.is_empty() {
            return Err(DbError::Invalid(format!(
                "no release {version} is published (storefleet release publish FILE --version {version} --arch ...)"
            )));
        }
    }
    let targets = spec.select.resolve(c)?;
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
        params![
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
    let mut st = c.prepare_cached(
        "INSERT INTO task_targets(task_id, agent_id, pos, store_code, region, wave, state, command_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7)",
    )?;
    for (pos, (t, wave)) in targets.iter().zip(waves).enumerate() {
        st.execute(params![
            id,
            t.agent,
            pos as i64,
            t.store,
            t.region,
            wave as i64,
            format!("{id}.{pos}")
        ])?;
    }
    Ok(targets.len())
}

/// Asks the engine to pause, resume or cancel a task.
pub fn request(c: &Connection, id: &str, r: Request) -> Result<(), DbError> {
    let phase: Option<String> = c
        .query_row("SELECT phase FROM tasks WHERE id = ?1", [id], |r| r.get(0))
        .optional()?;
    match phase.as_deref() {
        None => Err(DbError::NotFound(format!("task {id} not found"))),
        Some("running" | "paused") => {
            c.execute(
                "UPDATE tasks SET request = ?2 WHERE id = ?1",
                params![id, r.as_str()],
            )?;
            Ok(())
        }
        Some(p) => Err(DbError::Invalid(format!(
            "task {id} is {p}; it can no longer be changed"
        ))),
    }
}

const SUMMARY: &str = "SELECT id, name, phase, phase_note, action, selector, plan, run_window, created_by, created_at, finished_at, waves_opened FROM tasks";

fn summary(c: &Connection, r: &rusqlite::Row<'_>) -> Result<TaskSummary, DbError> {
    let id: String = r.get(0)?;
    let spec = spec_from(r.get(1)?, [r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?])?;
    let opened: Vec<Option<i64>> = from_json(&r.get::<_, String>(11)?, "task waves")?;
    let mut counts = BTreeMap::new();
    let mut total = 0;
    let mut st =
        c.prepare_cached("SELECT state, count(*) FROM task_targets WHERE task_id = ?1 GROUP BY 1")?;
    for row in st.query_map([&id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (state, n) = row?;
        total += n as u64;
        counts.insert(state, n as u64);
    }
    let mut waves = Vec::new();
    let mut st = c.prepare_cached(
        "SELECT wave, count(*),
                sum(state NOT IN ('queued', 'sent', 'running')),
                sum(state IN ('failed', 'timed_out', 'rejected'))
         FROM task_targets WHERE task_id = ?1 GROUP BY wave ORDER BY wave",
    )?;
    for row in st.query_map([&id], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })? {
        let (wave, n, done, failures) = row?;
        waves.push(WaveProgress {
            wave: wave as u32,
            targets: n as u64,
            finished: done as u64,
            failures: failures as u64,
            opened_at: opened.get(wave as usize).copied().flatten(),
        });
    }
    Ok(TaskSummary {
        name: spec.name.clone(),
        id,
        phase: r.get(2)?,
        phase_note: r.get(3)?,
        spec,
        created_by: r.get(8)?,
        created_at: r.get(9)?,
        finished_at: r.get(10)?,
        counts,
        total,
        waves,
    })
}

/// One task with its progress.
pub fn get(c: &Connection, id: &str) -> Result<TaskSummary, DbError> {
    let mut st = c.prepare_cached(&format!("{SUMMARY} WHERE id = ?1"))?;
    let mut rows = st.query([id])?;
    match rows.next()? {
        Some(r) => summary(c, r),
        None => Err(DbError::NotFound(format!("task {id} not found"))),
    }
}

/// The newest tasks first.
pub fn list(c: &Connection, limit: usize) -> Result<Vec<TaskSummary>, DbError> {
    let mut st = c.prepare_cached(&format!(
        "{SUMMARY} ORDER BY created_at DESC, id DESC LIMIT ?1"
    ))?;
    let mut rows = st.query([limit as i64])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(summary(c, r)?);
    }
    Ok(out)
}

/// A task's targets in rollout order, optionally only those in `state`.
pub fn targets(c: &Connection, id: &str, state: Option<&str>) -> Result<Vec<TargetRow>, DbError> {
    if c.query_row("SELECT 1 FROM tasks WHERE id = ?1", [id], |_| Ok(()))
        .optional()?
        .is_none()
    {
        return Err(DbError::NotFound(format!("task {id} not found")));
    }
    let mut st = c.prepare_cached(
        "SELECT agent_id, store_code, region, wave, state, sent_at, started_at, finished_at, command_id, outcome, message
         FROM task_targets WHERE task_id = ?1 AND (?2 IS NULL OR state = ?2) ORDER BY pos",
    )?;
    let rows = st.query_map(params![id, state], |r| {
        Ok(TargetRow {
            agent: r.get(0)?,
            store: r.get(1)?,
            region: r.get(2)?,
            wave: r.get::<_, i64>(3)? as u32,
            state: r.get(4)?,
            sent_at: r.get(5)?,
            started_at: r.get(6)?,
            finished_at: r.get(7)?,
            command_id: r.get(8)?,
            outcome: r.get(9)?,
            message: r.get(10)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Ingest: what an agent reported about a command. Only the target's own agent counts, a
/// final report is kept once (a redelivery changes nothing), and a start after the end is
/// ignored. Returns whether a task target took it.
pub fn report(c: &Connection, agent: &str, r: &CommandResult) -> Result<bool, DbError> {
    let n = if r.status == CommandStatus::Running {
        c.prepare_cached(
            "UPDATE task_targets SET started_at = ?3, pending = 1
             WHERE command_id = ?1 AND agent_id = ?2 AND started_at IS NULL AND reported IS NULL",
        )?
        .execute(params![r.command_id, agent, r.finished_at])?
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
        c.prepare_cached(
            "UPDATE task_targets SET reported = ?3, outcome = ?4, message = ?5, pending = 1
             WHERE command_id = ?1 AND agent_id = ?2 AND reported IS NULL",
        )?
        .execute(params![r.command_id, agent, reported, outcome, message])?
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
pub fn unfinished(c: &Connection) -> Result<Vec<(String, Option<Request>)>, DbError> {
    let mut st = c.prepare_cached(
        "SELECT id, request FROM tasks WHERE finished_at IS NULL ORDER BY created_at, id",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?
                .as_deref()
                .and_then(Request::parse),
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A task with its rollout restored, if it exists.
pub fn load(c: &Connection, id: &str) -> Result<Option<Active>, DbError> {
    let row = c
        .query_row(
            "SELECT name, action, selector, plan, run_window, phase, phase_note, waves_opened, finished_at
             FROM tasks WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    [
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                    ],
                    (r.get::<_, String>(5)?, r.get::<_, String>(6)?),
                    r.get::<_, String>(7)?,
                    r.get::<_, Option<i64>>(8)?,
                ))
            },
        )
        .optional()?;
    let Some((name, [action, select, plan, window], (phase, note), opened, finished)) = row else {
        return Ok(None);
    };
    let spec = spec_from(name, [action, select, plan, window])?;
    let mut targets = Vec::new();
    let mut places = std::collections::HashMap::new();
    let mut st = c.prepare_cached(
        "SELECT agent_id, region, wave, state, sent_at, store_code, command_id
         FROM task_targets WHERE task_id = ?1 ORDER BY pos",
    )?;
    for t in st.query_map([id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Option<i64>>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, String>(6)?,
        ))
    })? {
        let (agent, region, wave, state, sent_at, store, command) = t?;
        let state = TargetState::from_stored(&state, sent_at).ok_or_else(|| {
            DbError::Backend(format!("task {id}: target {agent} has state {state:?}"))
        })?;
        places.insert(agent.clone(), (store, command));
        targets.push(Target {
            agent,
            region,
            wave: wave as usize,
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
pub fn pending_reports(c: &Connection, task: &str) -> Result<Vec<Report>, DbError> {
    let mut st = c.prepare_cached(
        "SELECT agent_id, started_at IS NOT NULL, reported FROM task_targets
         WHERE task_id = ?1 AND pending = 1",
    )?;
    let rows = st.query_map([task], |r| {
        Ok(Report {
            agent: r.get(0)?,
            started: r.get(1)?,
            reported: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Marks `reports` taken, unless the row changed since (a final report that came after
/// the start was read stays pending for the next turn).
pub fn clear_reports(c: &Connection, task: &str, reports: &[Report]) -> Result<(), DbError> {
    let mut st = c.prepare_cached(
        "UPDATE task_targets SET pending = 0
         WHERE task_id = ?1 AND agent_id = ?2 AND reported IS ?3",
    )?;
    for r in reports {
        st.execute(params![task, r.agent, r.reported])?;
    }
    Ok(())
}

/// Stores the engine's view of a task after a step: changed targets, waves, phase.
pub fn save(
    c: &Connection,
    task: &str,
    changed: &[(String, TargetState)],
    r: &Rollout,
    now: i64,
) -> Result<(), DbError> {
    let mut st = c.prepare_cached(
        "UPDATE task_targets SET state = ?3,
             sent_at = CASE WHEN ?4 IS NULL THEN sent_at ELSE ?4 END,
             finished_at = CASE WHEN ?5 THEN coalesce(finished_at, ?6) ELSE finished_at END
         WHERE task_id = ?1 AND agent_id = ?2",
    )?;
    for (agent, state) in changed {
        let sent = match state {
            TargetState::Sent { at } | TargetState::Running { sent: at } => Some(*at),
            _ => None,
        };
        st.execute(params![
            task,
            agent,
            state.as_str(),
            sent,
            state.is_final(),
            now
        ])?;
    }
    c.prepare_cached(
        "UPDATE tasks SET phase = ?2, phase_note = ?3, waves_opened = ?4,
             finished_at = CASE WHEN ?5 THEN coalesce(finished_at, ?6) ELSE NULL END
         WHERE id = ?1",
    )?
    .execute(params![
        task,
        phase_name(r.phase()),
        phase_note(r.phase()),
        json(&r.opened())?,
        r.finished(),
        now
    ])?;
    Ok(())
}

/// Clears an operator request once the engine has applied it (unless a newer one came).
pub fn clear_request(c: &Connection, task: &str, applied: Request) -> Result<(), DbError> {
    c.execute(
        "UPDATE tasks SET request = NULL WHERE id = ?1 AND request = ?2",
        params![task, applied.as_str()],
    )?;
    Ok(())
}
