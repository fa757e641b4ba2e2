//! `disk.check`: the file system holding `path` has enough room.
//!
//! ```toml
//! action = "disk.check"
//! args = { path = "/var", min_free_percent = 10, min_free_mb = 2048 }
//! ```

use std::path::PathBuf;

use serde::Deserialize;

use super::Done;

fn root() -> PathBuf {
    PathBuf::from("/")
}

fn ten() -> f64 {
    10.0
}

/// `disk.check`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// A path on the file system to check.
    #[serde(default = "root")]
    pub path: PathBuf,
    /// Free space at least this share of the size, percent.
    #[serde(default = "ten")]
    pub min_free_percent: f64,
    /// Free space at least this many MiB.
    #[serde(default)]
    pub min_free_mb: u64,
}

/// Free and total bytes of the file system holding `path` (as an unprivileged user sees it).
pub fn space(path: &std::path::Path) -> Result<(u64, u64), String> {
    let s = nix::sys::statvfs::statvfs(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let unit = s.fragment_size();
    Ok((s.blocks_available() * unit, s.blocks() * unit))
}

impl Check {
    /// Runs it.
    pub fn run(&self) -> Done {
        let (free, total) = match space(&self.path) {
            Ok(s) => s,
            Err(e) => return Done::fail(e),
        };
        let pct = if total == 0 {
            0.0
        } else {
            free as f64 * 100.0 / total as f64
        };
        let mb = free / (1024 * 1024);
        Done::from(
            pct >= self.min_free_percent && mb >= self.min_free_mb,
            format!(
                "{}: {mb} MiB free of {} MiB ({pct:.1}%), need {}% and {} MiB",
                self.path.display(),
                total / (1024 * 1024),
                self.min_free_percent,
                self.min_free_mb
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_file_system_has_a_size_and_an_impossible_limit_fails() {
        let (free, total) = space(std::path::Path::new("/")).unwrap();
        assert!(total > 0 && free <= total);
        let ok = Check {
            path: root(),
            min_free_percent: 0.0,
            min_free_mb: 0,
        }
        .run();
        assert!(ok.ok, "{}", ok.output);
        let no = Check {
            path: root(),
            min_free_percent: 101.0,
            min_free_mb: 0,
        }
        .run();
        assert!(!no.ok && no.output.contains("need 101%"), "{}", no.output);
        let gone = Check {
            path: "/no/such/dir".into(),
            min_free_percent: 1.0,
            min_free_mb: 0,
        }
        .run();
        assert!(!gone.ok && gone.output.contains("/no/such/dir"));
    }
}
