//! Storing a batch of verified messages in one database job.
//!
//! Each message is stored once: `(agent, seq)` goes into `received` in the same transaction
//! as its data, so a redelivery after a lost acknowledgement, or after a controller restart,
//! is recognised and skipped. Points are stored raw, and what they add to each series'
//! per-minute bucket (aggregates from the agent count with their `n`) is stored as a delta,
//! which [`super::rollups`] folds into the per-minute and per-hour rollups later: a batch
//! appends rows and updates no rollup, which at chain scale was half of ingest's work.

use std::collections::{BTreeSet, HashMap, HashSet};

use storefleet_protocol::message::{
    CommandResult, CommandStatus, Event, Message, Presence, PresenceState, Severity, TelemetryBatch,
};
use storefleet_protocol::routine::{RunRecord, Trigger};
use storefleet_protocol::Envelope;
use storefleet_storage::many::many_query;
use storefleet_storage::{args, Sql, SqlExt as _, Value};

use crate::assets::inventory;
use crate::db::DbError;

mod known;
mod rows;

pub use known::SeriesIds;

/// A message that passed verification, with the store its agent belongs to.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The agent's store.
    pub store: String,
    /// The envelope.
    pub envelope: Envelope,
}

/// What a batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Messages stored.
    pub stored: u64,
    /// Of them, telemetry (which the alert rules see at their next round; everything else
    /// wakes them).
    pub telemetry: u64,
    /// Messages already stored before (redeliveries).
    pub duplicates: u64,
    /// Points stored.
    pub points: u64,
    /// Asset records created by inventory reports.
    pub assets_created: u64,
    /// Asset field changes recorded.
    pub asset_changes: u64,
    /// Routine run records stored.
    pub runs: u64,
    /// Command results that belong to a fleet task's target.
    pub task_reports: u64,
    /// Messages whose data the database refused, held apart ([`super::held`]).
    pub held: u64,
    /// Inventory reports older than one applied before, skipped.
    pub stale_inventories: u64,
}

impl Outcome {
    /// Whether the alert rules should look at once: events, presence and routine runs are
    /// what a fault looks like first. Telemetry alone (a fleet's steady load) waits for
    /// their next round.
    pub fn wakes_rules(&self) -> bool {
        self.stored > self.telemetry
    }
}

impl std::ops::AddAssign for Outcome {
    fn add_assign(&mut self, o: Outcome) {
        self.stored += o.stored;
        self.telemetry += o.telemetry;
        self.duplicates += o.duplicates;
        self.points += o.points;
        self.assets_created += o.assets_created;
        self.asset_changes += o.asset_changes;
        self.runs += o.runs;
        self.task_reports += o.task_reports;
        self.held += o.held;
        self.stale_inventories += o.stale_inventories;
    }
}

#[derive(Default, Clone, Copy)]
struct Agg {
    n: i64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Agg {
    fn add(&mut self, n: i64, sum: f64, min: f64, max: f64) {
        if self.n == 0 {
            self.min = min;
            self.max = max;
        } else {
            self.min = self.min.min(min);
            self.max = self.max.max(max);
        }
        self.n += n;
        self.sum += sum;
    }
}

/// A series' store, device and metric.
pub type SeriesKey = (String, String, String);

struct Batch<'c> {
    c: &'c dyn Sql,
    /// Series ids committed before, shared by the controller's batches.
    known: &'c SeriesIds,
    /// Series ids read or made by this batch, for [`SeriesIds::learn`] once it committed.
    learned: Vec<(SeriesKey, i64)>,
    series: HashMap<SeriesKey, i64>,
    /// What the batch adds to each (series, minute bucket).
    deltas: HashMap<(i64, i64), Agg>,
    /// Raw points of the batch by (series, time), the last value of a time winning; written
    /// in multi-row statements at the end.
    points: HashMap<(i64, i64), f64>,
    /// The agents heard from in the batch, with their stores.
    heard: HashMap<String, String>,
    /// When the batch was received, ms.
    now: i64,
    /// The newest reading of each series in the batch, with the series' key.
    series_last: HashMap<i64, (i64, f64, SeriesKey)>,
    device_seen: HashMap<(String, String), (i64, String, Option<i64>)>,
    /// The newest state each device reported in the batch (`device.up`/`down` events).
    device_state: HashMap<(String, String), DeviceState>,
    /// The presence of each agent with the highest seq in the batch.
    presence: HashMap<String, PresenceRow>,
    /// Event rows, in arrival order.
    events: Vec<Vec<Value>>,
    out: Outcome,
}

struct DeviceState {
    state: &'static str,
    at: i64,
    note: String,
    agent: String,
}

