//! The agent's routines at run time: the loaded routines (from `routines.d/`), one run at a
//! time per routine, the window check, and the records: every run, whatever started it,
//! becomes a buffered `routine-run` record, and a failed or escalated one also raises a
//! `routine.escalated`/`routine.failed` event carrying the record (the controller turns it
//! into a ticket). Both are in the never-dropped class of the buffer, so a run while the
//! store's line is down reaches the controller when it returns.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use storefleet_protocol::message::{Event, Severity};
use storefleet_protocol::routine::{RunRecord, Trigger};
use storefleet_schedule::StoreTime;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::actions::Cx;
use super::doc::Routine;
use super::shell::{execute, skipped, window_allows, Blocked, Prepared};
use crate::buffer::Buffer;
use crate::config::Config;
use crate::health::Health;

/// Why a run could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// No routine of that name is loaded.
    #[error("no routine named {0:?} (see `storefleet-agent routine list`)")]
    Unknown(String),
    /// The routine is running now.
    #[error("routine {0:?} is running already")]
    Busy(String),
    /// The document or a step is not acceptable here.
    #[error("{0}")]
    Refused(String),
    /// Routines are switched off in the config.
    #[error("routines are disabled on this agent (routines.enabled = false)")]
    Disabled,
}

/// Loaded routines and the problems met loading them.
#[derive(Debug, Default)]
pub struct Loaded {
    /// By name.
    pub routines: BTreeMap<String, Arc<Prepared>>,
    /// One line per file that was not loaded.
    pub problems: Vec<String>,
}

/// The routine directory of a config whose main file is `config_file`.
pub fn routine_dir(config: &Config, config_file: Option<&Path>) -> PathBuf {
    let dir = &config.routines.dir;
    if dir.is_absolute() {
        return dir.clone();
    }
    config_file
        .and_then(Path::parent)
        .map_or_else(|| dir.clone(), |p| p.join(dir))
}

/// Reads every `*.toml` in `dir`: parsed, validated and held to the config. A missing
/// directory is no routines; a bad file is skipped with its problem noted. Two files with
/// one routine name: the higher version wins.
pub fn load_dir(dir: &Path, config: &Config) -> Loaded {
    let mut out = Loaded::default();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return out,
        Err(e) => {
            out.problems.push(format!("{}: {e}", dir.display()));
            return out;
        }
    };
    files.sort();
    for f in files {
        let origin = f.display().to_string();
        let r = std::fs::read_to_string(&f)
            .map_err(|e| format!("{origin}: {e}"))
            .and_then(|text| Routine::parse(&text, &origin).map_err(|e| e.to_string()))
            .and_then(|r| Prepared::new(r, &config.routines).map_err(|e| format!("{origin}: {e}")));
        match r {
            Ok(p) => {
                let keep = out
                    .routines
                    .get(&p.routine.name)
                    .is_none_or(|old| old.routine.version < p.routine.version);
                if keep {
                    out.routines.insert(p.routine.name.clone(), Arc::new(p));
                }
            }
            Err(e) => out.problems.push(e),
        }
    }
    out
}

struct State {
    routines: BTreeMap<String, Arc<Prepared>>,
    cx: Cx,
    store: StoreTime,
    enabled: bool,
}

/// The routines of a running agent. Cheap to clone.
#[derive(Clone)]
pub struct Runner {
    state: Arc<RwLock<Arc<State>>>,
    running: Arc<Mutex<HashSet<String>>>,
    buffer: Buffer,
    health: Arc<Health>,
    stop: CancellationToken,
    tracker: TaskTracker,
}

fn state(config: &Config, loaded: Loaded) -> Result<State, String> {
    Ok(State {
        routines: loaded.routines,
        cx: Cx {
            policy: config.routines.clone(),
        },
        store: config.store.store_time().map_err(|e| e.to_string())?,
        enabled: config.routines.enabled,
    })
}

/// Releases a routine's running mark when the run ends, however it ends.
struct Running(Arc<Mutex<HashSet<String>>>, String);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(mut set) = self.0.lock() {
            set.remove(&self.1);
        }
    }
}

impl Runner {
    /// Routines of `config` from `dir`; load problems are logged.
    pub fn new(
        config: &Config,
        dir: &Path,
        buffer: Buffer,
        health: Arc<Health>,
        stop: CancellationToken,
        tracker: TaskTracker,
    ) -> Result<Runner, String> {
        let loaded = load_dir(dir, config);
        log_loaded(dir, &loaded);
        Ok(Runner {
            state: Arc::new(RwLock::new(Arc::new(state(config, loaded)?))),
            running: Arc::default(),
            buffer,
            health,
            stop,
            tracker,
        })
    }

    /// Runs `fut` (a run and what follows it) as a task the agent waits for on shutdown,
    /// so that an interrupted run's record is still buffered.
    pub fn spawn<F>(&self, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(fut);
    }

