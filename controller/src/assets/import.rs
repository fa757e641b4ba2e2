//! Asset records from CSV, by hand or from a purchasing system (see [`crate::import`] for
//! the checks and the all-or-nothing rule).
//!
//! A row with an `id` changes that asset. A row without one names a device by `store` and
//! `slot` (its id at the store, as the gateway will name it): an asset already there is
//! changed, else a device asset is created (it needs a `class`), and the gateway's report
//! of that device later continues the same record. The export's own columns are accepted,
//! so an export can be edited and imported again; the facts only agents know (kind, region,
//! host name, agent, last seen) are not imported, and firmware only on a new record.
//! Every change goes into the asset's history with the importing user. [`create`] makes
//! one record by hand with the same rules.

use std::collections::HashMap;

use storefleet_storage::{args, Sql, SqlExt as _};

pub use storefleet_client::assets::NewAsset;

use super::{edit, valid_date, Edit, LIFECYCLES};
use crate::db::DbError;
use crate::import::{distinct, ImportReport, RowError, Table};

/// Columns of an assets file: the export's ([`super::query::CSV_HEADER`]).
fn columns() -> Vec<&'static str> {
    super::query::CSV_HEADER.split(',').collect()
}

/// The fields a row may set, in the order [`Edit`] and the insert take them.
const FIELDS: [&str; 7] = [
    "class",
    "vendor",
    "model",
    "serial",
    "lifecycle",
    "purchase_date",
    "warranty_end",
];

/// A checked row: the asset it changes (or none: a new one at `store`/`slot`), what it sets.
struct Row {
    id: Option<i64>,
    store: String,
    slot: String,
    set: HashMap<&'static str, String>,
    firmware: String,
}

/// Imports `text` as the user `actor`.
pub fn import(
    c: &dyn Sql,
    text: &[u8],
    dry_run: bool,
    actor: &str,
    now: i64,
) -> Result<Result<ImportReport, Vec<RowError>>, DbError> {
    let table = match Table::read(text, &columns(), &[]) {
        Ok(t) => t,
        Err(e) => return Ok(Err(e)),
    };
    // What the rows refer to, read once.
    let named = distinct(&table, "store");
    let stores: std::collections::HashSet<String> = c
        .all("SELECT code FROM stores", args![], |r| r.text("code"))?
        .into_iter()
        .filter(|s| named.contains(s))
        .collect();
    let mut by_place: HashMap<(String, String), i64> = HashMap::new();
    let mut current: HashMap<i64, super::Asset> = HashMap::new();
    for a in c.all(
        &format!("{} WHERE a.store_code IS NOT NULL", super::SELECT),
        args![],
        super::from_row,
    )? {
        if let (Some(s), Some(slot)) = (&a.store, &a.slot) {
            by_place.insert((s.clone(), slot.clone()), a.id);
        }
        current.insert(a.id, a);
    }
    let mut errors = Vec::new();
    let mut rows = Vec::new();
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut report = ImportReport::new(dry_run, table.rows.len());
    for (line, fields) in &table.rows {
        let line = *line;
        let bad = |column: &str, error: String| RowError {
            row: line,
            column: column.to_owned(),
            error,
        };
        let get = |col: &str| table.get(fields, col).unwrap_or_default().to_owned();
        let mut set = HashMap::new();
        for f in FIELDS {
            if let Some(v) = table.get(fields, f) {
                set.insert(f, v.to_owned());
            }
        }
        if let Some(l) = set.get("lifecycle") {
            if !LIFECYCLES.contains(&l.as_str()) {
                errors.push(bad(
                    "lifecycle",
                    format!("{l:?}: one of {}", LIFECYCLES.join(", ")),
                ));
                continue;
            }
        }
        if let Some((k, v)) = ["purchase_date", "warranty_end"]
            .iter()
            .find_map(|k| set.get(k).filter(|v| !valid_date(v)).map(|v| (*k, v)))
        {
            errors.push(bad(k, format!("{v:?}: YYYY-MM-DD")));
            continue;
        }
        let id = match table.get(fields, "id") {
            None => None,
            Some(v) => match v.parse::<i64>().ok().filter(|id| current.contains_key(id)) {
                Some(id) => Some(id),
                None => {
                    errors.push(bad("id", format!("no asset {v}")));
                    continue;
                }
            },
        };
        let (store, slot) = (get("store"), get("slot"));
        let id = match id {
            Some(id) => {
                let a = &current[&id];
                let moved = (!store.is_empty() && a.store.as_deref() != Some(store.as_str()))
                    || (!slot.is_empty() && a.slot.as_deref() != Some(slot.as_str()));
                if moved {
                    errors.push(bad(
                        "store",
                        format!(
                            "asset {id} is {}/{}: an import changes records, it does not move them",
                            a.store.as_deref().unwrap_or("-"),
                            a.slot.as_deref().unwrap_or("-")
                        ),
                    ));
                    continue;
                }
                Some(id)
            }
            None => {
                if store.is_empty() || slot.is_empty() {
                    errors.push(bad(
                        "",
                        "an id, or a store and a slot (the device's id at the store)".into(),
                    ));
                    continue;
                }
                if !stores.contains(&store) {
                    errors.push(bad("store", format!("no store {store:?}")));
                    continue;
                }
                if !crate::stores::valid_code(&slot.replace('.', "_")) {
                    errors.push(bad(
                        "slot",
                        format!("{slot:?}: 1 to 32 letters, digits, '.', '-' or '_'"),
                    ));
                    continue;
                }
                let found = by_place.get(&(store.clone(), slot.clone())).copied();
                if found.is_none() && !set.contains_key("class") {
                    errors.push(bad(
                        "class",
                        format!("{store}/{slot} is new: it needs a class"),
                    ));
                    continue;
                }
                found
            }
        };
        let key = id.map_or_else(|| format!("{store}/{slot}"), |id| id.to_string());
        if let Some(first) = seen.insert(key.clone(), line) {
            errors.push(bad("", format!("asset {key} is also on line {first}")));
            continue;
        }
        match id {
            None => report.created += 1,
            Some(id) => {
                let a = &current[&id];
                let now_is = |f: &str| match f {
                    "class" => &a.class,
                    "vendor" => &a.vendor,
                    "model" => &a.model,
                    "serial" => &a.serial,
                    "lifecycle" => &a.lifecycle,
                    "purchase_date" => &a.purchase_date,
                    _ => &a.warranty_end,
                };
                if set.iter().all(|(f, v)| now_is(f) == v) {
                    report.unchanged += 1;
                    continue;
                }
                report.updated += 1;
            }
        }
        rows.push(Row {
            id,
            store,
            slot,
            set,
            firmware: get("firmware"),
        });
    }
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    if !dry_run {
        for r in &rows {
            write(c, r, actor, now)?;
        }
    }
    Ok(Ok(report))
}

