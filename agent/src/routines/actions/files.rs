//! `files.prune` and `files.usage`: old logs and spool files, by age and by total size.
//!
//! ```toml
//! action = "files.prune"
//! args = { dir = "/var/log/pos", pattern = "*.log*", older_than_days = 14, max_total_mb = 500 }
//! ```
//!
//! Pruning deletes matching regular files older than `older_than_days`, then, while the
//! matching files left are together larger than `max_total_mb`, the oldest of them. It
//! never follows a link, never deletes a directory, and works only inside `[routines]
//! paths` (checked again after resolving links, when it runs).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::{resolve_inside, Cx, Done};

const MB: u64 = 1024 * 1024;

fn star() -> String {
    "*".into()
}

/// `files.prune`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prune {
    /// Directory.
    pub dir: PathBuf,
    /// File name pattern (`*` and `?`).
    #[serde(default = "star")]
    pub pattern: String,
    /// Delete files older than this many days.
    #[serde(default)]
    pub older_than_days: Option<f64>,
    /// Then delete the oldest until the rest fit in this many MiB.
    #[serde(default)]
    pub max_total_mb: Option<u64>,
    /// Include subdirectories.
    #[serde(default)]
    pub recursive: bool,
}

/// `files.usage`: holds when the matching files take at most `max_total_mb`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    /// Directory.
    pub dir: PathBuf,
    /// File name pattern (`*` and `?`).
    #[serde(default = "star")]
    pub pattern: String,
    /// Limit, MiB.
    pub max_total_mb: u64,
    /// Files older than this many days must not exist either.
    #[serde(default)]
    pub older_than_days: Option<f64>,
    /// Include subdirectories.
    #[serde(default)]
    pub recursive: bool,
}

/// Whether `name` matches `pattern` (`*`: any run, `?`: one character).
pub fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A matching file.
#[derive(Debug, Clone)]
struct Found {
    path: PathBuf,
    size: u64,
    modified: SystemTime,
}

fn walk(dir: &Path, pattern: &str, recursive: bool, out: &mut Vec<Found>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.path().symlink_metadata()?;
        if meta.is_dir() && recursive {
            walk(&entry.path(), pattern, recursive, out)?;
        } else if meta.is_file() && glob(pattern, &entry.file_name().to_string_lossy()) {
            out.push(Found {
                path: entry.path(),
                size: meta.len(),
                modified: meta.modified()?,
            });
        }
    }
    Ok(())
}

fn older(f: &Found, days: Option<f64>, now: SystemTime) -> bool {
    days.is_some_and(|d| {
        now.duration_since(f.modified).unwrap_or_default() > Duration::from_secs_f64(d * 86_400.0)
    })
}

fn human(bytes: u64) -> String {
    if bytes >= MB {
        format!("{:.1} MiB", bytes as f64 / MB as f64)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

/// The matching files under `dir` (already resolved), oldest first.
fn list(dir: &Path, pattern: &str, recursive: bool) -> Result<Vec<Found>, String> {
    let mut found = Vec::new();
    walk(dir, pattern, recursive, &mut found).map_err(|e| format!("{}: {e}", dir.display()))?;
    found.sort_by_key(|f| f.modified);
    Ok(found)
}

impl Prune {
    fn prune(&self, cx: &Cx) -> Done {
        if self.older_than_days.is_none() && self.max_total_mb.is_none() {
            return Done::fail("files.prune needs older_than_days, max_total_mb or both");
        }
        let found = match resolve_inside(&cx.policy.paths, &self.dir)
            .and_then(|dir| list(&dir, &self.pattern, self.recursive))
        {
            Ok(f) => f,
            Err(e) => return Done::fail(e),
        };
        let now = SystemTime::now();
        let mut total: u64 = found.iter().map(|f| f.size).sum();
        let limit = self.max_total_mb.map(|m| m * MB);
        let (mut deleted, mut freed, mut errors) = (0usize, 0u64, Vec::new());
        for f in &found {
            let by_age = older(f, self.older_than_days, now);
            let by_size = limit.is_some_and(|l| total > l);
            if !by_age && !by_size {
                continue;
            }
            match std::fs::remove_file(&f.path) {
                Ok(()) => {
                    deleted += 1;
                    freed += f.size;
                    total -= f.size;
                }
                Err(e) => errors.push(format!("{}: {e}", f.path.display())),
            }
        }
        let kept = found.len() - deleted;
        let mut out = format!(
            "{}: deleted {deleted} file(s) ({}), kept {kept} ({})",
            self.dir.display(),
            human(freed),
            human(total)
        );
        if !errors.is_empty() {
            let _ = write!(out, "; could not delete: {}", errors.join("; "));
        }
        Done::from(errors.is_empty(), out)
    }

    /// Runs it.
    pub async fn run(&self, cx: &Cx) -> Done {
        let (me, cx) = (self.clone(), cx.clone());
        tokio::task::spawn_blocking(move || me.prune(&cx))
            .await
            .unwrap_or_else(|e| Done::fail(format!("prune stopped: {e}")))
    }
}

impl Usage {
    fn usage(&self) -> Done {
        // Looking is allowed anywhere the agent can read; only pruning is held to paths.
        let found = match list(&self.dir, &self.pattern, self.recursive) {
            Ok(f) => f,
            Err(e) => return Done::fail(e),
        };
        let now = SystemTime::now();
        let total: u64 = found.iter().map(|f| f.size).sum();
        let old = found
            .iter()
            .filter(|f| older(f, self.older_than_days, now))
            .count();
        let mut out = format!(
            "{}: {} file(s), {} of {} MiB allowed",
            self.dir.display(),
            found.len(),
            human(total),
            self.max_total_mb
        );
        if old > 0 {
            let _ = write!(out, ", {old} older than allowed");
        }
        Done::from(total <= self.max_total_mb * MB && old == 0, out)
    }

    /// Runs it.
    pub async fn run(&self) -> Done {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.usage())
            .await
            .unwrap_or_else(|e| Done::fail(format!("usage stopped: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_like_a_shell() {
        assert!(glob("*.log", "pos.log"));
        assert!(glob("*.log*", "pos.log.3.gz"));
        assert!(glob("pos-????.txt", "pos-2026.txt"));
        assert!(!glob("pos-????.txt", "pos-26.txt"));
        assert!(!glob("*.log", "pos.log.1"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
    }
}