struct PresenceRow {
    seq: u64,
    state: &'static str,
    at: i64,
    started_at: i64,
    version: String,
}

/// Stores `msgs` received at `now`.
pub fn apply(c: &dyn Sql, msgs: &[Verified], now: i64) -> Result<Outcome, DbError> {
    Ok(apply_with(c, msgs, now, &SeriesIds::default())?.0)
}

/// [`apply`], looking series up in `known` first; also returns the series ids the batch read
/// or made, for `known` to learn once the batch has committed (not before: a series made by
/// a batch that rolls back does not exist).
pub fn apply_with(
    c: &dyn Sql,
    msgs: &[Verified],
    now: i64,
    known: &SeriesIds,
) -> Result<(Outcome, Vec<(SeriesKey, i64)>), DbError> {
    let mut b = Batch {
        c,
        known,
        learned: Vec::new(),
        series: HashMap::new(),
        deltas: HashMap::new(),
        points: HashMap::new(),
        heard: HashMap::new(),
        now,
        series_last: HashMap::new(),
        device_seen: HashMap::new(),
        device_state: HashMap::new(),
        presence: HashMap::new(),
        events: Vec::new(),
        out: Outcome::default(),
    };
    let mut fresh = received(c, msgs, now)?;
    b.known_series(msgs, &fresh)?;
    for m in msgs {
        let env = &m.envelope;
        // The first of a batch's copies of a message counts; later ones and those stored
        // before are redeliveries.
        if !fresh.remove(&(env.from.clone(), env.seq as i64)) {
            b.out.duplicates += 1;
            continue;
        }
        b.out.stored += 1;
        b.heard
            .entry(env.from.clone())
            .or_insert_with(|| m.store.clone());
        match &env.message {
            Message::Presence(p) => b.presence(&env.from, env.seq, env.ts, now, p),
            Message::Telemetry(t) => {
                b.out.telemetry += 1;
                b.telemetry(&env.from, &m.store, t)?;
            }
            Message::Event(e) => b.event(&env.from, &m.store, e, now),
            Message::Inventory(_) if !inventory::newest(c, &env.from, env.seq)? => {
                b.out.stale_inventories += 1;
            }
            Message::Inventory(i) => {
                let a = inventory::apply(c, &env.from, &m.store, i, now)?;
                b.out.assets_created += u64::from(a.created);
                b.out.asset_changes += u64::from(a.changes);
                if a.created + a.changes > 0 {
                    crate::tickets::db::link_reported_assets(c, &m.store, now)?;
                }
            }
            Message::CommandResult(r) => b.command_result(&env.from, &m.store, r, now)?,
            Message::RoutineRun(r) => b.routine_run(&env.from, &m.store, r, now)?,
            // Verification routes `command` only downlink; nothing to store from an agent.
            Message::Command(_) => {}
        }
    }
    b.finish()?;
    Ok((b.out, b.learned))
}

/// Records the batch's `(agent, seq)` pairs in `received`, in key order and multi-row
/// statements; returns those that were not there before.
fn received(c: &dyn Sql, msgs: &[Verified], now: i64) -> Result<HashSet<(String, i64)>, DbError> {
    let keys: BTreeSet<(&str, i64)> = msgs
        .iter()
        .map(|m| (m.envelope.from.as_str(), m.envelope.seq as i64))
        .collect();
    let rows: Vec<Vec<Value>> = keys
        .iter()
        .map(|(agent, seq)| vec![(*agent).into(), (*seq).into(), now.into()])
        .collect();
    let new = many_query(
        c,
        "INSERT INTO received(agent_id, seq, at) VALUES ",
        3,
        " ON CONFLICT DO NOTHING RETURNING agent_id, seq",
        &rows,
    )?;
    new.iter()
        .map(|r| Ok((r.text("agent_id")?, r.i64("seq")?)))
        .collect()
}

