//! `[store]` and `[routines]`: the store's trading hours, and what maintenance routines
//! may do on this gateway.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use storefleet_schedule::StoreTime;

use super::ConfigError;
use crate::routines::actions;

/// `[store]`: the store's trading hours and time zone; routine windows are judged
/// against them. Enrollment fills them in from the controller's store record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSection {
    /// Trading hours, e.g. `Mo-Sa 08:00-20:00; Su 10:00-16:00`, or `24/7`; empty: never
    /// open, so a routine that waits for the store to close may always run.
    pub hours: String,
    /// IANA time zone of the store, e.g. `Europe/Berlin`.
    pub timezone: String,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            hours: String::new(),
            timezone: "UTC".into(),
        }
    }
}

/// The actions allowed when `[routines] allow` is not set: those that only look.
pub const READ_ONLY_ACTIONS: [&str; 9] = [
    "service.status",
    "cups.queue_state",
    "disk.check",
    "backup.verify",
    "http.check",
    "tcp.check",
    "clock.offset",
    "tls.cert_expiry",
    "files.usage",
];

/// `[routines]`: where local routines live and what routines may do here. An action a
/// routine names that is not allowed makes the whole routine refused, before any step runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutinesSection {
    /// Run routines at all.
    pub enabled: bool,
    /// Directory of local routine files (`*.toml`); relative to the config file's directory.
    pub dir: PathBuf,
    /// Built-in actions routines may use: names (`service.restart`) or a family
    /// (`cups.*`). Defaults to the actions that only look.
    pub allow: Vec<String>,
    /// Services `service.restart` may restart (`service.status` may look at any).
    pub services: Vec<String>,
    /// Directories `files.prune` may delete in and `backup.dir` may read from and write to
    /// (a path must be inside one of them after resolving links).
    pub paths: Vec<PathBuf>,
    /// Commands `exec` may run, by name.
    pub commands: BTreeMap<String, ExecCommand>,
    /// NTP server (`host:port`) for `clock.offset` when a step does not name one.
    pub ntp_server: String,
    /// Largest output kept from a command, bytes.
    pub max_output_bytes: usize,
}

impl Default for RoutinesSection {
    fn default() -> Self {
        RoutinesSection {
            enabled: true,
            dir: PathBuf::from("routines.d"),
            allow: READ_ONLY_ACTIONS.iter().map(|s| (*s).to_owned()).collect(),
            services: Vec::new(),
            paths: Vec::new(),
            commands: BTreeMap::new(),
            ntp_server: "pool.ntp.org:123".into(),
            max_output_bytes: 64 * 1024,
        }
    }
}

/// `[routines.commands.NAME]`: one command `exec` may run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecCommand {
    /// Program (absolute path) and arguments; no shell.
    pub argv: Vec<String>,
    /// User to run it as; the agent must be able to switch to it (it refuses to run a
    /// command as root unless the user is `root` explicitly).
    #[serde(default = "default_exec_user")]
    pub user: String,
    /// Longest it may run, seconds (the step's timeout applies too; the shorter wins).
    #[serde(default = "default_exec_timeout")]
    pub timeout_secs: u64,
}

fn default_exec_user() -> String {
    "nobody".into()
}

fn default_exec_timeout() -> u64 {
    60
}

impl StoreSection {
    /// The store's clock and hours.
    pub fn store_time(&self) -> Result<StoreTime, ConfigError> {
        StoreTime::new(&self.hours, &self.timezone)
            .map_err(|e| ConfigError::validation("store", e.to_string()))
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.store_time().map(|_| ())
    }
}

impl RoutinesSection {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |k: &str, m: String| Err(ConfigError::validation(k, m));
        for (i, a) in self.allow.iter().enumerate() {
            if !actions::is_known_pattern(a) {
                return bad(
                    &format!("routines.allow[{i}]"),
                    format!(
                        "{a:?} is not a built-in action or family; known: {}",
                        actions::NAMES.join(", ")
                    ),
                );
            }
        }
        for (i, s) in self.services.iter().enumerate() {
            if !actions::service::valid_name(s) {
                return bad(
                    &format!("routines.services[{i}]"),
                    format!("{s:?} is not a service name"),
                );
            }
        }
        for (i, p) in self.paths.iter().enumerate() {
            if !p.is_absolute() || p.parent().is_none() {
                return bad(
                    &format!("routines.paths[{i}]"),
                    format!("an absolute directory other than /, got {}", p.display()),
                );
            }
        }
        for (name, c) in &self.commands {
            let k = format!("routines.commands.{name}");
            if c.argv.is_empty() || !c.argv[0].starts_with('/') {
                return bad(
                    &format!("{k}.argv"),
                    "an absolute program path and its arguments".into(),
                );
            }
            if c.user.is_empty() {
                return bad(&format!("{k}.user"), "a user name".into());
            }
            if !(1..=3600).contains(&c.timeout_secs) {
                return bad(&format!("{k}.timeout_secs"), "1 to 3600 seconds".into());
            }
        }
        if self
            .ntp_server
            .rsplit_once(':')
            .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        {
            return bad("routines.ntp_server", "host:port".into());
        }
        if self.max_output_bytes < 256 {
            return bad("routines.max_output_bytes", "at least 256 bytes".into());
        }
        Ok(())
    }
}
