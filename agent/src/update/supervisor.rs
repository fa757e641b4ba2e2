//! The supervisor (`storefleet-agent supervise`): the installed binary, which runs the
//! current version as a worker (`storefleet-agent run`), passes SIGTERM, SIGINT and SIGHUP
//! on to it, starts the new version when a worker stops for an update, and rolls a trial
//! back when the new version exits or stays unconfirmed past its deadline. It keeps no
//! state of its own beyond `update/state.json`, so a supervisor that is restarted (or a
//! gateway that loses power mid-trial) picks up where it was: an unconfirmed trial whose
//! worker is gone is rolled back.
//!
//! Outside a trial a worker's exit ends the supervisor with the same code, and the
//! service manager decides (the systemd unit restarts it on failure).

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use storefleet_protocol::now_ms;
use tokio::process::{Child, Command};
use tokio::signal::unix::{signal as listen, SignalKind};

use super::{Ended, State, RESTART_CODE, SUPERVISOR_ENV};

/// What the supervisor was told to run.
#[derive(Debug, Clone)]
pub struct Supervise {
    /// The installed binary (this one).
    pub installed: PathBuf,
    /// The agent's config file, passed on to the worker.
    pub config: PathBuf,
    /// The agent's state directory.
    pub state_dir: PathBuf,
}

/// Puts the previous version back after a failed trial; says why for the next worker to
/// answer the update command.
fn roll_back(state_dir: &Path, why: &str) {
    let mut s = match State::load(state_dir) {
        Ok(s) => s,
        Err(e) => {
            // Unreadable state: the installed binary is the safe choice.
            tracing::error!(error = %e, "Update state unreadable; running the installed binary");
            State::default()
        }
    };
    let Some(t) = s.trial.take() else { return };
    tracing::warn!(version = %t.version, back_to = %t.from, reason = why, "Update failed its trial; rolling back");
    s.current = s.previous.take().filter(|p| p.path.exists());
    s.ended = Some(Ended {
        command: t.command,
        ok: false,
        message: format!("{} {why}; rolled back to {}", t.version, t.from),
    });
    if let Err(e) = s.save(state_dir) {
        tracing::error!(error = %e, "Cannot record the rollback");
    }
}

fn trial_open(state_dir: &Path) -> Option<super::Trial> {
    State::load(state_dir).ok()?.trial.filter(|t| !t.confirmed)
}

fn spawn(s: &Supervise, state: &State) -> std::io::Result<Child> {
    let exe = state
        .current
        .as_ref()
        .map_or(s.installed.clone(), |c| c.path.clone());
    Command::new(&exe)
        .arg("--config")
        .arg(&s.config)
        .arg("run")
        .env(SUPERVISOR_ENV, &s.installed)
        .kill_on_drop(true)
        .spawn()
}

/// Runs workers until one ends outside a trial (or on a signal); returns the exit code.
pub async fn run(s: &Supervise) -> i32 {
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        listen(SignalKind::terminate()),
        listen(SignalKind::interrupt()),
        listen(SignalKind::hangup()),
    ) else {
        tracing::error!("Cannot listen for signals");
        return 1;
    };
    loop {
        let state = State::load(&s.state_dir).unwrap_or_else(|e| {
            tracing::error!(error = %e, "Update state unreadable; running the installed binary");
            State::default()
        });
        let mut child = match spawn(s, &state) {
            Ok(c) => c,
            Err(e) if trial_open(&s.state_dir).is_some() => {
                roll_back(&s.state_dir, &format!("could not be started ({e})"));
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "Cannot start the agent");
                return 1;
            }
        };
        let pid = child.id().map(|p| Pid::from_raw(p as i32));
        let pass = |sig: Signal| {
            if let Some(pid) = pid {
                let _ = signal::kill(pid, sig);
            }
        };
        let mut stopping = false;
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let code = loop {
            tokio::select! {
                st = child.wait() => break st.map_or(1, |st| st.code().unwrap_or(128 + 9)),
                _ = term.recv() => { stopping = true; pass(Signal::SIGTERM); }
                _ = int.recv() => { stopping = true; pass(Signal::SIGINT); }
                _ = hup.recv() => pass(Signal::SIGHUP),
                _ = tick.tick() => {
                    if stopping {
                        continue;
                    }
                    if let Some(t) = trial_open(&s.state_dir) {
                        if now_ms() > t.deadline {
                            let _ = child.kill().await;
                            roll_back(&s.state_dir, "was not connected and reporting in time");
                            break RESTART_CODE;
                        }
                    }
                }
            }
        };
        if stopping {
            return code;
        }
        if code == RESTART_CODE {
            continue;
        }
        if trial_open(&s.state_dir).is_some() {
            roll_back(
                &s.state_dir,
                &format!("exited with code {code} before it confirmed"),
            );
            continue;
        }
        return code;
    }
}
