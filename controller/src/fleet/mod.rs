//! The fleet at a glance: each store's gateway and devices with their live state, and the
//! open problems (agent offline, device down, device stale). Shared by the API and the UI.

use serde::{Deserialize, Serialize};
use storefleet_storage::{args, Row, Sql, SqlExt as _};

use crate::agents::{Agent, Judge};
use crate::config::PresenceSection;
use crate::db::DbError;
use crate::stores::{self, Store};

mod summary;
pub mod tally;

pub use summary::{summary, Listing, Summary};
pub use tally::{Tally, HEALTHS};

/// How presence and staleness are judged.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Now, ms.
    pub now: i64,
    /// Silence after which an agent is offline, ms.
    pub offline_after_ms: i64,
    /// Intervals of silence after which a device is stale.
    pub stale_after_intervals: u32,
    /// Interval assumed when unknown, ms.
    pub default_interval_ms: i64,
    /// How far ingest is behind the agents, ms ([`crate::ingest::behind`]): a device is
    /// judged stale by its data at `now` minus this, so that readings still waiting in the
    /// broker are not taken for missing ones. 0 judges by `now`.
    pub data_behind_ms: i64,
}

impl Rules {
    /// Rules from config at `now`.
    pub fn new(p: &PresenceSection, now: i64) -> Rules {
        Rules {
            now,
            offline_after_ms: (p.offline_after_secs as i64) * 1000,
            stale_after_intervals: p.stale_after_intervals,
            default_interval_ms: i64::from(p.default_interval_secs) * 1000,
            data_behind_ms: 0,
        }
    }

    /// The time a device's data is judged stale at.
    pub fn data_now(&self) -> i64 {
        self.now - self.data_behind_ms
    }

    /// The agent judge for these rules.
    pub fn judge(&self) -> Judge {
        Judge {
            now: self.now,
            offline_after_ms: self.offline_after_ms,
        }
    }
}

/// A device's live state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceState {
    /// Store code.
    pub store: String,
    /// Device id.
    pub device: String,
    /// Class.
    pub class: String,
    /// Agent reporting it.
    pub agent_id: String,
    /// Newest data, ms.
    pub last_seen: Option<i64>,
    /// Expected interval, ms.
    pub interval_ms: i64,
    /// `up`, `down` or `unknown` (from the agent's device events).
    pub state: String,
    /// When the state last changed, ms.
    pub state_at: Option<i64>,
    /// The agent's note on the state (why it is down).
    pub note: String,
    /// No data for `stale_after_intervals` intervals.
    pub stale: bool,
}

/// What is wrong with a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trouble {
    /// Its agent says it is down.
    Down,
    /// Up as far as anyone said, but silent for too long.
    Stale,
}

impl DeviceState {
    /// What is wrong with the device, if anything; a device down and stale counts as down.
    pub fn trouble(&self) -> Option<Trouble> {
        if self.state == "down" {
            Some(Trouble::Down)
        } else if self.stale {
            Some(Trouble::Stale)
        } else {
            None
        }
    }
}

pub(crate) const DEVICE_COLUMNS: &str =
    "store_code, device, class, agent_id, last_seen, interval_ms, state, state_at, state_note";

/// All devices, optionally of one store, judged by `rules`.
pub fn devices(
    c: &dyn Sql,
    store: Option<&str>,
    rules: &Rules,
) -> Result<Vec<DeviceState>, DbError> {
    c.all(
        &format!(
            "SELECT {DEVICE_COLUMNS} FROM devices
             WHERE (CAST(?1 AS TEXT) IS NULL OR store_code = ?1) ORDER BY store_code, device"
        ),
        args![store],
        |r| device_row(r, rules),
    )
}

