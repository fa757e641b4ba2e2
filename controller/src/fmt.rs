//! Formatting for people (pages, the CLI, alert details): UTC timestamps, "3 min ago",
//! numbers without trailing zeros.

/// `YYYY-MM-DD HH:MM:SS` UTC for ms since the epoch.
pub fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// `at` (ms) in the IANA zone `zone` with the strftime `pattern`; UTC (`YYYY-MM-DD
/// HH:MM:SS`) when the zone is unknown.
pub fn zoned(at: i64, zone: &str, pattern: &str) -> String {
    match (
        jiff::Timestamp::from_millisecond(at),
        jiff::tz::TimeZone::get(zone),
    ) {
        (Ok(t), Ok(tz)) => t.to_zoned(tz).strftime(pattern).to_string(),
        _ => utc(at),
    }
}

/// `at` (ms) for people in the IANA zone `zone`: `2026-12-05 09:30 CET`.
pub fn at(t: i64, zone: &str) -> String {
    zoned(t, zone, "%Y-%m-%d %H:%M %Z")
}

/// How long ago `t` was, roughly.
pub fn ago(now: i64, t: Option<i64>) -> String {
    let Some(t) = t else { return "never".into() };
    let s = (now - t).max(0) / 1000;
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// How long until `t` from `now`, roughly: `in 40 s`, `in 5 min`, `in 1 h 30 min`,
/// `in 2 h`, `in 3 d`.
pub fn ahead(now: i64, t: i64) -> String {
    let s = (t - now).max(0) / 1000;
    let (h, m) = (s / 3600, s % 3600 / 60);
    match s {
        0..=59 => format!("in {s} s"),
        60..=3599 => format!("in {m} min"),
        3600..=86_399 if m == 0 => format!("in {h} h"),
        3600..=86_399 => format!("in {h} h {m} min"),
        _ => format!("in {} d", s / 86_400),
    }
}

/// An instant for people: `2026-12-04 18:40 UTC, 3 min ago` (or `in 2 h` when it is
/// ahead, as an expiry is).
pub fn when(now: i64, t: i64) -> String {
    let date = utc(t);
    let relative = if t > now + 1000 {
        ahead(now, t)
    } else {
        ago(now, Some(t))
    };
    format!("{} UTC, {relative}", &date[..16])
}

/// A value with at most 3 decimals, without trailing zeros.
pub fn num(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_owned()
    }
}

pub use storefleet_client::url_encode;

/// Days from today for people: `in 3 days`, `tomorrow`, `today`, `2 days ago`.
pub fn days(d: i64) -> String {
    match d {
        0 => "today".into(),
        1 => "tomorrow".into(),
        -1 => "yesterday".into(),
        d if d < 0 => format!("{} days ago", -d),
        d => format!("in {d} days"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_match_known_instants() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(utc(1_795_305_600_000 + 3_723_000), "2026-11-22 01:02:03");
    }

    #[test]
    fn ago_and_numbers_read_well() {
        assert_eq!(ago(120_000, Some(0)), "2 min ago");
        assert_eq!(ago(0, None), "never");
        let t = 1_795_305_600_000 + 3_723_000;
        assert_eq!(when(t + 180_000, t), "2026-11-22 01:02 UTC, 3 min ago");
        assert_eq!(when(t - 7_200_000, t), "2026-11-22 01:02 UTC, in 2 h");
        assert_eq!(num(2.50), "2.5");
        assert_eq!(num(3.0), "3");
    }
}
