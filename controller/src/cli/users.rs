//! `storefleet users` (admins), `storefleet tokens` (everyone's own API tokens) and
//! `storefleet broker-config` (who may do what at an external broker).

use clap::Subcommand;
use serde_json::{json, Value};

use super::table::{output, render, rows};
use super::{enc, CliError, Client};

/// `users` subcommands.
#[derive(Debug, Subcommand)]
pub enum UsersCmd {
    /// Every user with their role.
    List,
    /// A new user; the password is read from one line of stdin.
    Add {
        /// Sign-in name (an engineer's is their engineer id).
        name: String,
        /// viewer, engineer, dispatcher or admin.
        #[arg(long)]
        role: String,
    },
    /// Change a user's role (their tokens come down with it).
    Role {
        /// User name.
        name: String,
        /// viewer, engineer, dispatcher or admin.
        role: String,
    },
    /// Disable a user: no sign-in, no tokens, sessions end.
    Disable {
        /// User name.
        name: String,
    },
    /// Enable a disabled user again.
    Enable {
        /// User name.
        name: String,
    },
    /// Delete a user; their sessions end and their tokens are revoked.
    Delete {
        /// User name.
        name: String,
    },
    /// Set a user's password (one line of stdin); their other sessions end.
    Password {
        /// User name.
        name: String,
    },
}

/// `tokens` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokensCmd {
    /// Your API tokens (an admin sees everyone's), with their last use.
    List,
    /// A new API token of yours, printed once.
    Create {
        /// What uses it, e.g. "ci" or "grafana".
        name: String,
        /// Its role, at most yours (default: yours).
        #[arg(long)]
        role: Option<String>,
    },
    /// Revoke a token.
    Revoke {
        /// Token id (`k-...`).
        id: String,
    },
}

