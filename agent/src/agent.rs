//! Running the agent: wiring the parts together, config reload, and shutdown.
//!
//! [`run`] takes a cancellation token so that `main` (on SIGTERM/SIGINT) and tests can
//! stop it. On the way down the collectors and the ingest endpoint stop first, the sync
//! task says goodbye to the broker, every task is awaited with a deadline, and the buffer
//! thread finishes its queue: everything acknowledged is on disk.

use std::sync::Arc;
use std::time::Duration;

use storefleet_protocol::{now_ms, PublicKey};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::buffer::{Buffer, BufferError, Limits, Sealer, SeriesIn, Store};
use crate::collect::{host, ingest, inventory, probe, snmp};
use crate::commands::{self, CommandContext};
use crate::config::{self, Config, ConfigError, ConfigSource, Probe};
use crate::health::Health;
use crate::identity::{self, IdentityError};
use crate::routines::{self, local_api, Runner};
use crate::sync::{self, backoff::Backoff, SyncContext, SyncError};

/// Errors that stop the agent from starting.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The configuration is missing or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The key pair could not be loaded or made.
    #[error("agent key: {0}")]
    Identity(#[from] IdentityError),
    /// The buffer could not be opened.
    #[error(transparent)]
    Buffer(#[from] BufferError),
    /// The broker settings are unusable.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The HTTP client for the controller (update downloads) could not be made.
    #[error("controller TLS settings: {0}")]
    Http(#[from] storefleet_support::http::HttpError),
    /// The ingest endpoint could not listen.
    #[error("ingest.listen {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Runs the agent until `token` is cancelled.
pub async fn run(source: ConfigSource, token: CancellationToken) -> Result<(), AgentError> {
    let config = config::load(&source)?;
    let key = Arc::new(identity::load_or_create(&config.key_path())?);
    let agent_id = identity::agent_id(&config.agent.id, &key.public_key());
    let health = Arc::new(Health::default());
    let started_at = now_ms();
    let store = Store::open(
        &config.buffer_path(),
        Sealer {
            agent_id: agent_id.clone(),
            key: key.clone(),
        },
        Limits::from_config(&config.buffer, &config.sync),
        health.clone(),
    )?;
    let upload = config.upload.policy(&config.store);
    let (buffer, buffer_thread) = Buffer::start(store.with_upload(upload));
    tracing::info!(agent_id = %agent_id, store = %config.agent.store, broker = %config.controller.mqtt_url, public_key = %key.public_key().to_base64(), "Agent starting");

    let tracker = TaskTracker::new();
    let routine_dir = routines::runner::routine_dir(&config, source.file.as_deref());
    let routines = Runner::new(
        &config,
        &routine_dir,
        buffer.clone(),
        health.clone(),
        token.clone(),
        tracker.clone(),
    )
    .map_err(|e| AgentError::Config(ConfigError::validation("store", e)))?;
    if config.ingest.enabled {
        let listener = tokio::net::TcpListener::bind(config.ingest.listen)
            .await
            .map_err(|source| AgentError::Listen {
                addr: config.ingest.listen,
                source,
            })?;
        let local_token = local_api::new_token(&config.agent.state_dir)
            .map_err(|e| AgentError::Config(ConfigError::validation("agent.state_dir", e)))?;
        let app = ingest::router(ingest::IngestState {
            buffer: buffer.clone(),
            health: health.clone(),
            max_body_bytes: config.ingest.max_body_bytes,
            agent_id: agent_id.clone(),
        })
        .merge(local_api::router(routines.clone(), local_token));
        tracing::info!(listen = %config.ingest.listen, "Ingest endpoint listening");
        let stop = token.clone();
        tracker.spawn(async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
            {
                tracing::error!(error = %e, "Ingest endpoint failed");
            }
        });
    }

    let options = sync::mqtt_options(&config, &agent_id)?;
    let http = storefleet_support::http::Client::new(
        &sync::tls::trust(&config.controller).map_err(SyncError::Tls)?,
    )?;
    let ctx = SyncContext {
        agent_id: agent_id.clone(),
        key: key.clone(),
        buffer: buffer.clone(),
        health: health.clone(),
        started_at,
        mqtt_password: config.controller.mqtt_password.clone(),
        max_bytes_per_sec: Arc::new(config.upload.max_bytes_per_sec.into()),
    };
    let upload_cap = ctx.max_bytes_per_sec.clone();
    let (client, down) = sync::start(
        options,
        config.sync.inflight,
        Backoff::new(config.sync.backoff_min_ms, config.sync.backoff_max_ms),
        ctx,
        token.clone(),
        &tracker,
    );

    let (reload_tx, mut reload_rx) = mpsc::channel(4);
    let controller_key = if config.controller.public_key.is_empty() {
        tracing::warn!(
            "No controller key pinned (controller.public_key): every command will be refused"
        );
        None
    } else {
        PublicKey::from_base64(&config.controller.public_key).ok()
    };
    tracker.spawn(commands::run(
        down,
        client.clone(),
        CommandContext {
            agent_id: agent_id.clone(),
            controller_key,
            buffer: buffer.clone(),
            health: health.clone(),
            started_at,
            reload: reload_tx,
            routines: routines.clone(),
            dropin_dir: source.dropin_dir.clone(),
            remote_config: config.controller.remote_config.clone(),
            updater: crate::update::Updater {
                state_dir: config.agent.state_dir.clone(),
                release_key: PublicKey::from_base64(&config.update.release_key).ok(),
                max_bytes: config.update.max_bytes,
                installed: std::env::var_os(crate::update::SUPERVISOR_ENV).map(Into::into),
                shutdown: token.clone(),
                http,
            },
        },
    ));

    tracker.spawn(crate::update::settle(
        config.agent.state_dir.clone(),
        health.clone(),
        buffer.clone(),
        token.clone(),
    ));
    let mut collectors = spawn_collectors(&config, &buffer, &health, &token, &tracker);
    let mut triggers = spawn_triggers(&config, &routines, &buffer, &token, &tracker);
    let mut current = config;
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        let reply = tokio::select! {
            () = token.cancelled() => break,
            r = reload_rx.recv() => r,
            Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => None,
        };
        let outcome = match config::load(&source) {
            Ok(new) => {
                let dir = routines::runner::routine_dir(&new, source.file.as_deref());
                match routines.reload(&new, &dir) {
                    Ok(n) => {
                        let summary =
                            format!("{}; {n} routine(s)", describe_changes(&current, &new));
                        collectors.cancel();
                        collectors = spawn_collectors(&new, &buffer, &health, &token, &tracker);
                        buffer.set_upload(new.upload.policy(&new.store));
                        upload_cap.store(
                            new.upload.max_bytes_per_sec,
                            std::sync::atomic::Ordering::Relaxed,
                        );
                        triggers.cancel();
                        triggers = spawn_triggers(&new, &routines, &buffer, &token, &tracker);
                        current = new;
                        tracing::info!(%summary, "Configuration reloaded");
                        Ok(summary)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "Configuration reload refused; keeping the running configuration");
                        Err(e)
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "Configuration reload refused; keeping the running configuration");
                Err(e.to_string())
            }
        };
        if let Some(reply) = reply {
            let _ = reply.send(outcome);
        }
    }

    tracing::info!("Agent stopping");
    collectors.cancel();
    tracker.close();
    if tokio::time::timeout(Duration::from_secs(10), tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("Some tasks did not stop within 10 s");
    }
    // Every holder of the buffer lets go, so that its thread sees the queue close and
    // finishes (the routine runner holds one too).
    drop(client);
    drop(routines);
    drop(buffer);
    let joined = tokio::task::spawn_blocking(move || buffer_thread.join());
    if tokio::time::timeout(Duration::from_secs(10), joined)
        .await
        .is_err()
    {
        tracing::warn!("Buffer thread did not stop within 10 s");
    }
    tracing::info!("Agent stopped");
    Ok(())
}

/// Starts the routine triggers (cron in the store's zone, conditions) under a child token.
fn spawn_triggers(
    config: &Config,
    routines: &Runner,
    buffer: &Buffer,
    token: &CancellationToken,
    tracker: &TaskTracker,
) -> CancellationToken {
    let child = token.child_token();
    let tz = config
        .store
        .store_time()
        .map_or(jiff::tz::TimeZone::UTC, |s| s.zone().clone());
    tracker.spawn(routines::triggers::run(
        routines.clone(),
        tz,
        buffer.latest.clone(),
        child.clone(),
    ));
    child
}

/// Starts host, probe, inventory and health reporting under a child token.
fn spawn_collectors(
    config: &Config,
    buffer: &Buffer,
    health: &Arc<Health>,
    token: &CancellationToken,
    tracker: &TaskTracker,
) -> CancellationToken {
    let child = token.child_token();
    if config.host.interval_secs > 0 {
        tracker.spawn(host::run(
            Duration::from_secs(config.host.interval_secs),
            buffer.clone(),
            child.clone(),
        ));
    }
    let identities = Arc::new(inventory::Identities::default());
    let mut senders = Vec::new();
    for d in config.devices.iter().filter(|d| d.probe != Probe::Push) {
        let poke = Arc::new(tokio::sync::Notify::new());
        if let Probe::Snmp(t) = &d.probe {
            senders.push(snmp::traps::Sender {
                id: d.id.clone(),
                class: d.class.clone(),
                address: t.address.clone(),
                poke: poke.clone(),
            });
        }
        tracker.spawn(probe::run(
            d.clone(),
            buffer.clone(),
            identities.clone(),
            poke,
            child.clone(),
        ));
    }
    if !config.snmp.trap_listen.is_empty() {
        tracker.spawn(snmp::traps::run(
            config.snmp.trap_listen.clone(),
            config.snmp.clone(),
            senders,
            buffer.clone(),
            child.clone(),
        ));
    }
    if !config.discovery.subnets.is_empty() && config.discovery.interval_hours > 0 {
        tracker.spawn(crate::discover::run(
            config.clone(),
            config.agent.state_dir.join("discovered.json"),
            identities.clone(),
            child.clone(),
        ));
    }
    tracker.spawn(inventory::run(
        config.devices.clone(),
        config.inventory.gateway.clone(),
        Duration::from_secs(config.inventory.interval_secs.max(1)),
        identities,
        buffer.clone(),
        child.clone(),
    ));
    if config.agent.health_interval_secs > 0 {
        tracker.spawn(report_health(
            Duration::from_secs(config.agent.health_interval_secs),
            buffer.clone(),
            health.clone(),
            child.clone(),
        ));
    }
    child
}

/// Sends the agent's own health as telemetry, with the publish rate since the last report.
async fn report_health(
    interval: Duration,
    buffer: Buffer,
    health: Arc<Health>,
    token: CancellationToken,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut tick = tokio::time::interval(interval);
    tick.tick().await;
    let mut last = (now_ms(), health.points_acked.load(Relaxed));
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            _ = tick.tick() => {}
        }
        let t = now_ms();
        let acked = health.points_acked.load(Relaxed);
        let rate = (acked - last.1) as f64 * 1000.0 / (t - last.0).max(1) as f64;
        last = (t, acked);
        let mut points = health.as_points(t);
        points.push(("agent.publish_rate_pps".into(), rate));
        if let Err(e) = buffer.add_points(SeriesIn::snapshot(None, t, points)).await {
            tracing::warn!(error = %e, "Cannot buffer agent health");
        }
    }
}

