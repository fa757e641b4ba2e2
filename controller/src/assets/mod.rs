//! Asset records: every gateway and device, reported by agents and edited by people, with
//! an append-only history of every change (when, who or which agent, before and after).
//!
//! Agents fill what they can know (class, vendor, model, serial, firmware, host facts);
//! people fill the rest (lifecycle, purchase date, warranty, parent, free attributes). An
//! agent's empty value never clears what a person entered.

pub mod identity;
pub mod import;
pub mod inventory;
pub mod query;

use serde::{Deserialize, Serialize};
use storefleet_storage::{args, Row, Sql, SqlExt as _};

use crate::db::DbError;

pub use storefleet_client::assets::{Asset, Change};

/// Lifecycle states an asset can be in.
pub const LIFECYCLES: &[&str] = &[
    "planned",
    "active",
    "in_repair",
    "spare",
    "retired",
    "disposed",
];

/// Columns of `assets a JOIN stores s`, as [`from_row`] reads them.
pub const SELECT: &str =
    "SELECT a.id, a.kind, a.store_code, coalesce(s.region, '') AS region, a.slot, a.agent_id,
    a.class, a.vendor, a.model, a.serial, a.firmware, a.hostname, a.macs, a.lifecycle,
    a.purchase_date, a.warranty_end, a.parent_id, a.attrs, a.first_seen, a.last_seen, a.updated_at
    FROM assets a LEFT JOIN stores s ON s.code = a.store_code";

/// Reads a row selected with [`SELECT`].
pub fn from_row(r: &Row) -> Result<Asset, DbError> {
    Ok(Asset {
        id: r.i64("id")?,
        kind: r.text("kind")?,
        store: r.opt_text("store_code")?,
        region: r.text("region")?,
        slot: r.opt_text("slot")?,
        agent_id: r.opt_text("agent_id")?,
        class: r.text("class")?,
        vendor: r.text("vendor")?,
        model: r.text("model")?,
        serial: r.text("serial")?,
        firmware: r.text("firmware")?,
        hostname: r.text("hostname")?,
        macs: r.text("macs")?,
        lifecycle: r.text("lifecycle")?,
        purchase_date: r.text("purchase_date")?,
        warranty_end: r.text("warranty_end")?,
        parent_id: r.opt_i64("parent_id")?,
        attrs: serde_json::from_str(&r.text("attrs")?).unwrap_or_default(),
        first_seen: r.i64("first_seen")?,
        last_seen: r.opt_i64("last_seen")?,
        updated_at: r.i64("updated_at")?,
    })
}

/// One asset.
pub fn get(c: &dyn Sql, id: i64) -> Result<Option<Asset>, DbError> {
    c.one(&format!("{SELECT} WHERE a.id = ?1"), args![id])?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// An asset's history, oldest first.
pub fn history(c: &dyn Sql, id: i64) -> Result<Vec<Change>, DbError> {
    c.all(
        "SELECT ts, actor, field, before, after FROM asset_history WHERE asset_id = ?1 ORDER BY id",
        args![id],
        |r| {
            Ok(Change {
                ts: r.i64("ts")?,
                actor: r.text("actor")?,
                field: r.text("field")?,
                before: r.opt_text("before")?,
                after: r.opt_text("after")?,
            })
        },
    )
}

/// Appends one change to an asset's history.
pub fn record(
    c: &dyn Sql,
    asset: i64,
    now: i64,
    actor: &str,
    field: &str,
    before: Option<&str>,
    after: Option<&str>,
) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO asset_history(asset_id, ts, actor, field, before, after) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        args![asset, now, actor, field, before, after],
    )?;
    Ok(())
}

/// A person's edit of an asset: every field optional; `attrs` keys merge (a null removes).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Edit {
    /// Lifecycle state, one of [`LIFECYCLES`].
    pub lifecycle: Option<String>,
    /// `YYYY-MM-DD` or empty.
    pub purchase_date: Option<String>,
    /// `YYYY-MM-DD` or empty.
    pub warranty_end: Option<String>,
    /// Parent asset id (0 clears it).
    pub parent_id: Option<i64>,
    /// Class.
    pub class: Option<String>,
    /// Vendor.
    pub vendor: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Serial.
    pub serial: Option<String>,
    /// Attributes to set (null removes).
    pub attrs: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Whether `s` is empty or a plausible `YYYY-MM-DD` date.