    /// Loads the routines again (on a config reload); runs in progress finish as they were.
    pub fn reload(&self, config: &Config, dir: &Path) -> Result<usize, String> {
        let loaded = load_dir(dir, config);
        log_loaded(dir, &loaded);
        let n = loaded.routines.len();
        let s = Arc::new(state(config, loaded)?);
        if let Ok(mut w) = self.state.write() {
            *w = s;
        }
        Ok(n)
    }

    fn current(&self) -> Arc<State> {
        self.state
            .read()
            .map_or_else(|p| p.into_inner().clone(), |s| s.clone())
    }

    /// The loaded routines.
    pub fn list(&self) -> Vec<Arc<Prepared>> {
        self.current().routines.values().cloned().collect()
    }

    /// A loaded routine.
    pub fn get(&self, name: &str) -> Option<Arc<Prepared>> {
        self.current().routines.get(name).cloned()
    }

    /// Prepares a document from the controller under the config in force.
    pub fn prepare(&self, text: &str, origin: &str) -> Result<Arc<Prepared>, RunError> {
        let r = Routine::parse(text, origin).map_err(|e| RunError::Refused(e.to_string()))?;
        Prepared::new(r, &self.current().cx.policy)
            .map(Arc::new)
            .map_err(RunError::Refused)
    }

    /// Runs a routine now (or records it skipped outside its window) and buffers the
    /// record; returns it.
    pub async fn run(
        &self,
        p: Arc<Prepared>,
        id: String,
        trigger: Trigger,
        ignore_window: bool,
    ) -> Result<RunRecord, RunError> {
        let st = self.current();
        if !st.enabled {
            return Err(RunError::Disabled);
        }
        let name = p.routine.name.clone();
        let _mark = {
            let mut set = self
                .running
                .lock()
                .map_err(|_| RunError::Busy(name.clone()))?;
            if !set.insert(name.clone()) {
                return Err(RunError::Busy(name));
            }
            Running(self.running.clone(), name.clone())
        };
        let record = match (
            ignore_window,
            window_allows(&p.routine, &st.store, jiff::Timestamp::now()),
        ) {
            (false, Err(Blocked::Window(why))) => skipped(&p.routine, id, trigger, why),
            _ => {
                tracing::info!(routine = %name, run = %id, "Routine starting");
                execute(&p, &st.cx, id, trigger, &self.stop).await
            }
        };
        tracing::info!(
            routine = %name,
            run = %record.id,
            outcome = record.outcome.as_str(),
            reason = %record.reason,
            "Routine finished"
        );
        Health::add(&self.health.routine_runs, 1);
        if record.outcome.needs_a_person() {
            Health::add(&self.health.routine_escalations, 1);
        }
        self.keep(&record).await;
        Ok(record)
    }

    /// Buffers the record and, when a person is needed, the escalation event. Retries a
    /// full or busy buffer for a while: the record of a run is not to be lost.
    async fn keep(&self, record: &RunRecord) {
        let event = record.outcome.needs_a_person().then(|| escalation(record));
        for attempt in 0..60 {
            let r = match self.buffer.add_run(record.clone()).await {
                Ok(_) => match &event {
                    Some(ev) => self.buffer.add_event(ev.clone()).await.map(|_| ()),
                    None => Ok(()),
                },
                Err(e) => Err(e),
            };
            match r {
                Ok(()) => return,
                Err(e) if e.is_transient() && attempt < 59 => {
                    tracing::warn!(error = %e, run = %record.id, "Cannot buffer the run record yet; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, run = %record.id, "Run record could not be buffered");
                    return;
                }
            }
        }
    }
}

/// The event that asks for a person: code `routine.failed` or `routine.escalated`.
pub fn escalation(r: &RunRecord) -> Event {
    let last = r
        .steps
        .iter()
        .rev()
        .find(|s| !s.ok)
        .map(|s| format!(": {} ({})", s.name, s.output))
        .unwrap_or_default();
    let mut data = serde_json::Map::new();
    data.insert(
        "run".into(),
        serde_json::to_value(r).unwrap_or(serde_json::Value::Null),
    );
    Event {
        id: format!("esc:{}", r.id),
        ts: r.finished_at,
        device: r.device.clone(),
        code: format!("routine.{}", r.outcome.as_str()),
        severity: Severity::Error,
        message: format!("routine {} {}{last}", r.routine, r.outcome.as_str()),
        data,
    }
}

fn log_loaded(dir: &Path, loaded: &Loaded) {
    for p in &loaded.problems {
        tracing::error!(problem = %p, "Routine not loaded");
    }
    tracing::info!(
        dir = %dir.display(),
        routines = loaded.routines.len(),
        refused = loaded.problems.len(),
        "Routines loaded"
    );
}
