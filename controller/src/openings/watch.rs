//! The openings' watch (in the engines, every `tickets.opening_check_secs`): pushes each
//! new store's format tasks to its gateway one after another once it is enrolled and
//! online, and warns when a store is not ready `tickets.opening_warn_days` before it opens
//! (or is past its day and still not ready): an event `store.not_ready` on the store and a
//! ticket for the opening's skill, which resolves itself when the store becomes ready
//! before an engineer is on site; and when the day comes and goes with the store still not
//! ready, an event `store.opening_late` and the ticket escalated (or a critical one).

use std::time::Duration;

use serde_json::json;
use storefleet_client::tickets::NewTicket;
use storefleet_core::alerts::{Impact, Severity};
use storefleet_storage::{args, Sql, SqlExt as _};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Readiness, State};
use crate::db::{Db, DbError};
use crate::fleet::Rules;
use crate::tickets::db as tdb;
use crate::tickets::lifecycle::Action;
use crate::tickets::Ctx;

/// The agent id the controller's own events carry.
pub const CONTROLLER: &str = "controller";

/// What one watch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    /// Tasks pushed.
    pub pushed: u32,
    /// Stores warned about.
    pub warned: u32,
    /// Tickets resolved because their store became ready.
    pub resolved: u32,
}

/// The dedupe key of an opening's ticket.
pub fn ticket_key(store: &str, opens_on: &str) -> String {
    format!("opening/{store}/{opens_on}")
}

/// One watch of every opening at `rules.now`, in one transaction (tests; the engine
/// watches each store in its own).
pub fn run(c: &dyn Sql, ctx: &Ctx, rules: &Rules) -> Result<Done, DbError> {
    let mut done = Done::default();
    for store in super::stores(c)? {
        done.add(one(c, ctx, rules, &store)?);
    }
    Ok(done)
}

/// One watch of `store`'s opening.
pub fn one(c: &dyn Sql, ctx: &Ctx, rules: &Rules, store: &str) -> Result<Done, DbError> {
    let mut done = Done::default();
    if let Some(r) = super::readiness(c, store, rules)? {
        push_next(c, &r, rules, &mut done)?;
        warn(c, ctx, &r, rules.now, &mut done)?;
    }
    Ok(done)
}

impl Done {
    fn add(&mut self, o: Done) {
        self.pushed += o.pushed;
        self.warned += o.warned;
        self.resolved += o.resolved;
    }
}

/// Pushes the first of the format's tasks not pushed yet, when those before it succeeded
/// and the gateway is online.
fn push_next(c: &dyn Sql, r: &Readiness, rules: &Rules, done: &mut Done) -> Result<(), DbError> {
    if !r.checklist.first().is_some_and(|g| g.auto && g.done) {
        return Ok(());
    }
    let Some(step) = r.tasks.iter().position(|t| t.task.is_none()) else {
        return Ok(());
    };
    if r.tasks[..step].iter().any(|t| t.state != State::Ready) {
        return Ok(());
    }
    let Some((_, format)) = super::opening_of(c, &r.store)? else {
        return Ok(());
    };
    let agents: Vec<String> = rules
        .judge()
        .list(c, Some(&r.store))?
        .into_iter()
        .filter(|a| a.online)
        .map(|a| a.id)
        .collect();
    let action = format.tasks[step].clone();
    let spec = crate::tasks::TaskSpec {
        name: format!(
            "{} for opening {} ({} {}/{})",
            action.routine_name(),
            r.store,
            r.format,
            step + 1,
            format.tasks.len()
        ),
        action,
        select: crate::tasks::Selector {
            agents,
            ..crate::tasks::Selector::default()
        },
        plan: crate::rollout::Plan::default(),
        window: storefleet_schedule::Window::default(),
    };
    let id = crate::service::tasks::new_id();
    crate::tasks::db::create(c, &id, &spec, &format!("format {}", r.format), rules.now)?;
    c.execute(
        "INSERT INTO opening_tasks(store_code, step, task_id) VALUES (?1, ?2, ?3)",
        args![&r.store, step as i64, &id],
    )?;
    tracing::info!(store = %r.store, task = %id, step = step + 1, "Opening task pushed");
    done.pushed += 1;
    Ok(())
}

/// What is not ready, one line each, for the event and the ticket.
fn details(r: &Readiness) -> String {
    let mut out = Vec::new();
    for d in r.devices.iter().filter(|d| d.state != State::Ready) {
        let what = match &d.device {
            Some(id) => format!("{} {id}", d.class),
            None => d.class.clone(),
        };
        out.push(format!("{what}: {} ({})", d.state.as_str(), d.note));
    }
    for t in r.tasks.iter().filter(|t| t.state != State::Ready) {
        out.push(format!("task {}: {}", t.name, t.note));
    }
    for k in r.checklist.iter().filter(|k| !k.done) {
        if k.note.is_empty() {
            out.push(format!("not checked: {}", k.item));
        } else {
            out.push(format!("not checked: {} ({})", k.item, k.note));
        }
    }
    out.join("\n")
}

