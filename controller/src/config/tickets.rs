//! `[tickets]`, `[[rules]]` and `[[webhooks]]`: how faults become tickets, the SLA per
//! priority, and where ticket events are sent.

use serde::{Deserialize, Serialize};

use super::{bad, ConfigError};
use crate::alerts::Rule;

/// `[tickets]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TicketsSection {
    /// Milliseconds between the rules' reads of the whole fleet; telemetry is judged at this
    /// pace. A store that reports an event, a presence or a routine run, and a store whose
    /// alert is due to fire or clear, are looked at sooner, on their own.
    pub evaluate_interval_ms: u64,
    /// A recurrence within this many seconds of a ticket's resolution reopens it.
    pub reopen_window_secs: u64,
    /// Device faults of one store within this many seconds of a ticket's opening join it.
    pub group_window_secs: u64,
    /// Failed self-heal runs of one routine on one device within `breaker_window_secs`
    /// after which the ticket no longer waits for the routine (circuit breaker).
    pub breaker_failures: u32,
    /// The circuit breaker's window, seconds.
    pub breaker_window_secs: u64,
    /// Minutes until an engineer accepts, per priority P1..P4.
    pub response_minutes: [u32; 4],
    /// Minutes until resolved, per priority P1..P4.
    pub resolution_minutes: [u32; 4],
    /// A store with an opening that is not ready this many days before it opens gets an
    /// event `store.not_ready` and a ticket.
    pub opening_warn_days: u32,
    /// The skill an opening's ticket needs.
    pub opening_skill: String,
    /// Seconds between the openings' watches (pushing formats' tasks, warning).
    pub opening_check_secs: u64,
    /// Business calendars: SLA clocks of a region's tickets run in its working hours only.
    pub calendars: Vec<crate::tickets::calendar::CalendarConfig>,
}

impl Default for TicketsSection {
    fn default() -> Self {
        TicketsSection {
            evaluate_interval_ms: 1000,
            reopen_window_secs: 86_400,
            group_window_secs: 600,
            breaker_failures: 3,
            breaker_window_secs: 86_400,
            response_minutes: [30, 60, 240, 480],
            resolution_minutes: [240, 480, 1440, 4320],
            opening_warn_days: 3,
            opening_skill: "install".into(),
            opening_check_secs: 15,
            calendars: Vec::new(),
        }
    }
}

/// `[[webhooks]]`: an external ITSM endpoint that hears of ticket events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Name (deliveries are kept per name).
    pub name: String,
    /// `https://` (or `http://`) URL it is posted to.
    pub url: String,
    /// PEM file of the CAs to trust for an `https://` URL; empty: the system's.
    #[serde(default)]
    pub ca_file: std::path::PathBuf,
    /// Key of the HMAC-SHA256 signature in `X-Storefleet-Signature` (never logged).
    pub secret: String,
    /// Events sent: `ticket.created`, `ticket.assigned`, `ticket.escalated`,
    /// `ticket.resolved`, `ticket.reopened`; empty: all.
    #[serde(default)]
    pub events: Vec<String>,
}

/// The events webhooks can carry.
pub const WEBHOOK_EVENTS: [&str; 5] = [
    "ticket.created",
    "ticket.assigned",
    "ticket.escalated",
    "ticket.resolved",
    "ticket.reopened",
];

/// Checks `[tickets]`, `[[rules]]` and `[[webhooks]]`.
pub fn validate(
    t: &TicketsSection,
    rules: &[Rule],
    hooks: &[WebhookConfig],
) -> Result<(), ConfigError> {
    if t.evaluate_interval_ms == 0 || t.evaluate_interval_ms > 60_000 {
        return Err(bad("tickets.evaluate_interval_ms", "1 to 60000"));
    }
    if t.opening_warn_days > 365 {
        return Err(bad("tickets.opening_warn_days", "0 to 365"));
    }
    if t.opening_skill.trim().is_empty() {
        return Err(bad("tickets.opening_skill", "a skill, e.g. install"));
    }
    if !(1..=3600).contains(&t.opening_check_secs) {
        return Err(bad("tickets.opening_check_secs", "1 to 3600"));
    }
    let mut names = std::collections::HashSet::new();
    for (i, c) in t.calendars.iter().enumerate() {
        crate::tickets::calendar::Calendar::new(c)
            .map_err(|m| bad(&format!("tickets.calendars[{i}]"), m))?;
        if !names.insert(&c.name) {
            return Err(bad(
                &format!("tickets.calendars[{i}]"),
                format!("name {} is used twice", c.name),
            ));
        }
    }
    if t.breaker_failures == 0 {
        return Err(bad("tickets.breaker_failures", "at least 1"));
    }
    for i in 0..4 {
        if t.response_minutes[i] == 0 || t.resolution_minutes[i] < t.response_minutes[i] {
            return Err(bad(
                "tickets.response_minutes",
                format!(
                    "P{}: above 0 and not after the resolution time (resolution_minutes)",
                    i + 1
                ),
            ));
        }
    }
    let mut names = std::collections::HashSet::new();
    for (i, r) in rules.iter().enumerate() {
        r.validate().map_err(|m| bad(&format!("rules[{i}]"), m))?;
        if !names.insert(&r.name) {
            return Err(bad(
                &format!("rules[{i}].name"),
                format!("{:?} appears twice", r.name),
            ));
        }
    }
    for (i, h) in hooks.iter().enumerate() {
        let key = |k: &str| format!("webhooks[{i}].{k}");
        if h.name.is_empty() {
            return Err(bad(&key("name"), "a name"));
        }
        if !h.url.starts_with("http://") && !h.url.starts_with("https://") {
            return Err(bad(&key("url"), "an https:// or http:// URL"));
        }
        if h.secret.len() < 16 {
            return Err(bad(&key("secret"), "at least 16 characters"));
        }
        if let Some(e) = h
            .events
            .iter()
            .find(|e| !WEBHOOK_EVENTS.contains(&e.as_str()))
        {
            return Err(bad(
                &key("events"),
                format!("{e:?} is not one of {}", WEBHOOK_EVENTS.join(", ")),
            ));
        }
    }
    Ok(())
}

impl TicketsSection {
    /// The targets of priority `p` (1..=4).
    pub fn sla(&self, p: u8) -> storefleet_core::lifecycle::SlaTargets {
        let i = usize::from(p.clamp(1, 4) - 1);
        storefleet_core::lifecycle::SlaTargets {
            response_minutes: self.response_minutes[i],
            resolution_minutes: self.resolution_minutes[i],
        }
    }
}
