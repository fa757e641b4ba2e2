//! Searching asset records and exporting them as CSV.

use serde::{Deserialize, Serialize};
use storefleet_storage::{Sql, SqlExt as _, Value};

use super::{from_row, Asset, SELECT};
use crate::db::DbError;

pub use storefleet_client::assets::AssetPage;

/// Filters; each set one narrows the result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Filter {
    /// Free text: matched against serial, model, vendor, host name, slot and class.
    pub q: Option<String>,
    /// `gateway` or `device`.
    pub kind: Option<String>,
    /// Store code.
    pub store: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// Class.
    pub class: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Firmware version.
    pub firmware: Option<String>,
    /// Lifecycle state.
    pub lifecycle: Option<String>,
    /// Warranty ending within this many days from now (already ended included).
    #[serde(deserialize_with = "empty_as_none")]
    pub warranty_days: Option<u32>,
    /// Rows to skip.
    #[serde(deserialize_with = "empty_as_none")]
    pub offset: Option<u32>,
    /// Rows at most (default 200, at most 10,000).
    #[serde(deserialize_with = "empty_as_none")]
    pub limit: Option<u32>,
}

/// An optional number from a query string, where an empty value (an empty form field) means
/// not set.
fn empty_as_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    match s.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            serde::de::Error::custom(format!("expected a whole number of 0 or more, got {v:?}"))
        }),
    }
}

fn set(v: Option<&String>) -> Option<&str> {
    v.map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// Assets matching `f`, ordered by store and slot, with the total count before paging.
pub fn search(c: &dyn Sql, f: &Filter, now_ms: i64) -> Result<(Vec<Asset>, u64), DbError> {
    if let Some(k) = set(f.kind.as_ref()) {
        if !["gateway", "device"].contains(&k) {
            return Err(DbError::Invalid(format!("kind {k:?}: gateway or device")));
        }
    }
    if let Some(l) = set(f.lifecycle.as_ref()) {
        if !super::LIFECYCLES.contains(&l) {
            return Err(DbError::Invalid(format!(
                "lifecycle {l:?}: one of {}",
                super::LIFECYCLES.join(", ")
            )));
        }
    }
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    let mut eq = |col: &str, v: Option<&str>| {
        if let Some(v) = v {
            args.push(Value::Text(v.to_owned()));
            clauses.push(format!("{col} = ?{}", args.len()));
        }
    };
    eq("a.kind", set(f.kind.as_ref()));
    eq("a.store_code", set(f.store.as_ref()));
    eq("s.region", set(f.region.as_ref()));
    eq("a.class", set(f.class.as_ref()));
    eq("a.model", set(f.model.as_ref()));
    eq("a.firmware", set(f.firmware.as_ref()));
    eq("a.lifecycle", set(f.lifecycle.as_ref()));
    if let Some(q) = set(f.q.as_ref()) {
        let like = format!(
            "%{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        args.push(Value::Text(like));
        let n = args.len();
        // Case-insensitive on both backends (SQLite's LIKE is, PostgreSQL's is not).
        let any = [
            "a.serial",
            "a.model",
            "a.vendor",
            "a.hostname",
            "a.slot",
            "a.class",
        ]
        .map(|col| format!("lower({col}) LIKE lower(?{n}) ESCAPE '\\'"))
        .join(" OR ");
        clauses.push(format!("({any})"));
    }
    if let Some(days) = f.warranty_days {
        // The last day counted, as the `YYYY-MM-DD` text warranty ends are kept in.
        let until = jiff::Timestamp::from_millisecond(now_ms)
            .ok()
            .and_then(|t| {
                t.checked_add(jiff::SignedDuration::from_hours(i64::from(days) * 24))
                    .ok()
            })
            .map_or_else(
                || "9999-12-31".to_owned(),
                |t| t.strftime("%Y-%m-%d").to_string(),
            );
        args.push(Value::Text(until));
        let n = args.len();
        clauses.push(format!("(a.warranty_end != '' AND a.warranty_end <= ?{n})"));
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    let total = c.int(
        &format!(
            "SELECT count(*) AS n FROM assets a LEFT JOIN stores s ON s.code = a.store_code{filter}"
        ),
        &args,
        "n",
    )?;
    let limit = f.limit.unwrap_or(200).clamp(1, 10_000);
    let offset = f.offset.unwrap_or(0);
    let rows = c.all(
        &format!(
            "{SELECT}{filter} ORDER BY a.store_code, a.kind DESC, a.slot, a.id LIMIT {limit} OFFSET {offset}"
        ),
        &args,
        from_row,
    )?;
    Ok((rows, total as u64))
}

/// The asset classes in use, for filters.
pub fn classes(c: &dyn Sql) -> Result<Vec<String>, DbError> {
    c.all(
        "SELECT DISTINCT class FROM assets WHERE class != '' ORDER BY class",
        &[],
        |r| r.text("class"),
    )
}

/// The stores' regions, for filters.
pub fn regions(c: &dyn Sql) -> Result<Vec<String>, DbError> {
    c.all(
        "SELECT DISTINCT region FROM stores WHERE region != '' ORDER BY region",
        &[],
        |r| r.text("region"),
    )
}

/// The CSV header, in [`csv_row`] order.
pub const CSV_HEADER: &str = "id,kind,store,region,slot,class,vendor,model,serial,firmware,hostname,lifecycle,purchase_date,warranty_end,parent_id,agent_id,last_seen_ms";

fn csv_field(s: &str) -> String {
    // Quote when needed; neutralise spreadsheet formulas.
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// One asset as a CSV line (without the line end).
pub fn csv_row(a: &Asset) -> String {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        a.id.to_string(),
        a.kind.clone(),
        opt(&a.store),
        a.region.clone(),
        opt(&a.slot),
        a.class.clone(),
        a.vendor.clone(),
        a.model.clone(),
        a.serial.clone(),
        a.firmware.clone(),
        a.hostname.clone(),
        a.lifecycle.clone(),
        a.purchase_date.clone(),
        a.warranty_end.clone(),
        a.parent_id.map(|x| x.to_string()).unwrap_or_default(),
        opt(&a.agent_id),
        a.last_seen.map(|x| x.to_string()).unwrap_or_default(),
    ]
    .iter()
    .map(|f| csv_field(f))
    .collect::<Vec<_>>()
    .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_neutralised() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        assert_eq!(csv_field("plain"), "plain");
    }
}
