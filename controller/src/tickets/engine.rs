//! The ticket engine: evaluates the alert rules and runs a ticket [`pass`](super::pass) on
//! what changed.
//!
//! It reads the whole fleet every `tickets.evaluate_interval_ms` (1 s by default), which is
//! when telemetry alone is judged. Between those reads it looks at a few stores at a time:
//! those ingest names because they reported something other than telemetry (an event, a
//! presence, a routine run), and those with an alert due to fire or clear, so that a fault
//! becomes a ticket right after the rule's duration. Looking at a store reads its own rows
//! by their index, so how soon that happens does not depend on the size of the fleet: the
//! fleet's read runs beside these looks, and its view of a store looked at after it began
//! (older than the look's) is not used. Looks woken together within 100 ms are taken as
//! one; a ticket or an engineer changed wakes a pass without a look.
//!
//! Alerts that were firing when the controller stopped are restored from the database, so
//! a restart neither fires them again nor forgets them. Time comes from the engine's
//! [`Clock`] (tests move it to breach an SLA); presence is judged on the same clock.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Ctx;
use super::{pass, Input, Report};
use crate::alerts::eval::{Evaluator, Timing};
use crate::alerts::observe::{self, Snapshot};
use crate::alerts::Rule;
use crate::cluster::signals::Look;
use crate::cluster::{Signals, Wake};
use crate::config::PresenceSection;
use crate::db::{Db, DbError};
use crate::fleet::Rules;
use crate::tasks::engine::Clock;

/// Shortest pause between looks woken by ingest: wake-ups within it are taken together.
const MIN_GAP: Duration = Duration::from_millis(100);
/// Longest sleep without a due alert while the fleet's read runs.
const IDLE: Duration = Duration::from_secs(60);

/// What the engine needs.
#[derive(Clone)]
pub struct Settings {
    /// Rules in force.
    pub rules: Arc<Vec<Rule>>,
    /// Ticket settings and webhooks.
    pub ctx: Ctx,
    /// Presence and staleness.
    pub presence: PresenceSection,
    /// The clock.
    pub clock: Clock,
}

/// Counters of the engine, for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Evaluations of the whole fleet.
    pub evaluations: AtomicU64,
    /// Evaluations of a few stores (reported faults, due alerts, or none: a pass alone).
    pub looks: AtomicU64,
    /// How long the last read of the whole fleet took, ms.
    pub fleet_read_ms: AtomicU64,
    /// Alerts fired.
    pub fired: AtomicU64,
    /// Tickets opened.
    pub opened: AtomicU64,
    /// Alerts healed by their routine without a ticket.
    pub healed: AtomicU64,
    /// Escalations.
    pub escalated: AtomicU64,
}

impl Counters {
    fn add(&self, r: &Report) {
        self.fired.fetch_add(u64::from(r.fired), Relaxed);
        self.opened.fetch_add(u64::from(r.opened), Relaxed);
        self.healed.fetch_add(u64::from(r.healed), Relaxed);
        self.escalated.fetch_add(u64::from(r.escalated), Relaxed);
    }
}

fn timing(rules: &HashMap<String, Rule>) -> impl Fn(&str) -> Option<Timing> + '_ {
    move |name| rules.get(name).map(Rule::timing)
}

/// The stores an evaluation steps.
enum Part {
    /// Every store but these (looked at since the fleet was read).
    AllBut(HashSet<String>),
    /// These only.
    Only(BTreeSet<String>),
}

impl Part {
    fn covers(&self, store: &str) -> bool {
        match self {
            Part::AllBut(s) => !s.contains(store),
            Part::Only(s) => s.contains(store),
        }
    }
}

/// The fleet's read in flight, and when it began.
type FleetRead = (JoinHandle<Result<Snapshot, DbError>>, Instant);

struct Engine {
    s: Settings,
    db: Db,
    rules: Arc<HashMap<String, Rule>>,
    eval: Evaluator,
    /// Stores looked at since the fleet's read in flight began.
    looked: HashSet<String>,
    counters: Arc<Counters>,
}

impl Engine {
    /// Reads `stores` (the whole fleet when `None`) at `now`.
    async fn read(
        db: &Db,
        s: &Settings,
        now: i64,
        stores: Option<BTreeSet<String>>,
    ) -> Result<Snapshot, DbError> {
        let (list, presence) = (s.rules.clone(), s.presence.clone());
        db.read(move |c| {
            let mut at = Rules::new(&presence, now);
            // Readings still on their way are not missing: staleness waits for ingest.
            at.data_behind_ms = crate::ingest::behind::fleet(c, now)?;
            match &stores {
                None => observe::snapshot(c, &list, &at),
                Some(st) => observe::snapshot_of(c, &list, &at, st),
            }
        })
        .await
    }

