//! Series ids known to a controller's ingest batches ([`SeriesIds`]).

use std::collections::HashMap;

use super::SeriesKey;

/// Series ids past batches committed, shared by a controller's ingest batches, so that a
/// batch asks the database only for series it has not seen: the ids never change, because a
/// series row is never deleted nor re-keyed. Bounded: past [`SeriesIds::MAX`] entries it
/// starts again empty (a fleet that large pays a lookup per new series once more).
#[derive(Debug, Default)]
pub struct SeriesIds(std::sync::RwLock<HashMap<SeriesKey, i64>>);

impl SeriesIds {
    /// Entries kept at most (about 150 bytes each).
    pub const MAX: usize = 1_000_000;

    /// The id of a series, if known.
    pub fn get(&self, key: &SeriesKey) -> Option<i64> {
        self.0.read().ok()?.get(key).copied()
    }

    /// Learns ids of committed series.
    pub fn learn(&self, ids: Vec<(SeriesKey, i64)>) {
        if ids.is_empty() {
            return;
        }
        if let Ok(mut m) = self.0.write() {
            if m.len() + ids.len() > Self::MAX {
                m.clear();
            }
            m.extend(ids);
        }
    }
}
