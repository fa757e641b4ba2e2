//! Messages whose data the database refused ([`DbError::Refused`]: a value it cannot hold,
//! such as a NUL character in PostgreSQL text), held apart with the refusal.
//!
//! Ingest stores the rest of such a message's batch, holds the message here and
//! acknowledges it, so that one bad message does not stop its lane. Nothing is lost: the
//! envelope is kept as the agent signed it, and an admin lists, retries (once the cause is
//! fixed) or drops it.

use storefleet_protocol::Envelope;
use storefleet_storage::{args, Sql, SqlExt as _};

use super::write::Verified;
use crate::db::DbError;

pub use storefleet_client::ingest::Held;

/// Holds `m`, refused with `error`; a message held before is held again with the new error.
pub fn put(c: &dyn Sql, m: &Verified, error: &str, now: i64) -> Result<(), DbError> {
    let env = &m.envelope;
    let json = env
        .to_json()
        .map_err(|e| DbError::Invalid(format!("cannot keep message {}: {e}", name(m))))?;
    c.execute(
        "INSERT INTO ingest_held(agent_id, seq, store_id, kind, envelope, error, held_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (agent_id, seq) DO UPDATE SET error = excluded.error, held_at = excluded.held_at",
        args![
            env.from.as_str(),
            env.seq as i64,
            m.store.as_str(),
            env.message.kind().as_str(),
            json,
            error,
            now
        ],
    )?;
    Ok(())
}

/// Held messages, oldest first, at most `limit`.
pub fn list(c: &dyn Sql, limit: u32) -> Result<Vec<Held>, DbError> {
    c.all(
        "SELECT agent_id, seq, store_id, kind, error, held_at, length(envelope) AS bytes
         FROM ingest_held ORDER BY held_at, agent_id, seq LIMIT ?1",
        args![limit.clamp(1, 5000)],
        |r| {
            Ok(Held {
                agent_id: r.text("agent_id")?,
                seq: r.int("seq")?,
                store: r.text("store_id")?,
                kind: r.text("kind")?,
                error: r.text("error")?,
                held_at: r.i64("held_at")?,
                bytes: r.int("bytes")?,
            })
        },
    )
}

/// How many messages are held.
pub fn count(c: &dyn Sql) -> Result<u64, DbError> {
    Ok(c.int("SELECT count(*) AS n FROM ingest_held", args![], "n")? as u64)
}

/// The held message of `agent` with `seq`, ready to store again.
pub fn get(c: &dyn Sql, agent: &str, seq: u64) -> Result<Verified, DbError> {
    let Some(r) = c.one(
        "SELECT store_id, envelope FROM ingest_held WHERE agent_id = ?1 AND seq = ?2",
        args![agent, seq as i64],
    )?
    else {
        return Err(DbError::NotFound(format!(
            "no held message {seq} of agent {agent}"
        )));
    };
    let envelope = Envelope::from_json(&r.blob("envelope")?).map_err(|e| {
        DbError::Backend(format!(
            "held message {seq} of agent {agent} is damaged: {e}"
        ))
    })?;
    Ok(Verified {
        store: r.text("store_id")?,
        envelope,
    })
}

/// Forgets the held message of `agent` with `seq` (stored after all, or dropped).
pub fn forget(c: &dyn Sql, agent: &str, seq: u64) -> Result<(), DbError> {
    let n = c.execute(
        "DELETE FROM ingest_held WHERE agent_id = ?1 AND seq = ?2",
        args![agent, seq as i64],
    )?;
    if n == 0 {
        return Err(DbError::NotFound(format!(
            "no held message {seq} of agent {agent}"
        )));
    }
    Ok(())
}

/// A message's name in errors and logs: `kind seq of agent (store)`.
pub fn name(m: &Verified) -> String {
    format!(
        "{} {} of agent {} (store {})",
        m.envelope.message.kind().as_str(),
        m.envelope.seq,
        m.envelope.from,
        m.store
    )
}
