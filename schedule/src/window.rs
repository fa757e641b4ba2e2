//! A store's time (hours and zone) and the windows asked of it.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::hours::{HoursError, TradingHours};

/// Why a store's time could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreTimeError {
    /// The trading hours do not parse.
    #[error(transparent)]
    Hours(#[from] HoursError),
    /// The time zone is not known to the time zone database.
    #[error("time zone {0:?} is not known (expected an IANA name such as Europe/Berlin)")]
    Zone(String),
}

/// Relative to trading hours, when something may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// At any time.
    #[default]
    Any,
    /// Only while the store is closed.
    Closed,
    /// Only while the store is open.
    Open,
}

/// A window policy: when, with a margin, never during `avoid`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Relative to trading hours.
    #[serde(default)]
    pub when: When,
    /// For `closed`/`open`: the state must hold this many minutes before and after the
    /// instant (a routine that starts 5 minutes before opening is not "while closed").
    #[serde(default)]
    pub margin_minutes: u32,
    /// Hours (in the store's zone) during which it never runs, e.g. the peak:
    /// `Sa 10:00-14:00`.
    #[serde(default)]
    pub avoid: String,
}

/// A store's clock: its trading hours in its time zone.
#[derive(Debug, Clone)]
pub struct StoreTime {
    hours: TradingHours,
    zone: TimeZone,
}

impl StoreTime {
    /// Hours text and IANA zone name.
    pub fn new(hours: &str, zone: &str) -> Result<StoreTime, StoreTimeError> {
        let zone = TimeZone::get(zone).map_err(|_| StoreTimeError::Zone(zone.to_owned()))?;
        Ok(StoreTime {
            hours: hours.parse()?,
            zone,
        })
    }

    /// The store's time zone.
    pub fn zone(&self) -> &jiff::tz::TimeZone {
        &self.zone
    }

    /// The store's wall-clock time at `at`.
    pub fn local(&self, at: Timestamp) -> DateTime {
        at.to_zoned(self.zone.clone()).datetime()
    }

    /// Whether the store is open at `at`.
    pub fn is_open(&self, at: Timestamp) -> bool {
        self.hours.is_open(self.local(at))
    }

    /// Whether `w` allows running at `at`. An unreadable `avoid` forbids everything, so a
    /// typo never lets a task into the peak.
    pub fn allows(&self, w: &Window, at: Timestamp) -> bool {
        if !w.avoid.trim().is_empty() {
            match w.avoid.parse::<TradingHours>() {
                Ok(avoid) if !avoid.is_open(self.local(at)) => {}
                _ => return false,
            }
        }
        let want_open = match w.when {
            When::Any => return true,
            When::Open => true,
            When::Closed => false,
        };
        // Every minute from `margin` before to `margin` after (exclusive: 07:30 is 30 minutes
        // before an 08:00 opening), as instants, so that DST changes come out right.
        let margin = i64::from(w.margin_minutes.min(24 * 60));
        (-margin..margin.max(1)).all(|m| {
            at.checked_add(SignedDuration::from_mins(m))
                .is_ok_and(|t| self.is_open(t) == want_open)
        })
    }

