//! Self-update: a release signed with the release key, downloaded with resume, checked,
//! started on trial, kept only once it is connected and reporting, and rolled back by
//! itself otherwise.
//!
//! It needs the agent to run under its supervisor (`storefleet-agent supervise`, what the
//! systemd unit starts): the supervisor is the installed binary, which starts the current
//! version as a worker process and watches a trial. A worker that takes an update:
//!
//! 1. picks the release of its architecture, checks the manifest's signature with the
//!    pinned `update.release_key` (before downloading anything);
//! 2. downloads it to `update/storefleet-agent-VERSION.part` in the state directory,
//!    resuming what an earlier attempt left, and checks size and SHA-256 against the
//!    manifest; only then is it moved to `bin/storefleet-agent-VERSION` and made executable;
//! 3. writes `update/state.json` (written to a temporary file, synced and renamed: the swap
//!    is atomic) with the new version as current, itself as previous, and a trial with a
//!    deadline; then it stops cleanly with exit code [`RESTART_CODE`].
//!
//! The supervisor starts the new version. The new worker confirms its trial once it is
//! connected and the broker acknowledged something it sent, and answers the command. If
//! it exits before confirming, or the deadline passes, the supervisor puts the previous
//! version back and starts it; that worker answers the command with the failure.

pub mod supervisor;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use storefleet_protocol::message::{CommandResult, CommandStatus};
use storefleet_protocol::release::{sha256_hex, Release};
use storefleet_protocol::{now_ms, PublicKey};

use crate::buffer::Buffer;
use crate::health::Health;
use crate::sync::AGENT_VERSION;

/// Exit code of a worker that stopped to let the supervisor start a new version.
pub const RESTART_CODE: i32 = 75;

/// Set by the supervisor for its worker: the path of the installed binary.
pub const SUPERVISOR_ENV: &str = "STOREFLEET_AGENT_SUPERVISOR";

/// Shortest and longest confirmation time a command may ask for.
const CONFIRM_SECS: std::ops::RangeInclusive<u64> = 10..=3600;

/// A binary of some version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// Its version.
    pub version: String,
    /// Where it is.
    pub path: PathBuf,
}

/// A new version on trial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trial {
    /// The version on trial.
    pub version: String,
    /// The version it replaces.
    pub from: String,
    /// The update command, answered when the trial ends.
    pub command: String,
    /// Confirm by then (ms), or it is rolled back.
    pub deadline: i64,
    /// Connected and reporting.
    pub confirmed: bool,
}

/// How the last update ended, until its command is answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ended {
    /// The update command.
    pub command: String,
    /// Kept.
    pub ok: bool,
    /// For people.
    pub message: String,
}

/// `update/state.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// The version to run; `None`: the installed binary.
    pub current: Option<Slot>,
    /// The version before it.
    pub previous: Option<Slot>,
    /// A version on trial.
    pub trial: Option<Trial>,
    /// An ended update whose command is not answered yet.
    pub ended: Option<Ended>,
}

/// The update directory in `state_dir`.
pub fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("update")
}

fn state_path(state_dir: &Path) -> PathBuf {
    dir(state_dir).join("state.json")
}

impl State {
    /// Reads the state; a missing file is the empty state, a damaged one is an error.
    pub fn load(state_dir: &Path) -> Result<State, String> {
        let path = state_path(state_dir);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Writes the state atomically: a temporary file, synced, renamed over the old one.
    pub fn save(&self, state_dir: &Path) -> Result<(), String> {
        let path = state_path(state_dir);
        let d = dir(state_dir);
        let err = |e: std::io::Error| format!("{}: {e}", path.display());
        std::fs::create_dir_all(&d).map_err(err)?;
        let tmp = d.join("state.json.tmp");
        let text = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        {
            use std::io::Write as _;
            let mut f = std::fs::File::create(&tmp).map_err(err)?;
            f.write_all(&text).map_err(err)?;
            f.sync_all().map_err(err)?;
        }
        std::fs::rename(&tmp, &path).map_err(err)?;
        if let Ok(dirf) = std::fs::File::open(&d) {
            let _ = dirf.sync_all();
        }
        Ok(())
    }
}

static RESTART: AtomicBool = AtomicBool::new(false);

/// The worker stopped for an update: `main` exits with [`RESTART_CODE`].
pub fn restart_requested() -> bool {
    RESTART.load(Ordering::SeqCst)
}

/// What the command handler needs for updates.
#[derive(Debug, Clone)]
pub struct Updater {
    /// The agent's state directory.
    pub state_dir: PathBuf,
    /// `update.release_key`, if pinned.
    pub release_key: Option<PublicKey>,
    /// `update.max_bytes`.
    pub max_bytes: u64,
    /// The installed binary, when running under the supervisor.
    pub installed: Option<PathBuf>,
    /// Stops the agent (for the restart into the new version).
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Downloads, trusting what the agent trusts of its controller.
    pub http: storefleet_support::http::Client,
}

/// What the checks of an update command found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// This release is to be taken.
    Take(Release),
    /// This agent already runs that version.
    AlreadyRunning,
}