/// One line of stdin (a password), after saying what it is for on stderr.
pub fn stdin_line(what: &str) -> Result<String, CliError> {
    eprintln!("{what} (one line on stdin):");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| CliError::Failed(format!("cannot read the password: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

const USER_KEYS: [&str; 4] = ["name", "role", "created_at", "disabled_at"];

/// Runs a `users` command.
pub async fn run_users(client: &Client, cmd: UsersCmd, json_out: bool) -> Result<String, CliError> {
    let one = |v: &Value| {
        output(
            json_out,
            v,
            render(&USER_KEYS, &rows(&json!([v]), &USER_KEYS)),
        )
    };
    match cmd {
        UsersCmd::List => {
            let v = client.call("GET", "/api/v1/users", None).await?;
            Ok(output(
                json_out,
                &v,
                render(&USER_KEYS, &rows(&v, &USER_KEYS)),
            ))
        }
        UsersCmd::Add { name, role } => {
            let password = stdin_line(&format!("password for {name}"))?;
            let v = client
                .call(
                    "POST",
                    "/api/v1/users",
                    Some(&json!({"name": name, "role": role, "password": password})),
                )
                .await?;
            Ok(one(&v))
        }
        UsersCmd::Role { name, role } => {
            let v = client
                .call(
                    "PATCH",
                    &format!("/api/v1/users/{}", enc(&name)),
                    Some(&json!({ "role": role })),
                )
                .await?;
            Ok(one(&v))
        }
        UsersCmd::Disable { name } => {
            let v = client
                .call(
                    "PATCH",
                    &format!("/api/v1/users/{}", enc(&name)),
                    Some(&json!({ "disabled": true })),
                )
                .await?;
            Ok(one(&v))
        }
        UsersCmd::Enable { name } => {
            let v = client
                .call(
                    "PATCH",
                    &format!("/api/v1/users/{}", enc(&name)),
                    Some(&json!({ "disabled": false })),
                )
                .await?;
            Ok(one(&v))
        }
        UsersCmd::Delete { name } => {
            client
                .call("DELETE", &format!("/api/v1/users/{}", enc(&name)), None)
                .await?;
            Ok(output(
                json_out,
                &json!({ "deleted": name }),
                format!("user {name} deleted; their sessions ended and tokens revoked\n"),
            ))
        }
        UsersCmd::Password { name } => {
            let password = stdin_line(&format!("new password for {name}"))?;
            let v = client
                .call(
                    "POST",
                    &format!("/api/v1/users/{}/password", enc(&name)),
                    Some(&json!({ "password": password })),
                )
                .await?;
            Ok(output(
                json_out,
                &v,
                format!(
                    "password of {name} changed; {} other session(s) ended\n",
                    v["sessions_ended"]
                ),
            ))
        }
    }
}

const TOKEN_KEYS: [&str; 7] = [
    "id",
    "name",
    "user",
    "role",
    "created_at",
    "last_used",
    "revoked_at",
];

/// Runs a `tokens` command.
pub async fn run_tokens(
    client: &Client,
    cmd: TokensCmd,
    json_out: bool,
) -> Result<String, CliError> {
    match cmd {
        TokensCmd::List => {
            let v = client.call("GET", "/api/v1/tokens", None).await?;
            Ok(output(
                json_out,
                &v,
                render(&TOKEN_KEYS, &rows(&v, &TOKEN_KEYS)),
            ))
        }
        TokensCmd::Create { name, role } => {
            let v = client
                .call(
                    "POST",
                    "/api/v1/tokens",
                    Some(&json!({ "name": name, "role": role })),
                )
                .await?;
            let text = v["token"].as_str().unwrap_or_default();
            Ok(output(json_out, &v, format!("{text}\n")))
        }
        TokensCmd::Revoke { id } => {
            let v = client
                .call("POST", &format!("/api/v1/tokens/{}/revoke", enc(&id)), None)
                .await?;
            Ok(output(json_out, &v, format!("token {id} revoked\n")))
        }
    }
}

/// `broker-config` subcommands.
#[derive(Debug, Subcommand)]
pub enum BrokerConfigCmd {
    /// Write `storefleet.passwd` (mode 0640, group mosquitto), `storefleet.acl` and
    /// `storefleet.conf` for Mosquitto into DIR (include it with `include_dir DIR`), then
    /// reload Mosquitto (SIGHUP). Run again after enrolling or revoking gateways.
    Mosquitto {
        /// Where Mosquitto reads them.
        #[arg(long, default_value = "/etc/mosquitto/conf.d")]
        dir: std::path::PathBuf,
    },
}

/// Runs a `broker-config` command: the files come from the API and are written here.
pub async fn run_broker_config(client: &Client, cmd: BrokerConfigCmd) -> Result<String, CliError> {
    let BrokerConfigCmd::Mosquitto { dir } = cmd;
    let d = dir.display().to_string();
    let v = client
        .call(
            "GET",
            &format!("/api/v1/broker/mosquitto?dir={}", enc(&d)),
            None,
        )
        .await?;
    let write = |name: &str, key: &str, private: bool| -> Result<(), CliError> {
        let path = dir.join(name);
        let text = v[key].as_str().unwrap_or_default();
        let fail = |e: std::io::Error| CliError::Failed(format!("{}: {e}", path.display()));
        let tmp = dir.join(format!(".{name}.new"));
        std::fs::write(&tmp, text).map_err(fail)?;
        if private {
            // Readable by Mosquitto, which drops to its own user and reads the file again
            // on every reload; nobody else.
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o640)).map_err(fail)?;
            if let Ok(Some(g)) = nix::unistd::Group::from_name("mosquitto") {
                let _ = nix::unistd::chown(&tmp, None, Some(g.gid));
            }
        }
        std::fs::rename(&tmp, &path).map_err(fail)
    };
    std::fs::create_dir_all(&dir).map_err(|e| CliError::Failed(format!("{d}: {e}")))?;
    write("storefleet.passwd", "passwd", true)?;
    write("storefleet.acl", "acl", false)?;
    write("storefleet.conf", "conf", false)?;
    Ok(format!(
        "wrote storefleet.passwd ({} agents), storefleet.acl and storefleet.conf in {d}; reload Mosquitto (SIGHUP)\n",
        v["agents"]
    ))
}
