//! A ticket's lifecycle, priority and SLA clock: pure functions, no I/O.
//!
//! ```text
//! new -> assigned -> accepted -> en_route -> on_site -> resolved -> closed
//!          any open state <-> on_hold (the SLA clock stops)
//!          any state but closed -> cancelled;  resolved -> new (reopened)
//! ```
//!
//! Priority comes from urgency (the rule's severity) and impact (store, till, peripheral)
//! as in the usual ITIL matrix. Each priority has a response deadline (until the engineer
//! accepts) and a resolution deadline; time on hold does not count.

use serde::{Deserialize, Serialize};

use crate::alerts::{Impact, Severity};

/// Where a ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Opened, nobody assigned (the dispatch queue).
    New,
    /// An engineer is assigned.
    Assigned,
    /// The engineer accepted it.
    Accepted,
    /// The engineer is on the way.
    EnRoute,
    /// The engineer checked in at the store.
    OnSite,
    /// Waiting for something outside (a part, the store); the SLA clock stops.
    OnHold,
    /// Fixed.
    Resolved,
    /// Confirmed and rated.
    Closed,
    /// Not needed after all.
    Cancelled,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 9] = [
        Status::New,
        Status::Assigned,
        Status::Accepted,
        Status::EnRoute,
        Status::OnSite,
        Status::OnHold,
        Status::Resolved,
        Status::Closed,
        Status::Cancelled,
    ];

    /// The name used in the API and the database.
    pub fn name(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Assigned => "assigned",
            Status::Accepted => "accepted",
            Status::EnRoute => "en_route",
            Status::OnSite => "on_site",
            Status::OnHold => "on_hold",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
            Status::Cancelled => "cancelled",
        }
    }

    /// Parses [`Status::name`].
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.name() == s)
    }

    /// Work is still to be done.
    pub fn is_open(self) -> bool {
        !matches!(self, Status::Resolved | Status::Closed | Status::Cancelled)
    }

    /// An engineer has said yes (response time has been met).
    pub fn is_responded(self) -> bool {
        matches!(
            self,
            Status::Accepted | Status::EnRoute | Status::OnSite | Status::Resolved | Status::Closed
        )
    }
}

/// What a person or the system does to a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Assign an engineer (by a dispatcher or auto-assignment).
    Assign {
        /// Engineer id.
        engineer: String,
    },
    /// Back to the dispatch queue.
    Unassign,
    /// The engineer accepts.
    Accept,
    /// On the way.
    EnRoute,
    /// Arrival check-in.
    CheckIn,
    /// Waiting for something; the SLA clock stops.
    Hold {
        /// Why.
        reason: String,
    },
    /// Work goes on; the clock runs again.
    Resume,
    /// Fixed, with a service report.
    Resolve {
        /// What was found and done.
        report: String,
    },
    /// Confirmed, with a satisfaction rating from 1 to 5.
    Close {
        /// 1 (poor) to 5 (excellent).
        rating: u8,
    },
    /// Not needed.
    Cancel {
        /// Why.
        reason: String,
    },
    /// The problem came back: open again.
    Reopen,
    /// A note on the timeline.
    Note {
        /// The text.
        text: String,
    },
}

impl Action {
    /// Its name, for timelines and webhooks.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Assign { .. } => "assign",
            Action::Unassign => "unassign",
            Action::Accept => "accept",
            Action::EnRoute => "en_route",
            Action::CheckIn => "check_in",
            Action::Hold { .. } => "hold",
            Action::Resume => "resume",
            Action::Resolve { .. } => "resolve",
            Action::Close { .. } => "close",
            Action::Cancel { .. } => "cancel",
            Action::Reopen => "reopen",
            Action::Note { .. } => "note",
        }
    }
}

/// The part of a ticket the lifecycle works on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    /// Status.
    pub status: Status,
    /// The status before `on_hold`, to resume to.
    pub held_from: Option<Status>,
    /// Assigned engineer.
    pub engineer: Option<String>,
    /// Since when on hold, ms.
    pub hold_since: Option<i64>,
    /// Time spent on hold so far, ms (not counting the current hold).
    pub held_ms: i64,
}

