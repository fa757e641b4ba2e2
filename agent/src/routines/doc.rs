//! The routine document.
//!
//! ```toml
//! name = "receipt-printer-unstick"
//! version = 3
//! description = "Re-enable a stopped receipt queue and clear stale jobs"
//! window = { when = "closed", margin_minutes = 15 }
//!
//! [[steps]]
//! kind = "check"
//! name = "queue accepts and prints"
//! action = "cups.queue_state"
//! args = { queue = "receipt" }
//!
//! [[steps]]
//! kind = "action"
//! name = "cancel stale jobs"
//! action = "cups.cancel_stale"
//! args = { queue = "receipt", older_than_secs = 600 }
//! retries = 2
//! retry_delay_secs = 5
//!
//! [[steps]]
//! kind = "verify"
//! name = "queue idle and enabled"
//! action = "cups.queue_state"
//! args = { queue = "receipt" }
//! ```

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use storefleet_schedule::Window;

pub use storefleet_protocol::routine::StepKind;

/// One step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Check, action or verify.
    pub kind: StepKind,
    /// Its name, unique in the routine.
    pub name: String,
    /// The built-in action it runs, e.g. `service.restart`.
    pub action: String,
    /// The action's arguments.
    #[serde(default)]
    pub args: toml::Table,
    /// Attempts after the first, at most.
    #[serde(default)]
    pub retries: u32,
    /// Seconds between attempts.
    #[serde(default = "default_delay")]
    pub retry_delay_secs: u64,
    /// Seconds one attempt may take.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_delay() -> u64 {
    5
}

fn default_timeout() -> u64 {
    60
}

/// A routine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Routine {
    /// Name, e.g. `receipt-printer-unstick`.
    pub name: String,
    /// Version, from 1; a higher one replaces a lower one.
    pub version: u32,
    /// For people.
    #[serde(default)]
    pub description: String,
    /// When it may run, relative to the store's trading hours.
    #[serde(default)]
    pub window: Window,
    /// The device it looks after, if any (recorded with each run; tickets use it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// What starts it by itself (by hand and by controller task always work).
    #[serde(default)]
    pub triggers: Triggers,
    /// The steps, in order (checks, then actions, then verifications).
    pub steps: Vec<Step>,
}

/// `[triggers]`: what starts a routine by itself.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Triggers {
    /// Cron schedules in the store's time zone: `minute hour day-of-month month
    /// day-of-week`, days of the week by name (`Mon-Fri`), e.g. `30 2 * * *`.
    pub cron: Vec<String>,
    /// Conditions on the latest readings.
    pub condition: Vec<Condition>,
}

/// `[[triggers.condition]]`: a reading that holds for a while, e.g. a printer down for two
/// minutes (`state = "down"`) or a fridge above 8 °C for ten (`metric`, `above`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Device id; absent: the gateway's own metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// `down` or `up`: the device's probe state (the metric `probe.up`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<DeviceState>,
    /// A metric, with `above` and/or `below`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// Holds when the value is above this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    /// Holds when the value is below this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    /// Seconds it must hold before the routine starts.
    #[serde(default = "default_for")]
    pub for_secs: u64,
    /// Seconds after a triggered run before the condition may trigger again.
    #[serde(default = "default_cooldown")]
    pub cooldown_secs: u64,
}

/// A device's probe state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceState {
    /// The probe fails.
    Down,
    /// The probe succeeds.
    Up,
}

fn default_for() -> u64 {
    60
}

fn default_cooldown() -> u64 {
    900
}

impl Condition {
    /// The metric watched and the test on its value.
    pub fn metric(&self) -> (&str, Option<f64>, Option<f64>) {
        match self.state {
            Some(DeviceState::Down) => ("probe.up", None, Some(0.5)),
            Some(DeviceState::Up) => ("probe.up", Some(0.5), None),
            None => (
                self.metric.as_deref().unwrap_or_default(),
                self.above,
                self.below,
            ),
        }
    }

    /// Whether `v` satisfies it.
    pub fn holds(&self, v: f64) -> bool {
        let (_, above, below) = self.metric();
        above.is_none_or(|a| v > a) && below.is_none_or(|b| v < b)
    }

    /// For people: `printer-1 down`, `fridge-1 temp > 8`.
    pub fn describe(&self) -> String {
        let who = self.device.as_deref().unwrap_or("gateway");
        if let Some(s) = self.state {
            return format!(
                "{who} {}",
                if s == DeviceState::Down { "down" } else { "up" }
            );
        }
        let (m, above, below) = self.metric();
        let mut s = format!("{who} {m}");
        if let Some(a) = above {
            let _ = write!(s, " > {a}");
        }
        if let Some(b) = below {
            let _ = write!(s, " < {b}");
        }
        s
    }
}

/// Makes a five-field cron expression into a schedule; days of the week must be names,
/// because cron dialects number them differently.
pub fn cron(expr: &str) -> Result<jiff_cron::Schedule, String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "cron {expr:?}: five fields (minute hour day-of-month month day-of-week)"
        ));
    }
    if fields[4] != "*"
        && fields[4].bytes().any(|b| b.is_ascii_digit())
        && !fields[4].starts_with("*/")
    {
        return Err(format!(
            "cron {expr:?}: name the days of the week (Mon-Fri), numbers differ between cron dialects"
        ));
    }
    format!("0 {expr}")
        .parse::<jiff_cron::Schedule>()
        .map_err(|e| format!("cron {expr:?}: {e}"))
}