pub fn valid_date(s: &str) -> bool {
    if s.is_empty() {
        return true;
    }
    let p: Vec<&str> = s.split('-').collect();
    p.len() == 3
        && p[0].len() == 4
        && p[1].len() == 2
        && p[2].len() == 2
        && p.iter().all(|x| x.bytes().all(|b| b.is_ascii_digit()))
        && (1..=12).contains(&p[1].parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&p[2].parse::<u32>().unwrap_or(0))
}

/// Applies a person's edit, recording each changed field. Returns the asset after.
pub fn edit(c: &dyn Sql, id: i64, e: &Edit, actor: &str, now: i64) -> Result<Asset, DbError> {
    if let Some(l) = &e.lifecycle {
        if !LIFECYCLES.contains(&l.as_str()) {
            return Err(DbError::Invalid(format!(
                "lifecycle {l:?}: expected one of {}",
                LIFECYCLES.join(", ")
            )));
        }
    }
    for (k, v) in [
        ("purchase_date", &e.purchase_date),
        ("warranty_end", &e.warranty_end),
    ] {
        if let Some(v) = v {
            if !valid_date(v) {
                return Err(DbError::Invalid(format!("{k} {v:?}: expected YYYY-MM-DD")));
            }
        }
    }
    let Some(before) = get(c, id)? else {
        return Err(DbError::NotFound(format!("no asset {id}")));
    };
    let set = |field: &str, old: &str, new: &Option<String>| -> Result<(), DbError> {
        if let Some(new) = new {
            if new != old {
                c.execute(
                    &format!("UPDATE assets SET {field} = ?2, updated_at = ?3 WHERE id = ?1"),
                    args![id, new, now],
                )?;
                record(c, id, now, actor, field, Some(old), Some(new))?;
            }
        }
        Ok(())
    };
    set("lifecycle", &before.lifecycle, &e.lifecycle)?;
    set("purchase_date", &before.purchase_date, &e.purchase_date)?;
    set("warranty_end", &before.warranty_end, &e.warranty_end)?;
    set("class", &before.class, &e.class)?;
    set("vendor", &before.vendor, &e.vendor)?;
    set("model", &before.model, &e.model)?;
    set("serial", &before.serial, &e.serial)?;
    if let Some(p) = e.parent_id {
        let new = (p != 0).then_some(p);
        if new == Some(id) {
            return Err(DbError::Invalid(
                "parent_id: an asset cannot be its own parent".into(),
            ));
        }
        if let Some(p) = new {
            if get(c, p)?.is_none() {
                return Err(DbError::Invalid(format!("parent_id: no asset {p}")));
            }
        }
        if new != before.parent_id {
            c.execute(
                "UPDATE assets SET parent_id = ?2, updated_at = ?3 WHERE id = ?1",
                args![id, new, now],
            )?;
            record(
                c,
                id,
                now,
                actor,
                "parent_id",
                before.parent_id.map(|x| x.to_string()).as_deref(),
                new.map(|x| x.to_string()).as_deref(),
            )?;
        }
    }
    if let Some(attrs) = &e.attrs {
        let mut merged = before.attrs.clone();
        for (k, v) in attrs {
            let old = merged.get(k).map(ToString::to_string);
            if v.is_null() {
                merged.remove(k);
            } else {
                merged.insert(k.clone(), v.clone());
            }
            let new = merged.get(k).map(ToString::to_string);
            if old != new {
                record(
                    c,
                    id,
                    now,
                    actor,
                    &format!("attrs.{k}"),
                    old.as_deref(),
                    new.as_deref(),
                )?;
            }
        }
        c.execute(
            "UPDATE assets SET attrs = ?2, updated_at = ?3 WHERE id = ?1",
            args![id, serde_json::Value::Object(merged).to_string(), now],
        )?;
    }
    get(c, id)?.ok_or_else(|| DbError::NotFound(format!("no asset {id}")))
}
