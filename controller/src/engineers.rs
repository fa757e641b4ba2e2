//! Field engineers: skills, regions, shift hours in their own time zone, how many open
//! tickets they can carry, and whether they are available. Auto-assignment
//! (`tickets::assign`) picks among them.

use rusqlite::{params, Connection, OptionalExtension as _, Row};
use serde::{Deserialize, Serialize};
use storefleet_schedule::StoreTime;

use crate::db::DbError;

/// A field engineer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Engineer {
    /// Id, also their web UI login (e.g. `jan.k`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Skills, e.g. `printers`, `pos`, `network`, `refrigeration`.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Regions covered; `*` for all.
    #[serde(default)]
    pub regions: Vec<String>,
    /// IANA time zone of the shift hours.
    #[serde(default = "utc")]
    pub timezone: String,
    /// Shift hours, as trading hours are written: `Mo-Fr 07:00-16:00`, `24/7`.
    #[serde(default = "always")]
    pub shift: String,
    /// Open tickets they can carry at once.
    #[serde(default = "five")]
    pub capacity: u32,
    /// `available`, or anything else (`off`, `sick`, `vacation`) to take them out.
    #[serde(default = "available")]
    pub status: String,
    /// Phone number for the store and the dispatcher.
    #[serde(default)]
    pub phone: String,
}

fn utc() -> String {
    "UTC".into()
}

fn always() -> String {
    "24/7".into()
}

fn five() -> u32 {
    5
}

fn available() -> String {
    "available".into()
}

const COLUMNS: &str = "id, name, skills, regions, timezone, shift, capacity, status, phone";

fn list_field(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<Engineer> {
    Ok(Engineer {
        id: r.get(0)?,
        name: r.get(1)?,
        skills: list_field(&r.get::<_, String>(2)?),
        regions: list_field(&r.get::<_, String>(3)?),
        timezone: r.get(4)?,
        shift: r.get(5)?,
        capacity: r.get(6)?,
        status: r.get(7)?,
        phone: r.get(8)?,
    })
}

/// Checks an engineer's fields; the error names the field.
pub fn validate(e: &Engineer) -> Result<(), DbError> {
    if !crate::stores::valid_code(&e.id.replace('.', "_")) {
        return Err(DbError::Invalid(format!(
            "engineer id {:?}: 1 to 32 letters, digits, '.', '-' or '_'",
            e.id
        )));
    }
    if e.name.trim().is_empty() {
        return Err(DbError::Invalid("engineer name: not empty".into()));
    }
    if e.capacity == 0 {
        return Err(DbError::Invalid(
            "engineer capacity: at least 1 open ticket".into(),
        ));
    }
    if let Some(bad) = e
        .skills
        .iter()
        .chain(&e.regions)
        .find(|s| s.contains(',') || s.trim().is_empty())
    {
        return Err(DbError::Invalid(format!(
            "engineer skills/regions: {bad:?} is not a single word"
        )));
    }
    StoreTime::new(&e.shift, &e.timezone)
        .map_err(|err| DbError::Invalid(format!("engineer shift/timezone: {err}")))?;
    Ok(())
}

/// Creates or replaces an engineer.
pub fn put(c: &Connection, e: &Engineer, now: i64) -> Result<(), DbError> {
    validate(e)?;
    c.prepare_cached(
        "INSERT INTO engineers(id, name, skills, regions, timezone, shift, capacity, status, phone, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT(id) DO UPDATE SET name = ?2, skills = ?3, regions = ?4, timezone = ?5,
           shift = ?6, capacity = ?7, status = ?8, phone = ?9",
    )?
    .execute(params![
        e.id,
        e.name,
        e.skills.join(","),
        e.regions.join(","),
        e.timezone,
        e.shift,
        e.capacity,
        e.status,
        e.phone,
        now
    ])?;
    Ok(())
}

/// One engineer.
pub fn get(c: &Connection, id: &str) -> Result<Option<Engineer>, DbError> {
    Ok(c.query_row(
        &format!("SELECT {COLUMNS} FROM engineers WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()?)
}

/// Every engineer, by id.
pub fn list(c: &Connection) -> Result<Vec<Engineer>, DbError> {
    let mut st = c.prepare_cached(&format!("SELECT {COLUMNS} FROM engineers ORDER BY id"))?;
    let rows = st.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Sets an engineer's status (`available`, `off`, ...).
pub fn set_status(c: &Connection, id: &str, status: &str) -> Result<(), DbError> {
    if status.trim().is_empty() || status.len() > 32 {
        return Err(DbError::Invalid(
            "engineer status: `available`, or a word such as `off` or `sick`".into(),
        ));
    }
    let n = c.execute(
        "UPDATE engineers SET status = ?2 WHERE id = ?1",
        params![id, status],
    )?;
    if n == 0 {
        return Err(DbError::NotFound(format!("no engineer {id}")));
    }
    Ok(())
}

/// Open tickets assigned to each engineer.
pub fn loads(c: &Connection) -> Result<std::collections::HashMap<String, u32>, DbError> {
    let mut st = c.prepare_cached(
        "SELECT engineer_id, COUNT(*) FROM tickets
         WHERE engineer_id IS NOT NULL AND status NOT IN ('resolved', 'closed', 'cancelled')
         GROUP BY engineer_id",
    )?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