    /// Starts reading the whole fleet beside the engine's other work.
    fn read_fleet(&mut self, tracker: &TaskTracker) -> FleetRead {
        self.looked.clear();
        let (db, s, now) = (self.db.clone(), self.s.clone(), self.s.clock.now());
        let read = tracker.spawn(async move { Engine::read(&db, &s, now, None).await });
        (read, Instant::now())
    }

    /// Looks at `stores` now (none: a pass alone).
    async fn look(&mut self, stores: BTreeSet<String>) -> Result<Report, DbError> {
        self.counters.looks.fetch_add(1, Relaxed);
        let now = self.s.clock.now();
        let snap = if stores.is_empty() {
            Snapshot {
                now,
                ..Snapshot::default()
            }
        } else {
            Engine::read(&self.db, &self.s, now, Some(stores.clone())).await?
        };
        self.looked.extend(stores.iter().cloned());
        self.step(snap, Part::Only(stores)).await
    }

    /// Steps the alerts of `part` with `snap`, then runs a pass (one transaction). A pass
    /// that fails leaves the alerts as they were, so what fired fires again at the next
    /// evaluation instead of being lost with the transaction.
    async fn step(&mut self, snap: Snapshot, part: Part) -> Result<Report, DbError> {
        // Pure but not cheap (a fleet whose devices all went stale is every device): off
        // the async threads, which must keep polling ingest's connections meanwhile.
        let before = self.eval.clone();
        let (list, by_name, taken) = (
            self.s.rules.clone(),
            self.rules.clone(),
            std::mem::take(&mut self.eval),
        );
        let stepped = tokio::task::spawn_blocking(move || {
            let mut e = taken;
            let obs = observe::observe(&list, &snap);
            let changes = e.step_within(snap.now, &obs, timing(&by_name), |s| part.covers(s));
            (e, changes)
        })
        .await;
        let Ok((back, changes)) = stepped else {
            self.eval = before;
            return Err(DbError::Backend("rule evaluation stopped".into()));
        };
        self.eval = back;
        let (ctx, rules, now) = (self.s.ctx.clone(), self.rules.clone(), self.s.clock.now());
        let passed = self
            .db
            .write(move |c| {
                pass::run(
                    c,
                    &Input {
                        ctx: &ctx,
                        rules: &rules,
                        changes: &changes,
                        now,
                    },
                )
            })
            .await;
        if passed.is_err() {
            self.eval = before;
        }
        passed
    }

    /// The stores with an alert due now.
    fn due_stores(&self) -> BTreeSet<String> {
        self.eval
            .due_stores(self.s.clock.now(), timing(&self.rules))
    }

    /// How long until the next alert is due, if one is.
    fn due_in(&self) -> Option<Duration> {
        let t = self.eval.next_due(timing(&self.rules))?;
        Some(Duration::from_millis(
            (t - self.s.clock.now()).clamp(0, 60_000) as u64,
        ))
    }
}

