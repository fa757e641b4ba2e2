//! Business calendars: SLA clocks that run only in a region's working hours and not on its
//! holidays, as ITSM tools count them (`[[tickets.calendars]]`). A ticket of a store in a
//! region without a calendar counts every minute.

use serde::{Deserialize, Serialize};
use storefleet_schedule::StoreTime;

/// Longest a deadline is looked for: a year of calendar time.
const HORIZON_MS: i64 = 366 * 86_400_000;

/// `[[tickets.calendars]]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarConfig {
    /// Name, shown on tickets.
    pub name: String,
    /// The regions whose stores' tickets it counts (`*`: every region without its own).
    pub regions: Vec<String>,
    /// IANA zone of the working hours.
    pub timezone: String,
    /// Working hours, as trading hours: `Mo-Fr 08:00-18:00`.
    pub hours: String,
    /// Days off, `YYYY-MM-DD`.
    #[serde(default)]
    pub holidays: Vec<String>,
}

/// A calendar ready to count.
#[derive(Debug, Clone)]
pub struct Calendar {
    /// Its name.
    pub name: String,
    time: StoreTime,
    holidays: Vec<jiff::civil::Date>,
}

impl Calendar {
    /// Reads `c`; the error names the field.
    pub fn new(c: &CalendarConfig) -> Result<Calendar, String> {
        let time = StoreTime::new(&c.hours, &c.timezone)
            .map_err(|e| format!("calendar {}: {e}", c.name))?;
        if c.hours.trim().is_empty() {
            return Err(format!(
                "calendar {}: hours: e.g. Mo-Fr 08:00-18:00",
                c.name
            ));
        }
        let mut holidays = Vec::new();
        for h in &c.holidays {
            holidays.push(
                h.parse::<jiff::civil::Date>().map_err(|_| {
                    format!("calendar {} holiday {h:?}: expected YYYY-MM-DD", c.name)
                })?,
            );
        }
        let cal = Calendar {
            name: c.name.clone(),
            time,
            holidays,
        };
        // A week without a working minute would never reach a deadline.
        if (0..7 * 24).all(|h| !cal.works(h * 3_600_000 + 1_800_000)) {
            return Err(format!(
                "calendar {}: hours {:?} have no working time in a week",
                c.name, c.hours
            ));
        }
        Ok(cal)
    }

    /// Whether `at` (ms) is working time.
    pub fn works(&self, at: i64) -> bool {
        let Ok(t) = jiff::Timestamp::from_millisecond(at) else {
            return false;
        };
        self.time.is_open(t) && !self.holidays.contains(&self.time.local(t).date())
    }

    /// The instant `minutes` of working time after `start` (ms), to the minute.
    pub fn add(&self, start: i64, minutes: u32) -> i64 {
        let mut left = i64::from(minutes);
        let mut t = start;
        while left > 0 && t - start < HORIZON_MS {
            if self.works(t) {
                left -= 1;
            }
            t += 60_000;
        }
        t
    }

    /// What tickets say of it: `north-office (Mo-Fr 08:00-18:00 Europe/Berlin, 3 holidays)`.
    pub fn describe(&self, c: &CalendarConfig) -> String {
        format!(
            "{} ({} {}, {} holiday{})",
            self.name,
            c.hours,
            c.timezone,
            self.holidays.len(),
            if self.holidays.len() == 1 { "" } else { "s" }
        )
    }
}

/// The calendar of `region`: its own, else the `*` one, else none.
pub fn of_region<'a>(cals: &'a [CalendarConfig], region: &str) -> Option<&'a CalendarConfig> {
    cals.iter()
        .find(|c| c.regions.iter().any(|r| r == region))
        .or_else(|| cals.iter().find(|c| c.regions.iter().any(|r| r == "*")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    fn office() -> CalendarConfig {
        CalendarConfig {
            name: "office".into(),
            regions: vec!["north".into()],
            timezone: "Europe/Berlin".into(),
            hours: "Mo-Fr 08:00-18:00".into(),
            holidays: vec!["2026-12-25".into()],
        }
    }

    #[test]
    fn the_clock_runs_in_working_hours_only() {
        let cal = Calendar::new(&office()).unwrap();
        // Thursday 2026-12-03 17:00 Berlin (16:00 UTC) + 4 h: 1 h on Thursday, 3 h Friday.
        assert_eq!(
            cal.add(ms("2026-12-03T16:00:00Z"), 240),
            ms("2026-12-04T10:00:00Z")
        );
        // Friday 17:30 + 1 h: half an hour Friday, half an hour Monday from 08:00.
        assert_eq!(
            cal.add(ms("2026-12-04T16:30:00Z"), 60),
            ms("2026-12-07T07:30:00Z")
        );
        // Opened on a Saturday: the clock starts on Monday.
        assert_eq!(
            cal.add(ms("2026-12-05T10:00:00Z"), 30),
            ms("2026-12-07T07:30:00Z")
        );
        // Christmas Day (Friday) is off: Thursday 17:00 + 2 h ends Monday 09:00.
        assert_eq!(
            cal.add(ms("2026-12-24T16:00:00Z"), 120),
            ms("2026-12-28T08:00:00Z")
        );
    }

    #[test]
    fn a_calendar_is_found_by_region_and_a_broken_one_is_named() {
        let mut all = office();
        all.name = "all".into();
        all.regions = vec!["*".into()];
        let cals = [office(), all];
        assert_eq!(of_region(&cals, "north").unwrap().name, "office");
        assert_eq!(of_region(&cals, "south").unwrap().name, "all");
        assert!(of_region(&cals[..1], "south").is_none());
        let mut bad = office();
        bad.holidays = vec!["25.12.2026".into()];
        assert!(Calendar::new(&bad)
            .unwrap_err()
            .contains("holiday \"25.12.2026\""));
        bad = office();
        bad.timezone = "Mars/Base".into();
        assert!(Calendar::new(&bad).unwrap_err().contains("Mars/Base"));
        bad = office();
        bad.hours = String::new();
        assert!(Calendar::new(&bad).unwrap_err().contains("hours"));
    }
}
