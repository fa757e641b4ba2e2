//! The overview page's view of the fleet: the fleet's [`Tally`] (how many stores are well
//! and how many are not, the newest problems) and a bounded list of stores.
//!
//! [`super::overview`] counts every store's agents and devices on each request, which at
//! chain scale (10,000 stores, 100,000 devices) is most of the page's time. A summary takes
//! the tally that the engines' replica keeps (judged at the request for a small fleet, or
//! when none is fresh), and reads counts per store only for the stores it lists.

use std::collections::HashMap;

use storefleet_storage::many::lookup;
use storefleet_storage::{args, Sql, SqlExt as _, Value};

use super::tally::{self, Tally};
use super::{device_row, Rules, StoreStatus, Trouble, DEVICE_COLUMNS};
use crate::db::DbError;
use crate::stores::{self, Store};

/// Which stores a summary lists.
#[derive(Debug, Clone, Copy)]
pub struct Listing<'a> {
    /// Text in a store's code, name or region (any case); blank for any.
    pub q: &'a str,
    /// One of [`tally::HEALTHS`]; empty for any.
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
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    /// The fleet's tally: its counts and newest problems, judged at `tally.at`.
    pub tally: Tally,
    /// The stores listed, by code: with a text or a health, those that match; else a small
    /// fleet whole, or a larger one's stores that are not well. At most the limit. Their
    /// counts are judged at the request.
    pub listed: Vec<StoreStatus>,
    /// How many stores there were to list.
    pub matched: u64,
}

/// Summarizes the fleet by `rules`, listing the stores `want` asks for: with the kept tally
/// when the fleet has more stores than the list holds and the tally is fresh, else with one
/// judged now.
pub fn summary(c: &dyn Sql, rules: &Rules, want: &Listing) -> Result<Summary, DbError> {
    let stores = c.int("SELECT count(*) AS n FROM stores", args![], "n")?;
    let large = u64::try_from(stores).unwrap_or(0) > want.limit as u64;
    let tally = match large.then(|| tally::kept(c, rules.now)).transpose()? {
        Some(Some(t)) => t,
        _ => tally::judge(c, rules)?,
    };
    let chosen: Vec<String> = if want.filtering() {
        let q = want.q.trim().to_lowercase();
        let has = |t: &str| q.is_empty() || t.to_lowercase().contains(&q);
        let mut all = c.all("SELECT code, name, region FROM stores", args![], |r| {
            Ok((r.text("code")?, r.text("name")?, r.text("region")?))
        })?;
        all.retain(|(code, name, region)| {
            (want.health.is_empty() || want.health == tally.health(code))
                && (has(code) || has(name) || has(region))
        });
        let mut codes: Vec<String> = all.into_iter().map(|(code, ..)| code).collect();
        codes.sort_unstable();
        codes
    } else if !large {
        let mut codes = c.all("SELECT code FROM stores", args![], |r| r.text("code"))?;
        codes.sort_unstable();
        codes
    } else {
        tally.unwell.keys().cloned().collect()
    };
    let matched = chosen.len() as u64;
    let listed = statuses(c, rules, &chosen[..chosen.len().min(want.limit)])?;
    Ok(Summary {
        tally,
        listed,
        matched,
    })
}

/// The summary lines of the stores `codes` (in that order), judged by `rules`.
fn statuses(c: &dyn Sql, rules: &Rules, codes: &[String]) -> Result<Vec<StoreStatus>, DbError> {
    let keys: Vec<Vec<Value>> = codes.iter().map(|s| vec![s.as_str().into()]).collect();
    let mut found: HashMap<String, Store> = lookup(
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
    // Per store: agents (all, online), devices (all, down, stale).
    let mut counts: HashMap<String, [u32; 5]> = HashMap::new();
    let names: Vec<&str> = codes.iter().map(String::as_str).collect();
    for a in rules.judge().of_stores(c, &names)? {
        let n = counts.entry(a.store).or_default();
        n[0] += 1;
        n[1] += u32::from(a.online);
    }
    let devices = lookup(
        c,
        &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE store_code IN (VALUES "),
        1,
        ")",
        &keys,
    )?;
    for r in &devices {
        let d = device_row(r, rules)?;
        let trouble = d.trouble();
        let n = counts.entry(d.store).or_default();
        n[2] += 1;
        match trouble {
            Some(Trouble::Down) => n[3] += 1,
            Some(Trouble::Stale) => n[4] += 1,
            None => {}
        }
    }
    Ok(codes
        .iter()
        .filter_map(|code| found.remove(code))
        .map(|store| {
            let [agents, agents_online, devices, devices_down, devices_stale] =
                counts.get(&store.code).copied().unwrap_or_default();
            StoreStatus {
                store,
                agents,
                agents_online,
                devices,
                devices_down,
                devices_stale,
            }
        })
        .collect())
}