fn write(c: &dyn Sql, r: &Row, actor: &str, now: i64) -> Result<(), DbError> {
    let v = |f: &str| r.set.get(f).cloned();
    if let Some(id) = r.id {
        let e = Edit {
            lifecycle: v("lifecycle"),
            purchase_date: v("purchase_date"),
            warranty_end: v("warranty_end"),
            parent_id: None,
            class: v("class"),
            vendor: v("vendor"),
            model: v("model"),
            serial: v("serial"),
            attrs: None,
        };
        edit(c, id, &e, actor, now)?;
        return Ok(());
    }
    let or = |f: &str| v(f).unwrap_or_default();
    let n = NewAsset {
        store: r.store.clone(),
        slot: r.slot.clone(),
        class: or("class"),
        vendor: or("vendor"),
        model: or("model"),
        serial: or("serial"),
        firmware: r.firmware.clone(),
        lifecycle: or("lifecycle"),
        purchase_date: or("purchase_date"),
        warranty_end: or("warranty_end"),
    };
    insert(c, &n, actor, now, "by import")?;
    Ok(())
}

/// Makes a device record by hand; the error names the field at fault, or the record that
/// is already at the store's slot.
pub fn create(c: &dyn Sql, n: &NewAsset, actor: &str, now: i64) -> Result<super::Asset, DbError> {
    let bad = |m: String| Err(DbError::Invalid(m));
    if crate::stores::get(c, &n.store)?.is_none() {
        return Err(DbError::NotFound(format!("no store {:?}", n.store)));
    }
    if !crate::stores::valid_code(&n.slot.replace('.', "_")) {
        return bad(format!(
            "slot {:?}: 1 to 32 letters, digits, '.', '-' or '_'",
            n.slot
        ));
    }
    if n.class.trim().is_empty() {
        return bad("class: what the device is, e.g. receipt-printer".into());
    }
    if !n.lifecycle.is_empty() && !LIFECYCLES.contains(&n.lifecycle.as_str()) {
        return bad(format!(
            "lifecycle {:?}: one of {}",
            n.lifecycle,
            LIFECYCLES.join(", ")
        ));
    }
    for (k, v) in [
        ("purchase_date", &n.purchase_date),
        ("warranty_end", &n.warranty_end),
    ] {
        if !valid_date(v) {
            return bad(format!("{k} {v:?}: YYYY-MM-DD"));
        }
    }
    for (k, v) in [
        ("class", &n.class),
        ("vendor", &n.vendor),
        ("model", &n.model),
        ("serial", &n.serial),
        ("firmware", &n.firmware),
    ] {
        if v.chars().count() > crate::import::MAX_FIELD {
            return bad(format!(
                "{k}: longer than {} characters",
                crate::import::MAX_FIELD
            ));
        }
    }
    if let Some(r) = c.one(
        "SELECT id FROM assets WHERE store_code = ?1 AND slot = ?2",
        args![&n.store, &n.slot],
    )? {
        return Err(DbError::Conflict(format!(
            "store {} already has asset {} at {}: edit it instead",
            n.store,
            r.i64("id")?,
            n.slot
        )));
    }
    let id = insert(c, n, actor, now, "by hand")?;
    super::get(c, id)?.ok_or_else(|| DbError::NotFound(format!("no asset {id}")))
}

/// Writes a new device record and its first history entry; its id.
fn insert(c: &dyn Sql, n: &NewAsset, actor: &str, now: i64, how: &str) -> Result<i64, DbError> {
    let lifecycle = if n.lifecycle.is_empty() {
        "active"
    } else {
        n.lifecycle.as_str()
    };
    let id = c.int(
        "INSERT INTO assets(kind, class, vendor, model, serial, firmware, store_code, slot, lifecycle,
             purchase_date, warranty_end, first_seen, updated_at)
         VALUES ('device', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)
         RETURNING id",
        args![
            n.class.trim(),
            &n.vendor,
            &n.model,
            &n.serial,
            &n.firmware,
            &n.store,
            &n.slot,
            lifecycle,
            &n.purchase_date,
            &n.warranty_end,
            now
        ],
        "id",
    )?;
    let what = format!("device {} in {}, {how}", n.slot, n.store);
    super::record(c, id, now, actor, "created", None, Some(&what))?;
    Ok(id)
}
