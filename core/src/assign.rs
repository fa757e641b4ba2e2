//! Auto-assignment: the best engineer for a ticket, and why. Pure.
//!
//! An engineer fits when available, skilled in what the fix needs, covering the store's
//! region, below capacity, and on shift: now for priorities 1 and 2, or at some point
//! before the response deadline for 3 and 4. Among those who fit: on shift now first, then
//! those whose drive still reaches the store before the resolution deadline, then the
//! lowest cost in minutes: the estimated drive from where they are (their last check-in
//! today, else their home base; [`UNKNOWN_DRIVE_MIN`] when either end has no coordinates)
//! plus their load ([`FULL_LOAD_MIN`] for a full engineer, in proportion below), then the
//! lowest load, then the id (so the choice is stable). Nobody fits: the ticket stays in the
//! dispatch queue, and the explanation says what ruled each engineer out.

use jiff::Timestamp;
use storefleet_schedule::StoreTime;

use crate::engineer::{Engineer, Level};
use crate::geo::{Coord, Drive};

/// The drive counted when the store's or the engineer's place is not known, minutes.
pub const UNKNOWN_DRIVE_MIN: u32 = 60;
/// What a full load costs in the ranking, minutes; a load of half the capacity costs half.
pub const FULL_LOAD_MIN: u32 = 240;

/// What the ticket needs.
#[derive(Debug, Clone)]
pub struct Need<'a> {
    /// Skill.
    pub skill: &'a str,
    /// The lowest level that may take it.
    pub level: Level,
    /// The store's region.
    pub region: &'a str,
    /// Priority 1 to 4.
    pub priority: u8,
    /// Response deadline, ms.
    pub response_due: i64,
    /// Resolution deadline, ms: a drive that arrives after it ranks last.
    pub resolution_due: i64,
    /// Engineers not to pick (the one an escalation took it from).
    pub exclude: &'a [String],
    /// Where the store is, when known.
    pub store_at: Option<Coord>,
}

/// An engineer with the open tickets assigned to them now.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    /// The engineer.
    pub engineer: &'a Engineer,
    /// Open tickets assigned.
    pub load: u32,
    /// Where they are, when known.
    pub position: Option<Position>,
}

/// Where an engineer is, and what that place is for people (`home base`, `last check-in
/// at S0003`).
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    /// The place.
    pub at: Coord,
    /// What it is.
    pub what: String,
}

/// One engineer who fits, with what ranks them.
struct Fit<'a> {
    later_shift: bool,
    late: bool,
    cost: u64,
    load: u32,
    id: &'a str,
    capacity: u32,
    drive: Option<(Drive, &'a str)>,
}

impl Fit<'_> {
    fn key(&self) -> (bool, bool, u64, u32, &str) {
        (self.later_shift, self.late, self.cost, self.load, self.id)
    }

    /// `12.4 km, about 24 min from home base`.
    fn travel(&self) -> String {
        match &self.drive {
            Some((d, from)) => format!("{} from {from}", d.describe()),
            None => "distance unknown".into(),
        }
    }
}

/// The choice and its reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The engineer, or `None` for the dispatch queue.
    pub engineer: Option<String>,
    /// For the timeline: who was picked and why, who was not and why.
    pub explanation: String,
}

/// Samples of the time until the deadline at which a shift may start.
const SHIFT_STEP_MS: i64 = 15 * 60_000;

fn on_shift(e: &Engineer, at: i64) -> Option<bool> {
    let t = StoreTime::new(&e.shift, &e.timezone).ok()?;
    Some(t.is_open(Timestamp::from_millisecond(at).ok()?))
}

fn on_shift_before(e: &Engineer, now: i64, due: i64) -> bool {
    let mut t = now;
    while t <= due {
        if on_shift(e, t) == Some(true) {
            return true;
        }
        t += SHIFT_STEP_MS;
    }
    false
}

