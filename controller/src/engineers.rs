//! Field engineers: skills, regions, shift hours in their own time zone, how many open
//! tickets they can carry, and whether they are available. Auto-assignment
//! (`tickets::assign`) picks among them.

use storefleet_schedule::StoreTime;
use storefleet_storage::{args, Row, Sql, SqlExt as _};

use crate::db::DbError;

pub use storefleet_core::engineer::Engineer;

pub use storefleet_client::engineers::EngineerLoad;

/// Every engineer with their load.
pub fn list_with_load(c: &dyn Sql) -> Result<Vec<EngineerLoad>, DbError> {
    let loads = loads(c)?;
    Ok(list(c)?
        .into_iter()
        .map(|engineer| EngineerLoad {
            load: loads.get(&engineer.id).copied().unwrap_or(0),
            engineer,
        })
        .collect())
}

const COLUMNS: &str = "id, name, skills, regions, timezone, shift, capacity, status, phone";

fn list_field(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

fn from_row(r: &Row) -> Result<Engineer, DbError> {
    Ok(Engineer {
        id: r.text("id")?,
        name: r.text("name")?,
        skills: list_field(&r.text("skills")?),
        regions: list_field(&r.text("regions")?),
        timezone: r.text("timezone")?,
        shift: r.text("shift")?,
        capacity: r.int("capacity")?,
        status: r.text("status")?,
        phone: r.text("phone")?,
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
pub fn put(c: &dyn Sql, e: &Engineer, now: i64) -> Result<(), DbError> {
    validate(e)?;
    c.execute(
        "INSERT INTO engineers(id, name, skills, regions, timezone, shift, capacity, status, phone, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT(id) DO UPDATE SET name = ?2, skills = ?3, regions = ?4, timezone = ?5,
           shift = ?6, capacity = ?7, status = ?8, phone = ?9",
        args![
            &e.id,
            &e.name,
            e.skills.join(","),
            e.regions.join(","),
            &e.timezone,
            &e.shift,
            e.capacity,
            &e.status,
            &e.phone,
            now
        ],
    )?;
    Ok(())
}

/// One engineer.
pub fn get(c: &dyn Sql, id: &str) -> Result<Option<Engineer>, DbError> {
    c.one(
        &format!("SELECT {COLUMNS} FROM engineers WHERE id = ?1"),
        args![id],
    )?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// Every engineer, by id.
pub fn list(c: &dyn Sql) -> Result<Vec<Engineer>, DbError> {
    c.all(
        &format!("SELECT {COLUMNS} FROM engineers ORDER BY id"),
        args![],
        from_row,
    )
}

/// Sets an engineer's status (`available`, `off`, ...).
pub fn set_status(c: &dyn Sql, id: &str, status: &str) -> Result<(), DbError> {
    if status.trim().is_empty() || status.len() > 32 {
        return Err(DbError::Invalid(
            "engineer status: `available`, or a word such as `off` or `sick`".into(),
        ));
    }
    let n = c.execute(
        "UPDATE engineers SET status = ?2 WHERE id = ?1",
        args![id, status],
    )?;
    if n == 0 {
        return Err(DbError::NotFound(format!("no engineer {id}")));
    }
    Ok(())
}

/// Open tickets assigned to each engineer.
pub fn loads(c: &dyn Sql) -> Result<std::collections::HashMap<String, u32>, DbError> {
    Ok(c.all(
        "SELECT engineer_id, COUNT(*) AS n FROM tickets
             WHERE engineer_id IS NOT NULL AND status NOT IN ('resolved', 'closed', 'cancelled')
             GROUP BY engineer_id",
        args![],
        |r| Ok((r.text("engineer_id")?, r.int("n")?)),
    )?
    .into_iter()
    .collect())
}
