//! The task engine: one loop that drives every unfinished task's rollout.
//!
//! Each turn (at least every second, and at once when ingest stores a report) it reads who
//! is online and each store's hours, applies operators' requests and the agents' reports,
//! steps each rollout, stores what changed, and only then publishes the commands the
//! rollout asked for: a controller that dies between the two has marked a target sent that
//! never got its command, which the target's timeout shows, rather than sending a command
//! twice. Commands are signed with the controller key, addressed to one agent, expire with
//! the target's timeout, and carry a sequence number that only grows (reserved in the
//! database, never below the clock in microseconds, so that a new database cannot reuse
//! numbers agents have seen).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, QoS};
use storefleet_protocol::message::{Command, CommandAction};

use storefleet_protocol::{
    now_ms, Direction, Envelope, Kind, Message, SigningKey, Topic, CONTROLLER_ID,
};
use storefleet_schedule::{StoreTime, Window};
use storefleet_storage::{args, SqlExt as _};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::db::{self, Active, Request};
use super::TaskAction;
use crate::db::{Db, DbError};
use crate::rollout::{Action, Outcome, Phase, TargetState, World};

/// Longest pause between turns.
const TICK: Duration = Duration::from_secs(1);
/// Sequence numbers reserved per database write.
const SEQ_BLOCK: u64 = 10_000;
/// A command its agent has neither started nor answered is sent again after this long
/// (system time), with the same id, while the agent is online. Agents run an id once, so
/// a repeat is harmless; a command the broker lost (an embedded broker restarted with its
/// sessions, a session that expired) still arrives.
const RESEND_AFTER_MS: i64 = 30_000;
/// The shortest life a command is given, ms.
const MIN_COMMAND_LIFE_MS: i64 = 5_000;

/// The engine's clock: the system's, or one a test sets (windows and timeouts follow it;
/// envelopes always carry the real time, which agents check).
#[derive(Debug, Clone, Default)]
pub struct Clock(Option<Arc<AtomicI64>>);

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock(None)
    }

    /// A clock that stands at `ms` until set.
    pub fn manual(ms: i64) -> Clock {
        Clock(Some(Arc::new(AtomicI64::new(ms))))
    }

    /// Now, ms.
    pub fn now(&self) -> i64 {
        self.0
            .as_ref()
            .map_or_else(now_ms, |t| t.load(Ordering::SeqCst))
    }

    /// Moves a manual clock to `ms` (the system clock cannot be set).
    pub fn set(&self, ms: i64) {
        if let Some(t) = &self.0 {
            t.store(ms, Ordering::SeqCst);
        }
    }
}

/// What the engine needs.
#[derive(Clone)]
pub struct Settings {
    /// Broker URL.
    pub url: String,
    /// MQTT client id for the downlink connection.
    pub client_id: String,
    /// How to log in to the broker.
    pub login: crate::broker_auth::BrokerLogin,
    /// Silence after which an agent counts as offline, ms.
    pub offline_after_ms: i64,
    /// The clock.
    pub clock: Clock,
    /// Where agents download releases (`{public_url}/releases`).
    pub releases_url: String,
}

/// Why the engine cannot start.
#[derive(Debug, thiserror::Error)]
#[error("task engine: {0}")]
pub struct EngineError(String);

impl EngineError {
    /// An error saying `why`.
    pub fn new(why: String) -> EngineError {
        EngineError(why)
    }
}

/// Hands out the controller's downlink sequence numbers.
struct Sequencer {
    next: u64,
    end: u64,
}

impl Sequencer {
    async fn take(&mut self, db: &Db, n: u64) -> Result<u64, DbError> {
        if self.end - self.next < n {
            let want = n.max(SEQ_BLOCK);
            let floor = (now_ms().max(0) as u64).saturating_mul(1000);
            // One statement, so that two engines (replicas in a failover) never take the
            // same block.
            let end = db
                .write(move |c| {
                    let end = c.int(
                        "INSERT INTO meta(key, value) VALUES ('downlink_seq', CAST(?1 AS BIGINT) + ?2)
                         ON CONFLICT(key) DO UPDATE
                         SET value = CASE WHEN meta.value > ?1 THEN meta.value ELSE ?1 END + ?2
                         RETURNING value",
                        args![floor, want],
                        "value",
                    )?;
                    Ok(end.max(0) as u64)
                })
                .await?;
            self.next = end - want;
            self.end = end;
        }
        let first = self.next + 1;
        self.next += n;
        Ok(first)
    }
}

