//! Which agents a task targets: all, or those matching every given criterion (a criterion
//! with several values matches any of them).

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::Invalid;

/// A target selector.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    /// Every agent (and nothing else may be given).
    #[serde(default)]
    pub all: bool,
    /// Stores in any of these regions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// These stores.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stores: Vec<String>,
    /// Stores with any of these tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Stores with an active device of any of these classes, e.g. `receipt-printer`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_classes: Vec<String>,
    /// Agents whose version matches, e.g. `0.1.0`, `<0.2.0`, `>=0.1.3`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub agent_version: String,
    /// These agents, by id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<String>,
}

impl Selector {
    /// How many criteria are given.
    pub fn criteria(&self) -> usize {
        usize::from(!self.regions.is_empty())
            + usize::from(!self.stores.is_empty())
            + usize::from(!self.tags.is_empty())
            + usize::from(!self.device_classes.is_empty())
            + usize::from(!self.agent_version.is_empty())
            + usize::from(!self.agents.is_empty())
    }

    /// Checks the selector: `all`, or at least one criterion, never both, so that an empty
    /// selector never means the whole fleet by accident.
    pub fn validate(&self) -> Result<(), Invalid> {
        match (self.all, self.criteria()) {
            (true, 0) => {}
            (true, _) => {
                return Err(Invalid(
                    "select: `all` cannot be combined with other criteria".into(),
                ))
            }
            (false, 0) => {
                return Err(Invalid(
                    "select: give `all = true` or at least one of regions, stores, tags, device_classes, agent_version, agents".into(),
                ))
            }
            _ => {}
        }
        if !self.agent_version.is_empty() {
            VersionReq::parse(&self.agent_version)?;
        }
        Ok(())
    }
}

/// A version requirement: an operator (`=`, `<`, `<=`, `>`, `>=`; `=` when absent) and a
/// dotted numeric version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionReq {
    op: &'static str,
    version: Vec<u64>,
}

fn parse_version(s: &str) -> Option<Vec<u64>> {
    // A pre-release or build suffix (`-rc1`, `+abc`) is not compared.
    let core = s.trim().split(['-', '+']).next()?;
    core.split('.').map(|p| p.parse().ok()).collect()
}

impl VersionReq {
    /// Parses a requirement such as `0.2.0`, `<0.2.0` or `>=0.1.3`.
    pub fn parse(s: &str) -> Result<VersionReq, Invalid> {
        let s = s.trim();
        let (op, rest) = [">=", "<=", ">", "<", "="]
            .iter()
            .find_map(|op| s.strip_prefix(op).map(|r| (*op, r)))
            .unwrap_or(("=", s));
        let version = parse_version(rest).ok_or_else(|| {
            Invalid(format!(
                "select.agent_version {s:?}: expected e.g. 0.2.0, <0.2.0 or >=0.1.3"
            ))
        })?;
        Ok(VersionReq { op, version })
    }

    /// Whether version `v` meets the requirement (one that does not parse never does).
    pub fn matches(&self, v: &str) -> bool {
        let Some(have) = parse_version(v) else {
            return false;
        };
        let n = have.len().max(self.version.len());
        let pad = |v: &[u64]| {
            let mut v = v.to_vec();
            v.resize(n, 0);
            v
        };
        let ord = pad(&have).cmp(&pad(&self.version));
        match self.op {
            "<" => ord == Ordering::Less,
            "<=" => ord != Ordering::Greater,
            ">" => ord == Ordering::Greater,
            ">=" => ord != Ordering::Less,
            _ => ord == Ordering::Equal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        let r = |s| VersionReq::parse(s).unwrap();
        assert!(r("<0.10.0").matches("0.9.3"));
        assert!(!r("<0.10.0").matches("0.10.0"));
        assert!(r(">=0.2").matches("0.2.0"));
        assert!(r("0.1.0").matches("0.1.0-rc1"));
        assert!(!r("0.1.0").matches("0.1.1"));
        assert!(!r(">0.1.0").matches("unknown"));
        assert!(VersionReq::parse("~1.2").is_err());
    }

    #[test]
    fn an_empty_selector_is_not_the_whole_fleet() {
        let e = Selector::default().validate().unwrap_err().to_string();
        assert!(e.contains("all = true"), "{e}");
        let both = Selector {
            all: true,
            regions: vec!["north".into()],
            ..Selector::default()
        };
        assert!(both.validate().is_err());
    }
}
