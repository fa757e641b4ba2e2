//! The engines' lease: which replica runs the task, ticket and webhook engines and
//! housekeeping.
//!
//! On PostgreSQL it is a session-level advisory lock on a connection of its own: held for
//! as long as that connection lives, so a replica that dies (a crash, SIGKILL, a power
//! cut) gives it up as soon as the server sees the connection close, and one that loses
//! the server gives it up within the keepalive time. Every replica without the lease tries
//! to take it every [`TRY_EVERY`]; the holder checks its connection as often and stops its
//! engines the moment the check fails. The engines are built to be taken over: they keep
//! their state in the database, mark a command sent before publishing it (an agent runs a
//! command id once), and take sequence numbers in single statements.
//!
//! On SQLite there is one replica: it takes the lease at start and keeps it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::db::Db;

/// The advisory lock key of "runs the engines".
const ENGINES_LOCK: i64 = 7_313_370_002;
/// How often a replica without the lease tries for it, and the holder checks it still has it.
pub const TRY_EVERY: Duration = Duration::from_millis(500);

/// Whether this replica holds the lease; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Lease(Arc<AtomicBool>);

impl Lease {
    /// Whether this replica runs the engines now.
    pub fn held(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

enum Change {
    Held,
    Lost,
}

/// Runs `engines` (given a token that is cancelled when the lease is lost) whenever this
/// replica takes the lease, until `token` is cancelled.
pub fn run(
    db: &Db,
    token: &CancellationToken,
    tracker: &TaskTracker,
    engines: impl Fn(CancellationToken) + Send + 'static,
) -> Lease {
    let lease = Lease::default();
    if !db.shared() {
        lease.0.store(true, Ordering::SeqCst);
        engines(token.clone());
        return lease;
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (db, t) = (db.clone(), token.clone());
    let spawned = std::thread::Builder::new()
        .name("engine-lease".into())
        .spawn(move || hold(&db, &t, &tx));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "Cannot start the engine lease; this replica never runs the engines");
        return lease;
    }
    let (l, token) = (lease.clone(), token.clone());
    tracker.spawn(async move {
        let mut running: Option<CancellationToken> = None;
        loop {
            let change = tokio::select! {
                () = token.cancelled() => return,
                c = rx.recv() => match c { Some(c) => c, None => return },
            };
            match change {
                Change::Held => {
                    let child = token.child_token();
                    l.0.store(true, Ordering::SeqCst);
                    tracing::info!("This replica holds the engine lease: it runs the task, ticket and webhook engines");
                    engines(child.clone());
                    running = Some(child);
                }
                Change::Lost => {
                    l.0.store(false, Ordering::SeqCst);
                    if let Some(r) = running.take() {
                        r.cancel();
                    }
                    tracing::warn!("This replica lost the engine lease; its engines stopped");
                }
            }
        }
    });
    lease
}

/// The lease's own thread: take the lock, keep checking it, say when it is held or lost.
fn hold(db: &Db, token: &CancellationToken, tx: &mpsc::UnboundedSender<Change>) {
    let mut complained = false;
    while !token.is_cancelled() {
        let mut session = match db.session() {
            Ok(s) => s,
            Err(e) => {
                if !complained {
                    tracing::warn!(error = %e, "Engine lease: cannot reach PostgreSQL; retrying");
                    complained = true;
                }
                pause(token);
                continue;
            }
        };
        complained = false;
        // Wait for the lock.
        let taken = loop {
            if token.is_cancelled() {
                return;
            }
            match session.try_lock(ENGINES_LOCK) {
                Ok(true) => break true,
                Ok(false) => pause(token),
                Err(e) => {
                    tracing::warn!(error = %e, "Engine lease: lost PostgreSQL while waiting; reconnecting");
                    break false;
                }
            }
        };
        if !taken {
            continue;
        }
        if tx.send(Change::Held).is_err() {
            return;
        }
        // Hold it while the connection answers.
        while !token.is_cancelled() {
            pause(token);
            if let Err(e) = session.check() {
                tracing::warn!(error = %e, "Engine lease: the connection that held it failed");
                break;
            }
        }
        if tx.send(Change::Lost).is_err() {
            return;
        }
    }
}

fn pause(token: &CancellationToken) {
    super::sleep_unless(token, TRY_EVERY);
}
