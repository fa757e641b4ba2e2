//! Keeping the buffer under its disk quota: downsample the oldest points, then evict.
//!
//! After each committed group of writes the store compares the pages in use with its
//! budget (7/8 of `buffer.max_bytes`; the other 1/8 is the WAL's; lower when the disk
//! filled up before the quota, see `Store::on_disk_full`). Over budget, it takes
//! the oldest chunk of points and folds it one level coarser ([`super::downsample`]); when
//! folding would not shrink the chunk by a quarter, the chunk is evicted instead. This
//! repeats until usage is below 90% of the budget. Events, command results and sealed
//! messages are never touched here: they have their own quota and are refused at ingest.

use rusqlite::params;

use super::downsample::{fold, Row};
use super::schema as sql;
use super::seal::row_from;
use super::store::Store;
use super::BufferError;

impl Store {
    /// Brings usage under the budget if it is over. Runs its own transactions.
    pub fn enforce_quota(&mut self) -> Result<(), BufferError> {
        let budget = self
            .disk_budget
            .map_or(self.limits.db_budget(), |d| d.min(self.limits.db_budget()));
        if self.used_bytes()? <= budget {
            return Ok(());
        }
        let target = budget / 10 * 9;
        while self.used_bytes()? > target {
            if !self.in_tx(Store::make_room_step)? {
                break;
            }
        }
        // Give free pages back to the file system when the file outgrew the budget (for
        // example after the quota was lowered).
        if self.file_bytes() > self.limits.max_bytes {
            self.conn.execute_batch("PRAGMA incremental_vacuum")?;
            self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
        }
        Ok(())
    }

    /// One step: fold or evict the oldest chunk. `false` when there is nothing left to do.
    fn make_room_step(&mut self) -> Result<bool, BufferError> {
        let chunk = (self.points / 8).clamp(512, 50_000) as i64;
        let rows: Vec<Row> = {
            let mut stmt = self.conn.prepare_cached(sql::OLDEST_POINTS)?;
            let rows = stmt.query_map([chunk], row_from)?;
            rows.collect::<Result<_, _>>()?
        };
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            return Ok(false);
        };
        let (first, last) = (first.id, last.id);
        let (folded_rows, folded) = fold(&rows);
        self.conn
            .prepare_cached(sql::DELETE_POINTS_RANGE)?
            .execute(params![first, last])?;
        if folded_rows.len() * 4 <= rows.len() * 3 {
            let mut stmt = self.conn.prepare_cached(sql::ADD_POINT_WITH_ID)?;
            for r in &folded_rows {
                let agg = r.res > 0;
                stmt.execute(params![
                    r.id,
                    r.series,
                    r.t,
                    r.v,
                    r.res,
                    agg.then_some(r.n),
                    agg.then_some(r.min),
                    agg.then_some(r.max)
                ])?;
            }
            let kept = rows.len() - folded;
            let created = folded_rows.len() - kept;
            self.points = self.points.saturating_sub(rows.len() as u64) + folded_rows.len() as u64;
            self.pending.points_downsampled += folded as u64;
            self.pending.aggregates_created += created as u64;
            tracing::debug!(
                folded,
                created,
                "Downsampled oldest points to stay under quota"
            );
        } else {
            self.points = self.points.saturating_sub(rows.len() as u64);
            self.pending.points_evicted += rows.len() as u64;
            tracing::warn!(
                evicted = rows.len(),
                "Evicted oldest points to stay under quota"
            );
        }
        Ok(true)
    }
}
