//! The built-in actions a routine step can name, one file each.
//!
//! A step's `action` and `args` are parsed into an [`Action`] when the routine is loaded, so
//! that a misspelt argument is reported before anything runs. [`Action::permitted`] then
//! holds it to the agent's config (`[routines]`: the allow-list, the services that may be
//! restarted, the directories that may be touched, the commands that may be run); a
//! routine with one step that is not permitted is refused as a whole.
//!
//! Running an action yields [`Done`]: whether the step's condition holds (for a check or a
//! verification) or the change was made (for an action), and a short output for the run
//! record. An action that cannot even start (a missing tool, a bad path) is `ok = false`
//! with the reason as its output: the run records it like any failed attempt.

pub mod backup;
pub mod clock;
pub mod cups;
pub mod disk;
pub mod exec;
pub mod files;
pub mod http;
pub mod service;
pub mod tcp;
pub mod tls;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::config::RoutinesSection;

/// Every built-in action, by name.
pub const NAMES: [&str; 17] = [
    "service.status",
    "service.restart",
    "cups.queue_state",
    "cups.enable",
    "cups.cancel_stale",
    "cups.test_page",
    "files.prune",
    "files.usage",
    "disk.check",
    "backup.dir",
    "backup.verify",
    "http.check",
    "tcp.check",
    "clock.offset",
    "tls.cert_expiry",
    "exec",
    "wait",
];

/// Whether `pattern` (a name or `family.*`) names at least one built-in action.
pub fn is_known_pattern(pattern: &str) -> bool {
    NAMES.iter().any(|n| matches(pattern, n))
}

fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix(".*") {
        Some(family) => name
            .strip_prefix(family)
            .is_some_and(|rest| rest.starts_with('.')),
        None => pattern == name,
    }
}

/// Whether `[routines] allow` lets a routine use `name`.
pub fn allowed(allow: &[String], name: &str) -> bool {
    allow.iter().any(|p| matches(p, name))
}

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    /// The condition holds, or the change was made.
    pub ok: bool,
    /// For the run record.
    pub output: String,
}

impl Done {
    /// Success with this output.
    pub fn ok(output: impl Into<String>) -> Done {
        Done {
            ok: true,
            output: output.into(),
        }
    }

    /// Failure with this output.
    pub fn fail(output: impl Into<String>) -> Done {
        Done {
            ok: false,
            output: output.into(),
        }
    }

    /// `ok` decides.
    pub fn from(ok: bool, output: impl Into<String>) -> Done {
        Done {
            ok,
            output: output.into(),
        }
    }
}

/// What actions need from the agent.
#[derive(Debug, Clone)]
pub struct Cx {
    /// `[routines]` of the config in force.
    pub policy: RoutinesSection,
}

/// One parsed step action.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `service.status`
    ServiceStatus(service::Status),
    /// `service.restart`
    ServiceRestart(service::Restart),
    /// `cups.queue_state`
    CupsQueueState(cups::QueueState),
    /// `cups.enable`
    CupsEnable(cups::Enable),
    /// `cups.cancel_stale`
    CupsCancelStale(cups::CancelStale),
    /// `cups.test_page`
    CupsTestPage(cups::TestPage),
    /// `files.prune`
    FilesPrune(files::Prune),
    /// `files.usage`
    FilesUsage(files::Usage),
    /// `disk.check`
    DiskCheck(disk::Check),
    /// `backup.dir`
    BackupDir(backup::Dir),
    /// `backup.verify`
    BackupVerify(backup::Verify),
    /// `http.check`
    HttpCheck(http::Check),
    /// `tcp.check`
    TcpCheck(tcp::Check),
    /// `clock.offset`
    ClockOffset(clock::Offset),
    /// `tls.cert_expiry`
    TlsCertExpiry(tls::CertExpiry),
    /// `exec`
    Exec(exec::Exec),
    /// `wait`: lets a service settle between an action and its verification.
    Wait(Wait),
}

/// `wait`: sleeps, then succeeds.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wait {
    /// Seconds.
    pub secs: u64,
}

fn args<T: DeserializeOwned>(name: &str, table: &toml::Table) -> Result<T, String> {
    toml::Value::Table(table.clone())
        .try_into()
        .map_err(|e: toml::de::Error| format!("{name} args: {}", e.message().trim()))
}

impl Action {
    /// Parses a step's action and arguments.
    pub fn parse(name: &str, table: &toml::Table) -> Result<Action, String> {
        Ok(match name {
            "service.status" => Action::ServiceStatus(args(name, table)?),
            "service.restart" => Action::ServiceRestart(args(name, table)?),
            "cups.queue_state" => Action::CupsQueueState(args(name, table)?),
            "cups.enable" => Action::CupsEnable(args(name, table)?),
            "cups.cancel_stale" => Action::CupsCancelStale(args(name, table)?),
            "cups.test_page" => Action::CupsTestPage(args(name, table)?),
            "files.prune" => Action::FilesPrune(args(name, table)?),
            "files.usage" => Action::FilesUsage(args(name, table)?),
            "disk.check" => Action::DiskCheck(args(name, table)?),
            "backup.dir" => Action::BackupDir(args(name, table)?),
            "backup.verify" => Action::BackupVerify(args(name, table)?),
            "http.check" => Action::HttpCheck(args(name, table)?),
            "tcp.check" => Action::TcpCheck(args(name, table)?),
            "clock.offset" => Action::ClockOffset(args(name, table)?),
            "tls.cert_expiry" => Action::TlsCertExpiry(args(name, table)?),
            "exec" => Action::Exec(args(name, table)?),
            "wait" => Action::Wait(args(name, table)?),
            other => {
                return Err(format!(
                    "unknown action {other:?}; built-in actions: {}",
                    NAMES.join(", ")
                ))
            }
        })
    }

