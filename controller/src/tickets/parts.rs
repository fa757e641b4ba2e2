//! Spare parts on a ticket: what the fix needs, what was ordered, what was fitted. Each
//! change goes into the ticket's timeline.

use std::fmt::Write as _;

use serde_json::json;
use storefleet_storage::{args, Sql, SqlExt as _};

use super::db as tdb;
use crate::db::DbError;
pub use storefleet_client::tickets::{NewPart, Part, PartChange, PartState};

const COLUMNS: &str = "id, part, quantity, state, note, updated_by, updated_at";

/// The parts of ticket `id`, in the order they were added.
pub fn list(c: &dyn Sql, id: i64) -> Result<Vec<Part>, DbError> {
    c.all(
        &format!("SELECT {COLUMNS} FROM ticket_parts WHERE ticket_id = ?1 ORDER BY id"),
        args![id],
        |r| {
            Ok(Part {
                id: r.i64("id")?,
                part: r.text("part")?,
                quantity: r.int("quantity")?,
                state: PartState::parse(&r.text("state")?).unwrap_or(PartState::Needed),
                note: r.text("note")?,
                updated_by: r.text("updated_by")?,
                updated_at: r.i64("updated_at")?,
            })
        },
    )
}

fn check_note(note: &str) -> Result<(), DbError> {
    if note.len() > 500 {
        return Err(DbError::Invalid("part note: at most 500 characters".into()));
    }
    Ok(())
}

fn ticket_exists(c: &dyn Sql, id: i64) -> Result<(), DbError> {
    if c.one("SELECT id FROM tickets WHERE id = ?1", args![id])?
        .is_none()
    {
        return Err(DbError::NotFound(format!("no ticket {id}")));
    }
    Ok(())
}

fn entry(c: &dyn Sql, id: i64, actor: &str, now: i64, p: &Part) -> Result<(), DbError> {
    let mut text = format!("Part {} × {}: {}", p.part, p.quantity, p.state.as_str());
    if !p.note.is_empty() {
        let _ = write!(text, " ({})", p.note);
    }
    tdb::add_entry(
        c,
        id,
        now,
        "part",
        actor,
        &text,
        &json!({"part": p.id, "state": p.state.as_str()}),
        None,
    )
    .map(drop)
}

/// Adds a part to ticket `id`.
pub fn add(c: &dyn Sql, id: i64, n: &NewPart, actor: &str, now: i64) -> Result<Part, DbError> {
    ticket_exists(c, id)?;
    let name = n.part.trim();
    if name.is_empty() || name.len() > 120 {
        return Err(DbError::Invalid(
            "part: its number or name, 1 to 120 characters".into(),
        ));
    }
    if !(1..=1000).contains(&n.quantity) {
        return Err(DbError::Invalid(format!(
            "part quantity {}: expected 1 to 1000",
            n.quantity
        )));
    }
    check_note(&n.note)?;
    let part = c.int(
        "INSERT INTO ticket_parts(ticket_id, part, quantity, state, note, updated_by, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
        args![
            id,
            name,
            n.quantity,
            n.state.as_str(),
            n.note.trim(),
            actor,
            now
        ],
        "id",
    )?;
    let p = Part {
        id: part,
        part: name.to_owned(),
        quantity: n.quantity,
        state: n.state,
        note: n.note.trim().to_owned(),
        updated_by: actor.to_owned(),
        updated_at: now,
    };
    entry(c, id, actor, now, &p)?;
    Ok(p)
}

/// Moves part `part` of ticket `id` to a new state.
pub fn change(
    c: &dyn Sql,
    id: i64,
    part: i64,
    ch: &PartChange,
    actor: &str,
    now: i64,
) -> Result<Part, DbError> {
    ticket_exists(c, id)?;
    if let Some(n) = &ch.note {
        check_note(n)?;
    }
    let mut p = list(c, id)?
        .into_iter()
        .find(|p| p.id == part)
        .ok_or_else(|| DbError::NotFound(format!("ticket {id} has no part {part}")))?;
    p.state = ch.state;
    if let Some(n) = &ch.note {
        n.trim().clone_into(&mut p.note);
    }
    actor.clone_into(&mut p.updated_by);
    p.updated_at = now;
    c.execute(
        "UPDATE ticket_parts SET state = ?3, note = ?4, updated_by = ?5, updated_at = ?6
         WHERE ticket_id = ?1 AND id = ?2",
        args![id, part, p.state.as_str(), &p.note, actor, now],
    )?;
    entry(c, id, actor, now, &p)?;
    Ok(p)
}
