//! Wake-ups and key changes, in this process and, on PostgreSQL, on every replica.
//!
//! A wake-up notifies the local engine at once and is also sent as a NOTIFY, so that the
//! replica that runs the engines hears of it whichever replica took the request. Ingest's
//! wake-up of the ticket engine names the stores that reported something other than
//! telemetry ([`Signals::look_at`]), so that the engine reads those stores, not the fleet. A key
//! change (an agent enrolled or revoked) is only sent: every replica's listener, this one
//! included, reads that agent's key again from the database and updates its registry, so
//! a revoke on one replica is refused by the others as soon as they hear of it. A listener
//! that lost its connection reads every key again when it is back (it may have missed
//! notifications), and reads them all every [`FULL_RELOAD`] whatever happens.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use storefleet_storage::{args, Sql};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{sleep_unless, CHANNEL};
use crate::db::{Db, DbError};
use crate::ingest::Registry;

/// Every key is read again this often, notifications or not.
const FULL_RELOAD: Duration = Duration::from_secs(60);
/// Payloads sent in one transaction, at most.
const SEND_BATCH: usize = 100;
/// Bytes of store codes in one `look` payload, at most (PostgreSQL takes 8000).
const LOOK_PAYLOAD: usize = 4000;
/// Stores waiting for the ticket engine, at most: past this it reads the whole fleet.
const MAX_LOOKS: usize = 1000;

/// An engine to wake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The task engine (a task was pushed, changed, or an agent reported on one).
    Tasks,
    /// The ticket engine (an event, presence or routine run was stored, a ticket or an
    /// engineer changed).
    Tickets,
    /// Webhook delivery.
    Webhooks,
}

impl Wake {
    fn word(self) -> &'static str {
        match self {
            Wake::Tasks => "wake tasks",
            Wake::Tickets => "wake tickets",
            Wake::Webhooks => "wake webhooks",
        }
    }
}

/// What a payload on [`CHANNEL`] says.
#[derive(Debug, PartialEq, Eq)]
enum Heard<'a> {
    Wake(Wake),
    Key(&'a str),
    Look(Vec<&'a str>),
}

fn parse(payload: &str) -> Option<Heard<'_>> {
    match payload.split_once(' ')? {
        ("wake", "tasks") => Some(Heard::Wake(Wake::Tasks)),
        ("wake", "tickets") => Some(Heard::Wake(Wake::Tickets)),
        ("wake", "webhooks") => Some(Heard::Wake(Wake::Webhooks)),
        ("key", agent) if !agent.is_empty() => Some(Heard::Key(agent)),
        ("look", stores) => {
            let stores: Vec<&str> = stores.split(' ').collect();
            stores
                .iter()
                .all(|s| crate::stores::valid_code(s))
                .then_some(Heard::Look(stores))
        }
        _ => None,
    }
}

/// `look` payloads naming `stores`, each within [`LOOK_PAYLOAD`].
fn look_payloads<'a>(stores: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in stores {
        match out.last_mut() {
            Some(p) if p.len() + 1 + s.len() <= LOOK_PAYLOAD => {
                p.push(' ');
                p.push_str(s);
            }
            _ => out.push(format!("look {s}")),
        }
    }
    out
}

/// The stores the ticket engine is to look at: named by ingest, taken by the engine.
#[derive(Debug, Default)]
struct Pending {
    stores: BTreeSet<String>,
    /// More than [`MAX_LOOKS`] were named: the engine reads the fleet instead.
    overflow: bool,
}

/// What the ticket engine is to look at, since it last took it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Look {
    /// These stores (perhaps none: a ticket or an engineer changed).
    Stores(BTreeSet<String>),
    /// Too many to name: the whole fleet.
    Fleet,
}

/// The stores waiting for the ticket engine; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Looks(Arc<Mutex<Pending>>);

impl Looks {
    fn add<'a>(&self, stores: impl IntoIterator<Item = &'a str>) {
        let Ok(mut p) = self.0.lock() else { return };
        for s in stores {
            if p.overflow {
                return;
            }
            if p.stores.len() >= MAX_LOOKS {
                p.stores.clear();
                p.overflow = true;
                return;
            }
            p.stores.insert(s.to_owned());
        }
    }

    /// What waits, taken.
    pub fn take(&self) -> Look {
        let Ok(mut p) = self.0.lock() else {
            return Look::Fleet;
        };
        let p = std::mem::take(&mut *p);
        if p.overflow {
            Look::Fleet
        } else {
            Look::Stores(p.stores)
        }
    }
}