/// Only the devices that are down or stale by `rules`, of the whole fleet. The database
/// judges staleness the way [`devices`] does, so a healthy fleet costs a scan, not a
/// transfer.
pub fn troubled_devices(c: &dyn Sql, rules: &Rules) -> Result<Vec<DeviceState>, DbError> {
    c.all(
        &format!(
            "SELECT {DEVICE_COLUMNS} FROM devices
             WHERE state = 'down'
                OR (last_seen IS NOT NULL AND ?1 - last_seen >
                    (CASE WHEN interval_ms > 0 THEN interval_ms ELSE ?2 END) * ?3)
             ORDER BY store_code, device"
        ),
        args![
            rules.data_now(),
            rules.default_interval_ms,
            i64::from(rules.stale_after_intervals)
        ],
        |r| device_row(r, rules),
    )
}

pub(crate) fn device_row(r: &Row, rules: &Rules) -> Result<DeviceState, DbError> {
    let last_seen = r.opt_i64("last_seen")?;
    let interval_ms = r
        .opt_i64("interval_ms")?
        .filter(|i| *i > 0)
        .unwrap_or(rules.default_interval_ms);
    let stale = match last_seen {
        Some(t) => rules.data_now() - t > interval_ms * i64::from(rules.stale_after_intervals),
        None => false,
    };
    Ok(DeviceState {
        store: r.text("store_code")?,
        device: r.text("device")?,
        class: r.text("class")?,
        agent_id: r.text("agent_id")?,
        last_seen,
        interval_ms,
        state: r.text("state")?,
        state_at: r.opt_i64("state_at")?,
        note: r.text("state_note")?,
        stale,
    })
}

/// One store's summary line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreStatus {
    /// The store.
    pub store: Store,
    /// Agents enrolled.
    pub agents: u32,
    /// Agents online.
    pub agents_online: u32,
    /// Devices known.
    pub devices: u32,
    /// Devices down.
    pub devices_down: u32,
    /// Devices stale.
    pub devices_stale: u32,
}

impl StoreStatus {
    /// `ok`, `degraded` (a device down or stale), `offline` (no agent online), `empty`.
    pub fn health(&self) -> &'static str {
        if self.agents == 0 {
            "empty"
        } else if self.agents_online == 0 {
            "offline"
        } else if self.devices_down + self.devices_stale > 0 {
            "degraded"
        } else {
            "ok"
        }
    }
}

/// One open problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Store code.
    pub store: String,
    /// `agent.offline`, `device.down` or `device.stale`.
    pub kind: String,
    /// Agent or device id.
    pub subject: String,
    /// Since when, ms (when known).
    pub since: Option<i64>,
    /// Details.
    pub note: String,
}

/// The whole fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    /// One line per store.
    pub stores: Vec<StoreStatus>,
    /// Open problems, newest first.
    pub problems: Vec<Problem>,
}

/// Problems of the given agents and devices.
pub fn problems(agents: &[Agent], devices: &[DeviceState]) -> Vec<Problem> {
    let mut out = Vec::new();
    for a in agents
        .iter()
        .filter(|a| !a.online && a.revoked_at.is_none())
    {
        out.push(Problem {
            store: a.store.clone(),
            kind: "agent.offline".into(),
            subject: a.id.clone(),
            since: a.last_seen.or(a.presence_at),
            note: if a.presence == "offline" {
                "said offline (last will or shutdown)".into()
            } else {
                "not heard from".into()
            },
        });
    }
    for d in devices {
        let (kind, since, note) = match d.trouble() {
            Some(Trouble::Down) => ("device.down", d.state_at, d.note.clone()),
            Some(Trouble::Stale) => (
                "device.stale",
                d.last_seen,
                format!("no data for more than {} s", d.interval_ms / 1000),
            ),
            None => continue,
        };
        out.push(Problem {
            store: d.store.clone(),
            kind: kind.into(),
            subject: d.device.clone(),
            since,
            note,
        });
    }
    out.sort_by(|a, b| b.since.cmp(&a.since).then_with(|| a.store.cmp(&b.store)));
    out
}