/// Why an update was refused or failed; `Rejected` ones were never tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateError {
    /// Refused: no key, not supervised, bad signature, no release for this machine.
    Rejected(String),
    /// Tried and failed (download, disk).
    Failed(String),
}

impl Updater {
    /// Checks an update command before anything is fetched: the release key, the
    /// supervisor, a release for this machine, its signature, its size, the deadline.
    pub fn check(&self, releases: &[Release], confirm_secs: u64) -> Result<Checked, UpdateError> {
        use UpdateError::Rejected;
        let key = self.release_key.ok_or_else(|| {
            Rejected("no release key pinned (update.release_key): updates are refused".into())
        })?;
        if self.installed.is_none() {
            return Err(Rejected(
                "the agent is not running under its supervisor (storefleet-agent supervise), which updates need to roll back"
                    .into(),
            ));
        }
        let arch = std::env::consts::ARCH;
        let r = releases.iter().find(|r| r.arch == arch).ok_or_else(|| {
            Rejected(format!(
                "no release for {arch} in the command (it has {})",
                releases
                    .iter()
                    .map(|r| r.arch.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        // The signature before anything else: nothing is fetched for a forged manifest.
        r.verify(&key).map_err(|e| Rejected(e.to_string()))?;
        if r.size > self.max_bytes {
            return Err(Rejected(format!(
                "release {} is {} bytes; update.max_bytes allows {}",
                r.version, r.size, self.max_bytes
            )));
        }
        if !CONFIRM_SECS.contains(&confirm_secs) {
            return Err(Rejected(format!(
                "confirm_secs {confirm_secs}: expected {} to {}",
                CONFIRM_SECS.start(),
                CONFIRM_SECS.end()
            )));
        }
        if r.version == AGENT_VERSION {
            return Ok(Checked::AlreadyRunning);
        }
        if State::load(&self.state_dir)
            .map_err(UpdateError::Failed)?
            .trial
            .is_some_and(|t| !t.confirmed)
        {
            return Err(Rejected("an update is already on trial".into()));
        }
        Ok(Checked::Take(r.clone()))
    }

    /// Takes a checked release: download (resuming), check the binary, swap, and stop for
    /// the supervisor to start it. Returns what it did.
    pub async fn install(
        &self,
        command: &str,
        r: &Release,
        base_url: &str,
        confirm_secs: u64,
    ) -> Result<String, UpdateError> {
        use UpdateError::Failed;
        let installed = self.installed.clone().unwrap_or_default();
        let mut state = State::load(&self.state_dir).map_err(Failed)?;
        let d = dir(&self.state_dir);
        tokio::fs::create_dir_all(&d)
            .await
            .map_err(|e| Failed(format!("{}: {e}", d.display())))?;
        let part = d.join(format!("storefleet-agent-{}.part", r.version));
        let url = format!(
            "{}/{}/{}",
            base_url.trim_end_matches('/'),
            r.version,
            r.arch
        );
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .http
                .download(&url, &part, self.max_bytes, Duration::from_secs(30))
                .await
            {
                Ok(_) => break,
                Err(e) if attempt < 5 => {
                    tracing::warn!(error = %e, attempt, "Release download interrupted; resuming");
                    tokio::time::sleep(Duration::from_secs(2 * attempt)).await;
                }
                Err(e) => return Err(Failed(e.to_string())),
            }
        }
        let bytes = tokio::fs::read(&part)
            .await
            .map_err(|e| Failed(format!("{}: {e}", part.display())))?;
        if let Err(e) = r.check_binary(bytes.len() as u64, &sha256_hex(&bytes)) {
            // A wrong file is not resumed from: the next attempt starts over.
            let _ = tokio::fs::remove_file(&part).await;
            return Err(Failed(e.to_string()));
        }
        let bin_dir = self.state_dir.join("bin");
        let target = bin_dir.join(format!("storefleet-agent-{}", r.version));
        let io = |e: std::io::Error| Failed(format!("{}: {e}", target.display()));
        tokio::fs::create_dir_all(&bin_dir).await.map_err(io)?;
        {
            use std::os::unix::fs::PermissionsExt as _;
            tokio::fs::set_permissions(&part, std::fs::Permissions::from_mode(0o755))
                .await
                .map_err(io)?;
        }
        tokio::fs::rename(&part, &target).await.map_err(io)?;
        let running = state.current.clone().unwrap_or(Slot {
            version: AGENT_VERSION.into(),
            path: installed,
        });
        state.previous = Some(running);
        state.current = Some(Slot {
            version: r.version.clone(),
            path: target,
        });
        state.trial = Some(Trial {
            version: r.version.clone(),
            from: AGENT_VERSION.into(),
            command: command.into(),
            deadline: now_ms() + (confirm_secs as i64) * 1000,
            confirmed: false,
        });
        state.ended = None;
        state.save(&self.state_dir).map_err(Failed)?;
        tracing::info!(from = AGENT_VERSION, to = %r.version, "Update in place; restarting into it");
        RESTART.store(true, Ordering::SeqCst);
        self.shutdown.cancel();
        Ok(format!("{} downloaded and checked; starting it", r.version))
    }
}

/// At start: confirms a trial of this version once connected and reporting, and answers
/// the command of an update that ended (kept, or rolled back by the supervisor).
pub async fn settle(
    state_dir: PathBuf,
    health: Arc<Health>,
    buffer: Buffer,
    token: tokio_util::sync::CancellationToken,
) {
    let mut state = match State::load(&state_dir) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "Update state unreadable");
            return;
        }
    };
    if let Some(t) = state
        .trial
        .clone()
        .filter(|t| !t.confirmed && t.version == AGENT_VERSION)
    {
        tracing::info!(version = %t.version, "On trial: confirming once connected and reporting");
        while health.messages_acked.load(Ordering::Relaxed) == 0 {
            tokio::select! {
                () = token.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
        // The supervisor may have given up meanwhile: only confirm what is still ours.
        state = match State::load(&state_dir) {
            Ok(s) => s,
            Err(_) => return,
        };
        let Some(trial) = state.trial.as_mut().filter(|x| x.command == t.command) else {
            return;
        };
        trial.confirmed = true;
        state.ended = Some(Ended {
            command: t.command.clone(),
            ok: true,
            message: format!("updated from {} to {}", t.from, t.version),
        });
        if let Err(e) = state.save(&state_dir) {
            tracing::error!(error = %e, "Cannot confirm the update");
            return;
        }
        tracing::info!(version = %t.version, "Update confirmed");
    }
    let Some(ended) = state.ended.clone() else {
        return;
    };
    let result = CommandResult {
        command_id: ended.command.clone(),
        status: if ended.ok {
            CommandStatus::Ok
        } else {
            CommandStatus::Failed
        },
        message: ended.message.clone(),
        data: serde_json::json!({"agent_version": AGENT_VERSION}),
        finished_at: now_ms(),
    };
    match buffer.add_result(result).await {
        Ok(_) => {
            if let Ok(mut s) = State::load(&state_dir) {
                if s.ended.as_ref() == Some(&ended) {
                    s.ended = None;
                    if s.trial.as_ref().is_some_and(|t| t.confirmed) {
                        s.trial = None;
                    }
                    let _ = s.save(&state_dir);
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "Cannot buffer the update's result"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_damage_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(State::load(d.path()).unwrap(), State::default());
        let s = State {
            current: Some(Slot {
                version: "0.2.0".into(),
                path: "/x/bin/storefleet-agent-0.2.0".into(),
            }),
            trial: Some(Trial {
                version: "0.2.0".into(),
                from: "0.1.0".into(),
                command: "c-1".into(),
                deadline: 5,
                confirmed: false,
            }),
            ..State::default()
        };
        s.save(d.path()).unwrap();
        assert_eq!(State::load(d.path()).unwrap(), s);
        std::fs::write(d.path().join("update/state.json"), "{").unwrap();
        assert!(State::load(d.path()).unwrap_err().contains("state.json"));
    }
}