/// The world at one instant, as the rollout asks about it.
struct Snapshot<'a> {
    online: &'a HashSet<String>,
    hours: &'a HashMap<String, StoreHours>,
    places: &'a HashMap<String, (String, String)>,
    window: &'a Window,
    has_window: bool,
    at: jiff::Timestamp,
}

impl World for Snapshot<'_> {
    fn online(&self, agent: &str) -> bool {
        self.online.contains(agent)
    }

    fn in_window(&self, agent: &str) -> bool {
        if !self.has_window {
            return true;
        }
        // A store whose hours cannot be read never opens a window: it waits, visibly.
        self.places
            .get(agent)
            .and_then(|(store, _)| self.hours.get(store))
            .and_then(|h| h.parsed.as_ref())
            .is_some_and(|t| t.allows(self.window, self.at))
    }
}

struct Engine {
    db: Db,
    key: Arc<SigningKey>,
    client: AsyncClient,
    clock: Clock,
    offline_after_ms: i64,
    releases_url: String,
    seq: Sequencer,
    tasks: HashMap<String, Active>,
    hours: HashMap<String, StoreHours>,
    /// When each (task, agent) command was last published (system time); empty after a
    /// restart, so what was sent before it goes out again once.
    published: HashMap<(String, String), i64>,
}

/// A store's hours and zone as stored, and parsed (once, until they change).
struct StoreHours {
    zone: String,
    hours: String,
    parsed: Option<StoreTime>,
}

