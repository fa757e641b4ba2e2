//! `exec`: runs a command from the agent's allow-list (`[routines.commands.NAME]`), never a
//! command line from the routine: a routine names the command, the gateway's config says
//! what it is, as which user it runs and for how long at most.
//!
//! ```toml
//! action = "exec"
//! args = { command = "pos-selftest" }
//! ```
//!
//! It holds when the command exits 0; its output (stdout and stderr, capped at
//! `[routines] max_output_bytes`) goes into the run record.

use std::time::Duration;

use serde::Deserialize;

use super::{Cx, Done};
use crate::process::{run, Opts};

/// `exec`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exec {
    /// A name under `[routines.commands]`.
    pub command: String,
}

impl Exec {
    /// Runs it.
    pub async fn run(&self, cx: &Cx) -> Done {
        let Some(c) = cx.policy.commands.get(&self.command) else {
            return Done::fail(format!(
                "command {:?} is not configured (routines.commands)",
                self.command
            ));
        };
        let opts = Opts {
            timeout: Duration::from_secs(c.timeout_secs),
            cap: cx.policy.max_output_bytes,
            user: Some(c.user.clone()),
            stderr: true,
        };
        match run(&c.argv, &opts).await {
            Ok(o) => Done::from(o.success(), o.describe()),
            Err(e) => Done::fail(e),
        }
    }
}
