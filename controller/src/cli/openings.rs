//! `formats` subcommands, a store's opening (`stores open|readiness|check|opened`) and the
//! readiness board (`openings`).

use std::fmt::Write as _;

use clap::Subcommand;
use serde_json::Value;
use storefleet_client::openings::{Opening, Readiness, StoreFormat};
use storefleet_client::Client;

use super::table::{json_of, output, render};
use super::CliError;

/// `formats` subcommands.
#[derive(Debug, Subcommand)]
pub enum FormatsCmd {
    /// One format in full (JSON).
    Show {
        /// Format name.
        name: String,
    },
    /// Create or replace a format from a TOML or JSON file (name, description,
    /// [[devices]] class/count/profile, [[tasks]] as a task's action, checklist).
    Put {
        /// The file (`.json` is read as JSON, anything else as TOML).
        file: std::path::PathBuf,
    },
    /// Delete a format no opening uses.
    Delete {
        /// Format name.
        name: String,
    },
}

/// A format from `file`: TOML, or JSON when it ends in `.json`.
pub fn read_format(file: &std::path::Path) -> Result<StoreFormat, CliError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::Failed(format!("{}: {e}", file.display())))?;
    let parsed = if file.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    } else {
        toml::from_str(&text).map_err(|e| e.to_string())
    };
    let f: StoreFormat =
        parsed.map_err(|e| CliError::Failed(format!("{}: {e}", file.display())))?;
    f.validate()
        .map_err(|e| CliError::Failed(format!("{}: {}", file.display(), e.0)))?;
    Ok(f)
}

/// Runs `formats` (no subcommand: the list).
pub async fn run_formats(
    client: &Client,
    cmd: Option<FormatsCmd>,
    json_out: bool,
) -> Result<String, CliError> {
    match cmd {
        None => {
            let list = client.formats().await?;
            let v = json_of(&list);
            let table: Vec<Vec<String>> = list
                .iter()
                .map(|f| {
                    vec![
                        f.name.clone(),
                        f.devices
                            .iter()
                            .map(|d| format!("{}x {}", d.count, d.class))
                            .collect::<Vec<_>>()
                            .join(", "),
                        f.tasks.len().to_string(),
                        f.checklist.len().to_string(),
                        f.description.clone(),
                    ]
                })
                .collect();
            Ok(output(
                json_out,
                &v,
                render(
                    &["name", "devices", "tasks", "checks", "description"],
                    &table,
                ),
            ))
        }
        Some(FormatsCmd::Show { name }) => {
            let f = client
                .formats()
                .await?
                .into_iter()
                .find(|f| f.name == name)
                .ok_or_else(|| CliError::Failed(format!("no format {name:?}")))?;
            Ok(serde_json::to_string_pretty(&f).unwrap_or_default())
        }
        Some(FormatsCmd::Put { file }) => {
            let f = client.save_format(&read_format(&file)?).await?;
            Ok(format!("Format {} saved", f.name))
        }
        Some(FormatsCmd::Delete { name }) => {
            client.delete_format(&name).await?;
            Ok(format!("Format {name} deleted"))
        }
    }
}

/// `stores` subcommands about a new store's opening.
#[derive(Debug, Subcommand)]
pub enum OpeningCmd {
    /// Open a store from a format on a day: it joins the readiness board, its gateway gets
    /// the format's tasks once enrolled.
    Open {
        /// Store code.
        code: String,
        /// The store format.
        #[arg(long)]
        format: String,
        /// The day it opens, YYYY-MM-DD in the store's zone.
        #[arg(long = "on")]
        opens_on: String,
    },
    /// A new store's readiness: expected devices, tasks, go-live checks.
    Readiness {
        /// Store code.
        code: String,
    },
    /// Tick one of the store's go-live checks (as its format writes it).
    Check {
        /// Store code.
        code: String,
        /// The check.
        item: String,
        /// Untick it.
        #[arg(long)]
        undo: bool,
    },
    /// Take a store off the readiness board (it opened, or will not).
    Opened {
        /// Store code.
        code: String,
    },
}

/// A readiness for people: a head line, then devices, tasks and checks.
pub fn describe(r: &Readiness) -> String {
    let (ok, all) = r.devices_ready();
    let mut out = format!(
        "{} {} ({}), format {}, opens {} ({}): {}\n",
        r.store,
        r.name,
        r.region,
        r.format,
        r.opens_on,
        crate::fmt::days(r.days_left),
        r.summary()
    );
    let _ = write!(out, "\nDevices ready: {ok}/{all}\n");
    let lines: Vec<Vec<String>> = r
        .devices
        .iter()
        .map(|d| {
            vec![
                d.state.as_str().to_owned(),
                d.class.clone(),
                d.profile.clone(),
                d.device.clone().unwrap_or_default(),
                d.note.clone(),
            ]
        })
        .collect();
    out.push_str(&render(
        &["state", "class", "profile", "device", "note"],
        &lines,
    ));
    if !r.extra.is_empty() {
        let _ = writeln!(out, "Not in the format: {}", r.extra.join(", "));
    }
    if !r.tasks.is_empty() {
        out.push_str("\nTasks\n");
        let lines: Vec<Vec<String>> = r
            .tasks
            .iter()
            .map(|t| {
                vec![
                    t.state.as_str().to_owned(),
                    t.name.clone(),
                    t.task.clone().unwrap_or_default(),
                    t.note.clone(),
                ]
            })
            .collect();
        out.push_str(&render(&["state", "task", "id", "note"], &lines));
    }
    out.push_str("\nChecklist\n");
    for c in &r.checklist {
        let mark = if c.done { "[x]" } else { "[ ]" };
        let who = match (&c.by, c.auto) {
            (Some(by), _) => format!(" ({by})"),
            (None, true) => format!(" ({})", c.note),
            (None, false) => String::new(),
        };
        let _ = writeln!(out, "{mark} {}{who}", c.item);
    }
    out
}

/// Runs a store's opening subcommand.
pub async fn run_opening(
    client: &Client,
    cmd: OpeningCmd,
    json_out: bool,
) -> Result<String, CliError> {
    let r = match cmd {
        OpeningCmd::Open {
            code,
            format,
            opens_on,
        } => {
            client
                .set_opening(&code, &Opening { format, opens_on })
                .await?
        }
        OpeningCmd::Readiness { code } => client.readiness(&code).await?,
        OpeningCmd::Check { code, item, undo } => client.tick(&code, &item, !undo).await?,
        OpeningCmd::Opened { code } => {
            client.clear_opening(&code).await?;
            return Ok(format!("Store {code} is off the readiness board"));
        }
    };
    Ok(output(json_out, &json_of(&r), describe(&r)))
}

/// Runs `openings`: the readiness board.
pub async fn run_board(client: &Client, json_out: bool) -> Result<String, CliError> {
    let board = client.openings().await?;
    let v: Value = json_of(&board);
    let lines: Vec<Vec<String>> = board
        .iter()
        .map(|r| {
            let (ok, all) = r.devices_ready();
            vec![
                r.store.clone(),
                r.region.clone(),
                r.format.clone(),
                format!("{} ({})", r.opens_on, crate::fmt::days(r.days_left)),
                format!("{ok}/{all}"),
                r.summary(),
            ]
        })
        .collect();
    Ok(output(
        json_out,
        &v,
        render(
            &["store", "region", "format", "opens", "devices", "readiness"],
            &lines,
        ),
    ))
}