    /// Whether the config lets this step run; the error says which setting refuses it.
    pub fn permitted(&self, name: &str, policy: &RoutinesSection) -> Result<(), String> {
        if name != "wait" && !allowed(&policy.allow, name) {
            return Err(format!(
                "action {name} is not allowed by this agent's config (routines.allow)"
            ));
        }
        match self {
            Action::ServiceRestart(a) if !policy.services.contains(&a.name) => {
                return Err(format!(
                    "service {:?} may not be restarted (routines.services)",
                    a.name
                ));
            }
            Action::FilesPrune(a) => inside(&policy.paths, &a.dir)?,
            Action::BackupDir(a) => {
                inside(&policy.paths, &a.source)?;
                inside(&policy.paths, &a.dest)?;
            }
            Action::Exec(a) if !policy.commands.contains_key(&a.command) => {
                return Err(format!(
                    "command {:?} is not configured (routines.commands)",
                    a.command
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// Runs one attempt.
    pub async fn run(&self, cx: &Cx) -> Done {
        match self {
            Action::ServiceStatus(a) => a.run(cx).await,
            Action::ServiceRestart(a) => a.run(cx).await,
            Action::CupsQueueState(a) => a.run(cx).await,
            Action::CupsEnable(a) => a.run(cx).await,
            Action::CupsCancelStale(a) => a.run(cx).await,
            Action::CupsTestPage(a) => a.run(cx).await,
            Action::FilesPrune(a) => a.run(cx).await,
            Action::FilesUsage(a) => a.run().await,
            Action::DiskCheck(a) => a.run(),
            Action::BackupDir(a) => a.run(cx).await,
            Action::BackupVerify(a) => a.run().await,
            Action::HttpCheck(a) => a.run().await,
            Action::TcpCheck(a) => a.run().await,
            Action::ClockOffset(a) => a.run(cx).await,
            Action::TlsCertExpiry(a) => a.run().await,
            Action::Exec(a) => a.run(cx).await,
            Action::Wait(w) => {
                tokio::time::sleep(std::time::Duration::from_secs(w.secs)).await;
                Done::ok(format!("waited {} s", w.secs))
            }
        }
    }
}

/// Whether `path` lies inside one of `roots` as written (no `..`); checked again after
/// resolving links when the action runs ([`resolve_inside`]).
fn inside(roots: &[PathBuf], path: &Path) -> Result<(), String> {
    if !path.is_absolute()
        || path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(format!(
            "{} must be an absolute path without '..'",
            path.display()
        ));
    }
    if roots.iter().any(|r| path.starts_with(r)) {
        Ok(())
    } else {
        Err(format!(
            "{} is outside the directories routines may touch (routines.paths)",
            path.display()
        ))
    }
}

/// `path` with links resolved, if it is still inside one of `roots` (resolved too).
pub fn resolve_inside(roots: &[PathBuf], path: &Path) -> Result<PathBuf, String> {
    let real = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let ok = roots
        .iter()
        .any(|r| std::fs::canonicalize(r).is_ok_and(|r| real.starts_with(r)));
    if ok {
        Ok(real)
    } else {
        Err(format!(
            "{} resolves to {}, outside routines.paths",
            path.display(),
            real.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_name_families_and_actions() {
        assert!(is_known_pattern("cups.*"));
        assert!(is_known_pattern("exec"));
        assert!(!is_known_pattern("cup.*"));
        assert!(!is_known_pattern("format.disk"));
        let allow = vec!["cups.*".to_owned(), "exec".to_owned()];
        assert!(allowed(&allow, "cups.enable"));
        assert!(allowed(&allow, "exec"));
        assert!(!allowed(&allow, "service.restart"));
        assert!(!allowed(&["c.*".to_owned()], "cups.enable"));
    }

    #[test]
    fn bad_arguments_are_named() {
        let t: toml::Table = toml::from_str("queue = 3").unwrap();
        let e = Action::parse("cups.enable", &t).unwrap_err();
        assert!(e.contains("cups.enable") && e.contains("string"), "{e}");
        let t: toml::Table = toml::from_str("queue = \"r\"\ncolour = true").unwrap();
        let e = Action::parse("cups.enable", &t).unwrap_err();
        assert!(e.contains("colour"), "{e}");
        let e = Action::parse("disk.format", &toml::Table::new()).unwrap_err();
        assert!(e.contains("unknown action"), "{e}");
    }

    #[test]
    fn policy_refuses_what_config_does_not_allow() {
        let mut p = RoutinesSection::default();
        let restart = Action::parse(
            "service.restart",
            &toml::from_str("name = \"cups\"").unwrap(),
        )
        .unwrap();
        let e = restart.permitted("service.restart", &p).unwrap_err();
        assert!(e.contains("routines.allow"), "{e}");
        p.allow.push("service.restart".into());
        let e = restart.permitted("service.restart", &p).unwrap_err();
        assert!(e.contains("routines.services"), "{e}");
        p.services.push("cups".into());
        restart.permitted("service.restart", &p).unwrap();

        p.allow.push("files.*".into());
        p.paths.push("/var/log/pos".into());
        let prune = |dir: &str| {
            Action::parse(
                "files.prune",
                &toml::from_str(&format!("dir = {dir:?}\nolder_than_days = 7")).unwrap(),
            )
            .unwrap()
        };
        prune("/var/log/pos/old")
            .permitted("files.prune", &p)
            .unwrap();
        let e = prune("/var/log/pos/../../etc")
            .permitted("files.prune", &p)
            .unwrap_err();
        assert!(e.contains(".."), "{e}");
        let e = prune("/etc").permitted("files.prune", &p).unwrap_err();
        assert!(e.contains("routines.paths"), "{e}");
    }
}
