//! Getting a batch stored, whatever happens: retried while the database cannot take it,
//! and taken apart when the database refuses the data of one of its messages.
//!
//! - A collision with another writer (a deadlock between replicas) runs the batch again at
//!   once.
//! - A failing database (full disk, lost connection) gets the whole batch again, with
//!   backoff, until it is stored: nothing is acknowledged before.
//! - A refusal of the data ([`DbError::Refused`]) is about a message, not the database:
//!   the batch is stored message by message, and each message refused on its own is held
//!   apart ([`super::held`]) with the refusal. The others are stored, the lane goes on.
//!   If holding it fails too, the database is failing after all: back to the retries.

use std::sync::Arc;
use std::time::Duration;

use storefleet_protocol::now_ms;

use super::held;
use super::stats::Stats;
use super::write::{self, Outcome, SeriesIds, Verified};
use crate::db::{Db, DbError};

/// First wait after a failed write; doubles up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(200);
const MAX_DELAY: Duration = Duration::from_secs(30);

/// Stores `msgs`, holding apart those whose data the database refuses; returns what was
/// done, or `None` when the database stopped (the controller is stopping: nothing is
/// acknowledged, the broker delivers the messages again).
pub async fn store(
    db: &Db,
    stats: &Stats,
    ids: &Arc<SeriesIds>,
    msgs: Vec<Verified>,
) -> Option<Outcome> {
    let mut msgs = Arc::new(msgs);
    let mut total = Outcome::default();
    let mut delay = FIRST_DELAY;
    loop {
        let (m, known) = (msgs.clone(), ids.clone());
        let failure = match db
            .write(move |c| write::apply_with(c, &m, now_ms(), &known))
            .await
        {
            Ok((o, learned)) => {
                ids.learn(learned);
                stats.stored(&o);
                let now = now_ms();
                if let Some(b) = super::behind::of_batch(&msgs, now) {
                    stats.measured_behind(b, now);
                }
                total += o;
                return Some(total);
            }
            Err(DbError::Closed) => return None,
            // Another batch locked the same rows first: this one was rolled back whole and
            // goes again at once, so the acknowledgements behind it do not stall.
            Err(DbError::Collision(e)) => {
                stats.write_failed();
                tracing::debug!(error = %e, messages = msgs.len(), "Ingest batch collided with another; storing it again");
                continue;
            }
            Err(DbError::Refused(e)) => {
                stats.write_failed();
                tracing::warn!(error = %e, messages = msgs.len(), "The database refused data in an ingest batch; storing its messages one by one");
                match one_by_one(db, stats, ids, &msgs).await {
                    Ok(o) => {
                        total += o;
                        return Some(total);
                    }
                    Err((_, DbError::Closed)) => return None,
                    Err((done, e)) => {
                        total += done.1;
                        msgs = Arc::new(msgs[done.0..].to_vec());
                        e
                    }
                }
            }
            Err(e) => {
                stats.write_failed();
                e
            }
        };
        tracing::error!(error = %failure, messages = msgs.len(), "Cannot store an ingest batch; retrying (not acknowledged, nothing is lost)");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_DELAY);
    }
}

/// How far [`one_by_one`] got before the database failed: messages settled, and what they
/// did.
type Partial = (usize, Outcome);

/// Stores each of `msgs` on its own, holding apart each one refused.
async fn one_by_one(
    db: &Db,
    stats: &Stats,
    ids: &Arc<SeriesIds>,
    msgs: &Arc<Vec<Verified>>,
) -> Result<Outcome, (Partial, DbError)> {
    let mut total = Outcome::default();
    for i in 0..msgs.len() {
        let fail = |e| Err(((i, total), e));
        loop {
            let (m, known) = (msgs.clone(), ids.clone());
            match db
                .write(move |c| write::apply_with(c, &m[i..=i], now_ms(), &known))
                .await
            {
                Ok((o, learned)) => {
                    ids.learn(learned);
                    stats.stored(&o);
                    total += o;
                    break;
                }
                Err(DbError::Collision(_)) => {}
                Err(DbError::Refused(reason)) => {
                    let (m, r) = (msgs.clone(), reason.clone());
                    if let Err(e) = db.write(move |c| held::put(c, &m[i], &r, now_ms())).await {
                        return fail(e);
                    }
                    tracing::error!(message = %held::name(&msgs[i]), error = %reason, "Held a message the database refused; the rest of its batch is stored (see `storefleet ingest held`)");
                    stats.held();
                    total.held += 1;
                    break;
                }
                Err(e) => return fail(e),
            }
        }
    }
    Ok(total)
}