/// Starts the engine on `tracker`; `wake` makes it take a turn now.
pub fn start(
    settings: Settings,
    db: Db,
    key: Arc<SigningKey>,
    wake: Arc<Notify>,
    token: CancellationToken,
    tracker: &TaskTracker,
) -> Result<(), EngineError> {
    let mut o =
        crate::broker_auth::mqtt_options(&settings.url, &settings.client_id, &settings.login)
            .map_err(EngineError)?;
    o.set_keep_alive(Duration::from_secs(30))
        .set_clean_session(false)
        .set_inflight(1000)
        .set_max_packet_size(256 * 1024, 256 * 1024);
    let (client, mut eventloop) = AsyncClient::new(o, 10_000);
    let t = token.clone();
    tracker.spawn(async move {
        let mut delay = Duration::from_millis(100);
        let mut up = true;
        loop {
            let ev = tokio::select! {
                biased;
                () = t.cancelled() => break,
                ev = eventloop.poll() => ev,
            };
            match ev {
                Ok(_) => {
                    delay = Duration::from_millis(100);
                    up = true;
                }
                Err(e) => {
                    if up {
                        tracing::warn!(error = %e, "Task engine lost the broker; reconnecting (commands wait)");
                        up = false;
                    }
                    tokio::select! {
                        () = t.cancelled() => break,
                        () = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    });
    let mut engine = Engine {
        db,
        key,
        client,
        clock: settings.clock,
        offline_after_ms: settings.offline_after_ms,
        releases_url: settings.releases_url,
        seq: Sequencer { next: 0, end: 0 },
        tasks: HashMap::new(),
        hours: HashMap::new(),
        published: HashMap::new(),
    };
    tracker.spawn(async move {
        let mut failing = false;
        loop {
            match engine.turn().await {
                Ok(()) => failing = false,
                Err(DbError::Closed) => break,
                Err(e) => {
                    if !failing {
                        tracing::error!(error = %e, "Task engine turn failed; retrying");
                    }
                    failing = true;
                }
            }
            tokio::select! {
                () = token.cancelled() => break,
                () = wake.notified() => {}
                () = tokio::time::sleep(TICK) => {}
            }
        }
        let _ = engine.client.try_disconnect();
    });
    Ok(())
}

type Facts = (HashSet<String>, Vec<(String, String, String)>);

impl Engine {
    async fn turn(&mut self) -> Result<(), DbError> {
        let unfinished = self.db.read(db::unfinished).await?;
        let ids: HashSet<String> = unfinished.iter().map(|(id, _)| id.clone()).collect();
        for (id, request) in unfinished {
            if !self.tasks.contains_key(&id) {
                let task = id.clone();
                if let Some(active) = self.db.read(move |c| db::load(c, &task)).await? {
                    self.tasks.insert(id.clone(), active);
                }
            }
            if let Some(t) = self.tasks.get_mut(&id) {
                t.request = request;
            }
        }
        self.tasks.retain(|id, _| ids.contains(id));
        if self.tasks.is_empty() {
            return Ok(());
        }
        let judge_now = now_ms();
        let offline_after = self.offline_after_ms;
        let (online, stores): Facts = self
            .db
            .read(move |c| {
                let online = c
                    .all(
                        "SELECT id FROM agents WHERE revoked_at IS NULL AND presence = 'online'
                         AND last_seen >= ?1",
                        args![judge_now - offline_after],
                        |r| r.text("id"),
                    )?
                    .into_iter()
                    .collect();
                let stores = c.all(
                    "SELECT code, timezone, trading_hours FROM stores",
                    args![],
                    |r| {
                        Ok((
                            r.text("code")?,
                            r.text("timezone")?,
                            r.text("trading_hours")?,
                        ))
                    },
                )?;
                Ok((online, stores))
            })
            .await?;
        for (code, zone, hours) in stores {
            let same = self
                .hours
                .get(&code)
                .is_some_and(|h| h.zone == zone && h.hours == hours);
            if !same {
                let parsed = StoreTime::new(&hours, &zone).ok();
                self.hours.insert(
                    code,
                    StoreHours {
                        zone,
                        hours,
                        parsed,
                    },
                );
            }
        }
        // Lent to the steps, which also need the engine mutably.
        let hours = std::mem::take(&mut self.hours);
        let mut result = Ok(());
        let ids: Vec<String> = self.tasks.keys().cloned().collect();
        for id in ids {
            result = self.step_task(&id, &online, &hours).await;
            if result.is_err() {
                break;
            }
        }
        self.hours = hours;
        result
    }

    async fn step_task(
        &mut self,
        id: &str,
        online: &HashSet<String>,
        hours: &HashMap<String, StoreHours>,
    ) -> Result<(), DbError> {
        let task = id.to_owned();
        let reports = self.db.read(move |c| db::pending_reports(c, &task)).await?;
        let now = self.clock.now();
        let Some(task) = self.tasks.get_mut(id) else {
            return Ok(());
        };
        let r = &mut task.rollout;
        let before: Vec<TargetState> = r.targets().iter().map(|t| t.state).collect();
        let phase_before = r.phase().clone();
        let request = task.request.take();
        match request {
            Some(Request::Pause) => r.pause(),
            Some(Request::Resume) => r.resume(),
            Some(Request::Cancel) => r.cancel(),
            None => {}
        }
        for rep in &reports {
            if rep.started {
                r.started(&rep.agent);
            }
            let outcome = match rep.reported.as_deref() {
                Some("ok") => Some(Outcome::Succeeded),
                Some("failed") => Some(Outcome::Failed),
                Some("rejected") => Some(Outcome::Rejected),
                Some("skipped") => Some(Outcome::Skipped),
                _ => None,
            };
            if let Some(o) = outcome {
                r.result(&rep.agent, o);
            }
        }
        let world = Snapshot {
            online,
            hours,
            places: &task.places,
            window: &task.spec.window,
            has_window: task.spec.has_window(),
            at: jiff::Timestamp::from_millisecond(now).unwrap_or(jiff::Timestamp::UNIX_EPOCH),
        };
        let actions = r.step(now, &world);
        let changed: Vec<(String, TargetState)> = r
            .targets()
            .iter()
            .zip(&before)
            .filter(|(t, b)| t.state != **b)
            .map(|(t, _)| (t.agent.clone(), t.state))
            .collect();
        let phase = r.phase().clone();
        if phase != phase_before {
            match &phase {
                Phase::Aborted { failures, finished } => tracing::warn!(
                    task = id,
                    failures,
                    finished,
                    "Task aborted: failures over its threshold; what was not sent is cancelled"
                ),
                p => tracing::info!(task = id, phase = db::phase_name(p), "Task phase changed"),
            }
        }
        let timeout = task.spec.plan.target_timeout_ms;
        let mut sends: Vec<(String, i64)> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Send(agent) => Some((agent.clone(), timeout)),
                Action::Finished => None,
            })
            .collect();
        // Sent and neither started nor answered: again, for what is left of its timeout. A
        // target this very step moved to Sent is being sent above, not again here.
        let real = now_ms();
        let sending: HashSet<String> = sends.iter().map(|(a, _)| a.clone()).collect();
        for t in r.targets() {
            if let TargetState::Sent { at } = t.state {
                if sending.contains(&t.agent) {
                    continue;
                }
                let last = self.published.get(&(id.to_owned(), t.agent.clone()));
                if online.contains(&t.agent) && last.is_none_or(|l| real - l >= RESEND_AFTER_MS) {
                    sends.push((t.agent.clone(), timeout - (now - at)));
                }
            }
        }
        let finished = r.finished();
        if changed.is_empty() && reports.is_empty() && request.is_none() && phase == phase_before {
            if !sends.is_empty() {
                self.send(id, &sends).await?;
            }
            return Ok(());
        }
        let snapshot = r.clone();
        let task = id.to_owned();
        self.db
            .write(move |c| {
                db::save(c, &task, &changed, &snapshot, now)?;
                db::clear_reports(c, &task, &reports)?;
                if let Some(applied) = request {
                    db::clear_request(c, &task, applied)?;
                }
                Ok(())
            })
            .await?;
        if !sends.is_empty() {
            self.send(id, &sends).await?;
        }
        if finished {
            tracing::info!(task = id, phase = db::phase_name(&phase), "Task finished");
            self.tasks.remove(id);
            self.published.retain(|(task, _), _| task != id);
        }
        Ok(())
    }

    /// Publishes the task's command to each agent, to live `ms` (at least a few seconds).
    async fn send(&mut self, id: &str, agents: &[(String, i64)]) -> Result<(), DbError> {
        let Some(task) = self.tasks.get(id) else {
            return Ok(());
        };
        let action = match task.spec.action.clone() {
            TaskAction::Routine {
                name,
                document,
                ignore_window,
            } => CommandAction::RunRoutine {
                name,
                document,
                task: id.to_owned(),
                ignore_window,
            },
            TaskAction::Ping => CommandAction::Ping,
            TaskAction::Reload => CommandAction::ReloadConfig,
            TaskAction::Config { name, toml } => CommandAction::ApplyConfig {
                name,
                toml,
                task: id.to_owned(),
            },
            TaskAction::Update {
                version,
                confirm_secs,
            } => CommandAction::Update {
                releases: self
                    .db
                    .read(move |c| crate::releases::manifests(c, &version))
                    .await?,
                base_url: self.releases_url.clone(),
                confirm_secs,
                task: id.to_owned(),
            },
        };
        let commands: Vec<(String, String, i64)> = agents
            .iter()
            .filter_map(|(a, life)| Some((a.clone(), task.places.get(a)?.1.clone(), *life)))
            .collect();
        let first = self.seq.take(&self.db, commands.len() as u64).await?;
        for (i, (agent, command_id, life)) in commands.into_iter().enumerate() {
            let ts = now_ms();
            let frame = Envelope::new(
                CONTROLLER_ID,
                first + i as u64,
                ts,
                Message::Command(Command {
                    id: command_id,
                    action: action.clone(),
                }),
            )
            .to(&agent)
            .expires(ts + life.max(MIN_COMMAND_LIFE_MS))
            .seal(&self.key);
            let frame = match frame {
                Ok(f) => f,
                Err(e) => {
                    // Only an oversized document gets here; the target times out visibly.
                    tracing::error!(task = id, agent, error = %e, "Cannot seal a task command");
                    continue;
                }
            };
            let topic = Topic::format(&agent, Direction::Down, Kind::Command);
            if self
                .client
                .publish(topic, QoS::AtLeastOnce, false, frame)
                .await
                .is_err()
            {
                return Err(DbError::Closed);
            }
            self.published.insert((id.to_owned(), agent), now_ms());
        }
        Ok(())
    }
}
