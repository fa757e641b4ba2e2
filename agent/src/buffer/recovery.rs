//! Recovery: a database found corrupt (at start or while running) is moved aside and
//! replaced; a disk that fills before the quota gives up the reserve file and lowers the
//! budget. Both are reported as events, and the agent goes on.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode};
use storefleet_protocol::message::{Event, Severity};
use storefleet_protocol::now_ms;

use super::store::{new_event_id, open_connection, Store, RESERVE_BYTES};
use super::BufferError;
use crate::health::Health;

/// Whether `e` says the database file is damaged.
pub fn is_corruption(e: &BufferError) -> bool {
    match e {
        BufferError::Corrupt(_) => true,
        BufferError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => {
            matches!(f.code, ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
        }
        _ => false,
    }
}

/// Moves a corrupt database and its WAL files aside; returns where the database went.
pub(super) fn move_aside(path: &Path) -> Result<PathBuf, BufferError> {
    let to = PathBuf::from(format!("{}.corrupt-{}", path.display(), now_ms()));
    let io = |p: &Path| {
        let p = p.to_owned();
        move |source| BufferError::Io { path: p, source }
    };
    std::fs::rename(path, &to).map_err(io(path))?;
    for ext in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{ext}", path.display()));
        if side.exists() {
            let dest = PathBuf::from(format!("{}{ext}", to.display()));
            std::fs::rename(&side, &dest).map_err(io(&side))?;
        }
    }
    Ok(to)
}

impl Store {
    /// Replaces a database found corrupt while running: closes it, moves it aside, opens a
    /// fresh one and records a `buffer.corrupt` event in it. What was in the corrupt file
    /// stays there for an engineer; the agent goes on.
    pub fn recover(&mut self, cause: &BufferError) -> Result<(), BufferError> {
        drop(std::mem::replace(
            &mut self.conn,
            Connection::open_in_memory()?,
        ));
        let moved = move_aside(&self.path)?;
        self.conn = open_connection(&self.path, self.limits.durability)?;
        self.configure_wal()?;
        self.series_ids.clear();
        self.series_names.clear();
        self.load_state()?;
        self.backlog_mark = 0;
        self.report_corruption(cause, &moved)
    }

    fn reserve_path(&self) -> PathBuf {
        PathBuf::from(format!("{}.reserve", self.path.display()))
    }

    /// Makes the reserve file when it is missing or not whole (a power cut can leave it
    /// empty), synced to disk; gives up quietly when there is no room.
    pub fn ensure_reserve(&self) {
        let path = self.reserve_path();
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == RESERVE_BYTES as u64) {
            return;
        }
        let made = std::fs::File::create(&path).and_then(|mut f| {
            std::io::Write::write_all(&mut f, &vec![0u8; RESERVE_BYTES])?;
            f.sync_all()
        });
        if made.is_err() || super::seq_ceiling::sync_dir(&path).is_err() {
            let _ = std::fs::remove_file(&path);
        }
    }

    /// The disk filled before the quota did: give up the reserve so that the buffer can
    /// work again, lower the budget to what the disk holds (metrics then give way as under
    /// the quota), and say so in a `buffer.disk_full` event.
    pub fn on_disk_full(&mut self) -> Result<(), BufferError> {
        let released = std::fs::remove_file(self.reserve_path()).is_ok();
        // The WAL, sized for the configured quota, may be what filled the disk: empty it
        // into the database and keep it small from now on.
        let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
        let used = self.used_bytes()?;
        let budget = used / 4 * 3;
        self.set_wal_limit((budget / 8).max(64 * 1024))?;
        self.disk_budget = Some(self.disk_budget.map_or(budget, |b| b.min(budget)));
        tracing::error!(
            used_bytes = used,
            budget_bytes = budget,
            released_reserve = released,
            "Buffer disk full before its quota; lowered the buffer budget to fit the disk"
        );
        let mut data = serde_json::Map::new();
        data.insert("used_bytes".into(), used.into());
        data.insert("budget_bytes".into(), budget.into());
        data.insert("configured_max_bytes".into(), self.limits.max_bytes.into());
        let ev = Event {
            id: new_event_id(),
            ts: now_ms(),
            device: None,
            code: "buffer.disk_full".into(),
            severity: Severity::Error,
            message: format!("Gateway disk full at {used} bytes of buffer, below its quota of {}; older metrics are being downsampled", self.limits.max_bytes),
            data,
        };
        self.in_tx(|s| s.add_event(&ev).map(|_| ()))?;
        self.enforce_quota()
    }

    pub(super) fn report_corruption(
        &mut self,
        e: &BufferError,
        moved: &Path,
    ) -> Result<(), BufferError> {
        tracing::error!(error = %e, moved_to = %moved.display(), "Buffer database corrupt; moved aside and replaced");
        Health::add(&self.health.buffer_corruptions, 1);
        let mut data = serde_json::Map::new();
        data.insert("moved_to".into(), moved.display().to_string().into());
        data.insert("error".into(), e.to_string().into());
        let ev = Event {
            id: new_event_id(),
            ts: now_ms(),
            device: None,
            code: "buffer.corrupt".into(),
            severity: Severity::Error,
            message: "Buffer database was corrupt; it was moved aside and replaced".into(),
            data,
        };
        self.in_tx(|s| s.add_event(&ev).map(|_| ()))
    }
}
