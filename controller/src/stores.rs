//! Stores: the places gateways belong to, with region, address, time zone and hours.

use storefleet_storage::{args, Row, Sql, SqlExt as _};

use crate::db::DbError;
use storefleet_core::geo::Coord;

pub use storefleet_client::stores::Store;

/// Whether `code` is a usable store code: 1 to 32 letters, digits, `-` or `_`.
pub fn valid_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 32
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The columns [`from_row`] reads.
pub(crate) const COLUMNS: &str =
    "code, name, region, address, timezone, trading_hours, tags, lat, lon";

pub(crate) fn from_row(r: &Row) -> Result<Store, DbError> {
    Ok(Store {
        code: r.text("code")?,
        name: r.text("name")?,
        region: r.text("region")?,
        address: r.text("address")?,
        timezone: r.text("timezone")?,
        trading_hours: r.text("trading_hours")?,
        tags: split_tags(&r.text("tags")?),
        // A half-written pair (only by hand in the database) counts as none.
        place: Coord::from_parts(r.opt_f64("lat")?, r.opt_f64("lon")?)
            .ok()
            .flatten(),
    })
}

/// Checks a store's fields.
pub fn validate(s: &Store) -> Result<(), DbError> {
    if !valid_code(&s.code) {
        return Err(DbError::Invalid(format!(
            "store code {:?}: expected 1 to 32 letters, digits, '-' or '_'",
            s.code
        )));
    }
    if s.name.trim().is_empty() {
        return Err(DbError::Invalid("store name: must not be empty".into()));
    }
    if s.timezone.trim().is_empty() {
        return Err(DbError::Invalid(
            "store timezone: e.g. Europe/Berlin or UTC".into(),
        ));
    }
    // Tasks hold to each store's hours in its zone: both must be readable.
    storefleet_schedule::StoreTime::new(&s.trading_hours, &s.timezone)
        .map_err(|e| DbError::Invalid(format!("store {}: {e}", s.code)))?;
    if let Some(p) = s.place {
        Coord::new(p.lat, p.lon)
            .map_err(|e| DbError::Invalid(format!("store {} place: {e}", s.code)))?;
    }
    if let Some(t) = s.tags.iter().find(|t| !valid_code(t)) {
        return Err(DbError::Invalid(format!(
            "store tag {t:?}: expected 1 to 32 letters, digits, '-' or '_'"
        )));
    }
    Ok(())
}

fn split_tags(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Creates a store, or updates it when `upsert` and it exists.
pub fn put(c: &dyn Sql, s: &Store, upsert: bool, now: i64) -> Result<(), DbError> {
    validate(s)?;
    let exists = get(c, &s.code)?.is_some();
    if exists && !upsert {
        return Err(DbError::Conflict(format!("store {} exists", s.code)));
    }
    c.execute(
        "INSERT INTO stores(code, name, region, address, timezone, trading_hours, created_at, tags, lat, lon)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT(code) DO UPDATE SET name = ?2, region = ?3, address = ?4, timezone = ?5,
             trading_hours = ?6, tags = ?8, lat = ?9, lon = ?10",
        args![
            &s.code,
            &s.name,
            &s.region,
            &s.address,
            &s.timezone,
            &s.trading_hours,
            now,
            s.tags.join(","),
            s.place.map(|p| p.lat),
            s.place.map(|p| p.lon)
        ],
    )?;
    Ok(())
}

/// One store.
pub fn get(c: &dyn Sql, code: &str) -> Result<Option<Store>, DbError> {
    c.one(
        &format!("SELECT {COLUMNS} FROM stores WHERE code = ?1"),
        args![code],
    )?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// All stores, by code.
pub fn list(c: &dyn Sql) -> Result<Vec<Store>, DbError> {
    c.all(
        &format!("SELECT {COLUMNS} FROM stores ORDER BY code"),
        args![],
        from_row,
    )
}

/// Every store's place, for those that have one, by code.
pub fn places(c: &dyn Sql) -> Result<std::collections::HashMap<String, Coord>, DbError> {
    Ok(c.all(
        "SELECT code, lat, lon FROM stores WHERE lat IS NOT NULL AND lon IS NOT NULL",
        args![],
        |r| {
            Ok((
                r.text("code")?,
                Coord::from_parts(r.opt_f64("lat")?, r.opt_f64("lon")?),
            ))
        },
    )?
    .into_iter()
    .filter_map(|(code, p)| Some((code, p.ok()??)))
    .collect())
}
