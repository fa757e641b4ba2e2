//! The admin subcommands.

use clap::Subcommand;
use serde_json::{json, Value};

use super::table::{json_of, output, render, rows};
use super::{CliError, Client};
use crate::enroll::NewToken;
use crate::stores::Store;

/// Admin commands (over the HTTP API).
#[derive(Debug, Subcommand)]
pub enum AdminCmd {
    /// Store formats: list, show, put FILE, delete.
    Formats {
        /// What to do (default: list).
        #[command(subcommand)]
        cmd: Option<super::openings::FormatsCmd>,
    },
    /// The readiness board: every store with an opening, by day, with what is not ready.
    Openings,
    /// Stores: list, add, import; open from a format, readiness, go-live checks.
    Stores {
        /// What to do (default: list).
        #[command(subcommand)]
        cmd: Option<StoresCmd>,
    },
    /// Agents with presence; `agents revoke ID` refuses an agent's messages from now on.
    Agents {
        /// Only this store.
        #[arg(long)]
        store: Option<String>,
        /// What to do (default: list).
        #[command(subcommand)]
        cmd: Option<AgentsCmd>,
    },
    /// Asset records: search (filters below), `--csv` to export, or `assets show ID`.
    Assets {
        /// What to do (default: search).
        #[command(subcommand)]
        cmd: Option<super::assets::AssetsCmd>,
        /// Free text over serial, model, vendor, host name.
        #[arg(long)]
        q: Option<String>,
        /// Store code.
        #[arg(long)]
        store: Option<String>,
        /// Region.
        #[arg(long)]
        region: Option<String>,
        /// Class.
        #[arg(long)]
        class: Option<String>,
        /// Model.
        #[arg(long)]
        model: Option<String>,
        /// Firmware version.
        #[arg(long)]
        firmware: Option<String>,
        /// Lifecycle state.
        #[arg(long)]
        lifecycle: Option<String>,
        /// Warranty ending within this many days.
        #[arg(long)]
        warranty_days: Option<u32>,
        /// Print CSV (every matching row).
        #[arg(long)]
        csv: bool,
    },
    /// Events, newest first.
    Events {
        /// Store code.
        #[arg(long)]
        store: Option<String>,
        /// Device id.
        #[arg(long)]
        device: Option<String>,
        /// Rows at most.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Messages held apart because the database refused their data: list, retry, drop.
    Ingest {
        /// What to do.
        #[command(subcommand)]
        cmd: super::ingest::IngestCmd,
    },
    /// Enrollment tokens.
    EnrollToken {
        /// What to do.
        #[command(subcommand)]
        cmd: TokenCmd,
    },
    /// Agent releases: make the release key, publish a signed binary, list.
    Release {
        /// What to do.
        #[command(subcommand)]
        cmd: super::release::ReleaseCmd,
    },
    /// Fleet tasks: push a routine in waves, follow, pause, resume, cancel.
    Task {
        /// What to do.
        #[command(subcommand)]
        cmd: super::task::TaskCmd,
    },
    /// Dispatch tickets: list (filters below), show, open, assign, step, resolve, close.
    Tickets {
        /// What to do (default: list).
        #[command(subcommand)]
        cmd: Option<super::tickets::TicketsCmd>,
        /// A status, or `open` (default) for every open one; `all` for every ticket.
        #[arg(long, default_value = "open")]
        status: String,
        /// Store code.
        #[arg(long)]
        store: Option<String>,
        /// Region.
        #[arg(long)]
        region: Option<String>,
        /// Assigned engineer.
        #[arg(long)]
        engineer: Option<String>,
    },
    /// Field engineers: list with their load, add, set status.
    Engineers {
        /// What to do (default: list).
        #[command(subcommand)]
        cmd: Option<super::tickets::EngineersCmd>,
    },
    /// People: list, add with a role, change role, disable, enable, delete, set password.
    Users {
        /// What to do.
        #[command(subcommand)]
        cmd: super::users::UsersCmd,
    },
    /// Files for an external broker that holds each agent to its own topics.
    BrokerConfig {
        /// Which broker.
        #[command(subcommand)]
        cmd: super::users::BrokerConfigCmd,
    },
    /// API tokens: your own (an admin sees all), each with a role at most yours.
    Tokens {
        /// What to do.
        #[command(subcommand)]
        cmd: super::users::TokensCmd,
    },
}

/// `stores` subcommands.
#[derive(Debug, Subcommand)]
pub enum StoresCmd {
    /// Add a store, or with --update change the fields given of one (adding it if new).
    Add {
        /// Store code, e.g. S123.
        code: String,
        /// Name (needed for a new store).
        #[arg(long)]
        name: Option<String>,
        /// Region (new store: none).
        #[arg(long)]
        region: Option<String>,
        /// Address (new store: none).
        #[arg(long)]
        address: Option<String>,
        /// IANA time zone (new store: UTC).
        #[arg(long)]
        timezone: Option<String>,
        /// Trading hours, e.g. "Mo-Sa 08:00-20:00" (new store: none).
        #[arg(long)]
        hours: Option<String>,
        /// Tags for selecting stores in tasks, e.g. pilot,mall; `--tags ""` clears them.
        #[arg(long, value_delimiter = ',')]
        tags: Option<Vec<String>>,
        /// Where the store is: LAT,LON in degrees, e.g. 53.5511,9.9937 (dispatch weighs
        /// engineers' drives to it).
        #[arg(long, allow_hyphen_values = true)]
        at: Option<storefleet_core::geo::Coord>,
        /// Change the store if it exists; fields not given keep their values.
        #[arg(long)]
        update: bool,
    },
    /// Import stores from CSV (code, name, region, address, timezone, trading_hours, tags,
    /// lat, lon, format, opens_on); one bad row imports nothing.
    Import {
        /// The CSV file.
        file: std::path::PathBuf,
        /// Check and count only.
        #[arg(long)]
        dry_run: bool,
    },
    #[command(flatten)]
    Opening(super::openings::OpeningCmd),
}

/// `agents` subcommands.
#[derive(Debug, Subcommand)]
pub enum AgentsCmd {
    /// Revoke an agent's key.
    Revoke {
        /// Agent id.
        id: String,
    },
    /// Ask the agent for its version and uptime (a signed command); waits for the answer.
    Ping {
        /// Agent id.
        id: String,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 30)]
        wait: u64,
    },
    /// Have the agent read its configuration again (a signed command); waits for its
    /// summary of what changed and what needs a restart.
    Reload {
        /// Agent id.
        id: String,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 30)]
        wait: u64,
    },
    /// Let a new key enroll this agent id (a replaced gateway): its current key is revoked
    /// now, and the next enrollment with a valid token within 72 h binds the new key.
    Reenroll {
        /// Agent id.
        id: String,
    },
}

