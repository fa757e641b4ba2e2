//! Messages held apart by ingest because the database refused their data
//! ([`crate::ingest::held`]): listing them, storing one again once its cause is fixed, and
//! dropping one that can never be stored. Each change is logged with who made it.

use storefleet_protocol::now_ms;

use crate::cluster::Wake;
use crate::ingest::{held, write};
use crate::state::AppState;

use super::{Principal, Result};

pub use storefleet_client::ingest::HeldList;

/// The held messages, oldest first, at most `limit`.
pub async fn list(s: &AppState, limit: u32) -> Result<HeldList> {
    Ok(s.db
        .read(move |c| {
            Ok(HeldList {
                count: held::count(c)?,
                messages: held::list(c, limit)?,
            })
        })
        .await?)
}

/// Stores the held message `seq` of `agent` again; it is no longer held once stored. A
/// refusal again leaves it held and names the reason. Returns whether it was stored now
/// (false: it had been stored already, a copy came later).
pub async fn retry(s: &AppState, p: &Principal, agent: &str, seq: u64) -> Result<bool> {
    let a = agent.to_owned();
    let (outcome, store) =
        s.db.write(move |c| {
            let m = held::get(c, &a, seq)?;
            let o = write::apply(c, std::slice::from_ref(&m), now_ms())?;
            held::forget(c, &a, seq)?;
            Ok((o, m.store))
        })
        .await?;
    if outcome.task_reports > 0 {
        s.signals.wake(Wake::Tasks);
    }
    s.signals
        .look_at(&std::collections::BTreeSet::from([store]));
    tracing::info!(agent_id = %agent, seq, by = %p.actor, "Held message stored");
    Ok(outcome.stored > 0)
}

/// Drops the held message `seq` of `agent`: it will never be stored.
pub async fn drop(s: &AppState, p: &Principal, agent: &str, seq: u64) -> Result<()> {
    let a = agent.to_owned();
    s.db.write(move |c| held::forget(c, &a, seq)).await?;
    tracing::warn!(agent_id = %agent, seq, by = %p.actor, "Held message dropped");
    Ok(())
}
