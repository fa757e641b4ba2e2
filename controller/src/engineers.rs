//! Field engineers: skills, regions, shift hours in their own time zone, how many open
//! tickets they can carry, and whether they are available. Auto-assignment
//! (`tickets::assign`) picks among them.

use storefleet_schedule::StoreTime;
use storefleet_storage::{args, Row, Sql, SqlExt as _};

use crate::db::DbError;

pub use storefleet_core::engineer::Engineer;

pub use storefleet_client::engineers::{CheckIn, EngineerLoad};
use storefleet_core::assign::Position;
use storefleet_core::engineer::Level;
use storefleet_core::geo::Coord;

/// Every engineer with their load and last check-in.
pub fn list_with_load(c: &dyn Sql) -> Result<Vec<EngineerLoad>, DbError> {
    let loads = loads(c)?;
    let mut seen = check_ins(c)?;
    Ok(list(c)?
        .into_iter()
        .map(|engineer| EngineerLoad {
            load: loads.get(&engineer.id).copied().unwrap_or(0),
            last_check_in: seen.remove(&engineer.id),
            engineer,
        })
        .collect())
}

const COLUMNS: &str =
    "id, name, skills, regions, timezone, shift, capacity, status, phone, home_lat, home_lon, level";

/// A check-in counts as where the engineer is for this long; after it, their home base.
pub const CHECK_IN_HOLDS_MS: i64 = 12 * 3_600_000;

/// Each engineer's last check-in, by id.
pub fn check_ins(c: &dyn Sql) -> Result<std::collections::HashMap<String, CheckIn>, DbError> {
    Ok(c.all(
        "SELECT id, seen_store, seen_at, seen_lat, seen_lon FROM engineers WHERE seen_at IS NOT NULL",
        args![],
        |r| {
            Ok((
                r.text("id")?,
                CheckIn {
                    store: r.opt_text("seen_store")?.unwrap_or_default(),
                    at: r.i64("seen_at")?,
                    place: Coord::from_parts(r.opt_f64("seen_lat")?, r.opt_f64("seen_lon")?)
                        .ok()
                        .flatten(),
                },
            ))
        },
    )?
    .into_iter()
    .collect())
}

/// Records that `engineer` checked in at ticket `ticket`'s store at `now`, with the store's
/// place (when it has one).
pub fn checked_in(c: &dyn Sql, engineer: &str, ticket: i64, now: i64) -> Result<(), DbError> {
    c.execute(
        "UPDATE engineers SET seen_at = ?3,
           seen_store = (SELECT t.store_code FROM tickets t WHERE t.id = ?2),
           seen_lat = (SELECT s.lat FROM tickets t JOIN stores s ON s.code = t.store_code WHERE t.id = ?2),
           seen_lon = (SELECT s.lon FROM tickets t JOIN stores s ON s.code = t.store_code WHERE t.id = ?2)
         WHERE id = ?1",
        args![engineer, ticket, now],
    )?;
    Ok(())
}

/// Where dispatch counts `e` to be at `now`: their check-in of the last
/// [`CHECK_IN_HOLDS_MS`] at a store with a place, else their home base, else unknown.
pub fn position(e: &Engineer, seen: Option<&CheckIn>, now: i64) -> Option<Position> {
    if let Some(s) = seen.filter(|s| now - s.at < CHECK_IN_HOLDS_MS) {
        if let Some(at) = s.place {
            return Some(Position {
                at,
                what: format!("last check-in at {}", s.store),
            });
        }
    }
    e.home.map(|at| Position {
        at,
        what: "home base".into(),
    })
}

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
        level: Level::parse(&r.text("level")?).unwrap_or(Level::Senior),
        // A half-written pair (only by hand in the database) counts as none.
        home: Coord::from_parts(r.opt_f64("home_lat")?, r.opt_f64("home_lon")?)
            .ok()
            .flatten(),
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
    if let Some(h) = e.home {
        Coord::new(h.lat, h.lon)
            .map_err(|err| DbError::Invalid(format!("engineer home: {err}")))?;
    }
    Ok(())
}

/// Creates or replaces an engineer.
pub fn put(c: &dyn Sql, e: &Engineer, now: i64) -> Result<(), DbError> {
    validate(e)?;
    c.execute(
        "INSERT INTO engineers(id, name, skills, regions, timezone, shift, capacity, status, phone, created_at,
           home_lat, home_lon, level)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT(id) DO UPDATE SET name = ?2, skills = ?3, regions = ?4, timezone = ?5,
           shift = ?6, capacity = ?7, status = ?8, phone = ?9, home_lat = ?11, home_lon = ?12, level = ?13",
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
            now,
            e.home.map(|h| h.lat),
            e.home.map(|h| h.lon),
            e.level.name()
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