/// Applies `a` at `now`; the error says why it is not allowed from this status.
pub fn apply(l: &Lifecycle, a: &Action, now: i64) -> Result<Lifecycle, String> {
    use Status as S;
    let mut n = l.clone();
    let refuse = || {
        Err(format!(
            "cannot {} a ticket that is {}",
            a.name().replace('_', " "),
            l.status.name().replace('_', " ")
        ))
    };
    match a {
        Action::Note { .. } => {}
        Action::Assign { engineer } => {
            if !matches!(l.status, S::New | S::Assigned | S::Accepted | S::EnRoute) {
                return refuse();
            }
            if engineer.is_empty() {
                return Err("assign: an engineer id".into());
            }
            n.engineer = Some(engineer.clone());
            n.status = S::Assigned;
        }
        Action::Unassign => {
            if !matches!(l.status, S::Assigned | S::Accepted | S::EnRoute) {
                return refuse();
            }
            n.engineer = None;
            n.status = S::New;
        }
        Action::Accept => {
            if l.status != S::Assigned {
                return refuse();
            }
            n.status = S::Accepted;
        }
        // From on site: the engineer leaves for a part and comes back; the next check-in is
        // a second visit (no first-time fix).
        Action::EnRoute => {
            if !matches!(l.status, S::Assigned | S::Accepted | S::OnSite) {
                return refuse();
            }
            n.status = S::EnRoute;
        }
        Action::CheckIn => {
            if !matches!(l.status, S::Assigned | S::Accepted | S::EnRoute) {
                return refuse();
            }
            n.status = S::OnSite;
        }
        Action::Hold { .. } => {
            if !matches!(
                l.status,
                S::New | S::Assigned | S::Accepted | S::EnRoute | S::OnSite
            ) {
                return refuse();
            }
            n.held_from = Some(l.status);
            n.hold_since = Some(now);
            n.status = S::OnHold;
        }
        Action::Resume => {
            if l.status != S::OnHold {
                return refuse();
            }
            n.status = l.held_from.unwrap_or(S::New);
            n.held_from = None;
            n.held_ms += now - l.hold_since.unwrap_or(now);
            n.hold_since = None;
        }
        Action::Resolve { report } => {
            if !l.status.is_open() {
                return refuse();
            }
            if report.trim().is_empty() && n.engineer.is_some() && l.status == S::OnSite {
                return Err("resolve: a service report (what was found and done)".into());
            }
            if l.status == S::OnHold {
                n.held_ms += now - l.hold_since.unwrap_or(now);
                n.hold_since = None;
                n.held_from = None;
            }
            n.status = S::Resolved;
        }
        Action::Close { rating } => {
            if l.status != S::Resolved {
                return refuse();
            }
            if !(1..=5).contains(rating) {
                return Err(format!("close: rating {rating}: expected 1 to 5"));
            }
            n.status = S::Closed;
        }
        Action::Cancel { .. } => {
            if matches!(l.status, S::Closed | S::Cancelled) {
                return refuse();
            }
            n.status = S::Cancelled;
        }
        Action::Reopen => {
            if l.status != S::Resolved {
                return refuse();
            }
            n.status = if n.engineer.is_some() {
                S::Assigned
            } else {
                S::New
            };
        }
    }
    Ok(n)
}

/// Priority 1 (highest) to 4 from urgency and impact.
pub fn priority(severity: Severity, impact: Impact) -> u8 {
    let u = match severity {
        Severity::Critical => 1,
        Severity::Major => 2,
        Severity::Minor => 3,
    };
    let i = match impact {
        Impact::Store => 1,
        Impact::Device => 2,
        Impact::Peripheral => 3,
    };
    // 1+1 -> P1, 1+2 / 2+1 -> P2, 2+2 / 1+3 / 3+1 -> P3, the rest P4.
    match u + i {
        2 => 1,
        3 => 2,
        4 => 3,
        _ => 4,
    }
}

