//! Sealing: turning buffered records into signed messages in the outbox, and deleting them
//! when the broker acknowledges.
//!
//! A message is sealed (given its `seq`, signed, written to the outbox, and its records
//! deleted) in one transaction, before it is published. A message that is published again
//! after a reconnect or a restart is the same bytes with the same `seq`, so the controller
//! stores it once.

use rusqlite::params;
use storefleet_protocol::envelope::{self, Envelope};
use storefleet_protocol::message::{Point, Series, TelemetryBatch};
use storefleet_protocol::{now_ms, Kind, Message};

use super::downsample::Row;
use super::schema as sql;
use super::store::Store;
use super::{BufferError, Outgoing};

/// Outbox class: telemetry.
pub const CLASS_METRICS: i64 = 0;
/// Outbox class: events and command results (counted against the event quota).
pub const CLASS_EVENTS: i64 = 1;
/// Outbox class: inventory.
pub const CLASS_OTHER: i64 = 2;

pub(super) fn row_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let v: f64 = r.get(3)?;
    Ok(Row {
        id: r.get(0)?,
        series: r.get(1)?,
        t: r.get(2)?,
        v,
        res: r.get(4)?,
        n: r.get::<_, Option<u32>>(5)?.unwrap_or(1),
        min: r.get::<_, Option<f64>>(6)?.unwrap_or(v),
        max: r.get::<_, Option<f64>>(7)?.unwrap_or(v),
    })
}

