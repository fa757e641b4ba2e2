//! How far ingest is behind the agents, so that late data is not taken for missing data.
//!
//! When ingest falls behind (a fleet's first minutes, a replica lost, the database slow),
//! the broker holds the newest readings. A device whose readings wait there looks silent,
//! and judged by the wall clock the whole fleet would turn stale at once: thousands of
//! tickets that bury the real faults. So each replica measures how old the live readings
//! it stores are: per batch, the youngest live telemetry message, by the agent's own
//! signed time. The youngest, so that one agent with a slow clock cannot make ingest look
//! behind when others' data is fresh. Every [`REPORT`] the replica writes its figure to
//! `ingest_behind`, and the ticket engine judges staleness at `now` minus the largest
//! recent one ([`fleet::Rules::data_behind_ms`](crate::fleet::Rules)), at most [`CAP_MS`].
//! A replica that stopped reporting no longer counts after [`FORGET_MS`].

use std::sync::Arc;
use std::time::Duration;

use storefleet_protocol::{now_ms, Message};
use storefleet_storage::{args, Sql, SqlExt as _};
use tokio_util::sync::CancellationToken;

use super::write::Verified;
use super::Stats;
use crate::db::{Db, DbError};

/// How often a replica writes its figure.
pub const REPORT: Duration = Duration::from_secs(5);
/// A figure older than this is forgotten: its replica stopped, or stores nothing.
pub const FORGET_MS: i64 = 30_000;
/// Ingest further behind than this still lets devices turn stale: the data is then too late
/// for the rules to wait on, and an operator must look (the
/// `storefleet_controller_ingest_behind_seconds` gauge says so).
pub const CAP_MS: i64 = 10 * 60_000;

/// How old the youngest live telemetry of a batch stored at `now` was, ms (0 for a message
/// from the future); `None` when the batch holds no live telemetry (a backlog the agent
/// sends after an outage is old on purpose).
pub fn of_batch(msgs: &[Verified], now: i64) -> Option<i64> {
    msgs.iter()
        .filter(|m| matches!(&m.envelope.message, Message::Telemetry(t) if !t.backlog))
        .map(|m| (now - m.envelope.ts).max(0))
        .min()
}

/// Writes `replica`'s figure.
pub fn record(c: &dyn Sql, replica: &str, behind_ms: i64, now: i64) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO ingest_behind(replica, behind_ms, at) VALUES (?1, ?2, ?3)
         ON CONFLICT(replica) DO UPDATE SET behind_ms = excluded.behind_ms, at = excluded.at",
        args![replica, behind_ms, now],
    )?;
    Ok(())
}

/// `behind_ms` as far as staleness waits for it: at most [`CAP_MS`].
pub fn capped(behind_ms: i64) -> i64 {
    behind_ms.clamp(0, CAP_MS)
}

/// How far behind the furthest replica that reported lately is, at most [`CAP_MS`].
pub fn fleet(c: &dyn Sql, now: i64) -> Result<i64, DbError> {
    let r = c.one(
        "SELECT max(behind_ms) AS n FROM ingest_behind WHERE at >= ?1",
        args![now - FORGET_MS],
    )?;
    let n = match r {
        Some(r) => r.opt_i64("n")?.unwrap_or(0),
        None => 0,
    };
    Ok(capped(n))
}

/// Writes this replica's figure every [`REPORT`] until `token` is cancelled. A write that
/// fails is logged once and tried again at the next turn.
pub async fn report(db: Db, stats: Arc<Stats>, replica: String, token: CancellationToken) {
    let mut failing = false;
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(REPORT) => {}
        }
        let now = now_ms();
        let behind = stats.behind(now);
        let r = replica.clone();
        match db.write(move |c| record(c, &r, behind, now)).await {
            Ok(()) => failing = false,
            Err(DbError::Closed) => return,
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "Cannot record how far ingest is behind; will retry");
                }
                failing = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use storefleet_protocol::message::{Event, Severity, TelemetryBatch};
    use storefleet_protocol::Envelope;

    use super::*;

    fn msg(ts: i64, message: Message) -> Verified {
        Verified {
            store: "S".into(),
            envelope: Envelope::new("gw", 1, ts, message),
        }
    }

    fn telemetry(ts: i64, backlog: bool) -> Verified {
        msg(
            ts,
            Message::Telemetry(TelemetryBatch {
                backlog,
                series: Vec::new(),
            }),
        )
    }

    #[test]
    fn a_batch_is_as_far_behind_as_its_youngest_live_telemetry() {
        let now = 100_000;
        let event = msg(
            0,
            Message::Event(Event {
                id: "e".into(),
                ts: 0,
                device: None,
                code: "x".into(),
                severity: Severity::Info,
                message: String::new(),
                data: serde_json::Map::new(),
            }),
        );
        // Events and a backlog do not count, however old.
        assert_eq!(of_batch(&[event.clone(), telemetry(0, true)], now), None);
        let batch = [
            event,
            telemetry(0, true),
            telemetry(now - 60_000, false),
            telemetry(now - 45_000, false),
        ];
        assert_eq!(of_batch(&batch, now), Some(45_000));
        // An agent whose clock is ahead makes the batch look current, never behind.
        assert_eq!(
            of_batch(
                &[telemetry(now - 45_000, false), telemetry(now + 9, false)],
                now
            ),
            Some(0)
        );
    }
}
