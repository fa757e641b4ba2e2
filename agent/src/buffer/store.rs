//! The buffer store: one SQLite connection, owned by the buffer thread. Opening, schema,
//! ingest, counts. Sealing is in `seal.rs`, the quota in `quota.rs`, recovery from a corrupt
//! database or a full disk in `recovery.rs`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension as _};
use storefleet_protocol::message::{CommandResult, CommandStatus, Event, Inventory};
use storefleet_protocol::routine::RunRecord;
use storefleet_protocol::{now_ms, Kind, SigningKey};

use super::recovery::{is_corruption, move_aside};
use super::schema::{self as sql, MIGRATIONS};
use super::{BufferError, Limits, SeriesIn};
use crate::config::Durability;
use crate::health::Health;

/// Longest device id or metric name accepted into the buffer, bytes.
pub const MAX_NAME_LEN: usize = 128;

/// Counter increments of the open transaction: applied to [`Health`] when it commits,
/// dropped when it rolls back, so the counters only ever count what is on disk.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Pending {
    pub points_ingested: u64,
    pub events_ingested: u64,
    pub messages_acked: u64,
    pub points_acked: u64,
    pub points_downsampled: u64,
    pub aggregates_created: u64,
    pub points_evicted: u64,
}

impl Pending {
    fn apply(self, h: &Health) {
        Health::add(&h.points_ingested, self.points_ingested);
        Health::add(&h.events_ingested, self.events_ingested);
        Health::add(&h.messages_acked, self.messages_acked);
        Health::add(&h.points_acked, self.points_acked);
        Health::add(&h.points_downsampled, self.points_downsampled);
        Health::add(&h.aggregates_created, self.aggregates_created);
        Health::add(&h.points_evicted, self.points_evicted);
    }
}

/// What seals messages: the agent id and its key.
pub struct Sealer {
    /// The agent id (`from`).
    pub agent_id: String,
    /// The agent's key.
    pub key: Arc<SigningKey>,
}

/// The buffer database and the state kept beside it in memory.
pub struct Store {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    pub(super) sealer: Sealer,
    pub(super) limits: Limits,
    pub(super) health: Arc<Health>,
    /// (device, metric) -> series id.
    pub(super) series_ids: HashMap<(String, String), i64>,
    /// series id -> (device, metric).
    pub(super) series_names: HashMap<i64, (String, String)>,
    /// Rows with an id up to this are backlog (buffered while offline); 0: no backlog.
    pub(super) backlog_mark: i64,
    pub(super) points: u64,
    pub(super) events: u64,
    pub(super) outbox: u64,
    /// Bytes counted against the event quota (stored events plus sealed, unacked ones).
    pub(super) events_bytes: u64,
    /// A budget lowered below the configured one because the disk filled up first.
    pub(super) disk_budget: Option<u64>,
    /// Counter increments waiting for the open transaction to commit.
    pub(super) pending: Pending,
    /// No sequence number at or above this is handed out before it is raised on disk.
    pub(super) seq_ceiling: u64,
    /// When telemetry and inventory may leave.
    pub(super) upload: super::Upload,
    /// When the oldest live point not yet sealed arrived.
    pub(super) live_since: Option<std::time::Instant>,
}

/// Most WAL kept before a checkpoint, whatever the quota.
pub const WAL_CHECKPOINT_BYTES: u64 = 8 * 1024 * 1024;

/// Size of the reserve file kept beside the database and given up when the disk fills. It
/// is twice the most WAL that can pile up, so that after giving it up a checkpoint can
/// always finish and the buffer can seal, acknowledge and shrink again.
pub const RESERVE_BYTES: usize = 2 * WAL_CHECKPOINT_BYTES as usize;