/// Builds the overview. The database counts each store's agents and devices and hands
/// over only what is wrong (agents not online, devices down or stale), judged as
/// [`devices`] and the agent judge do, so a fleet of thousands of stores costs one grouped
/// scan, not a transfer of every agent and device.
pub fn overview(c: &dyn Sql, rules: &Rules) -> Result<Overview, DbError> {
    let stores = c.all(
        &format!(
            "SELECT {columns},
                    COALESCE(a.n, 0) AS agents, COALESCE(a.online, 0) AS agents_online,
                    COALESCE(d.n, 0) AS devices, COALESCE(d.down, 0) AS devices_down,
                    COALESCE(d.stale, 0) AS devices_stale
             FROM stores s
             LEFT JOIN (
                 SELECT store_code, count(*) AS n,
                        SUM(CASE WHEN presence = 'online' AND last_seen IS NOT NULL
                                      AND ?1 - last_seen <= ?2 THEN 1 ELSE 0 END) AS online
                 FROM agents WHERE revoked_at IS NULL GROUP BY store_code
             ) a ON a.store_code = s.code
             LEFT JOIN (
                 SELECT store_code, count(*) AS n,
                        SUM(CASE WHEN state = 'down' THEN 1 ELSE 0 END) AS down,
                        SUM(CASE WHEN state <> 'down' AND last_seen IS NOT NULL AND ?5 - last_seen >
                                      (CASE WHEN interval_ms > 0 THEN interval_ms ELSE ?3 END) * ?4
                                 THEN 1 ELSE 0 END) AS stale
                 FROM devices GROUP BY store_code
             ) d ON d.store_code = s.code
             ORDER BY s.code",
            columns = stores::COLUMNS
                .split(", ")
                .map(|c| format!("s.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        args![
            rules.now,
            rules.offline_after_ms,
            rules.default_interval_ms,
            i64::from(rules.stale_after_intervals),
            rules.data_now()
        ],
        |r| {
            let count = |name: &str| r.i64(name).map(|n| u32::try_from(n).unwrap_or(u32::MAX));
            Ok(StoreStatus {
                store: stores::from_row(r)?,
                agents: count("agents")?,
                agents_online: count("agents_online")?,
                devices: count("devices")?,
                devices_down: count("devices_down")?,
                devices_stale: count("devices_stale")?,
            })
        },
    )?;
    let agents = rules.judge().not_online(c, false)?;
    let devs = troubled_devices(c, rules)?;
    Ok(Overview {
        stores,
        problems: problems(&agents, &devs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_is_stale_after_its_intervals_pass_without_data() {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        crate::db::migrations::apply(&mut c).unwrap();
        let now = 10_000_000;
        // 10 s interval known; 60 s default for the other.
        c.execute("INSERT INTO devices(store_code, device, agent_id, interval_ms, last_seen) VALUES ('S', 'fresh', 'a', 10000, ?1)", [now - 25_000]).unwrap();
        c.execute("INSERT INTO devices(store_code, device, agent_id, interval_ms, last_seen) VALUES ('S', 'quiet', 'a', 10000, ?1)", [now - 31_000]).unwrap();
        c.execute("INSERT INTO devices(store_code, device, agent_id, last_seen) VALUES ('S', 'slow', 'a', ?1)", [now - 120_000]).unwrap();
        c.execute("INSERT INTO devices(store_code, device, agent_id, state, state_at) VALUES ('S', 'down', 'a', 'down', ?1)", [now]).unwrap();
        let rules = Rules {
            now,
            offline_after_ms: 180_000,
            stale_after_intervals: 3,
            default_interval_ms: 60_000,
            data_behind_ms: 0,
        };
        let d = devices(&c, Some("S"), &rules).unwrap();
        let stale: Vec<&str> = d
            .iter()
            .filter(|x| x.stale)
            .map(|x| x.device.as_str())
            .collect();
        assert_eq!(stale, vec!["quiet"]);
        let p = problems(&[], &d);
        let kinds: Vec<(&str, &str)> = p
            .iter()
            .map(|x| (x.kind.as_str(), x.subject.as_str()))
            .collect();
        assert_eq!(
            kinds,
            vec![("device.down", "down"), ("device.stale", "quiet")]
        );
    }
}
