//! A rollout plan and how it splits targets into waves.

use serde::{Deserialize, Serialize};

/// How a task is rolled out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Targets in the canary wave (taken first, in target order).
    #[serde(default)]
    pub canary: usize,
    /// Cumulative percentages of the remaining targets after the canary, ascending and
    /// ending at 100, e.g. `[10, 50, 100]`.
    #[serde(default = "all_at_once")]
    pub waves: Vec<u8>,
    /// Targets in flight per region at most (0: no cap).
    #[serde(default)]
    pub region_concurrency: usize,
    /// A target sent its command and not finished after this long has timed out, ms.
    #[serde(default = "fifteen_minutes")]
    pub target_timeout_ms: i64,
    /// Abort when failures / finished exceeds this (0.0 to 1.0) ...
    #[serde(default = "a_fifth")]
    pub abort_failure_rate: f64,
    /// ... once at least this many targets have finished.
    #[serde(default = "one")]
    pub abort_min_finished: usize,
    /// A target still offline this long after its wave opened is skipped, ms.
    #[serde(default = "a_day")]
    pub expiry_ms: i64,
}

impl Default for Plan {
    fn default() -> Plan {
        Plan {
            canary: 0,
            waves: all_at_once(),
            region_concurrency: 0,
            target_timeout_ms: fifteen_minutes(),
            abort_failure_rate: a_fifth(),
            abort_min_finished: one(),
            expiry_ms: a_day(),
        }
    }
}

fn fifteen_minutes() -> i64 {
    15 * 60 * 1000
}

fn a_fifth() -> f64 {
    0.2
}

fn a_day() -> i64 {
    24 * 3600 * 1000
}

fn all_at_once() -> Vec<u8> {
    vec![100]
}

fn one() -> usize {
    1
}

/// Why a plan is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rollout plan: {0}")]
pub struct PlanError(pub String);

impl Plan {
    /// Checks the plan.
    pub fn validate(&self) -> Result<(), PlanError> {
        let bad = |m: &str| Err(PlanError(m.into()));
        if self.waves.is_empty() || self.waves.last() != Some(&100) {
            return bad("waves must end at 100 (percent of the targets after the canary)");
        }
        if self.waves.windows(2).any(|w| w[0] >= w[1]) || self.waves[0] == 0 {
            return bad("waves must be ascending percentages above 0");
        }
        if self.target_timeout_ms <= 0 || self.expiry_ms <= 0 {
            return bad("target_timeout_ms and expiry_ms must be above 0");
        }
        if !(0.0..=1.0).contains(&self.abort_failure_rate) {
            return bad("abort_failure_rate must be between 0.0 and 1.0");
        }
        if self.abort_min_finished == 0 {
            return bad("abort_min_finished must be at least 1");
        }
        Ok(())
    }

    /// The wave of each of `n` targets, in target order: 0 for the canary, then 1, 2, ...
    /// Empty waves are skipped, so wave numbers are dense.
    pub fn assign(&self, n: usize) -> Vec<usize> {
        let canary = self.canary.min(n);
        let rest = n - canary;
        let mut out = vec![0; canary];
        let mut wave = usize::from(canary > 0);
        let mut taken = 0;
        for pct in &self.waves {
            let upto = (rest * usize::from(*pct)).div_ceil(100).min(rest);
            if upto > taken {
                out.extend(std::iter::repeat_n(wave, upto - taken));
                taken = upto;
                wave += 1;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(canary: usize, waves: &[u8]) -> Plan {
        Plan {
            canary,
            waves: waves.to_vec(),
            region_concurrency: 0,
            target_timeout_ms: 1000,
            abort_failure_rate: 0.2,
            abort_min_finished: 1,
            expiry_ms: 10_000,
        }
    }

    #[test]
    fn waves_split_the_targets_after_the_canary_by_cumulative_percentage() {
        let w = plan(2, &[10, 50, 100]).assign(50);
        let count = |k| w.iter().filter(|x| **x == k).count();
        assert_eq!((count(0), count(1), count(2), count(3)), (2, 5, 19, 24));
        assert!(w.windows(2).all(|p| p[0] <= p[1]), "waves in target order");
        // Tiny fleets: empty waves are skipped, numbers stay dense.
        assert_eq!(plan(1, &[10, 50, 100]).assign(3), vec![0, 1, 2]);
        assert_eq!(plan(0, &[100]).assign(3), vec![0, 0, 0]);
        assert_eq!(plan(5, &[50, 100]).assign(2), vec![0, 0]);
        assert!(plan(0, &[100]).assign(0).is_empty());
    }

    #[test]
    fn bad_plans_are_named() {
        assert!(plan(0, &[50])
            .validate()
            .unwrap_err()
            .0
            .contains("end at 100"));
        assert!(plan(0, &[50, 50, 100])
            .validate()
            .unwrap_err()
            .0
            .contains("ascending"));
        let mut p = plan(0, &[100]);
        p.abort_failure_rate = 1.5;
        assert!(p.validate().is_err());
        plan(3, &[10, 100]).validate().unwrap();
    }
}