/// The engines' wake-ups and the way to the other replicas; cheap to clone.
#[derive(Clone, Default)]
pub struct Signals {
    tasks: Arc<Notify>,
    tickets: Arc<Notify>,
    webhooks: Arc<Notify>,
    looks: Looks,
    out: Option<mpsc::UnboundedSender<String>>,
}

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signals")
            .field("replicated", &self.out.is_some())
            .finish_non_exhaustive()
    }
}

impl Signals {
    /// Signals within this process only (SQLite, tests).
    pub fn local() -> Signals {
        Signals::default()
    }

    /// What `engine` waits on.
    pub fn notify(&self, engine: Wake) -> Arc<Notify> {
        match engine {
            Wake::Tasks => self.tasks.clone(),
            Wake::Tickets => self.tickets.clone(),
            Wake::Webhooks => self.webhooks.clone(),
        }
    }

    /// Wakes `engine`, here and on the replica that runs it.
    pub fn wake(&self, engine: Wake) {
        self.notify(engine).notify_one();
        if let Some(out) = &self.out {
            let _ = out.send(engine.word().to_owned());
        }
    }

    /// The stores the ticket engine is to look at.
    pub fn looks(&self) -> Looks {
        self.looks.clone()
    }

    /// Wakes the ticket engine to look at `stores`, here and on the replica that runs it.
    pub fn look_at(&self, stores: &BTreeSet<String>) {
        self.looks.add(stores.iter().map(String::as_str));
        self.tickets.notify_one();
        if let Some(out) = &self.out {
            for p in look_payloads(stores.iter().map(String::as_str)) {
                let _ = out.send(p);
            }
        }
    }

    /// Tells every replica that `agent`'s key was added, replaced or revoked (this
    /// process has already updated its own registry).
    pub fn key_changed(&self, agent: &str) {
        if let Some(out) = &self.out {
            let _ = out.send(format!("key {agent}"));
        }
    }

    /// On PostgreSQL: sends this process's signals to the other replicas and listens to
    /// theirs, updating `registry` from the database, until `token` is cancelled. SQLite
    /// keeps the signals local.
    #[must_use]
    pub fn replicate(
        mut self,
        db: &Db,
        registry: Registry,
        token: &CancellationToken,
        tracker: &TaskTracker,
    ) -> Signals {
        if !db.shared() {
            return self;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        self.out = Some(tx);
        tracker.spawn(send(db.clone(), rx, token.clone()));
        let (listener, db, token) = (self.clone(), db.clone(), token.clone());
        let spawned = std::thread::Builder::new()
            .name("replica-listen".into())
            .spawn(move || listener.listen(&db, &registry, &token));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "Cannot start the replica listener; this replica hears no other");
        }
        self
    }

    fn listen(&self, db: &Db, registry: &Registry, token: &CancellationToken) {
        let mut delay = Duration::from_millis(200);
        let mut first = true;
        while !token.is_cancelled() {
            let session = db.session().and_then(|mut s| {
                s.listen(CHANNEL)?;
                Ok(s)
            });
            let mut session = match session {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "Replica listener cannot connect; retrying");
                    sleep_unless(token, delay);
                    delay = (delay * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            delay = Duration::from_millis(200);
            // Whatever was said while this replica did not listen: read every key again.
            // Not at the first connection: the keys were read at start a moment ago, and
            // keys added since (by this process) would be lost by a replace.
            if !first {
                reload(db, registry);
            }
            first = false;
            let mut reloaded = Instant::now();
            // An engine that missed a wake-up only waits for its next tick; wake them anyway.
            for w in [Wake::Tasks, Wake::Tickets, Wake::Webhooks] {
                self.notify(w).notify_one();
            }
            while !token.is_cancelled() {
                let heard = match session.notifications(Duration::from_millis(500)) {
                    Ok(h) => h,
                    Err(e) => {
                        tracing::warn!(error = %e, "Replica listener lost PostgreSQL; reconnecting");
                        break;
                    }
                };
                for n in heard {
                    match parse(&n.payload) {
                        Some(Heard::Wake(w)) => self.notify(w).notify_one(),
                        Some(Heard::Key(agent)) => reload_one(db, registry, agent),
                        Some(Heard::Look(stores)) => {
                            self.looks.add(stores);
                            self.tickets.notify_one();
                        }
                        None => {
                            tracing::debug!(payload = %n.payload, "Unknown replica signal ignored");
                        }
                    }
                }
                if reloaded.elapsed() >= FULL_RELOAD {
                    reload(db, registry);
                    reloaded = Instant::now();
                }
            }
        }
    }
}

