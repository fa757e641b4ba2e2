//! Tickets as callers work them: who sees which, who may take which step, and what every
//! change sets in motion (the ticket engine on every replica, the webhooks).

use crate::auth::Role;
use crate::cluster::Wake;
use crate::db::DbError;
use crate::engineers;
use crate::state::AppState;
use crate::tickets::db::{self as tdb, Filter, NewTicket};
use crate::tickets::lifecycle::Action;
use crate::tickets::parts;
use crate::tickets::{Entry, Ticket};

use super::{Error, Principal, Result};

/// What an engineer may do to their own ticket.
const ENGINEER_ACTIONS: &[&str] = &[
    "accept", "en_route", "check_in", "hold", "resume", "resolve", "note",
];

/// Narrows a filter to what `user` may see: an engineer sees only their own tickets.
pub fn own_only(f: &mut Filter, user: &str, role: Role) {
    if role == Role::Engineer {
        f.engineer = Some(user.to_owned());
    }
}

/// Refuses an engineer a ticket that is not theirs, as if it did not exist.
pub fn may_see(t: &Ticket, user: &str, role: Role) -> Result<()> {
    if role == Role::Engineer && t.engineer.as_deref() != Some(user) {
        return Err(DbError::NotFound(format!("no ticket {} of yours", t.id)).into());
    }
    Ok(())
}

/// The tickets `f` selects, of those `p` may see.
pub async fn list(s: &AppState, p: &Principal, mut f: Filter) -> Result<Vec<Ticket>> {
    own_only(&mut f, &p.user, p.role);
    Ok(s.db.read(move |c| tdb::list(c, &f)).await?)
}

/// One ticket with its timeline, if `p` may see it.
pub async fn get(s: &AppState, p: &Principal, id: i64) -> Result<(Ticket, Vec<Entry>)> {
    let (t, timeline) =
        s.db.read(move |c| {
            let t = tdb::get(c, id)?.ok_or_else(|| DbError::NotFound(format!("no ticket {id}")))?;
            Ok((t, tdb::timeline(c, id)?))
        })
        .await?;
    may_see(&t, &p.user, p.role)?;
    Ok((t, timeline))
}

/// Opens a ticket by hand.
pub async fn create(s: &AppState, p: &Principal, n: NewTicket) -> Result<Ticket> {
    let ctx = s.tickets.clone();
    let now = s.clock.now();
    let actor = p.actor.clone();
    let t =
        s.db.write(move |c| {
            let id = tdb::create(c, &ctx, &n, "manual", &actor, now)?;
            tdb::get(c, id)?.ok_or_else(|| DbError::NotFound("ticket".into()))
        })
        .await?;
    tracing::info!(ticket = t.id, store = %t.store, by = %p.actor, "Ticket opened by hand");
    s.signals.wake(Wake::Tickets);
    s.signals.wake(Wake::Webhooks);
    Ok(t)
}

/// Applies `a` to ticket `id` as `p`. An engineer may only work a ticket assigned to them,
/// with the steps of the field.
pub async fn act(s: &AppState, p: &Principal, id: i64, a: Action) -> Result<Ticket> {
    let ctx = s.tickets.clone();
    let now = s.clock.now();
    let name = a.name();
    may_work(s, p, id).await?;
    if p.role == Role::Engineer && !ENGINEER_ACTIONS.contains(&name) {
        return Err(Error::Forbidden(format!(
            "{name} needs the dispatcher role; {} is an engineer",
            p.actor
        )));
    }
    let actor = p.actor.clone();
    let t =
        s.db.write(move |c| tdb::act(c, &ctx, id, &a, &actor, now))
            .await?;
    tracing::info!(ticket = id, action = name, status = %t.status, by = %p.actor, "Ticket action");
    s.signals.wake(Wake::Tickets);
    s.signals.wake(Wake::Webhooks);
    Ok(t)
}

/// Refuses an engineer a ticket that is not theirs (as if it did not exist).
async fn may_work(s: &AppState, p: &Principal, id: i64) -> Result<()> {
    if p.role == Role::Engineer {
        let t =
            s.db.read(move |c| tdb::get(c, id))
                .await?
                .ok_or_else(|| DbError::NotFound(format!("no ticket {id}")))?;
        may_see(&t, &p.user, p.role)?;
    }
    Ok(())
}

