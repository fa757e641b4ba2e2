//! Alert rules: what counts as a fault, for how long it must hold, how it clears, how bad
//! it is and which skill fixes it.
//!
//! A rule watches one kind of condition over every store: a gateway offline, a device down
//! or stale, a metric past a threshold (with a separate threshold for clearing, so a value
//! hovering at the limit does not flap), or an event code (a routine's escalation). It must
//! hold for `for_secs` before it fires and be clear for `clear_after_secs` before it
//! clears. [`eval`] is the pure state machine that does this; the controller reads the
//! conditions from its database and its tickets decide what a firing alert becomes.
//!
//! Built-in rules ([`builtin`]) cover the demo's store; `[[rules]]` in the controller's
//! config add rules or replace a built-in one of the same name, and `enabled = false`
//! turns one off.

pub mod eval;

use serde::{Deserialize, Serialize};

/// How urgent a rule's fault is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Trading stops or is at risk now.
    Critical,
    /// A till or a key device is out.
    Major,
    /// Degraded; work goes on.
    Minor,
}

/// How much of the store a fault touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Impact {
    /// The whole store.
    Store,
    /// A device that trading depends on (a till).
    Device,
    /// One peripheral among others.
    Peripheral,
}

/// What a rule watches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// The store's gateway agent is offline (last will, or silence).
    GatewayOffline,
    /// A device reports itself down.
    DeviceDown {
        /// Only devices of this class.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        class: Option<String>,
    },
    /// A device's data stopped for `presence.stale_after_intervals` intervals.
    DeviceStale {
        /// Only devices of this class.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        class: Option<String>,
    },
    /// The latest value of a metric is past a threshold.
    Metric {
        /// The metric, e.g. `temp_c` or `host.disk.root.used_pct`.
        metric: String,
        /// Only devices of this class (`gateway` for the gateway's own metrics).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        class: Option<String>,
        /// Holds above this.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        above: Option<f64>,
        /// Holds below this.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        below: Option<f64>,
        /// Clears only below this (hysteresis for `above`); default: `above`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        clear_below: Option<f64>,
        /// Clears only above this (hysteresis for `below`); default: `below`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        clear_above: Option<f64>,
    },
    /// An agent raised an event with one of these codes within `hold_secs`.
    Event {
        /// Event codes, e.g. `routine.escalated`.
        codes: Vec<String>,
        /// Seconds an event keeps the condition holding.
        #[serde(default = "hour")]
        hold_secs: u64,
    },
}

fn hour() -> u64 {
    3600
}

/// One alert rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique name, e.g. `printer-down`.
    pub name: String,
    /// For people.
    #[serde(default)]
    pub title: String,
    /// What it watches.
    pub when: Condition,
    /// Seconds the condition must hold before the alert fires.
    #[serde(default = "minute")]
    pub for_secs: u64,
    /// Seconds the condition must be clear before the alert clears.
    #[serde(default = "minute")]
    pub clear_after_secs: u64,
    /// How urgent.
    pub severity: Severity,
    /// How much of the store it touches.
    #[serde(default = "peripheral")]
    pub impact: Impact,
    /// The skill the fix needs (engineers are matched on it).
    pub skill: String,
    /// The lowest skill level that may take it (junior: anyone with the skill).
    #[serde(default)]
    pub level: crate::engineer::Level,
    /// A routine the agent runs by itself for this fault: the ticket waits for its outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routine: Option<String>,
    /// Seconds to wait for the routine's outcome before opening the ticket anyway.
    #[serde(default = "five_minutes")]
    pub remediation_timeout_secs: u64,
    /// Seconds the alert must stay clear before its ticket resolves by itself.
    #[serde(default = "five_minutes")]
    pub resolve_grace_secs: u64,
    /// `false` turns a built-in rule off.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn minute() -> u64 {
    60
}

fn five_minutes() -> u64 {
    300
}

fn peripheral() -> Impact {
    Impact::Peripheral
}

fn yes() -> bool {
    true
}

impl Rule {
    /// How long it must hold to fire and be gone to clear.
    pub fn timing(&self) -> eval::Timing {
        eval::Timing {
            for_ms: (self.for_secs as i64) * 1000,
            clear_ms: (self.clear_after_secs as i64) * 1000,
        }
    }

    /// Checks what serde cannot: a name, a skill, a threshold for metrics, codes for
    /// events. The error names the rule and the field.
    pub fn validate(&self) -> Result<(), String> {
        let bad = |field: &str, what: &str| Err(format!("rule {:?}: {field}: {what}", self.name));
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return bad("name", "letters, digits, '-', '_' or '.', not empty");
        }
        if self.skill.trim().is_empty() {
            return bad("skill", "the skill the fix needs, e.g. \"printers\"");
        }
        match &self.when {
            Condition::Metric {
                metric,
                above,
                below,
                ..
            } => {
                if metric.is_empty() {
                    return bad("when.metric", "a metric name");
                }
                if above.is_none() && below.is_none() {
                    return bad("when", "`above` or `below` (or both)");
                }
            }
            Condition::Event { codes, .. } if codes.is_empty() => {
                return bad("when.codes", "at least one event code");
            }
            _ => {}
        }
        if self.routine.as_deref().is_some_and(str::is_empty) {
            return bad("routine", "a routine name, or leave it out");
        }
        Ok(())
    }

    /// The title for people: `title`, or the name.
    pub fn title(&self) -> &str {
        if self.title.is_empty() {
            &self.name
        } else {
            &self.title
        }
    }

    /// A gateway-wide rule (its alert mutes the store's device alerts).
    pub fn is_gateway_offline(&self) -> bool {
        matches!(self.when, Condition::GatewayOffline)
    }
}

