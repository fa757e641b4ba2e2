//! Config changes from the controller (`apply-config` commands, pushed as fleet tasks).
//!
//! The change becomes a drop-in file in `agent.d/` and is applied through the same reload
//! as `SIGHUP`. Only sections named in the agent's own `controller.remote_config` may
//! appear, and never those that decide what the controller may do (`controller`,
//! `routines`, `agent`): a remote change cannot widen its own permissions. A change that
//! does not load is undone (the previous drop-in of the same name comes back) and the
//! running configuration stays.

use std::path::{Path, PathBuf};

use storefleet_protocol::message::CommandStatus;

/// Sections a config task may change, at most.
pub const SECTIONS: [&str; 5] = ["devices", "host", "inventory", "store", "upload"];

/// Largest change accepted.
const MAX_BYTES: usize = 64 * 1024;

/// The drop-in file of change `name`.
pub fn dropin_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("70-task-{name}.toml"))
}

/// Checks a change against what this agent allows; the error says why it is refused.
pub fn check(name: &str, toml_text: &str, allowed: &[String]) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 40
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(format!(
            "config change name {name:?}: expected 1 to 40 of a-z, 0-9, '-'"
        ));
    }
    if toml_text.len() > MAX_BYTES {
        return Err(format!(
            "config change: {} bytes, at most {MAX_BYTES}",
            toml_text.len()
        ));
    }
    let table: toml::Table =
        toml::from_str(toml_text).map_err(|e| format!("config change is not TOML: {e}"))?;
    if table.is_empty() {
        return Err("config change is empty".into());
    }
    for key in table.keys() {
        if !allowed.iter().any(|a| a == key) || !SECTIONS.contains(&key.as_str()) {
            return Err(format!(
                "config section [{key}] may not be changed remotely here (controller.remote_config = {allowed:?})"
            ));
        }
    }
    Ok(())
}

/// Writes `content` to `path` atomically.
fn write_atomic(path: &Path, content: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, content)?;
    std::fs::rename(&tmp, path)
}

/// What applying a change did.
pub struct Applied {
    /// How it ended.
    pub status: CommandStatus,
    /// One line for people.
    pub message: String,
}

/// Applies change `name` in `dir`: writes the drop-in, then `reload`s; undoes it when the
/// reload refuses the result.
pub async fn apply<F, Fut>(
    dir: &Path,
    name: &str,
    toml_text: &str,
    origin: &str,
    reload: F,
) -> Applied
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<String, String>>,
{
    let path = dropin_path(dir, name);
    let previous = std::fs::read_to_string(&path).ok();
    let content = format!(
        "# Written by the controller ({origin}); remove and reload to undo.\n{toml_text}\n"
    );
    if let Err(e) = std::fs::create_dir_all(dir).and_then(|()| write_atomic(&path, &content)) {
        return Applied {
            status: CommandStatus::Failed,
            message: format!("cannot write {}: {e}", path.display()),
        };
    }
    match reload().await {
        Ok(summary) => {
            tracing::info!(file = %path.display(), %summary, "Config change applied");
            Applied {
                status: CommandStatus::Ok,
                message: summary,
            }
        }
        Err(e) => {
            let undo = match &previous {
                Some(p) => write_atomic(&path, p),
                None => std::fs::remove_file(&path),
            };
            if let Err(u) = undo {
                tracing::error!(file = %path.display(), error = %u, "Cannot undo a refused config change");
            }
            // The running configuration was kept; reloading again only re-reads what is there.
            let _ = reload().await;
            tracing::warn!(file = %path.display(), error = %e, "Config change refused and undone");
            Applied {
                status: CommandStatus::Failed,
                message: format!("refused, previous configuration kept: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowed_sections_pass() {
        let allowed = vec!["inventory".to_owned(), "store".to_owned()];
        check("inv-rate", "[inventory]\ninterval_secs = 600\n", &allowed).unwrap();
        let e = check("x", "[controller]\npublic_key = \"k\"\n", &allowed).unwrap_err();
        assert!(e.contains("[controller]"), "{e}");
        // Listed locally but never remotely changeable.
        let e = check(
            "x",
            "[routines]\nallow = [\"exec\"]\n",
            &["routines".to_owned()],
        )
        .unwrap_err();
        assert!(e.contains("[routines]"), "{e}");
        assert!(check("Bad/Name", "[store]\n", &allowed)
            .unwrap_err()
            .contains("name"));
        assert!(check("x", "[store", &allowed)
            .unwrap_err()
            .contains("not TOML"));
        assert!(check("x", "", &allowed).unwrap_err().contains("empty"));
    }
}
