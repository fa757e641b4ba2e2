//! Applying an agent's inventory report to the asset records and the live device table.

use storefleet_protocol::message::Inventory;
use storefleet_storage::{args, Sql, SqlExt as _, Value};

use super::identity::{decide, Candidate, Decision, Observed};
use super::record;
use crate::db::DbError;

/// What one report changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Records created.
    pub created: u32,
    /// Field changes recorded in history.
    pub changes: u32,
}

fn candidates(c: &dyn Sql, kind: &str, o: &Observed) -> Result<Vec<Candidate>, DbError> {
    let mut clauses = vec!["(store_code = ?2 AND slot = ?3)".to_owned()];
    let mut args: Vec<Value> = vec![
        Value::Text(kind.to_owned()),
        Value::Text(o.store.clone()),
        Value::Text(o.slot.clone()),
    ];
    if !o.serial.is_empty() {
        args.push(Value::Text(o.serial.clone()));
        clauses.push(format!("serial = ?{}", args.len()));
    }
    if o.gateway {
        args.push(Value::Text(o.agent_id.clone()));
        clauses.push(format!("agent_id = ?{}", args.len()));
        for m in &o.macs {
            args.push(Value::Text(format!("%{m}%")));
            clauses.push(format!("macs LIKE ?{}", args.len()));
        }
    }
    let sql = format!(
        "SELECT id, store_code, slot, agent_id, serial, macs FROM assets WHERE kind = ?1 AND ({}) ORDER BY id",
        clauses.join(" OR ")
    );
    c.all(&sql, &args, |r| {
        Ok(Candidate {
            id: r.i64("id")?,
            store: r.opt_text("store_code")?,
            slot: r.opt_text("slot")?,
            agent_id: r.opt_text("agent_id")?,
            serial: r.text("serial")?,
            macs: r
                .text("macs")?
                .split(',')
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    })
}

/// Whether the inventory `seq` of `agent_id` is newer than any applied before (the agent's
/// seq only grows, across restarts and reinstalls); records it as the newest if so. Two
/// reports of one agent can arrive out of order (broker redelivery, replicas sharing the
/// subscription); the older must not overwrite the newer. An agent without a row (nothing
/// to compare with) is taken as newer.
pub fn newest(c: &dyn Sql, agent_id: &str, seq: u64) -> Result<bool, DbError> {
    let changed = c.execute(
        "UPDATE agents SET inventory_seq = ?2 WHERE id = ?1 AND (inventory_seq IS NULL OR inventory_seq < ?2)",
        args![agent_id, seq as i64],
    )?;
    if changed > 0 {
        return Ok(true);
    }
    Ok(
        c.one("SELECT 1 AS x FROM agents WHERE id = ?1", args![agent_id])?
            .is_none(),
    )
}

/// Text columns an agent reports, in this order.
const REPORTED: [&str; 9] = [
    "class",
    "vendor",
    "model",
    "serial",
    "firmware",
    "hostname",
    "macs",
    "store_code",
    "slot",
];

struct Report {
    kind: &'static str,
    values: [String; 9],
    agent_id: String,
    parent_id: Option<i64>,
    facts: serde_json::Map<String, serde_json::Value>,
}

fn upsert(
    c: &dyn Sql,
    decision: &Decision,
    r: &Report,
    now: i64,
    out: &mut Applied,
) -> Result<i64, DbError> {
    let actor = format!("agent:{}", r.agent_id);
    let id = match decision {
        Decision::New { displaces } => {
            let v = &r.values;
            let id = c.int(
                "INSERT INTO assets(kind, class, vendor, model, serial, firmware, hostname, macs, store_code, slot,
                     agent_id, parent_id, attrs, first_seen, last_seen, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14, ?14)
                 RETURNING id",
                args![
                    r.kind, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8],
                    &r.agent_id, r.parent_id,
                    serde_json::Value::Object(r.facts.clone()).to_string(), now
                ],
                "id",
            )?;
            out.created += 1;
            let what = format!("{} {} in {}", r.kind, r.values[8], r.values[7]);
            record(c, id, now, &actor, "created", None, Some(&what))?;
            if let Some(old) = displaces {
                let slot = c
                    .one("SELECT slot FROM assets WHERE id = ?1", args![*old])?
                    .map(|x| x.opt_text("slot"))
                    .transpose()?
                    .flatten();
                c.execute(
                    "UPDATE assets SET slot = NULL, updated_at = ?2 WHERE id = ?1",
                    args![*old, now],
                )?;
                record(c, *old, now, &actor, "slot", slot.as_deref(), None)?;
                record(
                    c,
                    *old,
                    now,
                    &actor,
                    "replaced_by",
                    None,
                    Some(&id.to_string()),
                )?;
                out.changes += 2;
            }
            id
        }
        Decision::Existing(id, _) => {
            let x = c
                .one(
                    "SELECT class, vendor, model, serial, firmware, hostname, macs,
                            coalesce(store_code, '') AS store_code, coalesce(slot, '') AS slot,
                            attrs, agent_id, parent_id FROM assets WHERE id = ?1",
                    args![*id],
                )?
                .ok_or_else(|| DbError::NotFound(format!("no asset {id}")))?;
            let mut current: [String; 9] = Default::default();
            for (i, col) in REPORTED.iter().enumerate() {
                current[i] = x.text(col)?;
            }
            let (attrs, agent, parent) = (
                x.text("attrs")?,
                x.opt_text("agent_id")?,
                x.opt_i64("parent_id")?,
            );
            for (i, col) in REPORTED.iter().enumerate() {
                let new = &r.values[i];
                if !new.is_empty() && *new != current[i] {
                    c.execute(
                        &format!("UPDATE assets SET {col} = ?2, updated_at = ?3 WHERE id = ?1"),
                        args![*id, new, now],
                    )?;
                    let field = match *col {
                        "store_code" => "store",
                        other => other,
                    };
                    record(c, *id, now, &actor, field, Some(&current[i]), Some(new))?;
                    out.changes += 1;
                }
            }
            if agent.as_deref() != Some(r.agent_id.as_str()) {
                c.execute(
                    "UPDATE assets SET agent_id = ?2 WHERE id = ?1",
                    args![*id, &r.agent_id],
                )?;
                record(
                    c,
                    *id,
                    now,
                    &actor,
                    "agent_id",
                    agent.as_deref(),
                    Some(&r.agent_id),
                )?;
                out.changes += 1;
            }
            if r.parent_id.is_some() && r.parent_id != parent {
                c.execute(
                    "UPDATE assets SET parent_id = ?2 WHERE id = ?1",
                    args![*id, r.parent_id],
                )?;
                record(
                    c,
                    *id,
                    now,
                    &actor,
                    "parent_id",
                    parent.map(|p| p.to_string()).as_deref(),
                    r.parent_id.map(|p| p.to_string()).as_deref(),
                )?;
                out.changes += 1;
            }
            let mut merged: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&attrs).unwrap_or_default();
            let mut attrs_changed = false;
            for (k, v) in &r.facts {
                if merged.get(k) != Some(v) {
                    let before = merged.get(k).map(ToString::to_string);
                    record(
                        c,
                        *id,
                        now,
                        &actor,
                        &format!("attrs.{k}"),
                        before.as_deref(),
                        Some(&v.to_string()),
                    )?;
                    merged.insert(k.clone(), v.clone());
                    attrs_changed = true;
                    out.changes += 1;
                }
            }
            if attrs_changed {
                c.execute(
                    "UPDATE assets SET attrs = ?2, updated_at = ?3 WHERE id = ?1",
                    args![*id, serde_json::Value::Object(merged).to_string(), now],
                )?;
            }
            c.execute(
                "UPDATE assets SET last_seen = ?2 WHERE id = ?1",
                args![*id, now],
            )?;
            *id
        }
    };
    Ok(id)
}