/// Response and resolution targets per priority, minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaTargets {
    /// Until accepted.
    pub response_minutes: u32,
    /// Until resolved.
    pub resolution_minutes: u32,
}

/// Deadlines and where a ticket stands against them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaClock {
    /// Response deadline, ms (moved by time on hold).
    pub response_due: i64,
    /// Resolution deadline, ms (moved by time on hold).
    pub resolution_due: i64,
}

/// How far along an SLA a ticket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaState {
    /// Within the first 80 % of the time.
    Ok,
    /// Past 80 % of the response or resolution time.
    NearBreach,
    /// Past the response deadline without acceptance.
    ResponseBreached,
    /// Past the resolution deadline.
    ResolutionBreached,
}

/// The deadlines of a ticket opened at `opened` with `held_ms` on hold so far (and on hold
/// since `hold_since`, if it is now), judged at `now`.
pub fn sla(
    opened: i64,
    t: SlaTargets,
    held_ms: i64,
    hold_since: Option<i64>,
    now: i64,
) -> SlaClock {
    let held = held_ms + hold_since.map_or(0, |h| (now - h).max(0));
    SlaClock {
        response_due: opened + i64::from(t.response_minutes) * 60_000 + held,
        resolution_due: opened + i64::from(t.resolution_minutes) * 60_000 + held,
    }
}

