//! The end of a batch: its rows written table by table, a few hundred per statement and in
//! key order, so that concurrent batches (replicas, or writes in flight) lock the rows they
//! share in one order and never deadlock.

use std::collections::BTreeSet;

use storefleet_storage::many::many;
use storefleet_storage::Value;

use super::Batch;
use crate::db::DbError;

impl Batch<'_> {
    pub(super) fn finish(&mut self) -> Result<(), DbError> {
        let c = self.c;
        // In key order: the tables' B-trees take sorted rows fastest.
        let mut points: Vec<_> = self.points.drain().collect();
        points.sort_unstable_by_key(|p| p.0);
        let points: Vec<Vec<Value>> = points
            .into_iter()
            .map(|((sid, t), v)| vec![sid.into(), t.into(), v.into()])
            .collect();
        many(
            c,
            "INSERT INTO points(series_id, t, v) VALUES ",
            3,
            " ON CONFLICT(series_id, t) DO UPDATE SET v = excluded.v",
            &points,
        )?;
        // New rows only (no existing row locked), first: the rows that concurrent batches
        // share (series, devices, agents) come last, so their locks are held for the
        // shortest time before the commit. Events go in arrival order.
        many(
            c,
            "INSERT INTO events(agent_id, store_code, event_id, ts, device, code, severity, message, data, received_at) VALUES ",
            10,
            " ON CONFLICT DO NOTHING",
            &std::mem::take(&mut self.events),
        )?;
        let mut deltas: Vec<_> = self.deltas.drain().collect();
        deltas.sort_unstable_by_key(|d| d.0);
        let deltas: Vec<Vec<Value>> = deltas
            .into_iter()
            .map(|((sid, bucket), a)| {
                vec![
                    sid.into(),
                    bucket.into(),
                    a.n.into(),
                    a.sum.into(),
                    a.min.into(),
                    a.max.into(),
                ]
            })
            .collect();
        many(
            c,
            "INSERT INTO rollup_deltas(series_id, bucket, n, sum, min, max) VALUES ",
            6,
            "",
            &deltas,
        )?;
        // Every row in key order, so that concurrent batches (replicas, or writes in
        // flight) lock shared rows in the same order and never deadlock.
        let mut last: Vec<_> = self.series_last.drain().collect();
        last.sort_unstable_by_key(|l| l.0);
        let last: Vec<Vec<Value>> = last
            .into_iter()
            .map(|(sid, (t, v, (store, device, metric)))| {
                vec![
                    sid.into(),
                    store.into(),
                    device.into(),
                    metric.into(),
                    t.into(),
                    v.into(),
                ]
            })
            .collect();
        many(
            c,
            "INSERT INTO series(id, store_code, device, metric, last_t, last_v) VALUES ",
            6,
            " ON CONFLICT(id) DO UPDATE SET last_t = excluded.last_t, last_v = excluded.last_v
               WHERE series.last_t IS NULL OR series.last_t <= excluded.last_t",
            &last,
        )?;
        self.devices()?;
        self.agents()?;
        Ok(())
    }

    /// What the batch saw of each device (its newest data, its interval, its newest
    /// reported state) in one row per device, in key order.
    fn devices(&mut self) -> Result<(), DbError> {
        let mut keys: BTreeSet<(String, String)> = self.device_seen.keys().cloned().collect();
        keys.extend(self.device_state.keys().cloned());
        let rows: Vec<Vec<Value>> = keys
            .into_iter()
            .map(|key| {
                let seen = self.device_seen.remove(&key);
                let state = self.device_state.remove(&key);
                let agent = match (&seen, &state) {
                    (Some((_, agent, _)), _) => agent.clone(),
                    (None, Some(s)) => s.agent.clone(),
                    (None, None) => String::new(),
                };
                let (store, device) = key;
                vec![
                    store.into(),
                    device.into(),
                    agent.into(),
                    seen.as_ref().map(|s| s.0).into(),
                    seen.and_then(|s| s.2).into(),
                    state.as_ref().map_or("unknown", |s| s.state).into(),
                    state.as_ref().map(|s| s.at).into(),
                    state.map(|s| s.note).unwrap_or_default().into(),
                ]
            })
            .collect();
        // A reported state counts when it is not older than the stored one.
        const NEWER: &str =
            "excluded.state_at IS NOT NULL AND (devices.state_at IS NULL OR devices.state_at <= excluded.state_at)";
        many(
            self.c,
            "INSERT INTO devices(store_code, device, agent_id, last_seen, interval_ms, state, state_at, state_note) VALUES ",
            8,
            &format!(
                " ON CONFLICT(store_code, device) DO UPDATE SET agent_id = excluded.agent_id,
                 last_seen = CASE WHEN excluded.last_seen IS NULL OR devices.last_seen > excluded.last_seen
                             THEN devices.last_seen ELSE excluded.last_seen END,
                 interval_ms = coalesce(devices.interval_ms, excluded.interval_ms),
                 state = CASE WHEN {NEWER} THEN excluded.state ELSE devices.state END,
                 state_note = CASE WHEN {NEWER} THEN excluded.state_note ELSE devices.state_note END,
                 state_at = CASE WHEN {NEWER} THEN excluded.state_at ELSE devices.state_at END"
            ),
            &rows,
        )
    }

    /// Each agent's last message time and presence (the highest seq), a few hundred
    /// agents per statement in key order.
    ///
    /// An upsert only to write many rows in one statement with their locks taken in key
    /// order (replicas storing batches of the same agents at once must not deadlock). Its
    /// insert branch does not run for a verified sender, agents are never deleted; if it
    /// did, the row would be a revoked agent without a key, trusted with nothing.
    fn agents(&mut self) -> Result<(), DbError> {
        let mut heard: Vec<_> = self.heard.drain().collect();
        heard.sort_unstable();
        let now = self.now;
        let rows: Vec<Vec<Value>> = heard
            .into_iter()
            .map(|(agent, store)| {
                let p = self.presence.remove(&agent);
                vec![
                    agent.into(),
                    store.into(),
                    now.into(),
                    p.as_ref().map_or("unknown", |p| p.state).into(),
                    p.as_ref().map(|p| p.at).into(),
                    p.as_ref().map(|p| p.started_at).into(),
                    p.as_ref()
                        .map(|p| p.version.clone())
                        .unwrap_or_default()
                        .into(),
                    p.map(|p| p.seq).into(),
                    "".into(),
                    now.into(),
                    now.into(),
                ]
            })
            .collect();
        // A presence counts when its seq is higher than the stored one's.
        const NEWER: &str = "excluded.presence_seq IS NOT NULL AND (agents.presence_seq IS NULL OR agents.presence_seq < excluded.presence_seq)";
        many(
            self.c,
            "INSERT INTO agents(id, store_code, last_seen, presence, presence_at, started_at, agent_version, presence_seq,
                                public_key, enrolled_at, revoked_at) VALUES ",
            11,
            &format!(
                " ON CONFLICT(id) DO UPDATE SET
                 last_seen = CASE WHEN agents.last_seen IS NULL OR agents.last_seen < excluded.last_seen
                             THEN excluded.last_seen ELSE agents.last_seen END,
                 presence = CASE WHEN {NEWER} THEN excluded.presence ELSE agents.presence END,
                 presence_at = CASE WHEN {NEWER} THEN excluded.presence_at ELSE agents.presence_at END,
                 started_at = CASE WHEN {NEWER} THEN excluded.started_at ELSE agents.started_at END,
                 agent_version = CASE WHEN {NEWER} THEN excluded.agent_version ELSE agents.agent_version END,
                 presence_seq = CASE WHEN {NEWER} THEN excluded.presence_seq ELSE agents.presence_seq END"
            ),
            &rows,
        )
    }
}
