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
use storefleet_protocol::verify::Pinned;
use storefleet_protocol::{now_ms, Message, PublicKey, Verifier, CONTROLLER_ID};
use tokio::sync::{mpsc, oneshot};

use crate::buffer::Buffer;
use crate::health::Health;
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
    let result = execute(&cmd, ctx).await;
    tracing::info!(command = %cmd.id, status = ?result.status, "Command handled");
    Health::add(&ctx.health.commands_executed, 1);
    for attempt in 0..30 {
        match ctx.buffer.add_result(result.clone()).await {
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
    true
}

async fn execute(cmd: &Command, ctx: &CommandContext) -> CommandResult {
    let (status, message, data) = match cmd.action {
        CommandAction::Ping => (
            CommandStatus::Ok,
            "pong".to_owned(),
            serde_json::json!({
                "agent_id": ctx.agent_id,
                "agent_version": AGENT_VERSION,
                "uptime_s": (now_ms() - ctx.started_at) / 1000,
            }),
        ),
        CommandAction::ReloadConfig => {
            let (tx, rx) = oneshot::channel();
            let answer = if ctx.reload.send(tx).await.is_ok() {
                tokio::time::timeout(Duration::from_secs(30), rx)
                    .await
                    .map_err(|_| "reload timed out".to_owned())
                    .and_then(|r| r.map_err(|_| "agent is shutting down".to_owned()))
                    .and_then(|r| r)
            } else {
                Err("agent is shutting down".to_owned())
            };
            match answer {
                Ok(summary) => (CommandStatus::Ok, summary, serde_json::Value::Null),
                Err(e) => (CommandStatus::Failed, e, serde_json::Value::Null),
            }
        }
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
