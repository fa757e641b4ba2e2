//! The overview page's view of the fleet: how many stores are well and how many are not,
//! the open problems, and a bounded list of stores.
//!
//! [`super::overview`] counts every store's agents and devices on each request, which at
//! chain scale (10,000 stores, 100,000 devices) is most of the page's time. A summary reads
//! only what is wrong: the agents not online and the devices down or stale (which the
//! problem list needs anyway), the stores without a gateway, and two totals. A store that
//! none of these name is well. Counts per store are read only for the stores listed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use storefleet_storage::many::many_query;
use storefleet_storage::{args, Sql, SqlExt as _, Value};

use super::{problems, troubled_devices, DeviceState, Problem, Rules, StoreStatus};
use crate::db::DbError;
use crate::stores::{self, Store};

/// Store healths, as [`StoreStatus::health`] names them.
pub const HEALTHS: [&str; 4] = ["ok", "degraded", "offline", "empty"];

/// Which stores a summary lists.
#[derive(Debug, Clone, Copy)]
pub struct Listing<'a> {
    /// Text in a store's code, name or region (any case); blank for any.
    pub q: &'a str,
    /// One of [`HEALTHS`]; empty for any.
    pub health: &'a str,
    /// Stores listed at most.
    pub limit: usize,
}

impl Listing<'_> {
    /// Whether a text or a health narrows the list.
    pub fn filtering(&self) -> bool {
        !self.q.trim().is_empty() || !self.health.is_empty()
    }
}

/// The fleet as the overview shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
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
    /// Open problems, newest first.
    pub problems: Vec<Problem>,
    /// The stores listed, by code: with a text or a health, those that match; else a small
    /// fleet whole, or a larger one's stores that are not well. At most the limit.
    pub listed: Vec<StoreStatus>,
    /// How many stores there were to list.
    pub matched: u64,
}

impl Summary {
    /// Stores of one health.
    pub fn count(&self, health: &str) -> u64 {
        HEALTHS
            .iter()
            .position(|h| *h == health)
            .map_or(0, |i| self.healths[i])
    }
}

/// Summarizes the fleet by `rules`, listing the stores `want` asks for.
pub fn summary(c: &dyn Sql, rules: &Rules, want: &Listing) -> Result<Summary, DbError> {
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
    let (stores, all_devices) = (count("stores")?, count("devices")?);

    // The stores that are not well; the first health found wins, as in StoreStatus::health.
    let mut unwell: BTreeMap<String, &'static str> = c
        .all(
            "SELECT code FROM stores s WHERE NOT EXISTS
                 (SELECT 1 FROM agents a WHERE a.store_code = s.code AND a.revoked_at IS NULL)",
            args![],
            |r| Ok((r.text("code")?, "empty")),
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
        unwell.entry(s.to_owned()).or_insert("offline");
    }
    for d in &devices {
        unwell.entry(d.store.clone()).or_insert("degraded");
    }
    let mut healths = [0u64; 4];
    for h in unwell.values() {
        healths[HEALTHS.iter().position(|x| x == h).unwrap_or(0)] += 1;
    }
    healths[0] = stores.saturating_sub(unwell.len() as u64);

    let chosen: Vec<String> = if want.filtering() {
        let q = want.q.trim().to_lowercase();
        let has = |t: &str| q.is_empty() || t.to_lowercase().contains(&q);
        let mut all = c.all("SELECT code, name, region FROM stores", args![], |r| {
            Ok((r.text("code")?, r.text("name")?, r.text("region")?))
        })?;
        all.retain(|(code, name, region)| {
            let health = unwell.get(code).copied().unwrap_or("ok");
            (want.health.is_empty() || want.health == health)
                && (has(code) || has(name) || has(region))
        });
        let mut codes: Vec<String> = all.into_iter().map(|(code, ..)| code).collect();
        codes.sort_unstable();
        codes
    } else if stores <= want.limit as u64 {
        let mut codes = c.all("SELECT code FROM stores", args![], |r| r.text("code"))?;
        codes.sort_unstable();
        codes
    } else {
        unwell.keys().cloned().collect()
    };
    let matched = chosen.len() as u64;
    let listed = statuses(c, rules, &chosen[..chosen.len().min(want.limit)], &devices)?;

    let (mut devices_down, mut devices_stale) = (0, 0);
    for d in &devices {
        if d.state == "down" {
            devices_down += 1;
        } else if d.stale {
            devices_stale += 1;
        }
    }
    Ok(Summary {
        stores,
        healths,
        devices: all_devices,
        devices_down,
        devices_stale,
        problems: problems(&quiet, &devices),
        listed,
        matched,
    })
}

/// The summary lines of the stores `codes` (in that order), with `troubled` the fleet's
/// devices that are down or stale.
fn statuses(
    c: &dyn Sql,
    rules: &Rules,
    codes: &[String],
    troubled: &[DeviceState],
) -> Result<Vec<StoreStatus>, DbError> {
    let keys: Vec<Vec<Value>> = codes.iter().map(|s| vec![s.as_str().into()]).collect();
    let mut found: HashMap<String, Store> = many_query(
        c,
        &format!(
            "SELECT {} FROM stores WHERE code IN (VALUES ",
            stores::COLUMNS
        ),
        1,
        ")",
        &keys,
    )?
    .iter()
    .map(|r| stores::from_row(r).map(|s| (s.code.clone(), s)))
    .collect::<Result<_, _>>()?;
    let mut devices: HashMap<String, u32> = HashMap::new();
    for r in many_query(
        c,
        "SELECT store_code, count(*) AS n FROM devices WHERE store_code IN (VALUES ",
        1,
        ") GROUP BY store_code",
        &keys,
    )? {
        let n = u32::try_from(r.i64("n")?).unwrap_or(u32::MAX);
        devices.insert(r.text("store_code")?, n);
    }
    // Per store: agents (all, online), devices down, devices stale.
    let mut counts: HashMap<&str, [u32; 4]> = HashMap::new();
    let names: Vec<&str> = codes.iter().map(String::as_str).collect();
    let agents = rules.judge().of_stores(c, &names)?;
    for a in &agents {
        let n = counts.entry(a.store.as_str()).or_default();
        n[0] += 1;
        n[1] += u32::from(a.online);
    }
    for d in troubled {
        let n = counts.entry(d.store.as_str()).or_default();
        if d.state == "down" {
            n[2] += 1;
        } else if d.stale {
            n[3] += 1;
        }
    }
    Ok(codes
        .iter()
        .filter_map(|code| found.remove(code))
        .map(|store| {
            let [agents, agents_online, devices_down, devices_stale] =
                counts.get(store.code.as_str()).copied().unwrap_or_default();
            StoreStatus {
                agents,
                agents_online,
                devices: devices.get(&store.code).copied().unwrap_or(0),
                devices_down,
                devices_stale,
                store,
            }
        })
        .collect())
}
