//! Wake-ups and key changes, in this process and, on PostgreSQL, on every replica.
//!
//! A wake-up notifies the local engine at once and is also sent as a NOTIFY, so that the
//! replica that runs the engines hears of it whichever replica took the request. A key
//! change (an agent enrolled or revoked) is only sent: every replica's listener, this one
//! included, reads that agent's key again from the database and updates its registry, so
//! a revoke on one replica is refused by the others as soon as they hear of it. A listener
//! that lost its connection reads every key again when it is back (it may have missed
//! notifications), and reads them all every [`FULL_RELOAD`] whatever happens.

use std::sync::Arc;
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
}

fn parse(payload: &str) -> Option<Heard<'_>> {
    match payload.split_once(' ')? {
        ("wake", "tasks") => Some(Heard::Wake(Wake::Tasks)),
        ("wake", "tickets") => Some(Heard::Wake(Wake::Tickets)),
        ("wake", "webhooks") => Some(Heard::Wake(Wake::Webhooks)),
        ("key", agent) if !agent.is_empty() => Some(Heard::Key(agent)),
        _ => None,
    }
}

/// The engines' wake-ups and the way to the other replicas; cheap to clone.
#[derive(Clone, Default)]
pub struct Signals {
    tasks: Arc<Notify>,
    tickets: Arc<Notify>,
    webhooks: Arc<Notify>,
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
        for junk in ["", "wake", "wake all", "key ", "keys gw-1", "hello world"] {
            assert_eq!(parse(junk), None, "{junk:?}");
        }
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