/// Why a routine document is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocError {
    /// Not valid TOML, or a field of the wrong type.
    #[error("routine {origin}: {message}")]
    Parse {
        /// Where it came from.
        origin: String,
        /// The parser's message, with the field.
        message: String,
    },
    /// Well-formed but not sensible.
    #[error("routine {name:?}: {message}")]
    Invalid {
        /// The routine's name.
        name: String,
        /// What is wrong.
        message: String,
    },
}

/// Longest a single attempt may be allowed to take, seconds.
pub const MAX_TIMEOUT_SECS: u64 = 3600;
/// Most retries a step may ask for.
pub const MAX_RETRIES: u32 = 10;

impl Routine {
    /// Parses and validates a document; `origin` names it in errors (a file, a command id).
    pub fn parse(text: &str, origin: &str) -> Result<Routine, DocError> {
        let r: Routine = toml::from_str(text).map_err(|e| DocError::Parse {
            origin: origin.to_owned(),
            message: e.to_string().trim().to_owned(),
        })?;
        r.validate()?;
        Ok(r)
    }

    /// Checks names, order and limits.
    pub fn validate(&self) -> Result<(), DocError> {
        let bad = |m: String| {
            Err(DocError::Invalid {
                name: self.name.clone(),
                message: m,
            })
        };
        if self.name.is_empty()
            || self.name.len() > 64
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return bad("name: 1 to 64 letters, digits, '-', '_' or '.'".into());
        }
        if self.version == 0 {
            return bad("version: 1 or more".into());
        }
        if self.steps.is_empty() {
            return bad("steps: at least one".into());
        }
        let mut seen = std::collections::HashSet::new();
        let mut last = StepKind::Check;
        for (i, s) in self.steps.iter().enumerate() {
            let at = format!("steps[{i}] ({:?})", s.name);
            if s.name.trim().is_empty() || !seen.insert(s.name.as_str()) {
                return bad(format!("{at}: names must be present and unique"));
            }
            if s.action.trim().is_empty() {
                return bad(format!("{at}: action: the built-in action to run"));
            }
            if s.timeout_secs == 0 || s.timeout_secs > MAX_TIMEOUT_SECS {
                return bad(format!("{at}: timeout_secs: 1 to {MAX_TIMEOUT_SECS}"));
            }
            if s.retries > MAX_RETRIES {
                return bad(format!("{at}: retries: at most {MAX_RETRIES}"));
            }
            if rank(s.kind) < rank(last) {
                return bad(format!(
                    "{at}: steps go checks, then actions, then verifications"
                ));
            }
            last = s.kind;
        }
        for (i, c) in self.triggers.cron.iter().enumerate() {
            if let Err(e) = cron(c) {
                return bad(format!("triggers.cron[{i}]: {e}"));
            }
        }
        for (i, c) in self.triggers.condition.iter().enumerate() {
            let at = format!("triggers.condition[{i}]");
            match (&c.state, &c.metric) {
                (Some(_), None) if c.device.is_none() => {
                    return bad(format!("{at}: state needs a device"));
                }
                (Some(_), None) if c.above.is_some() || c.below.is_some() => {
                    return bad(format!("{at}: above and below go with metric, not state"));
                }
                (Some(_), None) => {}
                (None, Some(m)) if !m.is_empty() && (c.above.is_some() || c.below.is_some()) => {}
                _ => {
                    return bad(format!(
                        "{at}: either state = \"down\"/\"up\", or metric with above and/or below"
                    ))
                }
            }
            if c.for_secs > 7 * 86_400 {
                return bad(format!("{at}: for_secs: at most a week"));
            }
        }
        let has = |k| self.steps.iter().any(|s| s.kind == k);
        if has(StepKind::Action) && !has(StepKind::Verify) {
            return bad("a routine that acts must verify".into());
        }
        Ok(())
    }
}

fn rank(k: StepKind) -> u8 {
    match k {
        StepKind::Check => 0,
        StepKind::Action => 1,
        StepKind::Verify => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "printer-unstick"
version = 2
window = { when = "closed", margin_minutes = 15 }

[[steps]]
kind = "check"
name = "queue ok"
action = "cups.queue_state"
args = { queue = "receipt" }

[[steps]]
kind = "action"
name = "cancel stale"
action = "cups.cancel_stale"
retries = 2

[[steps]]
kind = "verify"
name = "queue ok after"
action = "cups.queue_state"
"#;

    #[test]
    fn a_good_document_reads_with_defaults() {
        let r = Routine::parse(GOOD, "test").unwrap();
        assert_eq!(r.steps.len(), 3);
        assert_eq!(r.steps[1].retries, 2);
        assert_eq!(r.steps[1].timeout_secs, 60);
        assert_eq!(r.window.margin_minutes, 15);
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            (GOOD.replace("version = 2", "version = 0"), "version"),
            (
                GOOD.replace("name = \"cancel stale\"", "name = \"queue ok\""),
                "unique",
            ),
            (GOOD.replace("retries = 2", "retries = 99"), "retries"),
            (
                GOOD.replace("kind = \"verify\"", "kind = \"check\""),
                "checks, then actions",
            ),
            (
                GOOD.replace("kind = \"verify\"", "kind = \"action\""),
                "must verify",
            ),
            (GOOD.replace("retries = 2", "retries = \"two\""), "retries"),
            (GOOD.replace("kind = \"check\"", "kind = \"pray\""), "pray"),
            (
                GOOD.replace("name = \"printer-unstick\"", "name = \"a b\""),
                "name",
            ),
        ];
        for (text, word) in cases {
            let e = Routine::parse(&text, "test.toml").unwrap_err().to_string();
            assert!(e.contains(word), "{word}: {e}");
        }
    }
}
