//! `service.status` and `service.restart`: through systemd where it runs the gateway
//! (`/run/systemd/system` exists), otherwise through Debian's `service` command (System V
//! init scripts, as in containers and on older gateways).
//!
//! ```toml
//! action = "service.restart"
//! args = { name = "pos-server" }   # must be listed in [routines] services
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::{Cx, Done};
use crate::process::{run_args, Opts};

/// How long `systemctl`/`service` may take.
const TIMEOUT: Duration = Duration::from_secs(90);

/// Whether `s` can be a service (unit) name: letters, digits, `-_.@:`, no path.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@:".contains(&b))
}

/// Whether systemd is the init system.
pub fn systemd() -> bool {
    std::path::Path::new("/run/systemd/system").is_dir()
}

/// `service.status`: the service is running.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Status {
    /// Service (unit) name.
    pub name: String,
}

/// `service.restart`: restarts the service (starts it when stopped).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restart {
    /// Service (unit) name.
    pub name: String,
}

async fn manage(verb: &str, name: &str, cx: &Cx) -> Done {
    if !valid_name(name) {
        return Done::fail(format!("{name:?} is not a service name"));
    }
    let opts = Opts::new(TIMEOUT, cx.policy.max_output_bytes);
    let r = if systemd() {
        let verb = if verb == "status" { "is-active" } else { verb };
        run_args(&["systemctl", verb, "--", name], &opts).await
    } else {
        run_args(&["service", name, verb], &opts).await
    };
    match r {
        Ok(o) => Done::from(o.success(), o.describe()),
        Err(e) => Done::fail(e),
    }
}

impl Status {
    /// Runs it.
    pub async fn run(&self, cx: &Cx) -> Done {
        let d = manage("status", &self.name, cx).await;
        let state = if d.ok { "running" } else { "not running" };
        Done::from(d.ok, format!("{} {state}: {}", self.name, d.output))
    }
}

impl Restart {
    /// Runs it.
    pub async fn run(&self, cx: &Cx) -> Done {
        let d = manage("restart", &self.name, cx).await;
        let how = if d.ok { "restarted" } else { "restart failed" };
        Done::from(d.ok, format!("{} {how}: {}", self.name, d.output))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_cannot_be_options_or_paths() {
        assert!(valid_name("cups"));
        assert!(valid_name("pos-server@1.service"));
        assert!(!valid_name("--now"));
        assert!(!valid_name("../../bin/sh"));
        assert!(!valid_name("a b"));
        assert!(!valid_name(""));
    }
}