impl Batch<'_> {
    /// Looks up the ids of the series the batch's new telemetry names, in multi-row
    /// statements (one query per message and series would be a round trip each).
    fn known_series(
        &mut self,
        msgs: &[Verified],
        fresh: &HashSet<(String, i64)>,
    ) -> Result<(), DbError> {
        let mut keys: BTreeSet<(&str, String, &str)> = BTreeSet::new();
        for m in msgs {
            let env = &m.envelope;
            let Message::Telemetry(t) = &env.message else {
                continue;
            };
            if !fresh.contains(&(env.from.clone(), env.seq as i64)) {
                continue;
            }
            for s in &t.series {
                keys.insert((
                    m.store.as_str(),
                    s.device.clone().unwrap_or_default(),
                    s.metric.as_str(),
                ));
            }
        }
        let mut rows: Vec<Vec<Value>> = Vec::new();
        for (store, device, metric) in &keys {
            let key = ((*store).to_owned(), device.clone(), (*metric).to_owned());
            match self.known.get(&key) {
                Some(id) => {
                    self.series.insert(key, id);
                }
                None => rows.push(vec![
                    (*store).into(),
                    device.as_str().into(),
                    (*metric).into(),
                ]),
            }
        }
        let found = self.lookup(&rows)?;
        self.remember(&found)?;
        // The new ones are made in key order too. A batch on another replica may be making
        // the same series: DO NOTHING waits for it, and the lookup after that finds its row.
        let missing: Vec<Vec<Value>> = keys
            .iter()
            .filter(|(store, device, metric)| {
                !self.series.contains_key(&(
                    (*store).to_owned(),
                    device.clone(),
                    (*metric).to_owned(),
                ))
            })
            .map(|(store, device, metric)| {
                vec![(*store).into(), device.as_str().into(), (*metric).into()]
            })
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let made = many_query(
            self.c,
            "INSERT INTO series(store_code, device, metric) VALUES ",
            3,
            " ON CONFLICT DO NOTHING RETURNING id, store_code, device, metric",
            &missing,
        )?;
        self.remember(&made)?;
        if made.len() < missing.len() {
            let found = self.lookup(&missing)?;
            self.remember(&found)?;
        }
        Ok(())
    }

    /// The series of `keys` (store, device, metric) that exist.
    fn lookup(&self, keys: &[Vec<Value>]) -> Result<Vec<storefleet_storage::Row>, DbError> {
        many_query(
            self.c,
            "SELECT id, store_code, device, metric FROM series WHERE (store_code, device, metric) IN (VALUES ",
            3,
            ")",
            keys,
        )
    }

    fn remember(&mut self, rows: &[storefleet_storage::Row]) -> Result<(), DbError> {
        for r in rows {
            let key = (r.text("store_code")?, r.text("device")?, r.text("metric")?);
            let id = r.i64("id")?;
            self.learned.push((key.clone(), id));
            self.series.insert(key, id);
        }
        Ok(())
    }

    /// Keeps the agent's presence with the highest seq; [`Self::finish`] writes it.
    fn presence(&mut self, agent: &str, seq: u64, ts: i64, now: i64, p: &Presence) {
        // A late or redelivered older presence must not overwrite a newer one. Order by
        // seq, not by time: the last will is signed when the agent connects, before its
        // `online` hello, but carries the later seq; it takes effect when it arrives.
        let (state, at) = match p.state {
            PresenceState::Online => ("online", ts),
            PresenceState::Offline => ("offline", now.max(ts)),
        };
        let row = PresenceRow {
            seq,
            state,
            at,
            started_at: p.started_at,
            version: p.agent_version.clone(),
        };
        match self.presence.get_mut(agent) {
            Some(had) if had.seq >= seq => {}
            Some(had) => *had = row,
            None => {
                self.presence.insert(agent.to_owned(), row);
            }
        }
    }

    fn series_id(&mut self, store: &str, device: &str, metric: &str) -> Result<i64, DbError> {
        let key = (store.to_owned(), device.to_owned(), metric.to_owned());
        if let Some(id) = self.series.get(&key) {
            return Ok(*id);
        }
        let c = self.c;
        let found = c.one(
            "SELECT id FROM series WHERE store_code = ?1 AND device = ?2 AND metric = ?3",
            args![store, device, metric],
        )?;
        let id = match found {
            Some(r) => r.i64("id")?,
            None => c.int(
                "INSERT INTO series(store_code, device, metric) VALUES (?1, ?2, ?3) RETURNING id",
                args![store, device, metric],
                "id",
            )?,
        };
        self.learned.push((key.clone(), id));
        self.series.insert(key, id);
        Ok(id)
    }

    fn telemetry(&mut self, agent: &str, store: &str, t: &TelemetryBatch) -> Result<(), DbError> {
        for s in &t.series {
            if s.points.is_empty() {
                continue;
            }
            let device = s.device.clone().unwrap_or_default();
            let sid = self.series_id(store, &device, &s.metric)?;
            let mut last: Option<(i64, f64)> = None;
            let mut min_gap: Option<i64> = None;
            let mut prev_t: Option<i64> = None;
            {
                for p in &s.points {
                    if !p.v.is_finite() {
                        continue;
                    }
                    self.points.insert((sid, p.t), p.v);
                    self.out.points += 1;
                    let (n, sum, min, max) = match p.agg {
                        Some(a) => (
                            i64::from(a.n.max(1)),
                            p.v * f64::from(a.n.max(1)),
                            a.min,
                            a.max,
                        ),
                        None => {
                            if let Some(pt) = prev_t {
                                let gap = p.t - pt;
                                if gap > 0 {
                                    min_gap = Some(min_gap.map_or(gap, |g: i64| g.min(gap)));
                                }
                            }
                            prev_t = Some(p.t);
                            (1, p.v, p.v, p.v)
                        }
                    };
                    self.deltas
                        .entry((sid, p.t.div_euclid(60_000) * 60_000))
                        .or_default()
                        .add(n, sum, min, max);
                    if last.is_none_or(|(lt, _)| p.t >= lt) {
                        last = Some((p.t, p.v));
                    }
                }
            }
            if let Some((lt, lv)) = last {
                let e = self.series_last.entry(sid).or_insert_with(|| {
                    (lt, lv, (store.to_owned(), device.clone(), s.metric.clone()))
                });
                if lt >= e.0 {
                    (e.0, e.1) = (lt, lv);
                }
                if !device.is_empty() {
                    let e = self
                        .device_seen
                        .entry((store.to_owned(), device.clone()))
                        .or_insert((lt, agent.to_owned(), None));
                    e.0 = e.0.max(lt);
                    if let Some(g) = min_gap {
                        e.2 = Some(e.2.map_or(g, |x| x.min(g)));
                    }
                }
            }
        }
        Ok(())
    }

    /// Keeps an event row for [`Self::finish`], and a device's state when it says
    /// `device.up` or `device.down` (the newest by time wins).
    fn event(&mut self, agent: &str, store: &str, e: &Event, now: i64) {
        let device = e.device.clone().unwrap_or_default();
        self.events.push(vec![
            agent.into(),
            store.into(),
            e.id.as_str().into(),
            e.ts.into(),
            device.as_str().into(),
            e.code.as_str().into(),
            severity(e.severity).into(),
            e.message.as_str().into(),
            serde_json::Value::Object(e.data.clone()).to_string().into(),
            now.into(),
        ]);
        let state = match e.code.as_str() {
            "device.down" => "down",
            "device.up" => "up",
            _ => return,
        };
        if device.is_empty() {
            return;
        }
        let row = DeviceState {
            state,
            at: e.ts,
            note: e.message.clone(),
            agent: agent.to_owned(),
        };
        match self.device_state.entry((store.to_owned(), device)) {
            std::collections::hash_map::Entry::Occupied(mut o) => {
                if o.get().at <= e.ts {
                    o.insert(row);
                }
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(row);
            }
        }
    }

    fn routine_run(
        &mut self,
        agent: &str,
        store: &str,
        r: &RunRecord,
        now: i64,
    ) -> Result<(), DbError> {
        let (ttype, detail) = match &r.trigger {
            Trigger::Schedule { cron } => ("schedule", cron.clone()),
            Trigger::Condition { detail } => ("condition", detail.clone()),
            Trigger::Task { task } => ("task", task.clone()),
            Trigger::Manual => ("manual", String::new()),
        };
        let steps = serde_json::to_string(&r.steps).unwrap_or_else(|_| "[]".into());
        self.c.execute(
            "INSERT INTO routine_runs(agent_id, id, store_code, routine, version,
               trigger_type, trigger_detail, device, started_at, finished_at, outcome, reason,
               steps, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
             ON CONFLICT DO NOTHING",
            args![
                agent,
                &r.id,
                store,
                &r.routine,
                r.version,
                ttype,
                detail,
                r.device.as_deref(),
                r.started_at,
                r.finished_at,
                r.outcome.as_str(),
                &r.reason,
                steps,
                now
            ],
        )?;
        self.out.runs += 1;
        Ok(())
    }

    fn command_result(
        &mut self,
        agent: &str,
        store: &str,
        r: &CommandResult,
        now: i64,
    ) -> Result<(), DbError> {
        if crate::tasks::db::report(self.c, agent, r)? {
            self.out.task_reports += 1;
        }
        if r.status == CommandStatus::Running {
            // A start is progress, not news: the task's target shows it.
            return Ok(());
        }
        let status = serde_json::to_value(r.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let mut data = serde_json::Map::new();
        data.insert("command_id".into(), r.command_id.clone().into());
        data.insert("result".into(), r.data.clone());
        let e = Event {
            id: format!("result-{}", r.command_id),
            ts: r.finished_at,
            device: None,
            code: format!("command.{status}"),
            severity: Severity::Info,
            message: r.message.clone(),
            data,
        };
        self.event(agent, store, &e, now);
        Ok(())
    }
}

/// The stored name of a severity.
pub fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Error => "error",
        Severity::Critical => "critical",
    }
}