pub(super) fn open_connection(
    path: &Path,
    durability: Durability,
) -> Result<Connection, BufferError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version == 0 {
        // Must precede the first table; lets a shrunk quota give pages back to the disk.
        conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL")?;
    }
    // One owner, so exclusive locking: the WAL index lives in heap memory instead of a
    // shared mapping of the -shm file (which also hangs SQLite under qemu-user), and a
    // second agent started on the same state directory is refused instead of sharing it.
    conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE")?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(BufferError::Corrupt(format!("journal mode stays {mode}")));
    }
    conn.execute_batch(match durability {
        Durability::Full => "PRAGMA synchronous = FULL",
        Durability::Normal => "PRAGMA synchronous = NORMAL",
    })?;
    let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(BufferError::Corrupt(check));
    }
    let version = usize::try_from(version).unwrap_or(usize::MAX);
    if version > MIGRATIONS.len() {
        return Err(BufferError::Corrupt(format!(
            "schema version {version} is newer than this agent ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, m) in MIGRATIONS.iter().enumerate().skip(version) {
        conn.execute_batch(&format!(
            "BEGIN; {m}; PRAGMA user_version = {}; COMMIT;",
            i + 1
        ))?;
    }
    Ok(conn)
}

/// A random id for events the agent makes itself.
pub fn new_event_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl Store {
    /// Seals by `upload` from now on.
    #[must_use]
    pub fn with_upload(mut self, upload: super::Upload) -> Store {
        self.upload = upload;
        self
    }

    /// Opens (or creates) the buffer at `path`. A corrupt database is moved aside and
    /// replaced, and a `buffer.corrupt` event saying so is the first record of the new one.
    pub fn open(
        path: &Path,
        sealer: Sealer,
        limits: Limits,
        health: Arc<Health>,
    ) -> Result<Store, BufferError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| BufferError::Io {
                path: dir.to_owned(),
                source,
            })?;
        }
        let (conn, corrupt) = match open_connection(path, limits.durability) {
            Ok(c) => (c, None),
            Err(e) if is_corruption(&e) => {
                let moved = move_aside(path)?;
                (open_connection(path, limits.durability)?, Some((e, moved)))
            }
            Err(e) => return Err(e),
        };
        let mut store = Store {
            conn,
            path: path.to_owned(),
            sealer,
            limits,
            health,
            series_ids: HashMap::new(),
            series_names: HashMap::new(),
            backlog_mark: 0,
            points: 0,
            events: 0,
            outbox: 0,
            events_bytes: 0,
            disk_budget: None,
            pending: Pending::default(),
            seq_ceiling: 0,
            upload: super::Upload::default(),
            live_since: None,
        };
        store.ensure_reserve();
        store.configure_wal()?;
        store.load_state()?;
        if let Some((e, moved)) = corrupt {
            store.report_corruption(&e, &moved)?;
        }
        Ok(store)
    }

    pub(super) fn configure_wal(&self) -> Result<(), BufferError> {
        self.set_wal_limit(self.limits.wal_bytes())
    }

    /// Checkpoints once the WAL holds half of `wal_bytes` (at most
    /// [`WAL_CHECKPOINT_BYTES`]), and truncates it back to `wal_bytes` after each checkpoint.
    pub(super) fn set_wal_limit(&self, wal_bytes: u64) -> Result<(), BufferError> {
        let page: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let pages = ((wal_bytes / 2).min(WAL_CHECKPOINT_BYTES) / page.max(512) as u64).max(16);
        self.conn.execute_batch(&format!(
            "PRAGMA wal_autocheckpoint = {pages}; PRAGMA journal_size_limit = {wal_bytes};"
        ))?;
        Ok(())
    }

    pub(super) fn load_state(&mut self) -> Result<(), BufferError> {
        // Counts first: they only read, so they are right even when the sequence's write
        // below fails (a full disk, after a rolled-back group).
        {
            let mut stmt = self.conn.prepare(sql::ALL_SERIES)?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?;
            for row in rows {
                let (id, device, metric) = row?;
                self.series_ids.insert((device.clone(), metric.clone()), id);
                self.series_names.insert(id, (device, metric));
            }
        }
        self.points = self.conn.query_row(sql::COUNT_POINTS, [], |r| r.get(0))?;
        let (events, ebytes): (u64, u64) = self
            .conn
            .query_row(sql::EVENT_STATS, [], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let (outbox, obytes): (u64, u64) = self
            .conn
            .query_row(sql::OUTBOX_STATS, [], |r| Ok((r.get(0)?, r.get(1)?)))?;
        self.events = events;
        self.outbox = outbox;
        self.events_bytes = ebytes + obytes;
        // Whatever survived from before this start is backlog.
        self.backlog_mark = self.conn.query_row(sql::MAX_POINT_ID, [], |r| r.get(0))?;
        self.publish_gauges()?;
        // The next number is above anything used before, even when a power cut rolled the
        // stored one back or the database was replaced (seq_ceiling.rs).
        let stored = self.meta("next_seq")?.map(|v| v.max(0) as u64);
        let ceiling_path = super::seq_ceiling::path_for(&self.path);
        let clock_us = (now_ms().max(1) as u64).saturating_mul(1000);
        let (start, garbled) =
            super::seq_ceiling::start(stored, super::seq_ceiling::read(&ceiling_path), clock_us);
        if let Some(why) = garbled {
            tracing::error!(error = %why, "Sequence ceiling unreadable; skipping far ahead so that no number is reused");
        }
        if Some(start) != stored {
            self.set_meta("next_seq", start as i64)?;
        }
        self.seq_ceiling = 0;
        self.raise_seq_ceiling(start)?;
        Ok(())
    }

    pub(super) fn meta(&self, key: &str) -> Result<Option<i64>, BufferError> {
        Ok(self
            .conn
            .query_row(sql::GET_META, [key], |r| r.get(0))
            .optional()?)
    }

    pub(super) fn set_meta(&self, key: &str, value: i64) -> Result<(), BufferError> {
        self.conn.execute(sql::SET_META, params![key, value])?;
        Ok(())
    }

    /// Runs `f` in one transaction; rolls back when it fails.
    pub fn in_tx<T>(
        &mut self,
        f: impl FnOnce(&mut Store) -> Result<T, BufferError>,
    ) -> Result<T, BufferError> {
        self.begin()?;
        let result = f(self).and_then(|v| {
            self.commit()?;
            Ok(v)
        });
        if result.is_err() {
            self.pending = Pending::default();
            // Also after a failed COMMIT (a full disk), which can leave the transaction open.
            let _ = self.conn.execute_batch("ROLLBACK");
            self.reload_counts()?;
        }
        result
    }

    /// Runs `f` inside the open transaction as one unit: on error its writes are undone
    /// (and the in-memory caches reloaded), the rest of the group stands.
    pub fn savepoint<T>(
        &mut self,
        f: impl FnOnce(&mut Store) -> Result<T, BufferError>,
    ) -> Result<T, BufferError> {
        self.conn.execute_batch("SAVEPOINT job")?;
        let before = self.pending;
        match f(self) {
            Ok(v) => {
                self.conn.execute_batch("RELEASE job")?;
                Ok(v)
            }
            Err(e) => {
                self.conn.execute_batch("ROLLBACK TO job; RELEASE job")?;
                self.pending = before;
                self.reload_counts()?;
                Err(e)
            }
        }
    }

    /// Begins a transaction (the buffer thread groups many requests into one).
    pub fn begin(&mut self) -> Result<(), BufferError> {
        self.pending = Pending::default();
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(())
    }

    /// Commits the open transaction.
    pub fn commit(&mut self) -> Result<(), BufferError> {
        self.conn.execute_batch("COMMIT")?;
        std::mem::take(&mut self.pending).apply(&self.health);
        Ok(())
    }

    /// Rolls back the open transaction.
    pub fn rollback(&mut self) {
        self.pending = Pending::default();
        let _ = self.conn.execute_batch("ROLLBACK");
    }

    /// Rereads the in-memory counts from disk (after a rollback).
    pub fn reload_counts(&mut self) -> Result<(), BufferError> {
        self.series_ids.clear();
        self.series_names.clear();
        let mark = self.backlog_mark;
        self.load_state()?;
        self.backlog_mark = mark;
        Ok(())
    }

    fn series_id(&mut self, device: &str, metric: &str) -> Result<i64, BufferError> {
        if let Some(&id) = self.series_ids.get(&(device.to_owned(), metric.to_owned())) {
            return Ok(id);
        }
        let found: Option<i64> = self
            .conn
            .query_row(sql::FIND_SERIES, params![device, metric], |r| r.get(0))
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => {
                self.conn
                    .prepare_cached(sql::ADD_SERIES)?
                    .execute(params![device, metric])?;
                self.conn.last_insert_rowid()
            }
        };
        self.series_ids
            .insert((device.to_owned(), metric.to_owned()), id);
        self.series_names
            .insert(id, (device.to_owned(), metric.to_owned()));
        Ok(id)
    }

    /// Adds points; returns how many. Call inside a transaction.
    pub fn add_points(&mut self, series: &[SeriesIn]) -> Result<usize, BufferError> {
        let mut n = 0;
        for s in series {
            let id = self.series_id(s.device.as_deref().unwrap_or(""), &s.metric)?;
            let mut stmt = self.conn.prepare_cached(sql::ADD_POINT)?;
            for &(t, v) in &s.points {
                stmt.execute(params![id, t, v])?;
            }
            n += s.points.len();
        }
        self.points += n as u64;
        self.pending.points_ingested += n as u64;
        if n > 0 && self.live_since.is_none() {
            self.live_since = Some(std::time::Instant::now());
        }
        Ok(n)
    }

    fn add_record(
        &mut self,
        eid: &str,
        kind: Kind,
        ts: i64,
        body: &str,
    ) -> Result<bool, BufferError> {
        let len = body.len() as u64;
        if self.events_bytes + len > self.limits.events_max_bytes {
            Health::add(&self.health.events_refused_full, 1);
            return Err(BufferError::EventsFull {
                limit: self.limits.events_max_bytes,
            });
        }
        let added = self.conn.prepare_cached(sql::ADD_EVENT)?.execute(params![
            eid,
            kind.as_str(),
            ts,
            body
        ])?;
        if added == 1 {
            self.events += 1;
            self.events_bytes += len;
            self.pending.events_ingested += 1;
        }
        Ok(added == 1)
    }

    /// Adds an event; `false` when an event with its id is already buffered (a retried
    /// request). Refused with [`BufferError::EventsFull`] when the event quota is full.
    pub fn add_event(&mut self, ev: &Event) -> Result<bool, BufferError> {
        self.add_events(std::slice::from_ref(ev))
            .map(|(added, _)| added == 1)
    }

    /// Adds events all together or none: refused whole with [`BufferError::EventsFull`]
    /// when they do not all fit. Returns `(added, already buffered)`.
    pub fn add_events(&mut self, evs: &[Event]) -> Result<(usize, usize), BufferError> {
        let bodies = evs
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BufferError::Encode(e.to_string()))?;
        let total: u64 = bodies.iter().map(|b| b.len() as u64).sum();
        if self.events_bytes + total > self.limits.events_max_bytes {
            Health::add(&self.health.events_refused_full, 1);
            return Err(BufferError::EventsFull {
                limit: self.limits.events_max_bytes,
            });
        }
        let mut added = 0;
        for (ev, body) in evs.iter().zip(&bodies) {
            if self.add_record(&ev.id, Kind::Event, ev.ts, body)? {
                added += 1;
            }
        }
        Ok((added, evs.len() - added))
    }

    /// Adds a routine run record (never dropped; refused only when the event quota is full).
    pub fn add_run(&mut self, r: &RunRecord) -> Result<bool, BufferError> {
        let body = serde_json::to_string(r).map_err(|e| BufferError::Encode(e.to_string()))?;
        self.add_record(
            &format!("run:{}", r.id),
            Kind::RoutineRun,
            r.finished_at,
            &body,
        )
    }

    /// Adds a command result (never dropped; refused only when the event quota is full).
    pub fn add_result(&mut self, r: &CommandResult) -> Result<bool, BufferError> {
        let body = serde_json::to_string(r).map_err(|e| BufferError::Encode(e.to_string()))?;
        // A start and the final answer are two records: a final answer that comes while
        // the start is still unsent (offline, or a quick refusal) must not be taken for a
        // retry of it. A final answer given twice is stored once.
        let eid = if r.status == CommandStatus::Running {
            format!("result:{}:started", r.command_id)
        } else {
            format!("result:{}", r.command_id)
        };
        self.add_record(&eid, Kind::CommandResult, r.finished_at, &body)
    }

    /// Stores the latest inventory; `true` when it differs from the one stored (and so will
    /// be sent). Older unsent inventories are replaced, never queued.
    pub fn set_inventory(&mut self, inv: &Inventory) -> Result<bool, BufferError> {
        let body = serde_json::to_string(inv).map_err(|e| BufferError::Encode(e.to_string()))?;
        let current: Option<String> = self
            .conn
            .query_row(sql::GET_INVENTORY, [], |r| r.get(0))
            .optional()?;
        if current.as_deref() == Some(body.as_str()) {
            return Ok(false);
        }
        self.conn.execute(sql::SET_INVENTORY, [body])?;
        Ok(true)
    }

    /// Records a command id; `true` the first time it is seen. Ids older than 30 days are
    /// forgotten (commands carry a much shorter expiry).
    pub fn command_seen(&mut self, id: &str) -> Result<bool, BufferError> {
        let now = now_ms();
        self.conn
            .execute(sql::FORGET_OLD_COMMANDS, [now - 30 * 24 * 3600 * 1000])?;
        Ok(self.conn.execute(sql::SEEN_COMMAND, params![id, now])? == 1)
    }

    /// The next sequence number, without reserving it.
    pub fn next_seq(&self) -> Result<u64, BufferError> {
        Ok(self.meta("next_seq")?.unwrap_or(1) as u64)
    }

    /// Reserves `n` consecutive sequence numbers; returns the first.
    pub fn reserve_seqs(&mut self, n: u64) -> Result<u64, BufferError> {
        let next = self.next_seq()?;
        self.raise_seq_ceiling(next + n)?;
        self.set_meta("next_seq", (next + n) as i64)?;
        Ok(next)
    }

    /// Makes sure numbers below `end` are under the ceiling on disk before they are used.
    fn raise_seq_ceiling(&mut self, end: u64) -> Result<(), BufferError> {
        if end > self.seq_ceiling {
            let ceiling = end.saturating_add(super::seq_ceiling::SEQ_BLOCK);
            super::seq_ceiling::write(&super::seq_ceiling::path_for(&self.path), ceiling)?;
            self.seq_ceiling = ceiling;
        }
        Ok(())
    }

    /// Marks everything buffered now as backlog, to be sent after live data.
    pub fn mark_backlog(&mut self) -> Result<(), BufferError> {
        self.backlog_mark = self.conn.query_row(sql::MAX_POINT_ID, [], |r| r.get(0))?;
        Ok(())
    }

    /// Bytes of the database file in use (pages not on the free list).
    pub fn used_bytes(&self) -> Result<u64, BufferError> {
        let (count, free, size): (u64, u64, u64) = self.conn.query_row(
            "SELECT * FROM pragma_page_count, pragma_freelist_count, pragma_page_size",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        Ok(count.saturating_sub(free) * size)
    }

    /// Bytes on disk: the database and its WAL.
    pub fn file_bytes(&self) -> u64 {
        let size = |p: PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
        size(self.path.clone()) + size(PathBuf::from(format!("{}-wal", self.path.display())))
    }

    /// Updates the health gauges from the in-memory counts.
    pub fn publish_gauges(&self) -> Result<(), BufferError> {
        let h = &self.health;
        Health::set(&h.buffer_points, self.points);
        Health::set(&h.buffer_events, self.events);
        Health::set(&h.buffer_outbox, self.outbox);
        Health::set(&h.buffer_used_bytes, self.used_bytes()?);
        let oldest = [
            self.conn
                .query_row(sql::OLDEST_POINT_TS, [], |r| r.get::<_, i64>(0))
                .optional()?,
            self.conn
                .query_row(sql::OLDEST_EVENT_TS, [], |r| r.get::<_, i64>(0))
                .optional()?,
            self.conn
                .query_row(sql::OLDEST_OUTBOX_TS, [], |r| r.get::<_, i64>(0))
                .optional()?,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(0);
        h.oldest_record_ms
            .store(oldest, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}
