//! Commands from the controller: verified against the pinned controller key, run at most
//! once per command id (remembered in the buffer across restarts), answered with a signed
//! result through the buffer (so the answer survives an outage like any event).
//!
//! A message that fails verification (forged, unsigned, for another agent, replayed,
//! expired, without an expiry or with one more than [`MAX_COMMAND_LIFETIME_MS`] away, or any
//! message while no controller key is pinned) is counted, logged once per reason, and never
//! acted on or answered. The MQTT publish is acknowledged only after the
//! command was handled and its result buffered.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Publish};
use storefleet_protocol::message::{Command, CommandAction, CommandResult, CommandStatus};
use storefleet_protocol::routine::{Outcome, Trigger};
use storefleet_protocol::verify::Pinned;
use storefleet_protocol::{now_ms, Message, PublicKey, Verifier, CONTROLLER_ID};
use tokio::sync::{mpsc, oneshot};

use crate::buffer::Buffer;
use crate::health::Health;
use crate::remote_config;
use crate::routines::{RunError, Runner};
use crate::sync::AGENT_VERSION;

/// Longest a command may be valid (`exp - ts`); the agent remembers command ids for
/// longer (30 days), so an expired command can never run again.
pub const MAX_COMMAND_LIFETIME_MS: i64 = 7 * 24 * 3600 * 1000;

/// A request to reload the configuration; answered with a summary or the error.
pub type ReloadRequest = oneshot::Sender<Result<String, String>>;

/// What the command handler needs.
pub struct CommandContext {
    /// This agent's id.
    pub agent_id: String,
    /// The pinned controller key; `None` refuses everything.
    pub controller_key: Option<PublicKey>,
    /// The buffer.
    pub buffer: Buffer,
    /// Counters.
    pub health: Arc<Health>,
    /// Process start, ms.
    pub started_at: i64,
    /// Where reload requests go.
    pub reload: mpsc::Sender<ReloadRequest>,
    /// The agent's routines.
    pub routines: Runner,
    /// Where config changes from the controller go (`agent.d/`), if anywhere.
    pub dropin_dir: Option<std::path::PathBuf>,
    /// Sections the controller may change (`controller.remote_config`).
    pub remote_config: Vec<String>,
    /// Self-update.
    pub updater: crate::update::Updater,
}

/// Handles downlink publishes until the channel closes.
pub async fn run(mut rx: mpsc::Receiver<Publish>, client: AsyncClient, ctx: CommandContext) {
    let mut verifier = ctx.controller_key.map(|key| {
        Verifier::new(Pinned {
            sender: CONTROLLER_ID.into(),
            key,
        })
    });
    let mut logged: HashSet<&'static str> = HashSet::new();
    while let Some(p) = rx.recv().await {
        if handle(&p, &mut verifier, &ctx, &mut logged).await {
            if let Err(e) = client.ack(&p).await {
                tracing::debug!(error = %e, "Cannot acknowledge downlink message");
            }
        }
    }
}

fn refuse(
    ctx: &CommandContext,
    logged: &mut HashSet<&'static str>,
    label: &'static str,
    detail: &str,
) {
    Health::add(&ctx.health.commands_refused, 1);
    if logged.insert(label) {
        tracing::warn!(
            reason = label,
            detail,
            "Downlink message refused (further ones for this reason are logged at debug)"
        );
    } else {
        tracing::debug!(reason = label, detail, "Downlink message refused");
    }
}

