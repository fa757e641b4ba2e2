//! The ticket engine: evaluates the alert rules over the whole fleet and runs a ticket
//! [`pass`](super::pass) on what changed.
//!
//! It wakes when ingest stores anything but telemetry (an event, a presence, a routine run;
//! at most every 200 ms), when the next pending alert is due to fire or clear (so a fault
//! becomes a ticket right after the rule's duration, not at the next round), and at least
//! every `tickets.evaluate_interval_ms`, which is when telemetry alone is seen: a fleet's
//! steady readings do not make it read the fleet five times a second. Alerts that were
//! firing when the controller stopped are restored from the database, so a restart neither
//! fires them again nor forgets them. Time comes from the engine's [`Clock`] (tests move it
//! to breach an SLA); presence is judged on the same clock.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Ctx;
use super::{pass, Input, Report};
use crate::alerts::eval::{Evaluator, Timing};
use crate::alerts::{observe, Rule};
use crate::config::PresenceSection;
use crate::db::{Db, DbError};
use crate::fleet::Rules;
use crate::tasks::engine::Clock;

/// Shortest pause between evaluations woken by ingest.
const MIN_GAP: Duration = Duration::from_millis(200);

/// What the engine needs.
#[derive(Clone)]
pub struct Settings {
    /// Rules in force.
    pub rules: Arc<Vec<Rule>>,
    /// Ticket settings and webhooks.
    pub ctx: Ctx,
    /// Presence and staleness.
    pub presence: PresenceSection,
    /// The clock.
    pub clock: Clock,
}

/// Counters of the engine, for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Evaluations run.
    pub evaluations: std::sync::atomic::AtomicU64,
    /// Alerts fired.
    pub fired: std::sync::atomic::AtomicU64,
    /// Tickets opened.
    pub opened: std::sync::atomic::AtomicU64,
    /// Alerts healed by their routine without a ticket.
    pub healed: std::sync::atomic::AtomicU64,
    /// Escalations.
    pub escalated: std::sync::atomic::AtomicU64,
}

impl Counters {
    fn add(&self, r: &Report) {
        use std::sync::atomic::Ordering::Relaxed;
        self.evaluations.fetch_add(1, Relaxed);
        self.fired.fetch_add(u64::from(r.fired), Relaxed);
        self.opened.fetch_add(u64::from(r.opened), Relaxed);
        self.healed.fetch_add(u64::from(r.healed), Relaxed);
        self.escalated.fetch_add(u64::from(r.escalated), Relaxed);
    }
}

fn timing(rules: &HashMap<String, Rule>) -> impl Fn(&str) -> Option<Timing> + '_ {
    move |name| rules.get(name).map(Rule::timing)
}

/// Starts the engine on `tracker`. `wake` is notified by ingest and by ticket changes;
/// `webhooks` is notified when a pass queued deliveries.
pub async fn start(
    s: Settings,
    db: Db,
    wake: Arc<Notify>,
    webhooks: Arc<Notify>,
    counters: Arc<Counters>,
    token: CancellationToken,
    tracker: &TaskTracker,
) -> Result<(), DbError> {
    let firing = db.read(pass::firing).await?;
    let mut eval = Evaluator::restore(firing);
    let rules: Arc<HashMap<String, Rule>> = Arc::new(
        s.rules
            .iter()
            .map(|r| (r.name.clone(), r.clone()))
            .collect(),
    );
    let interval = Duration::from_millis(s.ctx.settings.evaluate_interval_ms);
    tracker.spawn(async move {
        let mut failing = false;
        loop {
            let now = s.clock.now();
            match evaluate(&db, &s, &rules, &mut eval, now).await {
                Ok(r) => {
                    counters.add(&r);
                    if r != Report::default() {
                        tracing::debug!(?r, "Ticket pass");
                        webhooks.notify_one();
                    }
                    failing = false;
                }
                Err(DbError::Closed) => break,
                Err(e) => {
                    if !failing {
                        tracing::error!(error = %e, "Rule evaluation failed; retrying");
                    }
                    failing = true;
                }
            }
            let due = eval.next_due(timing(&rules)).map_or(interval, |t| {
                Duration::from_millis((t - s.clock.now()).clamp(0, 60_000) as u64)
            });
            let wait = due.min(interval);
            tokio::select! {
                () = token.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
                () = wake.notified() => {
                    tokio::select! {
                        () = token.cancelled() => break,
                        () = tokio::time::sleep(MIN_GAP.min(wait)) => {}
                    }
                }
            }
        }
    });
    Ok(())
}

/// One evaluation at `now`: read, evaluate (pure), pass (one transaction).
#[allow(clippy::implicit_hasher)]
pub async fn evaluate(
    db: &Db,
    s: &Settings,
    rules: &Arc<HashMap<String, Rule>>,
    eval: &mut Evaluator,
    now: i64,
) -> Result<Report, DbError> {
    let list = s.rules.clone();
    let mut at = Rules::new(&s.presence, now);
    let snap = db
        .read(move |c| {
            // Readings still on their way are not missing: staleness waits for ingest.
            at.data_behind_ms = crate::ingest::behind::fleet(c, now)?;
            observe::snapshot(c, &list, &at)
        })
        .await?;
    // Pure but not cheap (a fleet whose devices all went stale is every device): off the
    // async threads, which must keep polling ingest's connections meanwhile.
    let (list, by_name, taken) = (s.rules.clone(), rules.clone(), std::mem::take(eval));
    let (back, changes) = tokio::task::spawn_blocking(move || {
        let mut e = taken;
        let obs = observe::observe(&list, &snap);
        let changes = e.step(now, &obs, timing(&by_name));
        (e, changes)
    })
    .await
    .map_err(|e| DbError::Backend(format!("rule evaluation stopped: {e}")))?;
    *eval = back;
    let ctx = s.ctx.clone();
    let rules = rules.clone();
    db.write(move |c| {
        pass::run(
            c,
            &Input {
                ctx: &ctx,
                rules: &rules,
                changes: &changes,
                now,
            },
        )
    })
    .await
}