/// `enroll-token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Create a token for a store and print it (shown once).
    Create {
        /// Store code.
        #[arg(long)]
        store: String,
        /// Lifetime in hours (default from the controller's config).
        #[arg(long)]
        ttl_hours: Option<u64>,
        /// Uses allowed (default 1; 0: any number until expiry).
        #[arg(long)]
        uses: Option<i64>,
        /// A note.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// List tokens.
    List,
    /// Revoke a token.
    Revoke {
        /// Token id.
        id: String,
    },
}

use super::enc;

fn qs(pairs: &[(&str, Option<String>)]) -> String {
    let q: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", enc(v))))
        .collect();
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}

/// Runs an admin command; returns what to print.
pub async fn run(client: &Client, cmd: AdminCmd, json_out: bool) -> Result<String, CliError> {
    let out = |v: &Value, table: String| output(json_out, v, table);
    match cmd {
        AdminCmd::Task { cmd } => super::task::run(client, cmd, json_out).await,
        AdminCmd::Release { cmd } => super::release::run(client, cmd, json_out).await,
        AdminCmd::Ingest { cmd } => super::ingest::run(client, cmd, json_out).await,
        AdminCmd::Tickets {
            cmd,
            status,
            store,
            region,
            engineer,
        } => {
            let status = (status != "all").then_some(status);
            let filter = qs(&[
                ("status", status),
                ("store", store),
                ("region", region),
                ("engineer", engineer),
            ]);
            super::tickets::run_tickets(client, cmd, filter, json_out).await
        }
        AdminCmd::Engineers { cmd } => super::tickets::run_engineers(client, cmd, json_out).await,
        AdminCmd::Users { cmd } => super::users::run_users(client, cmd, json_out).await,
        AdminCmd::Tokens { cmd } => super::users::run_tokens(client, cmd, json_out).await,
        AdminCmd::BrokerConfig { cmd } => super::users::run_broker_config(client, cmd).await,
        AdminCmd::Stores { cmd: None } => {
            let v = json_of(&client.stores().await?);
            let keys = [
                "code",
                "name",
                "region",
                "timezone",
                "trading_hours",
                "tags",
                "address",
            ];
            Ok(out(&v, render(&keys, &rows(&v, &keys))))
        }
        AdminCmd::Stores {
            cmd:
                Some(StoresCmd::Add {
                    code,
                    name,
                    region,
                    address,
                    timezone,
                    hours,
                    tags,
                    at,
                    update,
                }),
        } => {
            let current = if update {
                client.store(&code).await?
            } else {
                None
            };
            let base = current.unwrap_or_else(|| Store::blank(&code));
            let store = Store {
                code,
                name: name.unwrap_or(base.name),
                region: region.unwrap_or(base.region),
                address: address.unwrap_or(base.address),
                timezone: timezone.unwrap_or(base.timezone),
                trading_hours: hours.unwrap_or(base.trading_hours),
                tags: tags
                    .map(|t| t.into_iter().filter(|t| !t.is_empty()).collect())
                    .unwrap_or(base.tags),
                place: at.or(base.place),
            };
            if store.name.is_empty() {
                return Err(CliError::Failed(format!(
                    "store {}: --name is needed for a new store",
                    store.code
                )));
            }
            let v = json_of(&client.save_store(&store, update).await?);
            Ok(out(&v, format!("store {} saved\n", store.code)))
        }
        AdminCmd::Agents { store, cmd: None } => {
            let v = json_of(&client.agents(&qs(&[("store", store)])).await?);
            let keys = [
                "id",
                "store",
                "online",
                "presence",
                "hostname",
                "agent_version",
                "last_seen",
            ];
            Ok(out(&v, render(&keys, &rows(&v, &keys))))
        }
        AdminCmd::Agents {
            cmd: Some(AgentsCmd::Revoke { id }),
            ..
        } => {
            client.revoke_agent(&id).await?;
            Ok(out(
                &json!({"revoked": id}),
                format!("agent {id} revoked\n"),
            ))
        }
        AdminCmd::Agents {
            cmd: Some(AgentsCmd::Ping { id, wait }),
            ..
        } => agent_command(client, &id, "ping", wait, json_out).await,
        AdminCmd::Agents {
            cmd: Some(AgentsCmd::Reload { id, wait }),
            ..
        } => agent_command(client, &id, "reload", wait, json_out).await,
        AdminCmd::Agents {
            cmd: Some(AgentsCmd::Reenroll { id }),
            ..
        } => {
            let r = client.reopen_agent(&id).await?;
            let (v, until) = (json_of(&r), r.reenroll_until);
            Ok(out(
                &v,
                format!(
                    "agent {id}: old key revoked; a new key may enroll it until {}\n",
                    crate::fmt::utc(until)
                ),
            ))
        }
        AdminCmd::Stores {
            cmd: Some(StoresCmd::Opening(cmd)),
        } => super::openings::run_opening(client, cmd, json_out).await,
        AdminCmd::Formats { cmd } => super::openings::run_formats(client, cmd, json_out).await,
        AdminCmd::Openings => super::openings::run_board(client, json_out).await,
        AdminCmd::Stores {
            cmd: Some(StoresCmd::Import { file, dry_run }),
        } => super::import::run(client, "stores", &file, dry_run, json_out).await,
        AdminCmd::Assets { cmd: Some(cmd), .. } => super::assets::run(client, cmd, json_out).await,
        AdminCmd::Assets {
            cmd: None,
            q,
            store,
            region,
            class,
            model,
            firmware,
            lifecycle,
            warranty_days,
            csv,
        } => {
            let query = qs(&[
                ("q", q),
                ("store", store),
                ("region", region),
                ("class", class),
                ("model", model),
                ("firmware", firmware),
                ("lifecycle", lifecycle),
                ("warranty_days", warranty_days.map(|d| d.to_string())),
            ]);
            if csv {
                return client.assets_csv(&query).await;
            }
            let v = json_of(&client.assets(&query).await?);
            let keys = [
                "id",
                "store",
                "slot",
                "class",
                "vendor",
                "model",
                "serial",
                "firmware",
                "lifecycle",
                "warranty_end",
            ];
            Ok(out(
                &v,
                format!(
                    "{}{} of {} shown\n",
                    render(&keys, &rows(&v["items"], &keys)),
                    v["items"].as_array().map_or(0, Vec::len),
                    v["total"]
                ),
            ))
        }
        AdminCmd::Events {
            store,
            device,
            limit,
        } => {
            let query = qs(&[
                ("store", store),
                ("device", device),
                ("limit", Some(limit.to_string())),
            ]);
            let v = json_of(&client.events(&query).await?);
            let keys = ["ts", "store", "device", "code", "severity", "message"];
            Ok(out(&v, render(&keys, &rows(&v, &keys))))
        }
        AdminCmd::EnrollToken {
            cmd:
                TokenCmd::Create {
                    store,
                    ttl_hours,
                    uses,
                    note,
                },
        } => {
            let t = NewToken {
                store,
                ttl_hours,
                ttl_secs: None,
                max_uses: uses,
                note,
            };
            let created = client.create_enroll_token(&t).await?;
            Ok(out(&json_of(&created), format!("{}\n", created.token)))
        }
        AdminCmd::EnrollToken {
            cmd: TokenCmd::List,
        } => {
            let v = json_of(&client.enroll_tokens().await?);
            let keys = [
                "id",
                "store",
                "uses",
                "max_uses",
                "expires_at",
                "revoked_at",
                "created_by",
                "note",
            ];
            Ok(out(&v, render(&keys, &rows(&v, &keys))))
        }
        AdminCmd::EnrollToken {
            cmd: TokenCmd::Revoke { id },
        } => {
            let v = json_of(&client.revoke_enroll_token(&id).await?);
            Ok(out(&v, format!("token {id} revoked\n")))
        }
    }
}

/// `agents ping|reload ID`: pushes the one-target task and waits for its answer.
async fn agent_command(
    client: &Client,
    id: &str,
    what: &str,
    wait: u64,
    json_out: bool,
) -> Result<String, CliError> {
    let task_id = client.agent_task(id, what).await?.id;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(wait);
    loop {
        let targets = json_of(&client.task_targets(&task_id).await?);
        let target = targets.get(0).cloned().unwrap_or(Value::Null);
        if !target["finished_at"].is_null() {
            let state = target["state"].as_str().unwrap_or_default();
            let text = format!(
                "{id}: {state}: {}\n",
                target["message"].as_str().unwrap_or_default()
            );
            return if state == "succeeded" {
                Ok(output(json_out, &target, text))
            } else {
                Err(CliError::Failed(text.trim_end().to_owned()))
            };
        }
        if std::time::Instant::now() >= deadline {
            return Err(CliError::Failed(format!(
                "{id} did not answer within {wait} s (state {}; task {task_id} keeps waiting up to 60 s)",
                target["state"].as_str().unwrap_or("unknown")
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}