/// Where an open ticket in `status`, opened at `opened`, stands at `now`.
pub fn sla_state(opened: i64, clock: &SlaClock, status: Status, now: i64) -> SlaState {
    if now > clock.resolution_due {
        return SlaState::ResolutionBreached;
    }
    if !status.is_responded() && now > clock.response_due {
        return SlaState::ResponseBreached;
    }
    let near = |due: i64| now >= opened + (due - opened) * 4 / 5;
    if (!status.is_responded() && near(clock.response_due)) || near(clock.resolution_due) {
        return SlaState::NearBreach;
    }
    SlaState::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new() -> Lifecycle {
        Lifecycle {
            status: Status::New,
            held_from: None,
            engineer: None,
            hold_since: None,
            held_ms: 0,
        }
    }

    fn run(actions: &[Action]) -> Result<Lifecycle, String> {
        let mut l = new();
        for (i, a) in actions.iter().enumerate() {
            l = apply(&l, a, i as i64 * 1000)?;
        }
        Ok(l)
    }

    fn assign() -> Action {
        Action::Assign {
            engineer: "jan".into(),
        }
    }

    #[test]
    fn the_happy_path_reaches_closed() {
        let l = run(&[
            assign(),
            Action::Accept,
            Action::EnRoute,
            Action::CheckIn,
            Action::Resolve {
                report: "replaced the cutter".into(),
            },
            Action::Close { rating: 5 },
        ])
        .unwrap();
        assert_eq!(l.status, Status::Closed);
        assert_eq!(l.engineer.as_deref(), Some("jan"));
    }

    #[test]
    fn hold_stops_the_clock_and_resume_returns_to_where_it_was() {
        let l = run(&[
            assign(),
            Action::Accept,
            Action::Hold {
                reason: "part ordered".into(),
            },
            Action::Note { text: "x".into() },
            Action::Resume,
        ])
        .unwrap();
        assert_eq!(l.status, Status::Accepted);
        assert_eq!(l.held_ms, 2000);
        let t = SlaTargets {
            response_minutes: 60,
            resolution_minutes: 240,
        };
        let c = sla(0, t, l.held_ms, None, 10_000);
        assert_eq!(c.resolution_due, 240 * 60_000 + 2000);
        // While on hold, the deadline moves with the clock.
        let c1 = sla(0, t, 0, Some(1_000), 61_000);
        assert_eq!(c1.response_due, 60 * 60_000 + 60_000);
    }

    #[test]
    fn actions_out_of_order_are_refused_with_the_reason() {
        let e = run(&[Action::Accept]).unwrap_err();
        assert_eq!(e, "cannot accept a ticket that is new");
        assert!(run(&[assign(), Action::Close { rating: 3 }]).is_err());
        assert!(run(&[
            assign(),
            Action::CheckIn,
            Action::Resolve { report: " ".into() }
        ])
        .unwrap_err()
        .contains("service report"));
        let e = run(&[
            Action::Resolve {
                report: String::new(),
            },
            Action::Close { rating: 9 },
        ])
        .unwrap_err();
        assert!(e.contains("1 to 5"), "{e}");
        assert!(run(&[
            Action::Cancel {
                reason: "dup".into()
            },
            Action::Reopen
        ])
        .is_err());
    }

    #[test]
    fn a_resolved_ticket_reopens_to_its_engineer_or_the_queue() {
        let l = run(&[
            assign(),
            Action::Resolve {
                report: String::new(),
            },
            Action::Reopen,
        ])
        .unwrap();
        assert_eq!(l.status, Status::Assigned);
        let l = run(&[
            Action::Resolve {
                report: String::new(),
            },
            Action::Reopen,
        ])
        .unwrap();
        assert_eq!(l.status, Status::New);
    }

    #[test]
    fn every_action_from_every_status_either_applies_or_explains() {
        let actions = [
            assign(),
            Action::Unassign,
            Action::Accept,
            Action::EnRoute,
            Action::CheckIn,
            Action::Hold { reason: "r".into() },
            Action::Resume,
            Action::Resolve { report: "r".into() },
            Action::Close { rating: 4 },
            Action::Cancel { reason: "r".into() },
            Action::Reopen,
            Action::Note { text: "n".into() },
        ];
        for s in Status::ALL {
            let l = Lifecycle {
                status: s,
                held_from: (s == Status::OnHold).then_some(Status::Accepted),
                engineer: Some("jan".into()),
                hold_since: (s == Status::OnHold).then_some(0),
                held_ms: 0,
            };
            for a in &actions {
                match apply(&l, a, 5) {
                    Ok(n) => {
                        assert!(n.held_ms >= 0);
                        if !s.is_open() && !matches!(a, Action::Note { .. }) {
                            assert!(
                                matches!(
                                    (s, a),
                                    (
                                        Status::Resolved,
                                        Action::Close { .. }
                                            | Action::Reopen
                                            | Action::Cancel { .. }
                                    )
                                ),
                                "{a:?} from {s:?}"
                            );
                        }
                    }
                    Err(e) => assert!(!e.is_empty()),
                }
            }
        }
    }

    #[test]
    fn priority_follows_urgency_and_impact() {
        assert_eq!(priority(Severity::Critical, Impact::Store), 1);
        assert_eq!(priority(Severity::Major, Impact::Store), 2);
        assert_eq!(priority(Severity::Major, Impact::Device), 3);
        assert_eq!(priority(Severity::Major, Impact::Peripheral), 4);
        assert_eq!(priority(Severity::Minor, Impact::Peripheral), 4);
    }

    #[test]
    fn sla_goes_near_then_breached_and_acceptance_stops_the_response_clock() {
        let t = SlaTargets {
            response_minutes: 10,
            resolution_minutes: 100,
        };
        let c = sla(0, t, 0, None, 0);
        let m = 60_000;
        assert_eq!(sla_state(0, &c, Status::Assigned, 7 * m), SlaState::Ok);
        assert_eq!(
            sla_state(0, &c, Status::Assigned, 8 * m),
            SlaState::NearBreach
        );
        assert_eq!(
            sla_state(0, &c, Status::Assigned, 11 * m),
            SlaState::ResponseBreached
        );
        assert_eq!(sla_state(0, &c, Status::Accepted, 11 * m), SlaState::Ok);
        assert_eq!(
            sla_state(0, &c, Status::Accepted, 80 * m),
            SlaState::NearBreach
        );
        assert_eq!(
            sla_state(0, &c, Status::OnSite, 101 * m),
            SlaState::ResolutionBreached
        );
    }
}