    /// The first whole minute from `from` on, within `within`, that `w` allows (`from`
    /// itself when it allows it now). Looked for in 5-minute steps, then to the minute, so a
    /// window shorter than 5 minutes may be missed.
    pub fn next_allowed(
        &self,
        w: &Window,
        from: Timestamp,
        within: SignedDuration,
    ) -> Option<Timestamp> {
        if self.allows(w, from) {
            return Some(from);
        }
        let minute = |t: Timestamp| t.checked_add(SignedDuration::from_mins(1)).ok();
        // The next whole minute after `from`.
        let secs = from.as_second().div_euclid(60) * 60 + 60;
        let mut prev = Timestamp::from_second(secs).ok()?;
        if self.allows(w, prev) {
            return Some(prev);
        }
        let end = from.checked_add(within).ok()?;
        while prev < end {
            let t = prev.checked_add(SignedDuration::from_mins(5)).ok()?;
            if self.allows(w, t) {
                let mut m = minute(prev)?;
                while m < t && !self.allows(w, m) {
                    m = minute(m)?;
                }
                return Some(m);
            }
            prev = t;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_same_instant_is_open_in_one_zone_and_closed_in_another() {
        let berlin = StoreTime::new("Mo-Sa 08:00-20:00", "Europe/Berlin").unwrap();
        let new_york = StoreTime::new("Mo-Sa 08:00-20:00", "America/New_York").unwrap();
        // Monday 2026-11-23 10:00 UTC: 11:00 in Berlin, 05:00 in New York.
        let t = ts("2026-11-23T10:00:00Z");
        assert!(berlin.is_open(t));
        assert!(!new_york.is_open(t));
        let closed = Window {
            when: When::Closed,
            ..Window::default()
        };
        assert!(!berlin.allows(&closed, t));
        assert!(new_york.allows(&closed, t));
    }

    #[test]
    fn the_next_allowed_minute_is_found_to_the_minute() {
        let s = StoreTime::new("Mo-Sa 08:00-22:03", "Europe/Berlin").unwrap();
        let closed = Window {
            when: When::Closed,
            ..Window::default()
        };
        let day = SignedDuration::from_hours(24);
        // Monday 20:30 local (19:30 UTC): closes at 22:03 local.
        let from = ts("2026-11-23T19:30:20Z");
        assert_eq!(
            s.next_allowed(&closed, from, day),
            Some(ts("2026-11-23T21:03:00Z"))
        );
        // Allowed now: now.
        let night = ts("2026-11-23T23:00:00Z");
        assert_eq!(s.next_allowed(&closed, night, day), Some(night));
        // With a 30-minute margin, half an hour after closing.
        let margin = Window {
            margin_minutes: 30,
            ..closed.clone()
        };
        assert_eq!(
            s.next_allowed(&margin, from, day),
            Some(ts("2026-11-23T21:33:00Z"))
        );
        // A store never closed never allows a closed window.
        let always = StoreTime::new("Mo-Su 00:00-24:00", "UTC").unwrap();
        assert_eq!(always.next_allowed(&closed, from, day), None);
    }

    #[test]
    fn a_margin_keeps_clear_of_opening_and_closing() {
        let s = StoreTime::new("Mo-Sa 08:00-20:00", "Europe/Berlin").unwrap();
        let w = Window {
            when: When::Closed,
            margin_minutes: 30,
            avoid: String::new(),
        };
        // Monday 20:10 local (19:10 UTC in winter): closed, but only 10 minutes after closing.
        assert!(!s.allows(&w, ts("2026-11-23T19:10:00Z")));
        assert!(s.allows(&w, ts("2026-11-23T19:30:00Z")));
        // 07:40 local is within 30 minutes of opening.
        assert!(!s.allows(&w, ts("2026-11-24T06:40:00Z")));
        assert!(s.allows(&w, ts("2026-11-24T06:30:00Z")));
    }

    #[test]
    fn opening_follows_the_local_clock_across_daylight_saving() {
        let s = StoreTime::new("Mo-Su 08:00-20:00", "Europe/Berlin").unwrap();
        // Saturday before the change (UTC+1), Sunday after it (UTC+2): 08:00 local each day.
        assert!(s.is_open(ts("2026-03-28T07:00:00Z")));
        assert!(!s.is_open(ts("2026-03-29T05:59:00Z")));
        assert!(s.is_open(ts("2026-03-29T06:00:00Z")));
    }

    #[test]
    fn the_peak_is_avoided_and_a_bad_avoid_forbids() {
        let s = StoreTime::new("Mo-Sa 08:00-20:00", "UTC").unwrap();
        let w = Window {
            when: When::Open,
            margin_minutes: 0,
            avoid: "Sa 10:00-14:00".into(),
        };
        assert!(s.allows(&w, ts("2026-11-28T09:00:00Z")));
        assert!(!s.allows(&w, ts("2026-11-28T11:00:00Z")));
        let typo = Window {
            avoid: "Sat 10-14".into(),
            ..w
        };
        assert!(!s.allows(&typo, ts("2026-11-28T09:00:00Z")));
    }

    #[test]
    fn unknown_zones_and_bad_hours_are_named() {
        assert_eq!(
            StoreTime::new("24/7", "Mars/Olympus").unwrap_err(),
            StoreTimeError::Zone("Mars/Olympus".into())
        );
        assert!(matches!(
            StoreTime::new("Mo 8-9", "UTC"),
            Err(StoreTimeError::Hours(_))
        ));
    }
}