/// Adds a spare part to ticket `id` (an engineer: to their own).
pub async fn add_part(
    s: &AppState,
    p: &Principal,
    id: i64,
    n: parts::NewPart,
) -> Result<parts::Part> {
    may_work(s, p, id).await?;
    let (actor, now) = (p.actor.clone(), s.clock.now());
    let part =
        s.db.write(move |c| parts::add(c, id, &n, &actor, now))
            .await?;
    tracing::info!(ticket = id, part = %part.part, state = part.state.as_str(), by = %p.actor, "Ticket part added");
    Ok(part)
}

/// Moves a spare part of ticket `id` to a new state (an engineer: on their own).
pub async fn change_part(
    s: &AppState,
    p: &Principal,
    id: i64,
    part: i64,
    ch: parts::PartChange,
) -> Result<parts::Part> {
    may_work(s, p, id).await?;
    let (actor, now) = (p.actor.clone(), s.clock.now());
    Ok(s.db
        .write(move |c| parts::change(c, id, part, &ch, &actor, now))
        .await?)
}

/// An engineer goes off shift or comes back (their own, or anyone's for a dispatcher);
/// assignment follows.
pub async fn engineer_status(
    s: &AppState,
    p: &Principal,
    engineer: &str,
    status: &str,
) -> Result<()> {
    if engineer != p.user {
        p.require(Role::Dispatcher)
            .map_err(|_| Error::Forbidden(format!("{} changes only their own status", p.actor)))?;
    }
    let (id, st) = (engineer.to_owned(), status.to_owned());
    s.db.write(move |c| engineers::set_status(c, &id, &st))
        .await?;
    tracing::info!(engineer = %engineer, status = %status, by = %p.actor, "Engineer status");
    s.signals.wake(Wake::Tickets);
    Ok(())
}

/// A new silence: `minutes` from now, or `starts_at`..`ends_at` (a maintenance window).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    /// Store code.
    pub store: String,
    /// Only this device.
    #[serde(default)]
    pub device: Option<String>,
    /// Only this rule.
    #[serde(default)]
    pub rule: Option<String>,
    /// From now, for this long.
    #[serde(default)]
    pub minutes: Option<u32>,
    /// A window's start, ms.
    #[serde(default)]
    pub starts_at: Option<i64>,
    /// A window's end, ms.
    #[serde(default)]
    pub ends_at: Option<i64>,
    /// Why.
    pub reason: String,
}

/// Silences a store, a device or a rule for a while.
pub async fn silence(
    s: &AppState,
    p: &Principal,
    n: NewSilence,
) -> Result<crate::tickets::place::Silence> {
    let now = s.clock.now();
    let (from, to) = match (n.minutes, n.starts_at, n.ends_at) {
        (Some(m), None, None) if m > 0 => (now, now + i64::from(m) * 60_000),
        (None, Some(a), Some(b)) if b > a => (a, b),
        _ => {
            return Err(DbError::Invalid(
                "a silence needs `minutes` (> 0), or `starts_at` and a later `ends_at` (ms)".into(),
            )
            .into())
        }
    };
    if n.reason.trim().is_empty() {
        return Err(DbError::Invalid("a silence needs a `reason`".into()).into());
    }
    let empty = |v: Option<String>| v.filter(|x| !x.trim().is_empty());
    let sil = crate::tickets::place::Silence {
        id: 0,
        store: n.store,
        device: empty(n.device),
        rule: empty(n.rule),
        starts_at: from,
        ends_at: to,
        reason: n.reason,
        created_by: p.actor.clone(),
    };
    let mut out = sil.clone();
    out.id =
        s.db.write(move |c| crate::tickets::standing::create_silence(c, &sil, now))
            .await?;
    tracing::info!(silence = out.id, store = %out.store, by = %p.actor, "Silence created");
    s.signals.wake(Wake::Tickets);
    Ok(out)
}

/// Creates or replaces an engineer; assignment follows.
pub async fn save_engineer(
    s: &AppState,
    e: storefleet_core::engineer::Engineer,
) -> Result<storefleet_core::engineer::Engineer> {
    let now = s.clock.now();
    let saved = e.clone();
    s.db.write(move |c| engineers::put(c, &saved, now)).await?;
    s.signals.wake(Wake::Tickets);
    Ok(e)
}
