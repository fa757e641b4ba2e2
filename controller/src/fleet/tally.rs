//! The fleet's tally: how many stores are well and how many are not, the devices down or
//! stale, and the newest problems, judged at one time.
//!
//! Judging it reads every device (staleness is a matter of time, so no write can keep it),
//! which at chain scale (100,000 devices updated every few seconds) is most of a page's
//! time. So the replica that holds the engines judges it every [`EVERY`] and keeps it in
//! `fleet_tally`; the overview of a large fleet reads that one row. A small fleet, or a
//! tally older than [`MAX_AGE_MS`] (no replica holds the engines), is judged at the request.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use storefleet_protocol::now_ms;
use storefleet_storage::{args, Sql, SqlExt as _};
use tokio_util::sync::CancellationToken;

use super::{problems, troubled_devices, Problem, Rules, Trouble};
use crate::config::PresenceSection;
use crate::db::{Db, DbError};

/// Store healths, as [`super::StoreStatus::health`] names them.
pub const HEALTHS: [&str; 4] = ["ok", "degraded", "offline", "empty"];

/// How often the engines' replica judges the tally.
pub const EVERY: Duration = Duration::from_secs(5);

/// A kept tally older than this is judged again at the request.
pub const MAX_AGE_MS: i64 = 30_000;

/// Problems a tally keeps, newest first (the overview lists fewer).
pub const KEPT_PROBLEMS: usize = 500;

/// The fleet judged at one time.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Tally {
    /// When, ms (the rules' now).
    pub at: i64,
    /// Stores in all.
    pub stores: u64,
    /// Stores by health, in the order of [`HEALTHS`].
    pub healths: [u64; 4],
    /// Devices in all.
    pub devices: u64,
    /// Devices down.
    pub devices_down: u64,
    /// Devices stale (and not down).
    pub devices_stale: u64,
    /// The stores that are not well, with their health.
    pub unwell: BTreeMap<String, String>,
    /// The newest problems, at most [`KEPT_PROBLEMS`].
    pub problems: Vec<Problem>,
    /// Problems in all.
    pub problems_total: u64,
}

impl Tally {
    /// A store's health (`ok` unless listed as not well).
    pub fn health(&self, store: &str) -> &str {
        self.unwell.get(store).map_or("ok", String::as_str)
    }

    /// Stores of one health.
    pub fn count(&self, health: &str) -> u64 {
        HEALTHS
            .iter()
            .position(|h| *h == health)
            .map_or(0, |i| self.healths[i])
    }
}

/// Judges the fleet by `rules`: only what is wrong is read (agents not online, devices down
/// or stale, stores without a gateway) and two totals; a store none of these name is well.
pub fn judge(c: &dyn Sql, rules: &Rules) -> Result<Tally, DbError> {
    let judge = rules.judge();
    let quiet = judge.not_online(c, false)?;
    let devices = troubled_devices(c, rules)?;
    let totals = c
        .one(
            "SELECT (SELECT count(*) FROM stores) AS stores, (SELECT count(*) FROM devices) AS devices",
            args![],
        )?
        .ok_or_else(|| DbError::Backend("the fleet totals query returned no row".into()))?;
    let count = |name: &str| totals.i64(name).map(|n| u64::try_from(n).unwrap_or(0));

    // The first health found wins, as in StoreStatus::health.
    let mut unwell: BTreeMap<String, String> = c
        .all(
            "SELECT code FROM stores s WHERE NOT EXISTS
                 (SELECT 1 FROM agents a WHERE a.store_code = s.code AND a.revoked_at IS NULL)",
            args![],
            |r| Ok((r.text("code")?, "empty".to_owned())),
        )?
        .into_iter()
        .collect();
    let quiet_stores: BTreeSet<&str> = quiet.iter().map(|a| a.store.as_str()).collect();
    let quiet_stores: Vec<&str> = quiet_stores.into_iter().collect();
    let heard: BTreeSet<String> = judge
        .of_stores(c, &quiet_stores)?
        .into_iter()
        .filter(|a| a.online)
        .map(|a| a.store)
        .collect();
    for s in quiet_stores.into_iter().filter(|s| !heard.contains(*s)) {
        unwell
            .entry(s.to_owned())
            .or_insert_with(|| "offline".into());
    }
    let mut t = Tally {
        at: rules.now,
        stores: count("stores")?,
        devices: count("devices")?,
        ..Tally::default()
    };
    for d in &devices {
        unwell
            .entry(d.store.clone())
            .or_insert_with(|| "degraded".into());
        match d.trouble() {
            Some(Trouble::Down) => t.devices_down += 1,
            Some(Trouble::Stale) => t.devices_stale += 1,
            None => {}
        }
    }
    for h in unwell.values() {
        if let Some(i) = HEALTHS.iter().position(|x| x == h) {
            t.healths[i] += 1;
        }
    }
    t.healths[0] = t.stores.saturating_sub(unwell.len() as u64);
    t.unwell = unwell;
    let mut problems = problems(&quiet, &devices);
    t.problems_total = problems.len() as u64;
    problems.truncate(KEPT_PROBLEMS);
    t.problems = problems;
    Ok(t)
}

/// Keeps `t` as the fleet's tally.
pub fn keep(c: &dyn Sql, t: &Tally) -> Result<(), DbError> {
    let body = serde_json::to_string(t)
        .map_err(|e| DbError::Invalid(format!("cannot keep the fleet tally: {e}")))?;
    c.execute(
        "INSERT INTO fleet_tally(id, at, body) VALUES (1, ?1, ?2)
         ON CONFLICT(id) DO UPDATE SET at = excluded.at, body = excluded.body",
        args![t.at, body],
    )?;
    Ok(())
}

/// The kept tally, if there is one judged at `now - MAX_AGE_MS` or later. One that cannot be
/// read (written by another version) counts as none.
pub fn kept(c: &dyn Sql, now: i64) -> Result<Option<Tally>, DbError> {
    let Some(r) = c.one(
        "SELECT body FROM fleet_tally WHERE id = 1 AND at >= ?1",
        args![now - MAX_AGE_MS],
    )?
    else {
        return Ok(None);
    };
    match serde_json::from_str(&r.text("body")?) {
        Ok(t) => Ok(Some(t)),
        Err(e) => {
            tracing::warn!(error = %e, "The kept fleet tally cannot be read; judging it again");
            Ok(None)
        }
    }
}

/// Judges and keeps the tally every [`EVERY`] until `token` is cancelled, judging staleness
/// as the ticket engine does: with the fleet's ingest delay ([`crate::ingest::behind`]).
pub async fn run(db: Db, presence: PresenceSection, token: CancellationToken) {
    loop {
        let p = presence.clone();
        let judged = db
            .read(move |c| {
                let mut rules = Rules::new(&p, now_ms());
                rules.data_behind_ms = crate::ingest::behind::fleet(c, rules.now)?;
                judge(c, &rules)
            })
            .await;
        let kept = match judged {
            Ok(t) => db.write(move |c| keep(c, &t)).await,
            Err(e) => Err(e),
        };
        if let Err(e) = kept {
            tracing::warn!(error = %e, "Judging the fleet tally failed; will retry");
        }
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(EVERY) => {}
        }
    }
}