/// What a reload changed, and which changes need a restart.
fn describe_changes(old: &Config, new: &Config) -> String {
    let mut applied = Vec::new();
    let mut restart = Vec::new();
    if old.devices != new.devices {
        applied.push("devices");
    }
    if old.host != new.host {
        applied.push("host");
    }
    if old.inventory != new.inventory {
        applied.push("inventory");
    }
    if old.snmp != new.snmp {
        applied.push("snmp");
    }
    if old.upload != new.upload || old.store != new.store {
        applied.push("upload");
    }
    if old.agent.health_interval_secs != new.agent.health_interval_secs {
        applied.push("agent.health_interval_secs");
    }
    for (name, changed) in [
        (
            "agent",
            old.agent.id != new.agent.id
                || old.agent.store != new.agent.store
                || old.agent.state_dir != new.agent.state_dir,
        ),
        ("controller", old.controller != new.controller),
        ("sync", old.sync != new.sync),
        ("buffer", old.buffer != new.buffer),
        ("ingest", old.ingest != new.ingest),
    ] {
        if changed {
            restart.push(name);
        }
    }
    let mut s = if applied.is_empty() {
        "no change applied".to_owned()
    } else {
        format!("applied: {}", applied.join(", "))
    };
    if !restart.is_empty() {
        s += "; restart needed for: ";
        s += &restart.join(", ");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_summary_separates_applied_from_restart() {
        let old = Config::default();
        let mut new = Config::default();
        new.host.interval_secs = 5;
        new.controller.mqtt_url = "mqtt://other:1883".into();
        let s = describe_changes(&old, &new);
        assert_eq!(s, "applied: host; restart needed for: controller");
        assert_eq!(describe_changes(&old, &old), "no change applied");
    }
}
