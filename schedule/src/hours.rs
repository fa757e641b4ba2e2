//! Weekly trading hours.
//!
//! Grammar: rules separated by `;` or `,` (comma only between rules, never inside one);
//! each rule is days and one or more time ranges: `Mo-Fr 08:00-12:00 13:00-20:00`.
//! Days: `Mo Tu We Th Fr Sa Su`, single or as ranges (`Fr-Mo` wraps), several joined with
//! `+` (`Mo+We+Fr`). Times `HH:MM`; `24:00` ends a day; a range whose end is before its
//! start runs past midnight into the next day (`Fr 18:00-02:00`). An empty text means
//! never open; `24/7` means always open.

use std::fmt;
use std::str::FromStr;

use jiff::civil::{DateTime, Weekday};

/// Minutes in a week.
const WEEK: u32 = 7 * 24 * 60;

/// Why trading hours could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("trading hours {text:?}: {reason}")]
pub struct HoursError {
    /// The text.
    pub text: String,
    /// What is wrong, naming the part.
    pub reason: String,
}

/// A week of opening times, as ranges of minutes since Monday 00:00 (end exclusive).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TradingHours {
    ranges: Vec<(u32, u32)>,
    text: String,
}

const DAYS: [&str; 7] = ["mo", "tu", "we", "th", "fr", "sa", "su"];

fn day(s: &str) -> Option<u32> {
    DAYS.iter()
        .position(|d| s.eq_ignore_ascii_case(d))
        .map(|i| i as u32)
}

fn time(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 || h == 24 && m == 0).then_some(h * 60 + m)
}

fn days(spec: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in spec.split('+') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day(a)?, day(b)?);
                let mut d = a;
                loop {
                    out.push(d);
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => out.push(day(part)?),
        }
    }
    Some(out)
}

impl FromStr for TradingHours {
    type Err = HoursError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| HoursError {
            text: text.to_owned(),
            reason,
        };
        let trimmed = text.trim();
        if trimmed == "24/7" {
            return Ok(TradingHours {
                ranges: vec![(0, WEEK)],
                text: text.to_owned(),
            });
        }
        let mut ranges = Vec::new();
        for rule in trimmed
            .split([';', ','])
            .map(str::trim)
            .filter(|r| !r.is_empty())
        {
            let mut words = rule.split_whitespace();
            let spec = words.next().unwrap_or_default();
            let ds = days(spec)
                .ok_or_else(|| err(format!("{spec:?} is not days like Mo, Mo-Fr or Sa+Su")))?;
            let mut any = false;
            for span in words {
                any = true;
                let (a, b) = span
                    .split_once('-')
                    .and_then(|(a, b)| Some((time(a)?, time(b)?)))
                    .ok_or_else(|| err(format!("{span:?} is not a time range like 08:00-20:00")))?;
                if a == b {
                    return Err(err(format!("{span:?} is empty")));
                }
                let len = if b > a { b - a } else { 24 * 60 - a + b };
                for d in &ds {
                    ranges.push((d * 24 * 60 + a, len));
                }
            }
            if !any {
                return Err(err(format!("{rule:?} has days but no time range")));
            }
        }
        // Normalise into sorted, merged [start, end) ranges within one week.
        let mut flat: Vec<(u32, u32)> = Vec::new();
        for (start, len) in ranges {
            let end = start + len;
            if end <= WEEK {
                flat.push((start, end));
            } else {
                flat.push((start, WEEK));
                flat.push((0, end - WEEK));
            }
        }
        flat.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::new();
        for (s, e) in flat {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        Ok(TradingHours {
            ranges: merged,
            text: text.to_owned(),
        })
    }
}

impl fmt::Display for TradingHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn minute_of_week(local: DateTime) -> u32 {
    let d = match local.weekday() {
        Weekday::Monday => 0,
        Weekday::Tuesday => 1,
        Weekday::Wednesday => 2,
        Weekday::Thursday => 3,
        Weekday::Friday => 4,
        Weekday::Saturday => 5,
        Weekday::Sunday => 6,
    };
    d * 24 * 60
        + u32::from(local.hour().unsigned_abs()) * 60
        + u32::from(local.minute().unsigned_abs())
}

