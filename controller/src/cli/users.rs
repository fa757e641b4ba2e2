//! `storefleet users` (admins), `storefleet tokens` (everyone's own API tokens) and
//! `storefleet broker-config` (who may do what at an external broker).

use clap::Subcommand;
use serde_json::json;

use super::table::{json_of, output, render, rows};
use super::{CliError, Client};
use crate::auth::users::{NewUser, PasswordChange, UserChange};
use crate::auth::{NewToken, Role, User};

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
    let one = |u: &User| {
        let v = json_of(u);
        output(
            json_out,
            &v,
            render(&USER_KEYS, &rows(&json!([v]), &USER_KEYS)),
        )
    };
    let change = |name: String, ch: UserChange| async move {
        client.change_user(&name, &ch).await.map(|u| one(&u))
    };
    let disabled = |name: String, d: bool| {
        let ch = UserChange {
            disabled: Some(d),
            ..UserChange::default()
        };
        change(name, ch)
    };
    match cmd {
        UsersCmd::List => {
            let v = json_of(&client.users().await?);
            Ok(output(
                json_out,
                &v,
                render(&USER_KEYS, &rows(&v, &USER_KEYS)),
            ))
        }
        UsersCmd::Add { name, role } => {
            let role = role_named(&role)?;
            let password = stdin_line(&format!("password for {name}"))?;
            let u = NewUser {
                name,
                role,
                password,
            };
            Ok(one(&client.add_user(&u).await?))
        }
        UsersCmd::Role { name, role } => {
            let role = Some(role_named(&role)?);
            change(
                name,
                UserChange {
                    role,
                    ..UserChange::default()
                },
            )
            .await
        }
        UsersCmd::Disable { name } => disabled(name, true).await,
        UsersCmd::Enable { name } => disabled(name, false).await,
        UsersCmd::Delete { name } => {
            client.delete_user(&name).await?;
            Ok(output(
                json_out,
                &json!({ "deleted": name }),
                format!("user {name} deleted; their sessions ended and tokens revoked\n"),
            ))
        }
        UsersCmd::Password { name } => {
            let password = stdin_line(&format!("new password for {name}"))?;
            let ch = PasswordChange {
                password,
                old_password: None,
            };
            let done = client.set_password(&name, &ch).await?;
            Ok(output(
                json_out,
                &json_of(&done),
                format!(
                    "password of {name} changed; {} other session(s) ended\n",
                    done.sessions_ended
                ),
            ))
        }
    }
}

/// A role by its name; the error lists the roles.
fn role_named(name: &str) -> Result<Role, CliError> {
    Role::parse(name).ok_or_else(|| {
        let all: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        CliError::Failed(format!("unknown role {name:?}: one of {}", all.join(", ")))
    })
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
            let v = json_of(&client.api_tokens().await?);
            Ok(output(
                json_out,
                &v,
                render(&TOKEN_KEYS, &rows(&v, &TOKEN_KEYS)),
            ))
        }
        TokensCmd::Create { name, role } => {
            let role = role.as_deref().map(role_named).transpose()?;
            let created = client.create_api_token(&NewToken { name, role }).await?;
            Ok(output(
                json_out,
                &json_of(&created),
                format!("{}\n", created.token),
            ))
        }
        TokensCmd::Revoke { id } => {
            let v = json_of(&client.revoke_api_token(&id).await?);
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
    let files = client.mosquitto_files(&d).await?;
    let write = |name: &str, text: &str, private: bool| -> Result<(), CliError> {
        let path = dir.join(name);
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
    write("storefleet.passwd", &files.passwd, true)?;
    write("storefleet.acl", &files.acl, false)?;
    write("storefleet.conf", &files.conf, false)?;
    Ok(format!(
        "wrote storefleet.passwd ({} agents), storefleet.acl and storefleet.conf in {d}; reload Mosquitto (SIGHUP)\n",
        files.agents
    ))
}