fn warn(c: &dyn Sql, ctx: &Ctx, r: &Readiness, now: i64, done: &mut Done) -> Result<(), DbError> {
    let key = ticket_key(&r.store, &r.opens_on);
    if r.ready {
        if let Some(t) = open_ticket(c, &key)? {
            if !matches!(t.1.as_str(), "on_site" | "on_hold") {
                let report = format!("Store {} is ready to open on {}", r.store, r.opens_on);
                tdb::act(c, ctx, t.0, &Action::Resolve { report }, "system", now)?;
                done.resolved += 1;
            }
        }
        return Ok(());
    }
    if r.days_left > i64::from(ctx.settings.opening_warn_days) {
        return Ok(());
    }
    let row = c.one(
        "SELECT o.warned_at, s.timezone FROM openings o JOIN stores s ON s.code = o.store_code
         WHERE o.store_code = ?1",
        args![&r.store],
    );
    let Some(row) = row? else { return Ok(()) };
    let warned = row.opt_i64("warned_at")?;
    // Warned once before the day; once more when the day has come and gone.
    let late = r.days_left < 0;
    let day_began = super::day_start(&r.opens_on, &row.text("timezone")?)?;
    match warned {
        None => {}
        Some(at) if late && at < day_began => {}
        Some(_) => return Ok(()),
    }
    let when = match r.days_left {
        d if d < 0 => format!("was to open on {} ({} days ago)", r.opens_on, -d),
        0 => format!("opens today ({})", r.opens_on),
        1 => format!("opens tomorrow ({})", r.opens_on),
        d => format!("opens on {} (in {d} days)", r.opens_on),
    };
    let message = format!("Store {} {when} and is not ready: {}", r.store, r.summary());
    let detail = details(r);
    let (code, event_id) = if late && warned.is_some() {
        ("store.opening_late", format!("{key}/late"))
    } else {
        ("store.not_ready", key.clone())
    };
    c.execute(
        "INSERT INTO events(agent_id, store_code, event_id, ts, device, code, severity, message, data, received_at)
         VALUES (?1, ?2, ?3, ?4, '', ?7, 'warning', ?5, ?6, ?4)
         ON CONFLICT(agent_id, event_id) DO NOTHING",
        args![
            CONTROLLER,
            &r.store,
            &event_id,
            now,
            &message,
            json!({"format": r.format, "opens_on": r.opens_on, "days_left": r.days_left, "not_ready": detail})
                .to_string(),
            code
        ],
    )?;
    match open_ticket(c, &key)? {
        // The day passed with the store still not ready: its ticket goes up a level.
        Some((id, _)) if late => {
            tdb::escalate(c, ctx, id, 2, true, &message, now)?;
        }
        Some(_) => {}
        None => {
            let n = NewTicket {
                store: r.store.clone(),
                title: format!(
                    "Store {} not ready to open on {}: {}",
                    r.store,
                    r.opens_on,
                    r.summary()
                ),
                skill: ctx.settings.opening_skill.clone(),
                level: storefleet_core::engineer::Level::default(),
                severity: if late {
                    Severity::Critical
                } else {
                    Severity::Major
                },
                impact: Impact::Store,
                device: None,
                description: format!("Format {}. Not ready:\n{detail}", r.format),
                dedupe_key: key.clone(),
                rule: "store-opening".into(),
                detected_at: Some(now),
                fault_since: None,
                escalation: 0,
            };
            tdb::create(c, ctx, &n, "auto", "system", now)?;
        }
    }
    c.execute(
        "UPDATE openings SET warned_at = ?2 WHERE store_code = ?1",
        args![&r.store, now],
    )?;
    tracing::warn!(store = %r.store, opens_on = %r.opens_on, "{message}");
    done.warned += 1;
    Ok(())
}

/// The open ticket with dedupe key `key`: its id and status.
fn open_ticket(c: &dyn Sql, key: &str) -> Result<Option<(i64, String)>, DbError> {
    c.one(
        "SELECT id, status FROM tickets WHERE dedupe_key = ?1
           AND status NOT IN ('resolved', 'closed', 'cancelled') ORDER BY id DESC LIMIT 1",
        args![key],
    )?
    .map(|r| Ok((r.i64("id")?, r.text("status")?)))
    .transpose()
}

/// What the watch needs.
#[derive(Clone)]
pub struct Settings {
    /// Ticket settings (the warning's days and skill, the pace) and webhooks.
    pub ctx: Ctx,
    /// Presence and staleness.
    pub presence: crate::config::PresenceSection,
    /// The clock.
    pub clock: crate::tasks::engine::Clock,
}

/// Runs the watch until `token` is cancelled.
pub fn start(s: Settings, db: Db, token: CancellationToken, tracker: &TaskTracker) {
    let every = Duration::from_secs(s.ctx.settings.opening_check_secs.max(1));
    tracker.spawn(async move {
        let mut failing = false;
        loop {
            tokio::select! {
                () = token.cancelled() => break,
                () = tokio::time::sleep(every) => {}
            }
            let stores = match db.read(super::stores).await {
                Ok(s) => s,
                Err(DbError::Closed) => break,
                Err(e) => {
                    if !failing {
                        tracing::error!(error = %e, "The openings' watch cannot read the openings; retrying");
                    }
                    failing = true;
                    continue;
                }
            };
            failing = false;
            // Each store on its own: one that fails (its task refused) holds up no other.
            for store in stores {
                let (ctx, presence, now) = (s.ctx.clone(), s.presence.clone(), s.clock.now());
                let st = store.clone();
                let ran = db
                    .write(move |c| one(c, &ctx, &Rules::new(&presence, now), &st))
                    .await;
                match ran {
                    Ok(d) if d != Done::default() => tracing::debug!(?d, %store, "Opening watched"),
                    Ok(_) => {}
                    Err(DbError::Closed) => return,
                    Err(e) => tracing::warn!(error = %e, %store, "The opening's watch failed; retrying at the next"),
                }
            }
        }
    });
}