/// Applies `inv` from `agent_id` of `store` at `now`.
pub fn apply(
    c: &dyn Sql,
    agent_id: &str,
    store: &str,
    inv: &Inventory,
    now: i64,
) -> Result<Applied, DbError> {
    let mut out = Applied::default();
    let g = &inv.gateway;
    let mut macs: Vec<String> = g.nics.iter().map(|n| n.mac.to_lowercase()).collect();
    macs.sort();
    macs.dedup();
    let observed = Observed {
        gateway: true,
        store: store.to_owned(),
        slot: g.hostname.clone(),
        agent_id: agent_id.to_owned(),
        serial: g.serial.clone().unwrap_or_default(),
        macs: macs.clone(),
    };
    let decision = decide(&observed, &candidates(c, "gateway", &observed)?);
    let mut facts = serde_json::Map::new();
    for (k, v) in [
        (
            "os",
            serde_json::json!(format!("{} {}", g.os, g.os_version).trim()),
        ),
        ("kernel", serde_json::json!(g.kernel)),
        ("arch", serde_json::json!(g.arch)),
        ("cpu_model", serde_json::json!(g.cpu_model)),
        ("cpu_count", serde_json::json!(g.cpu_count)),
        ("memory_bytes", serde_json::json!(g.memory_bytes)),
        ("agent_version", serde_json::json!(g.agent_version)),
    ] {
        facts.insert(k.to_owned(), v);
    }
    let report = Report {
        kind: "gateway",
        values: [
            "gateway".into(),
            g.vendor.clone().unwrap_or_default(),
            g.product.clone().unwrap_or_default(),
            g.serial.clone().unwrap_or_default(),
            g.firmware.clone().unwrap_or_default(),
            g.hostname.clone(),
            macs.join(","),
            store.to_owned(),
            g.hostname.clone(),
        ],
        agent_id: agent_id.to_owned(),
        parent_id: None,
        facts,
    };
    let gateway_id = upsert(c, &decision, &report, now, &mut out)?;
    c.execute(
        "UPDATE agents SET hostname = ?2, agent_version = ?3 WHERE id = ?1",
        args![agent_id, &g.hostname, &g.agent_version],
    )?;

    for d in &inv.devices {
        let observed = Observed {
            gateway: false,
            store: store.to_owned(),
            slot: d.id.clone(),
            agent_id: agent_id.to_owned(),
            serial: d.serial.clone().unwrap_or_default(),
            macs: Vec::new(),
        };
        let decision = decide(&observed, &candidates(c, "device", &observed)?);
        let mut facts = serde_json::Map::new();
        if let Some(a) = &d.address {
            facts.insert("address".into(), serde_json::json!(a));
        }
        let report = Report {
            kind: "device",
            values: [
                d.class.clone(),
                d.vendor.clone().unwrap_or_default(),
                d.model.clone().unwrap_or_default(),
                d.serial.clone().unwrap_or_default(),
                d.firmware.clone().unwrap_or_default(),
                String::new(),
                String::new(),
                store.to_owned(),
                d.id.clone(),
            ],
            agent_id: agent_id.to_owned(),
            parent_id: Some(gateway_id),
            facts,
        };
        upsert(c, &decision, &report, now, &mut out)?;
        c.execute(
            "INSERT INTO devices(store_code, device, agent_id, class, interval_ms) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(store_code, device) DO UPDATE SET agent_id = ?3, class = ?4,
                 interval_ms = coalesce(?5, devices.interval_ms)",
            args![
                store,
                &d.id,
                agent_id,
                &d.class,
                d.interval_secs.map(|s| i64::from(s) * 1000)
            ],
        )?;
    }
    if let Some(d) = &inv.discovered {
        crate::discovered::replace(c, store, agent_id, d)?;
    }
    Ok(out)
}