impl TradingHours {
    /// Whether the store is open at this local wall-clock time.
    pub fn is_open(&self, local: DateTime) -> bool {
        let m = minute_of_week(local);
        self.ranges.iter().any(|(s, e)| (*s..*e).contains(&m))
    }

    /// Never open (empty text).
    pub fn is_never(&self) -> bool {
        self.ranges.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn at(d: i8, h: i8, m: i8) -> DateTime {
        // 2026-11-23 is a Monday.
        date(2026, 11, 23 + d).at(h, m, 0, 0)
    }

    #[test]
    fn weekday_and_weekend_rules() {
        let h: TradingHours = "Mo-Sa 08:00-20:00; Su 10:00-16:00".parse().unwrap();
        assert!(!h.is_open(at(0, 7, 59)));
        assert!(h.is_open(at(0, 8, 0)));
        assert!(h.is_open(at(5, 19, 59)));
        assert!(!h.is_open(at(5, 20, 0)), "the end is exclusive");
        assert!(!h.is_open(at(6, 9, 0)));
        assert!(h.is_open(at(6, 10, 30)));
    }

    #[test]
    fn ranges_past_midnight_and_wrapping_days() {
        let h: TradingHours = "Fr-Sa 18:00-02:00".parse().unwrap();
        assert!(h.is_open(at(4, 23, 0)));
        assert!(h.is_open(at(5, 1, 59)), "Friday's range runs into Saturday");
        assert!(!h.is_open(at(5, 2, 0)));
        assert!(h.is_open(at(6, 1, 0)), "Saturday's range runs into Sunday");
        let w: TradingHours = "Su-Mo 22:00-24:00".parse().unwrap();
        assert!(w.is_open(at(6, 23, 0)) && w.is_open(at(0, 23, 0)) && !w.is_open(at(1, 23, 0)));
        // Sunday night into Monday morning wraps the week.
        let n: TradingHours = "Su 22:00-06:00".parse().unwrap();
        assert!(n.is_open(at(0, 5, 0)) && !n.is_open(at(0, 6, 0)));
    }

    #[test]
    fn lists_split_shifts_always_and_never() {
        let h: TradingHours = "Mo+We+Fr 09:00-12:00 14:00-18:00".parse().unwrap();
        assert!(h.is_open(at(2, 9, 0)) && !h.is_open(at(2, 13, 0)) && h.is_open(at(2, 17, 0)));
        assert!(!h.is_open(at(1, 10, 0)));
        let all: TradingHours = "24/7".parse().unwrap();
        assert!(all.is_open(at(3, 3, 3)));
        let none: TradingHours = "".parse().unwrap();
        assert!(none.is_never() && !none.is_open(at(3, 12, 0)));
        let full_day: TradingHours = "Mo-Su 00:00-24:00".parse().unwrap();
        assert!(full_day.is_open(at(6, 23, 59)) && full_day.is_open(at(0, 0, 0)));
    }

    #[test]
    fn mistakes_are_named() {
        for (text, part) in [
            ("Mx 08:00-20:00", "\"Mx\""),
            ("Mo-Fr 8-20", "\"8-20\""),
            ("Mo-Fr 08:00-25:00", "\"08:00-25:00\""),
            ("Mo-Fr", "no time range"),
            ("Mo 10:00-10:00", "empty"),
        ] {
            let e = text.parse::<TradingHours>().unwrap_err();
            assert!(e.to_string().contains(part), "{text}: {e}");
        }
    }

    proptest::proptest! {
        /// Every day the same range: open exactly when the minute of the day is inside it,
        /// with ranges past midnight wrapping.
        #[test]
        fn a_daily_range_matches_a_direct_reading(a in 0u32..1440, len in 1u32..1440, d in 0i8..7, m in 0u32..1440) {
            let b = (a + len) % 1440;
            let fmt = |x: u32| if x == 0 && len + a == 1440 { "24:00".to_owned() } else { format!("{:02}:{:02}", x / 60, x % 60) };
            let h: TradingHours = format!("Mo-Su {}-{}", fmt(a), fmt(b)).parse().unwrap();
            let inside = if a < a + len && a + len <= 1440 { (a..a + len).contains(&m) } else { m >= a || m < b };
            let local = at(d, (m / 60) as i8, (m % 60) as i8);
            proptest::prop_assert_eq!(h.is_open(local), inside, "{}-{} at {}", a, b, m);
        }
    }
}