/// Picks from `candidates` at `now`.
pub fn choose(need: &Need<'_>, candidates: &[Candidate<'_>], now: i64) -> Choice {
    let mut fits: Vec<Fit<'_>> = Vec::new();
    let mut ruled_out: Vec<String> = Vec::new();
    for c in candidates {
        let e = c.engineer;
        let why = if need.exclude.contains(&e.id) {
            Some("escalated away from".to_owned())
        } else if e.status != "available" {
            Some(format!("status {}", e.status))
        } else if !e.skills.iter().any(|s| s == need.skill) {
            Some(format!("no skill {}", need.skill))
        } else if e.level < need.level {
            Some(format!(
                "{} for a {} job",
                e.level.name(),
                need.level.name()
            ))
        } else if !e.regions.iter().any(|r| r == need.region || r == "*") {
            Some(format!("not in region {}", need.region))
        } else if c.load >= e.capacity {
            Some(format!("full ({}/{})", c.load, e.capacity))
        } else {
            None
        };
        if let Some(why) = why {
            ruled_out.push(format!("{} ({why})", e.id));
            continue;
        }
        let now_on = on_shift(e, now) == Some(true);
        if !now_on && (need.priority <= 2 || !on_shift_before(e, now, need.response_due)) {
            ruled_out.push(format!("{} (off shift)", e.id));
            continue;
        }
        let drive = match (&c.position, need.store_at) {
            (Some(p), Some(store)) => Some((Drive::between(p.at, store), p.what.as_str())),
            _ => None,
        };
        let minutes = drive.map_or(UNKNOWN_DRIVE_MIN, |(d, _)| d.minutes);
        let load_cost = u64::from(c.load) * u64::from(FULL_LOAD_MIN) / u64::from(e.capacity.max(1));
        fits.push(Fit {
            later_shift: !now_on,
            late: drive
                .is_some_and(|(d, _)| now + i64::from(d.minutes) * 60_000 > need.resolution_due),
            cost: u64::from(minutes) + load_cost,
            load: c.load,
            id: e.id.as_str(),
            capacity: e.capacity,
            drive,
        });
    }
    fits.sort_unstable_by(|a, b| a.key().cmp(&b.key()));
    let Some(best) = fits.first() else {
        let mut explanation = format!(
            "No engineer fits (skill {}, region {}, P{}): left in the dispatch queue",
            need.skill, need.region, need.priority
        );
        if !ruled_out.is_empty() {
            explanation.push_str("; ruled out: ");
            explanation.push_str(&ruled_out.join(", "));
        }
        return Choice {
            engineer: None,
            explanation,
        };
    };
    let mut explanation = format!(
        "Assigned {}: skill {}{}, region {}, {}, load {}/{}, {}{}",
        best.id,
        need.skill,
        if need.level > Level::Junior {
            format!(" ({} or above)", need.level.name())
        } else {
            String::new()
        },
        need.region,
        if best.later_shift {
            "shift starts before the response deadline"
        } else {
            "on shift now"
        },
        best.load,
        best.capacity,
        best.travel(),
        if best.late {
            " (arrives after the resolution deadline: nobody nearer fits)"
        } else {
            ""
        }
    );
    let others: Vec<String> = fits[1..]
        .iter()
        .map(|f| format!("{} (load {}, {})", f.id, f.load, f.travel()))
        .collect();
    if !others.is_empty() {
        explanation.push_str("; also fit: ");
        explanation.push_str(&others.join(", "));
    }
    if !ruled_out.is_empty() {
        explanation.push_str("; ruled out: ");
        explanation.push_str(&ruled_out.join(", "));
    }
    Choice {
        engineer: Some(best.id.to_owned()),
        explanation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eng(id: &str, skills: &[&str], region: &str, shift: &str, cap: u32) -> Engineer {
        Engineer {
            id: id.into(),
            name: id.into(),
            skills: skills.iter().map(|s| (*s).to_owned()).collect(),
            regions: vec![region.into()],
            timezone: "Europe/Berlin".into(),
            shift: shift.into(),
            capacity: cap,
            status: "available".into(),
            phone: String::new(),
            level: Level::Senior,
            home: None,
        }
    }

    fn at(lat: f64, lon: f64, what: &str) -> Position {
        Position {
            at: Coord::new(lat, lon).unwrap(),
            what: what.into(),
        }
    }

    #[test]
    fn a_job_for_a_senior_skips_juniors_and_says_so() {
        let mut j = eng("jan", &["printers"], "north", "24/7", 4);
        j.level = Level::Junior;
        let s = eng("sol", &["printers"], "north", "24/7", 4);
        let n = Need {
            level: Level::Senior,
            ..need(2)
        };
        let c = |e| Candidate {
            engineer: e,
            load: 0,
            position: None,
        };
        let ch = choose(&n, &[c(&j), c(&s)], NOW);
        assert_eq!(ch.engineer.as_deref(), Some("sol"), "{}", ch.explanation);
        assert!(
            ch.explanation.contains("printers (senior or above)"),
            "{}",
            ch.explanation
        );
        assert!(
            ch.explanation.contains("jan (junior for a senior job)"),
            "{}",
            ch.explanation
        );
        // A job anyone may take goes by load and drive as before.
        let ch = choose(&need(2), &[c(&j), c(&s)], NOW);
        assert!(ch.engineer.is_some(), "{}", ch.explanation);
        assert!("expert"
            .parse::<Level>()
            .unwrap_err()
            .contains("junior, senior or specialist"));
    }

    #[test]
    fn the_nearer_engineer_wins_unless_their_load_outweighs_the_drive() {
        let a = eng("anna", &["printers"], "north", "24/7", 4);
        let b = eng("ben", &["printers"], "north", "24/7", 4);
        // The store in Hamburg; anna checked in at a store 5 km away, ben is at home in
        // Kiel, about 90 km.
        let n = Need {
            store_at: Some(Coord::new(53.5511, 9.9937).unwrap()),
            ..need(2)
        };
        let anna = |load| Candidate {
            engineer: &a,
            load,
            position: Some(at(53.58, 10.05, "last check-in at S0003")),
        };
        let ben = |load| Candidate {
            engineer: &b,
            load,
            position: Some(at(54.3233, 10.1228, "home base")),
        };
        let ch = choose(&n, &[ben(0), anna(0)], NOW);
        assert_eq!(ch.engineer.as_deref(), Some("anna"), "{}", ch.explanation);
        assert!(
            ch.explanation.contains("km, about")
                && ch.explanation.contains("from last check-in at S0003"),
            "{}",
            ch.explanation
        );
        assert!(
            ch.explanation.contains("ben (load 0, 8"),
            "{}",
            ch.explanation
        );
        assert!(
            ch.explanation.contains("from home base"),
            "{}",
            ch.explanation
        );
        // One ticket more than ben is worth less than the drive (60 min against ~2 h)...
        let ch = choose(&n, &[ben(0), anna(1)], NOW);
        assert_eq!(ch.engineer.as_deref(), Some("anna"), "{}", ch.explanation);
        // ...three more are not.
        let ch = choose(&n, &[ben(0), anna(3)], NOW);
        assert_eq!(ch.engineer.as_deref(), Some("ben"), "{}", ch.explanation);
        // A drive that misses the resolution deadline ranks after one that does not.
        let tight = Need {
            resolution_due: NOW + 30 * 60_000,
            ..n.clone()
        };
        let ch = choose(&tight, &[ben(0), anna(3)], NOW);
        assert_eq!(ch.engineer.as_deref(), Some("anna"), "{}", ch.explanation);
        // Without the store's place, the drive is unknown and load decides.
        let ch = choose(&need(2), &[ben(0), anna(1)], NOW);
        assert_eq!(ch.engineer.as_deref(), Some("ben"), "{}", ch.explanation);
        assert!(
            ch.explanation.contains("distance unknown"),
            "{}",
            ch.explanation
        );
    }

    // 2026-12-02 (a Wednesday) 10:00 in Berlin.
    const NOW: i64 = 1_796_202_000_000;

    fn need(priority: u8) -> Need<'static> {
        Need {
            skill: "printers",
            level: Level::Junior,
            region: "north",
            priority,
            response_due: NOW + 4 * 3_600_000,
            resolution_due: NOW + 8 * 3_600_000,
            exclude: &[],
            store_at: None,
        }
    }

    #[test]
    fn the_lowest_load_among_skilled_engineers_in_the_region_wins() {
        let a = eng("anna", &["printers"], "north", "Mo-Fr 07:00-18:00", 4);
        let b = eng("ben", &["printers", "pos"], "north", "Mo-Fr 07:00-18:00", 4);
        let c = eng("cem", &["pos"], "north", "Mo-Fr 07:00-18:00", 4);
        let d = eng("dora", &["printers"], "south", "Mo-Fr 07:00-18:00", 4);
        let cands = [
            Candidate {
                engineer: &a,
                position: None,
                load: 2,
            },
            Candidate {
                engineer: &b,
                position: None,
                load: 1,
            },
            Candidate {
                engineer: &c,
                position: None,
                load: 0,
            },
            Candidate {
                engineer: &d,
                position: None,
                load: 0,
            },
        ];
        let ch = choose(&need(2), &cands, NOW);
        assert_eq!(ch.engineer.as_deref(), Some("ben"), "{}", ch.explanation);
        assert!(ch.explanation.contains("load 1/4"), "{}", ch.explanation);
        assert!(ch.explanation.contains("anna (load 2, distance unknown)"));
        assert!(ch.explanation.contains("cem (no skill printers)"));
        assert!(ch.explanation.contains("dora (not in region north)"));
    }

    #[test]
    fn load_counts_relative_to_capacity_and_full_engineers_are_skipped() {
        let a = eng("anna", &["printers"], "north", "24/7", 10);
        let b = eng("ben", &["printers"], "north", "24/7", 2);
        let ch = choose(
            &need(2),
            &[
                Candidate {
                    engineer: &a,
                    position: None,
                    load: 3,
                },
                Candidate {
                    engineer: &b,
                    position: None,
                    load: 1,
                },
            ],
            NOW,
        );
        assert_eq!(ch.engineer.as_deref(), Some("anna"));
        let ch = choose(
            &need(2),
            &[Candidate {
                engineer: &b,
                position: None,
                load: 2,
            }],
            NOW,
        );
        assert_eq!(ch.engineer, None);
        assert!(ch.explanation.contains("full (2/2)"), "{}", ch.explanation);
    }

    #[test]
    fn urgent_tickets_need_someone_on_shift_now_others_may_wait_for_the_shift() {
        let late = eng("lea", &["printers"], "north", "Mo-Fr 12:00-20:00", 4);
        let urgent = choose(
            &need(1),
            &[Candidate {
                engineer: &late,
                position: None,
                load: 0,
            }],
            NOW,
        );
        assert_eq!(urgent.engineer, None);
        assert!(urgent.explanation.contains("lea (off shift)"));
        let later = choose(
            &need(4),
            &[Candidate {
                engineer: &late,
                position: None,
                load: 0,
            }],
            NOW,
        );
        assert_eq!(later.engineer.as_deref(), Some("lea"));
        assert!(later.explanation.contains("shift starts before"));
        // Someone on shift now beats a lighter load later.
        let now_on = eng("max", &["printers"], "north", "Mo-Fr 07:00-18:00", 4);
        let ch = choose(
            &need(4),
            &[
                Candidate {
                    engineer: &late,
                    position: None,
                    load: 0,
                },
                Candidate {
                    engineer: &now_on,
                    position: None,
                    load: 3,
                },
            ],
            NOW,
        );
        assert_eq!(ch.engineer.as_deref(), Some("max"));
    }

    #[test]
    fn unavailable_and_excluded_engineers_are_not_picked() {
        let mut a = eng("anna", &["printers"], "north", "24/7", 4);
        a.status = "sick".into();
        let b = eng("ben", &["printers"], "north", "24/7", 4);
        let ex = vec!["ben".to_owned()];
        let n = Need {
            exclude: &ex,
            ..need(2)
        };
        let ch = choose(
            &n,
            &[
                Candidate {
                    engineer: &a,
                    position: None,
                    load: 0,
                },
                Candidate {
                    engineer: &b,
                    position: None,
                    load: 0,
                },
            ],
            NOW,
        );
        assert_eq!(ch.engineer, None);
        assert!(ch.explanation.contains("anna (status sick)"));
        assert!(ch.explanation.contains("ben (escalated away from)"));
    }
}