impl Store {
    /// Up to `max` messages to publish: first those already sealed with a seq above
    /// `after` (retransmissions, in seq order), then newly sealed ones: events and command
    /// results, then a changed inventory, then telemetry (live points before backlog).
    /// Call inside a transaction and publish only after it commits.
    pub fn next_messages(&mut self, after: u64, max: usize) -> Result<Vec<Outgoing>, BufferError> {
        let mut out = Vec::new();
        {
            let mut stmt = self.conn.prepare_cached(sql::OUTBOX_AFTER)?;
            let rows = stmt.query_map(params![after as i64, max as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                ))
            })?;
            for row in rows {
                let (seq, kind, payload) = row?;
                let kind = Kind::parse(&kind)
                    .ok_or_else(|| BufferError::Corrupt(format!("outbox kind {kind:?}")))?;
                out.push(Outgoing {
                    seq: seq as u64,
                    kind,
                    payload,
                });
            }
        }
        while out.len() < max {
            let sealed = match self.seal_event()? {
                Some(m) => Some(m),
                None => match self.seal_inventory()? {
                    Some(m) => Some(m),
                    None => self.seal_telemetry()?,
                },
            };
            match sealed {
                Some(m) => out.push(m),
                None => break,
            }
        }
        Ok(out)
    }

    fn push_outbox(
        &mut self,
        kind: Kind,
        class: i64,
        weight: u64,
        points: u64,
        payload: Vec<u8>,
        seq: u64,
    ) -> Result<Outgoing, BufferError> {
        self.conn.prepare_cached(sql::ADD_OUTBOX)?.execute(params![
            seq as i64,
            kind.as_str(),
            class,
            weight as i64,
            points as i64,
            now_ms(),
            payload
        ])?;
        self.outbox += 1;
        Ok(Outgoing { seq, kind, payload })
    }

    fn seal_event(&mut self) -> Result<Option<Outgoing>, BufferError> {
        let next: Option<(i64, String, String)> = {
            let mut stmt = self.conn.prepare_cached(sql::NEXT_EVENTS)?;
            let mut rows = stmt.query([1])?;
            match rows.next()? {
                Some(r) => Some((r.get(0)?, r.get(1)?, r.get(2)?)),
                None => None,
            }
        };
        let Some((id, kind, body)) = next else {
            return Ok(None);
        };
        let kind = Kind::parse(&kind)
            .ok_or_else(|| BufferError::Corrupt(format!("event kind {kind:?}")))?;
        let seq = self.reserve_seqs(1)?;
        let payload = envelope::seal_raw(
            &self.sealer.agent_id,
            seq,
            now_ms(),
            kind,
            &body,
            &self.sealer.key,
        )
        .map_err(|e| BufferError::Encode(e.to_string()))?;
        self.conn.prepare_cached(sql::DELETE_EVENT)?.execute([id])?;
        self.events = self.events.saturating_sub(1);
        // The weight moves from the events table to the outbox: events_bytes is unchanged.
        self.push_outbox(kind, CLASS_EVENTS, body.len() as u64, 0, payload, seq)
            .map(Some)
    }

    /// Frames envelope JSON, compressed where the config says so.
    fn frame(&self, json: &[u8]) -> Vec<u8> {
        if self.limits.compress {
            envelope::frame_compressed(json, &self.sealer.key)
        } else {
            envelope::frame(json, &self.sealer.key)
        }
    }

    fn seal_inventory(&mut self) -> Result<Option<Outgoing>, BufferError> {
        let row: Option<(String, bool)> = {
            let mut stmt = self.conn.prepare_cached(sql::GET_INVENTORY)?;
            let mut rows = stmt.query([])?;
            match rows.next()? {
                Some(r) => Some((r.get(0)?, r.get(1)?)),
                None => None,
            }
        };
        let Some((body, true)) = row else {
            return Ok(None);
        };
        if self.upload.held(self.upload.inventory_closed_only) {
            return Ok(None);
        }
        let seq = self.reserve_seqs(1)?;
        let json =
            envelope::envelope_raw(&self.sealer.agent_id, seq, now_ms(), Kind::Inventory, &body)
                .map_err(|e| BufferError::Encode(e.to_string()))?;
        let payload = self.frame(&json);
        self.conn.execute(sql::INVENTORY_SENT, [])?;
        self.push_outbox(Kind::Inventory, CLASS_OTHER, 0, 0, payload, seq)
            .map(Some)
    }

    fn select_points(&mut self, backlog: bool, limit: usize) -> Result<Vec<Row>, BufferError> {
        let (query, bound) = match (self.backlog_mark, backlog) {
            (0, _) => (sql::LIVE_POINTS, 0),
            (mark, false) => (sql::LIVE_POINTS, mark),
            (mark, true) => (sql::BACKLOG_POINTS, mark),
        };
        let mut stmt = self.conn.prepare_cached(query)?;
        let rows = stmt.query_map(params![bound, limit as i64], row_from)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn seal_telemetry(&mut self) -> Result<Option<Outgoing>, BufferError> {
        if self.upload.held(self.upload.telemetry_closed_only) {
            return Ok(None);
        }
        let mut backlog = false;
        let mut limit = self.limits.max_batch_points;
        let full = limit as u64;
        // Live points wait for company, unless a backlog is waiting behind them.
        if self.backlog_mark == 0 && self.upload.lingers(self.live_since, self.points, full) {
            return Ok(None);
        }
        let mut rows = self.select_points(false, limit)?;
        if rows.len() < limit {
            // Every live point is in this batch (or there were none).
            self.live_since = None;
        }
        if rows.is_empty() && self.backlog_mark > 0 {
            backlog = true;
            rows = self.select_points(true, limit)?;
            if rows.is_empty() {
                self.backlog_mark = 0;
            }
        }
        if rows.is_empty() {
            return Ok(None);
        }
        loop {
            let batch = self.batch(&rows[..limit.min(rows.len())], backlog);
            let seq = self.next_seq()?;
            let env = Envelope::new(
                &self.sealer.agent_id,
                seq,
                now_ms(),
                Message::Telemetry(batch),
            );
            let json = env
                .to_json()
                .map_err(|e| BufferError::Encode(e.to_string()))?;
            let n = limit.min(rows.len());
            if json.len() > self.limits.max_batch_bytes && n > 1 {
                limit = n / 2;
                continue;
            }
            self.reserve_seqs(1)?;
            let payload = self.frame(&json);
            let (first, last) = (rows[0].id, rows[n - 1].id);
            self.conn
                .prepare_cached(sql::DELETE_POINTS_RANGE)?
                .execute(params![first, last])?;
            self.points = self.points.saturating_sub(n as u64);
            return self
                .push_outbox(Kind::Telemetry, CLASS_METRICS, 0, n as u64, payload, seq)
                .map(Some);
        }
    }

    fn batch(&self, rows: &[Row], backlog: bool) -> TelemetryBatch {
        let mut series: Vec<Series> = Vec::new();
        let mut index: std::collections::HashMap<i64, usize> = std::collections::HashMap::new();
        for r in rows {
            let i = *index.entry(r.series).or_insert_with(|| {
                let (device, metric) = self
                    .series_names
                    .get(&r.series)
                    .cloned()
                    .unwrap_or_else(|| (String::new(), format!("unknown.series{}", r.series)));
                series.push(Series {
                    device: (!device.is_empty()).then_some(device),
                    metric,
                    points: Vec::new(),
                });
                series.len() - 1
            });
            series[i].points.push(Point {
                t: r.t,
                v: r.v,
                agg: (r.res > 0).then_some(storefleet_protocol::message::Aggregate {
                    res: r.res,
                    n: r.n,
                    min: r.min,
                    max: r.max,
                }),
            });
        }
        TelemetryBatch { backlog, series }
    }

    /// Deletes acknowledged messages from the outbox. Unknown seqs are ignored.
    pub fn ack(&mut self, seqs: &[u64]) -> Result<(), BufferError> {
        let mut stmt = self.conn.prepare_cached(sql::DELETE_OUTBOX)?;
        for &seq in seqs {
            let mut rows = stmt.query([seq as i64])?;
            if let Some(r) = rows.next()? {
                let (class, weight, points): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
                self.outbox = self.outbox.saturating_sub(1);
                if class == CLASS_EVENTS {
                    self.events_bytes = self.events_bytes.saturating_sub(weight as u64);
                }
                self.pending.messages_acked += 1;
                self.pending.points_acked += points as u64;
            }
        }
        Ok(())
    }
}