/// Returns whether the publish may be acknowledged.
async fn handle(
    p: &Publish,
    verifier: &mut Option<Verifier<Pinned>>,
    ctx: &CommandContext,
    logged: &mut HashSet<&'static str>,
) -> bool {
    let Some(v) = verifier.as_mut() else {
        refuse(
            ctx,
            logged,
            "no_controller_key",
            "controller.public_key is not configured",
        );
        return true;
    };
    let env = match v.verify(&p.topic, &p.payload, now_ms()) {
        Ok(env) => env,
        Err(e) => {
            refuse(ctx, logged, e.label(), &e.to_string());
            return true;
        }
    };
    // Commands must expire, and within the window their ids are remembered: a captured
    // command can never be replayed after the agent has forgotten it.
    match env.exp {
        None => {
            refuse(ctx, logged, "no_expiry", "a command must carry exp");
            return true;
        }
        Some(exp) if exp - env.ts > MAX_COMMAND_LIFETIME_MS => {
            refuse(
                ctx,
                logged,
                "expiry_too_far",
                "a command may live at most 7 days",
            );
            return true;
        }
        Some(_) => {}
    }
    let Message::Command(cmd) = env.message else {
        tracing::debug!(
            kind = env.message.kind().as_str(),
            "Ignoring downlink message of a kind this agent does not handle"
        );
        return true;
    };
    match ctx.buffer.command_seen(&cmd.id).await {
        Ok(true) => {}
        Ok(false) => {
            refuse(
                ctx,
                logged,
                "replayed",
                &format!("command {} already run", cmd.id),
            );
            return true;
        }
        Err(e) => {
            tracing::error!(error = %e, command = %cmd.id, "Cannot record command; leaving it unacknowledged");
            return false;
        }
    }
    if let CommandAction::RunRoutine {
        name,
        document,
        task,
        ignore_window,
    } = &cmd.action
    {
        let req = RoutineRequest {
            name: name.clone(),
            document: document.clone(),
            task: task.clone(),
            ignore_window: *ignore_window,
        };
        // A routine may take minutes: the id is recorded, so the command is acknowledged
        // now and answered when the run ends; a redelivery meanwhile is refused as replayed.
        let (cmd, buffer, health, routines) = (
            cmd.clone(),
            ctx.buffer.clone(),
            ctx.health.clone(),
            ctx.routines.clone(),
        );
        ctx.routines.clone().spawn(async move {
            let result = run_routine(&cmd.id, req, &routines, &health, &buffer).await;
            answer(&cmd, result, &buffer, &health).await;
        });
        return true;
    }
    if let CommandAction::Update {
        releases,
        base_url,
        confirm_secs,
        ..
    } = &cmd.action
    {
        let release = match ctx.updater.check(releases, *confirm_secs) {
            Ok(crate::update::Checked::Take(r)) => r,
            Ok(crate::update::Checked::AlreadyRunning) => {
                let r = update_result(
                    &cmd.id,
                    CommandStatus::Ok,
                    format!("already running {AGENT_VERSION}"),
                );
                answer(&cmd, r, &ctx.buffer, &ctx.health).await;
                return true;
            }
            Err(
                crate::update::UpdateError::Rejected(m) | crate::update::UpdateError::Failed(m),
            ) => {
                tracing::warn!(command = %cmd.id, error = %m, "Update refused");
                let r = update_result(&cmd.id, CommandStatus::Rejected, m);
                answer(&cmd, r, &ctx.buffer, &ctx.health).await;
                return true;
            }
        };
        // A download takes a while: acknowledged now, answered when it is done (by the
        // new version once it confirmed, or by this one after a rollback).
        let (cmd, buffer, health, updater) = (
            cmd.clone(),
            ctx.buffer.clone(),
            ctx.health.clone(),
            ctx.updater.clone(),
        );
        let (base_url, confirm_secs) = (base_url.clone(), *confirm_secs);
        ctx.routines.clone().spawn(async move {
            let running = update_result(
                &cmd.id,
                CommandStatus::Running,
                format!("downloading {}", release.version),
            );
            if let Err(e) = buffer.add_result(running).await {
                tracing::warn!(error = %e, command = %cmd.id, "Cannot buffer the update's start");
            }
            match updater
                .install(&cmd.id, &release, &base_url, confirm_secs)
                .await
            {
                Ok(m) => tracing::info!(command = %cmd.id, message = %m, "Update taken"),
                Err(
                    crate::update::UpdateError::Rejected(m) | crate::update::UpdateError::Failed(m),
                ) => {
                    tracing::warn!(command = %cmd.id, error = %m, "Update failed");
                    let r = update_result(&cmd.id, CommandStatus::Failed, m);
                    answer(&cmd, r, &buffer, &health).await;
                }
            }
        });
        return true;
    }
    let result = execute(&cmd, ctx).await;
    answer(&cmd, result, &ctx.buffer, &ctx.health).await;
    true
}