/// Starts the engine on `tracker`. It is woken through `signals` by ingest (with the
/// stores to look at) and by ticket changes, and wakes webhook delivery when a pass queued
/// deliveries.
pub async fn start(
    s: Settings,
    db: Db,
    signals: &Signals,
    counters: Arc<Counters>,
    token: CancellationToken,
    tracker: &TaskTracker,
) -> Result<(), DbError> {
    let firing = db.read(pass::firing).await?;
    let rules: Arc<HashMap<String, Rule>> = Arc::new(
        s.rules
            .iter()
            .map(|r| (r.name.clone(), r.clone()))
            .collect(),
    );
    let interval = Duration::from_millis(s.ctx.settings.evaluate_interval_ms);
    let mut e = Engine {
        s,
        db,
        rules,
        eval: Evaluator::restore(firing),
        looked: HashSet::new(),
        counters,
    };
    let reads = tracker.clone();
    let (wake, webhooks, looks) = (
        signals.notify(Wake::Tickets),
        signals.notify(Wake::Webhooks),
        signals.looks(),
    );
    tracker.spawn(async move {
        let mut failing = false;
        let mut fleet: Option<FleetRead> = None;
        let mut next_fleet = Instant::now();
        loop {
            if fleet.is_none() && Instant::now() >= next_fleet {
                fleet = Some(e.read_fleet(&reads));
                next_fleet = Instant::now() + interval;
            }
            let due = e.due_in();
            let sleep = match &fleet {
                Some(_) => due.unwrap_or(IDLE),
                None => due.map_or(interval, |d| d.min(interval)).min(
                    next_fleet.saturating_duration_since(Instant::now()),
                ),
            };
            let done = tokio::select! {
                () = token.cancelled() => break,
                // Made even when disabled, but polled only while a read runs.
                read = async { (&mut fleet.as_mut().expect("a read runs").0).await },
                    if fleet.is_some() => {
                    let began = fleet.take().map(|f| f.1);
                    if let Some(b) = began {
                        e.counters.fleet_read_ms.store(b.elapsed().as_millis() as u64, Relaxed);
                    }
                    e.counters.evaluations.fetch_add(1, Relaxed);
                    match read {
                        Ok(Ok(snap)) => {
                            let part = Part::AllBut(std::mem::take(&mut e.looked));
                            e.step(snap, part).await
                        }
                        Ok(Err(err)) => Err(err),
                        Err(err) => Err(DbError::Backend(format!("the fleet's read stopped: {err}"))),
                    }
                }
                () = tokio::time::sleep(sleep) => {
                    let stores = e.due_stores();
                    if stores.is_empty() {
                        continue;
                    }
                    e.look(stores).await
                }
                () = wake.notified() => {
                    tokio::select! {
                        () = token.cancelled() => break,
                        () = tokio::time::sleep(due.map_or(MIN_GAP, |d| d.min(MIN_GAP))) => {}
                    }
                    let mut stores = e.due_stores();
                    match looks.take() {
                        Look::Stores(s) => stores.extend(s),
                        // Too many to look at one by one: the fleet is read next.
                        Look::Fleet => next_fleet = Instant::now(),
                    }
                    e.look(stores).await
                }
            };
            match done {
                Ok(r) => {
                    e.counters.add(&r);
                    if r != Report::default() {
                        tracing::debug!(?r, "Ticket pass");
                        webhooks.notify_one();
                    }
                    failing = false;
                }
                Err(DbError::Closed) => break,
                Err(err) => {
                    if !failing {
                        tracing::error!(error = %err, "Rule evaluation failed; retrying");
                    }
                    failing = true;
                }
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use storefleet_storage::{args, SqlExt as _};

    use super::*;
    use crate::alerts::eval::AlertKey;

    const NOW: i64 = 1_800_000_000_000;

    /// A pass the database refuses leaves the alert as it was: it fires again at the next
    /// look and is recorded then, instead of being lost with the failed transaction.
    #[tokio::test]
    async fn a_failed_pass_loses_no_alert() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::open(&dir.path().join("c.db"), false).unwrap();
        db.write(|c| {
            c.execute("INSERT INTO stores (code, name, created_at) VALUES ('S1', 'One', 1)", args![])?;
            c.execute(
                "INSERT INTO devices (store_code, device, agent_id, class, interval_ms, last_seen, state, state_at, state_note)
                 VALUES ('S1', 'printer-1', 'a', 'receipt-printer', 10000, ?1, 'down', ?2, 'jam')",
                args![NOW, NOW - 600_000],
            )?;
            c.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON alerts BEGIN SELECT RAISE(ABORT, 'refused for the test'); END",
                args![],
            )?;
            Ok(())
        })
        .await
        .unwrap();
        let rules = crate::alerts::builtin();
        let mut e = Engine {
            s: Settings {
                rules: Arc::new(rules.clone()),
                ctx: Ctx {
                    settings: crate::config::TicketsSection::default(),
                    hooks: Arc::new(Vec::new()),
                    public_url: "https://controller.example".into(),
                },
                presence: PresenceSection::default(),
                clock: Clock::manual(NOW),
            },
            db: db.clone(),
            rules: Arc::new(rules.into_iter().map(|r| (r.name.clone(), r)).collect()),
            eval: Evaluator::default(),
            looked: HashSet::new(),
            counters: Arc::default(),
        };
        let key = AlertKey {
            rule: "printer-down".into(),
            store: "S1".into(),
            subject: "printer-1".into(),
        };
        let s1 = || BTreeSet::from(["S1".to_owned()]);
        assert!(e.look(s1()).await.is_err(), "the database refused the pass");
        assert_eq!(e.eval.state(&key), None, "the alert is as it was");
        db.write(|c| c.execute("DROP TRIGGER refuse", args![]).map(drop))
            .await
            .unwrap();
        let r = e.look(s1()).await.unwrap();
        assert_eq!(r.fired, 1);
        assert!(e.eval.state(&key).is_some());
        let open = db
            .read(|c| {
                c.int(
                    "SELECT count(*) AS n FROM alerts WHERE cleared_at IS NULL",
                    args![],
                    "n",
                )
            })
            .await
            .unwrap();
        assert_eq!(open, 1);
    }
}