fn rule(name: &str, title: &str, when: Condition, severity: Severity, skill: &str) -> Rule {
    Rule {
        name: name.into(),
        title: title.into(),
        when,
        for_secs: 60,
        clear_after_secs: 60,
        severity,
        impact: Impact::Peripheral,
        skill: skill.into(),
        level: crate::engineer::Level::Junior,
        routine: None,
        remediation_timeout_secs: 300,
        resolve_grace_secs: 300,
        enabled: true,
    }
}

#[allow(clippy::unnecessary_wraps)] // reads as `class: class("pos")` in the rules
fn class(c: &str) -> Option<String> {
    Some(c.into())
}

/// The rules every controller has unless its config replaces or disables them.
pub fn builtin() -> Vec<Rule> {
    vec![
        Rule {
            for_secs: 120,
            impact: Impact::Store,
            ..rule(
                "gateway-offline",
                "Store gateway offline",
                Condition::GatewayOffline,
                Severity::Critical,
                "network",
            )
        },
        Rule {
            routine: Some("receipt-printer-unstick".into()),
            ..rule(
                "printer-down",
                "Receipt printer down",
                Condition::DeviceDown {
                    class: class("receipt-printer"),
                },
                Severity::Major,
                "printers",
            )
        },
        Rule {
            impact: Impact::Device,
            routine: Some("pos-service-restart".into()),
            ..rule(
                "pos-service-down",
                "POS service down",
                Condition::DeviceStale {
                    class: class("pos"),
                },
                Severity::Major,
                "pos",
            )
        },
        Rule {
            for_secs: 300,
            impact: Impact::Store,
            ..rule(
                "disk-nearly-full",
                "Gateway disk nearly full",
                Condition::Metric {
                    metric: "host.disk.root.used_pct".into(),
                    class: class("gateway"),
                    above: Some(90.0),
                    below: None,
                    clear_below: Some(85.0),
                    clear_above: None,
                },
                Severity::Minor,
                "gateway",
            )
        },
        Rule {
            impact: Impact::Store,
            ..rule(
                "ups-on-battery",
                "UPS on battery",
                Condition::Metric {
                    metric: "on_battery".into(),
                    class: class("ups"),
                    above: Some(0.5),
                    below: None,
                    clear_below: None,
                    clear_above: None,
                },
                Severity::Major,
                "power",
            )
        },
        Rule {
            for_secs: 300,
            clear_after_secs: 300,
            ..rule(
                "fridge-too-warm",
                "Fridge too warm",
                Condition::Metric {
                    metric: "temp_c".into(),
                    class: class("fridge-sensor"),
                    above: Some(8.0),
                    below: None,
                    clear_below: Some(6.0),
                    clear_above: None,
                },
                Severity::Major,
                "refrigeration",
            )
        },
        Rule {
            for_secs: 0,
            ..rule(
                "routine-escalated",
                "Self-heal escalated",
                Condition::Event {
                    codes: vec!["routine.escalated".into()],
                    hold_secs: 3600,
                },
                Severity::Major,
                "general",
            )
        },
        rule(
            "device-stale",
            "Device stopped reporting",
            Condition::DeviceStale { class: None },
            Severity::Minor,
            "general",
        ),
    ]
}

/// The built-in rules with `config` applied: a rule of the same name replaces the built-in
/// one, others are added, disabled ones are left out.
pub fn effective(config: &[Rule]) -> Vec<Rule> {
    let mut out = builtin();
    for r in config {
        match out.iter_mut().find(|b| b.name == r.name) {
            Some(b) => *b = r.clone(),
            None => out.push(r.clone()),
        }
    }
    out.retain(|r| r.enabled);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_are_valid_and_named_once() {
        let rules = builtin();
        for r in &rules {
            r.validate().unwrap();
        }
        let mut names: Vec<_> = rules.iter().map(|r| r.name.clone()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), rules.len());
    }

    #[test]
    fn config_rules_replace_add_and_disable() {
        let mut warm = builtin()
            .into_iter()
            .find(|r| r.name == "fridge-too-warm")
            .unwrap();
        warm.for_secs = 5;
        let mut off = builtin()[0].clone();
        off.enabled = false;
        let extra: Rule = toml::from_str(
            "name = \"scale-heavy\"\nseverity = \"minor\"\nskill = \"scales\"\n\
             when = { kind = \"metric\", metric = \"weight_kg\", class = \"scale\", above = 30.0 }\n",
        )
        .unwrap();
        let rules = effective(&[warm, off, extra]);
        assert!(rules.iter().all(|r| r.name != "gateway-offline"));
        assert_eq!(
            rules
                .iter()
                .find(|r| r.name == "fridge-too-warm")
                .unwrap()
                .for_secs,
            5
        );
        assert!(rules.iter().any(|r| r.name == "scale-heavy"));
    }

    #[test]
    fn a_metric_rule_without_threshold_is_refused_with_its_name() {
        let r: Rule = toml::from_str(
            "name = \"x\"\nseverity = \"minor\"\nskill = \"s\"\nwhen = { kind = \"metric\", metric = \"m\" }\n",
        )
        .unwrap();
        let e = r.validate().unwrap_err();
        assert!(e.contains("rule \"x\"") && e.contains("above"), "{e}");
        let unknown = toml::from_str::<Rule>(
            "name = \"x\"\nseverity = \"dire\"\nskill = \"s\"\nwhen = { kind = \"gateway_offline\" }\n",
        );
        assert!(unknown.is_err());
    }
}