async fn answer(cmd: &Command, result: CommandResult, buffer: &Buffer, health: &Health) {
    tracing::info!(command = %cmd.id, status = ?result.status, "Command handled");
    Health::add(&health.commands_executed, 1);
    for attempt in 0..30 {
        match buffer.add_result(result.clone()).await {
            Ok(_) => break,
            Err(e) if e.is_transient() && attempt < 29 => {
                tracing::warn!(error = %e, "Cannot buffer command result yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => {
                tracing::error!(error = %e, command = %cmd.id, "Command result could not be buffered");
                break;
            }
        }
    }
}

fn update_result(id: &str, status: CommandStatus, message: String) -> CommandResult {
    CommandResult {
        command_id: id.to_owned(),
        status,
        message,
        data: serde_json::json!({"agent_version": AGENT_VERSION}),
        finished_at: now_ms(),
    }
}

/// What a run-routine command asks for.
struct RoutineRequest {
    name: String,
    document: String,
    task: String,
    ignore_window: bool,
}

/// Runs the routine a command names or carries; the result's data is the run record.
async fn run_routine(
    id: &str,
    req: RoutineRequest,
    routines: &Runner,
    health: &Health,
    buffer: &Buffer,
) -> CommandResult {
    let RoutineRequest {
        name,
        document,
        task,
        ignore_window,
    } = req;
    let prepared = match (name.is_empty(), document.is_empty()) {
        (false, true) => routines
            .get(&name)
            .ok_or_else(|| RunError::Unknown(name.clone())),
        (true, false) => routines.prepare(&document, &format!("command {id}")),
        _ => Err(RunError::Refused(
            "run-routine needs either name or document".into(),
        )),
    };
    let run = match prepared {
        Ok(p) => {
            // Tell the controller it started (a fleet task shows it running); the final
            // result follows. Best effort: the final result is what counts.
            let started = CommandResult {
                command_id: id.to_owned(),
                status: CommandStatus::Running,
                message: format!("{} started", p.routine.name),
                data: serde_json::Value::Null,
                finished_at: now_ms(),
            };
            if let Err(e) = buffer.add_result(started).await {
                tracing::warn!(error = %e, command = %id, "Cannot buffer the routine's start");
            }
            routines
                .run(p, id.to_owned(), Trigger::Task { task }, ignore_window)
                .await
        }
        Err(e) => Err(e),
    };
    let (status, message, data) = match run {
        Ok(r) => {
            let status = match r.outcome {
                Outcome::AlreadyFine | Outcome::Healed => CommandStatus::Ok,
                Outcome::Failed | Outcome::Escalated => CommandStatus::Failed,
                Outcome::Skipped => CommandStatus::Skipped,
            };
            let message = if r.reason.is_empty() {
                format!("{} {}", r.routine, r.outcome.as_str())
            } else {
                format!("{} {}: {}", r.routine, r.outcome.as_str(), r.reason)
            };
            (
                status,
                message,
                serde_json::to_value(&r).unwrap_or_default(),
            )
        }
        Err(e @ RunError::Busy(_)) => (
            CommandStatus::Failed,
            e.to_string(),
            serde_json::Value::Null,
        ),
        Err(e) => {
            Health::add(&health.routines_refused, 1);
            tracing::warn!(command = %id, error = %e, "Routine refused");
            (
                CommandStatus::Rejected,
                e.to_string(),
                serde_json::Value::Null,
            )
        }
    };
    CommandResult {
        command_id: id.to_owned(),
        status,
        message,
        data,
        finished_at: now_ms(),
    }
}

/// Asks the agent to reload its configuration; the summary or why it was refused.
async fn reload(ctx: &CommandContext) -> Result<String, String> {
    let (tx, rx) = oneshot::channel();
    if ctx.reload.send(tx).await.is_err() {
        return Err("agent is shutting down".to_owned());
    }
    tokio::time::timeout(Duration::from_secs(30), rx)
        .await
        .map_err(|_| "reload timed out".to_owned())
        .and_then(|r| r.map_err(|_| "agent is shutting down".to_owned()))
        .and_then(|r| r)
}

async fn execute(cmd: &Command, ctx: &CommandContext) -> CommandResult {
    let (status, message, data) = match cmd.action {
        CommandAction::Ping => (
            CommandStatus::Ok,
            format!(
                "pong: {} version {AGENT_VERSION}, up {} s",
                ctx.agent_id,
                (now_ms() - ctx.started_at) / 1000
            ),
            serde_json::json!({
                "agent_id": ctx.agent_id,
                "agent_version": AGENT_VERSION,
                "uptime_s": (now_ms() - ctx.started_at) / 1000,
            }),
        ),
        CommandAction::ReloadConfig => match reload(ctx).await {
            Ok(summary) => (CommandStatus::Ok, summary, serde_json::Value::Null),
            Err(e) => (CommandStatus::Failed, e, serde_json::Value::Null),
        },
        CommandAction::ApplyConfig {
            ref name,
            ref toml,
            ref task,
        } => {
            let checked = remote_config::check(name, toml, &ctx.remote_config).and_then(|()| {
                ctx.dropin_dir.clone().ok_or_else(|| {
                    "this agent has no agent.d directory for config changes".to_owned()
                })
            });
            match checked {
                Err(e) => {
                    Health::add(&ctx.health.config_changes_refused, 1);
                    tracing::warn!(command = %cmd.id, error = %e, "Config change refused");
                    (CommandStatus::Rejected, e, serde_json::Value::Null)
                }
                Ok(dir) => {
                    let origin = if task.is_empty() {
                        format!("command {}", cmd.id)
                    } else {
                        format!("task {task}, command {}", cmd.id)
                    };
                    let a = remote_config::apply(&dir, name, toml, &origin, || reload(ctx)).await;
                    (a.status, a.message, serde_json::Value::Null)
                }
            }
        }
        CommandAction::RunRoutine { .. } | CommandAction::Update { .. } => (
            CommandStatus::Rejected,
            "handled apart".to_owned(),
            serde_json::Value::Null,
        ),
        CommandAction::Unsupported => (
            CommandStatus::Rejected,
            format!("action not supported by agent {AGENT_VERSION}"),
            serde_json::Value::Null,
        ),
    };
    CommandResult {
        command_id: cmd.id.clone(),
        status,
        message,
        data,
        finished_at: now_ms(),
    }
}
