//! The MQTT topic tree: `sf/v1/{agent_id}/{up|down}/{kind}`.
//!
//! Owns formatting and parsing of topics and the rules for agent ids. It does not know about
//! brokers or subscriptions beyond the filter strings it offers.

use crate::message::Kind;

/// Topic prefix shared by every Storefleet topic.
pub const PREFIX: &str = "sf/v1";

/// Longest accepted agent id, in bytes.
pub const MAX_AGENT_ID_LEN: usize = 64;

/// Which way a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Agent to controller.
    Up,
    /// Controller to agent.
    Down,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

/// A parsed Storefleet topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// The agent whose subtree the topic is in.
    pub agent_id: String,
    /// Uplink or downlink.
    pub direction: Direction,
    /// The message kind.
    pub kind: Kind,
}

impl Topic {
    /// Builds the topic string for an agent, direction and kind.
    pub fn format(agent_id: &str, direction: Direction, kind: Kind) -> String {
        format!(
            "{PREFIX}/{agent_id}/{}/{}",
            direction.as_str(),
            kind.as_str()
        )
    }

    /// Parses a topic string; `None` when it is not a Storefleet topic.
    pub fn parse(topic: &str) -> Option<Topic> {
        let rest = topic.strip_prefix(PREFIX)?.strip_prefix('/')?;
        let mut parts = rest.split('/');
        let agent_id = parts.next()?;
        let direction = match parts.next()? {
            "up" => Direction::Up,
            "down" => Direction::Down,
            _ => return None,
        };
        let kind = Kind::parse(parts.next()?)?;
        if parts.next().is_some() || !valid_agent_id(agent_id) {
            return None;
        }
        Some(Topic {
            agent_id: agent_id.to_owned(),
            direction,
            kind,
        })
    }

    /// The filter an agent subscribes to for its own downlink.
    pub fn agent_downlink_filter(agent_id: &str) -> String {
        format!("{PREFIX}/{agent_id}/down/+")
    }

    /// The filter for every agent's whole uplink.
    pub fn uplink_filter() -> String {
        format!("{PREFIX}/+/up/+")
    }

    /// The filter for one kind of every agent's uplink (the controller subscribes per kind,
    /// so that events never queue behind a telemetry backlog).
    pub fn uplink_kind_filter(kind: Kind) -> String {
        format!("{PREFIX}/+/up/{}", kind.as_str())
    }
}

/// Whether `id` is a valid agent id: 1 to 64 bytes of ASCII letters, digits, `-`, `_`, `.`.
///
/// MQTT wildcards and separators (`+`, `#`, `/`) can never appear, so an id is always a
/// single topic level.
pub fn valid_agent_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_AGENT_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_parse_round_trip() {
        let s = Topic::format("gw-s123", Direction::Up, Kind::Telemetry);
        assert_eq!(s, "sf/v1/gw-s123/up/telemetry");
        let t = Topic::parse(&s).unwrap();
        assert_eq!(t.agent_id, "gw-s123");
        assert_eq!(t.direction, Direction::Up);
        assert_eq!(t.kind, Kind::Telemetry);
    }

    #[test]
    fn foreign_or_malformed_topics_are_rejected() {
        for bad in [
            "sf/v2/a/up/event",
            "sf/v1/a/sideways/event",
            "sf/v1/a/up/nonsense",
            "sf/v1/a/up/event/extra",
            "sf/v1//up/event",
            "sf/v1/a+b/up/event",
            "other",
            "",
        ] {
            assert!(Topic::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn agent_ids_cannot_hold_wildcards_or_separators() {
        assert!(valid_agent_id("a-1_b.c"));
        for bad in ["", "a/b", "a+", "#", "é", &"x".repeat(65)] {
            assert!(!valid_agent_id(bad), "{bad}");
        }
    }
}