fn reload(db: &Db, registry: &Registry) {
    match db.read_blocking(|c| crate::agents::keys(c)) {
        Ok(keys) => registry.replace(keys),
        Err(e) => tracing::warn!(error = %e, "Cannot read the agents' keys again"),
    }
}

fn reload_one(db: &Db, registry: &Registry, agent: &str) {
    let id = agent.to_owned();
    match db.read_blocking(move |c| crate::agents::key(c, &id)) {
        Ok(Some((key, store))) => registry.insert(agent, key, &store),
        Ok(None) => registry.remove(agent),
        Err(e) => tracing::warn!(agent_id = %agent, error = %e, "Cannot read an agent's key again"),
    }
}

/// Sends queued payloads as NOTIFYs, a batch a transaction, repeats folded.
async fn send(db: Db, mut rx: mpsc::UnboundedReceiver<String>, token: CancellationToken) {
    loop {
        let first = tokio::select! {
            () = token.cancelled() => return,
            p = rx.recv() => match p { Some(p) => p, None => return },
        };
        let mut batch = vec![first];
        while batch.len() < SEND_BATCH {
            match rx.try_recv() {
                Ok(p) if !batch.contains(&p) => batch.push(p),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let mut delay = Duration::from_millis(100);
        loop {
            let b = batch.clone();
            match db.write(move |c| notify_all(c, &b)).await {
                Ok(()) => break,
                Err(DbError::Closed) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "Cannot signal the other replicas; retrying");
                    tokio::select! {
                        () = token.cancelled() => return,
                        () = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

fn notify_all(c: &dyn Sql, payloads: &[String]) -> Result<(), DbError> {
    for p in payloads {
        c.execute("SELECT pg_notify(?1, ?2)", args![CHANNEL, p.as_str()])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_junk_is_ignored() {
        for w in [Wake::Tasks, Wake::Tickets, Wake::Webhooks] {
            assert_eq!(parse(w.word()), Some(Heard::Wake(w)));
        }
        assert_eq!(parse("key gw-1"), Some(Heard::Key("gw-1")));
        assert_eq!(parse("look S-1 S_2"), Some(Heard::Look(vec!["S-1", "S_2"])));
        for junk in [
            "",
            "wake",
            "wake all",
            "key ",
            "keys gw-1",
            "hello world",
            "look ",
            "look S1  S2",
            "look S1 ../x",
        ] {
            assert_eq!(parse(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn many_stores_go_in_payloads_postgres_takes_and_come_back_whole() {
        let stores: Vec<String> = (0..2000).map(|i| format!("STORE-{i:05}")).collect();
        let payloads = look_payloads(stores.iter().map(String::as_str));
        assert!(payloads.len() > 1);
        let mut back = Vec::new();
        for p in &payloads {
            assert!(p.len() <= LOOK_PAYLOAD, "{} bytes", p.len());
            match parse(p) {
                Some(Heard::Look(s)) => back.extend(s.into_iter().map(str::to_owned)),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(back, stores);
    }

    #[test]
    fn looks_are_taken_once_and_too_many_become_the_fleet() {
        let looks = Looks::default();
        looks.add(["S2", "S1", "S2"]);
        let want: BTreeSet<String> = ["S1", "S2"].map(String::from).into();
        assert_eq!(looks.take(), Look::Stores(want));
        assert_eq!(looks.take(), Look::Stores(BTreeSet::new()));
        let many: Vec<String> = (0..=MAX_LOOKS).map(|i| format!("S{i}")).collect();
        looks.add(many.iter().map(String::as_str));
        looks.add(["S1"]);
        assert_eq!(looks.take(), Look::Fleet);
        assert_eq!(looks.take(), Look::Stores(BTreeSet::new()));
    }

    #[tokio::test]
    async fn a_local_wake_reaches_the_engine_waiting_on_it_only() {
        let s = Signals::local();
        let (tasks, tickets) = (s.notify(Wake::Tasks), s.notify(Wake::Tickets));
        s.wake(Wake::Tasks);
        tokio::time::timeout(Duration::from_secs(1), tasks.notified())
            .await
            .expect("the task engine is woken");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), tickets.notified())
                .await
                .is_err(),
            "the ticket engine is not"
        );
    }
}
