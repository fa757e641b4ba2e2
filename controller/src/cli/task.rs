//! `storefleet task`: push a routine, a config change or an agent update to the fleet in
//! waves, follow it, pause, resume, cancel.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use super::table::{cell, json_of, render, rows};
use super::{CliError, Client};

/// What `task push` takes.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The routine document (TOML); or give --routine.
    pub file: Option<PathBuf>,
    /// Run a routine the agents already have, by name.
    #[arg(long, conflicts_with = "file")]
    pub routine: Option<String>,
    /// Push this config drop-in (TOML) instead of a routine; needs --config-name.
    #[arg(long, conflicts_with_all = ["file", "routine"], requires = "config_name")]
    pub config: Option<PathBuf>,
    /// The config change's name (its drop-in is agent.d/70-task-NAME.toml).
    #[arg(long)]
    pub config_name: Option<String>,
    /// Update the agents to this published release (`storefleet release publish`).
    #[arg(long, conflicts_with_all = ["file", "routine", "config"])]
    pub update: Option<String>,
    /// With --update: how long a new version has to be connected and reporting, e.g. 2m.
    #[arg(long, default_value = "2m")]
    pub confirm: String,
    /// Targets, all of which must match: `all`, `region=north,south`,
    /// `stores=S1,S2`, `tags=pilot`, `class=receipt-printer`, `version=<0.2.0`.
    #[arg(long = "select", required = true)]
    pub select: Vec<String>,
    /// A name for people (default: the routine's).
    #[arg(long)]
    pub name: Option<String>,
    /// Targets in the canary wave.
    #[arg(long, default_value_t = 1)]
    pub canary: usize,
    /// Cumulative percentages of the rest, e.g. 10,50,100.
    #[arg(long, default_value = "100", value_delimiter = ',')]
    pub waves: Vec<u8>,
    /// In flight per region at most (0: no cap).
    #[arg(long, default_value_t = 0)]
    pub region_cap: usize,
    /// When, in each store's own time: any, closed, open.
    #[arg(long, default_value = "any")]
    pub window: String,
    /// Keep this many minutes clear of opening and closing.
    #[arg(long, default_value_t = 0)]
    pub margin_minutes: u32,
    /// Hours never to run in, e.g. "Sa 10:00-14:00".
    #[arg(long, default_value = "")]
    pub avoid: String,
    /// Per-target timeout, e.g. 15m.
    #[arg(long, default_value = "15m")]
    pub timeout: String,
    /// Abort when failures over finished exceed this (0 to 1) ...
    #[arg(long, default_value_t = 0.2)]
    pub abort_rate: f64,
    /// ... once this many have finished.
    #[arg(long, default_value_t = 1)]
    pub abort_min: usize,
    /// Skip targets still offline this long after their wave opened, e.g. 24h.
    #[arg(long, default_value = "24h")]
    pub expiry: String,
    /// Run even outside the routine's own window.
    #[arg(long)]
    pub ignore_window: bool,
    /// Show the targets and waves; push nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `task` subcommands.
#[derive(Debug, Subcommand)]
pub enum TaskCmd {
    /// Push a routine to the selected agents: canary first, then waves.
    Push(Box<PushArgs>),
    /// Tasks, newest first.
    List,
    /// One task: a progress bar, its waves, and the targets that did not succeed.
    Status {
        /// Task id.
        id: String,
        /// Keep showing it until it has finished.
        #[arg(long)]
        watch: bool,
    },
    /// Stop sending; what is in flight still reports.
    Pause {
        /// Task id.
        id: String,
    },
    /// Continue a paused task.
    Resume {
        /// Task id.
        id: String,
    },
    /// Cancel every target not yet sent.
    Cancel {
        /// Task id.
        id: String,
    },
}

fn bad(message: String) -> CliError {
    CliError::Api { status: 0, message }
}

/// `90s`, `15m`, `24h`, `7d` (or plain seconds) in ms.
pub fn duration_ms(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected e.g. 90s, 15m, 24h or 7d"))?;
    let mult = match unit {
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{s:?}: unit must be s, m, h or d")),
    };
    Ok(n.saturating_mul(mult))
}

/// `--select` terms into the API's selector.
pub fn selector(terms: &[String]) -> Result<Value, String> {
    let mut m = Map::new();
    for t in terms {
        if t == "all" {
            m.insert("all".into(), true.into());
            continue;
        }
        let (k, v) = t
            .split_once('=')
            .ok_or_else(|| format!("--select {t:?}: expected all or KEY=VALUE[,VALUE]"))?;
        let list = || {
            Value::from(
                v.split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .collect::<Vec<_>>(),
            )
        };
        let (key, val) = match k.trim() {
            "region" | "regions" => ("regions", list()),
            "store" | "stores" => ("stores", list()),
            "tag" | "tags" => ("tags", list()),
            "class" | "device_class" => ("device_classes", list()),
            "version" | "agent_version" => ("agent_version", Value::from(v.trim())),
            other => {
                return Err(format!(
                    "--select {other}: expected region, stores, tags, class or version"
                ))
            }
        };
        m.insert(key.into(), val);
    }
    Ok(Value::Object(m))
}

/// A progress bar of `width` cells: `#` succeeded, `x` failed, `-` skipped or cancelled,
/// `>` in flight, `.` waiting.
pub fn bar(counts: &Value, total: u64, width: usize) -> String {
    let n = |k: &str| counts[k].as_u64().unwrap_or(0);
    let parts = [
        ('#', n("succeeded")),
        ('x', n("failed") + n("timed_out") + n("rejected")),
        ('-', n("skipped") + n("cancelled")),
        ('>', n("sent") + n("running")),
    ];
    let mut s = String::with_capacity(width + 2);
    s.push('[');
    let mut used = 0;
    for (c, k) in parts {
        let cells = if total == 0 {
            0
        } else {
            ((k as f64 / total as f64) * width as f64).round() as usize
        };
        let cells = cells.min(width - used);
        s.extend(std::iter::repeat_n(c, cells));
        used += cells;
    }
    s.extend(std::iter::repeat_n('.', width - used));
    s.push(']');
    s
}

fn status_text(task: &Value, targets: &Value) -> String {
    let total = task["total"].as_u64().unwrap_or(0);
    let counts = &task["counts"];
    // Everything not waiting or in flight has finished.
    let finished = ["queued", "sent", "running"].iter().fold(total, |n, k| {
        n.saturating_sub(counts[*k].as_u64().unwrap_or(0))
    });
    let mut s = format!(
        "{} {} — {}{}\n{} {finished}/{total} finished\n",
        cell(&task["id"]),
        cell(&task["name"]),
        cell(&task["phase"]),
        task["phase_note"]
            .as_str()
            .filter(|n| !n.is_empty())
            .map(|n| format!(" ({n})"))
            .unwrap_or_default(),
        bar(counts, total, 40),
    );
    if let Some(w) = task.get("window_opens").filter(|w| w.is_object()) {
        let at = w["at"].as_i64().unwrap_or(0);
        let zone = w["timezone"].as_str().unwrap_or("UTC");
        let _ = writeln!(
            s,
            "waiting for its window: starts {} ({}) at {}",
            crate::tasks::window::local(at, zone),
            crate::fmt::ahead(storefleet_protocol::now_ms(), at),
            cell(&w["store"]),
        );
    }
    let by_state: Vec<String> = crate::rollout::TargetState::NAMES
        .iter()
        .filter_map(|k| {
            counts[*k]
                .as_u64()
                .filter(|n| *n > 0)
                .map(|n| format!("{k} {n}"))
        })
        .collect();
    let _ = writeln!(s, "{}", by_state.join(" · "));
    let canary = task["spec"]["plan"]["canary"].as_u64().unwrap_or(0) > 0;
    let over = !task["finished_at"].is_null();
    for w in task["waves"].as_array().into_iter().flatten() {
        let label = if canary && w["wave"] == 0 {
            "canary".to_owned()
        } else {
            format!("wave {}", w["wave"])
        };
        if over && w["opened_at"].is_null() {
            let _ = writeln!(
                s,
                "  {label:<8} never started ({} cancelled)",
                w["cancelled"].as_u64().unwrap_or(0)
            );
            continue;
        }
        let _ = writeln!(
            s,
            "  {label:<8} {}/{} finished, {} failed{}",
            w["finished"],
            w["targets"],
            w["failures"],
            if w["opened_at"].is_null() {
                ", not open yet"
            } else {
                ""
            }
        );
    }
    let keys = ["store", "agent", "wave", "state", "outcome", "message"];
    let bad_rows: Vec<Value> = targets
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| {
            matches!(
                t["state"].as_str(),
                Some("failed" | "timed_out" | "rejected")
            )
        })
        .cloned()
        .collect();
    if !bad_rows.is_empty() {
        let _ = write!(
            s,
            "\nnot succeeded:\n{}",
            render(&keys, &rows(&Value::Array(bad_rows), &keys))
        );
    }
    s
}

/// Runs a `task` command; returns what to print.
pub async fn run(client: &Client, cmd: TaskCmd, json_out: bool) -> Result<String, CliError> {
    let out = |v: &Value, text: String| {
        if json_out {
            format!("{}\n", serde_json::to_string_pretty(v).unwrap_or_default())
        } else {
            text
        }
    };
    match cmd {
        TaskCmd::Push(args) => {
            let PushArgs {
                file,
                routine,
                config,
                config_name,
                update,
                confirm,
                select,
                name,
                canary,
                waves,
                region_cap,
                window,
                margin_minutes,
                avoid,
                timeout,
                abort_rate,
                abort_min,
                expiry,
                ignore_window,
                dry_run,
            } = *args;
            let read = |f: &PathBuf| {
                std::fs::read_to_string(f).map_err(|e| bad(format!("{}: {e}", f.display())))
            };
            let action = match (file, routine, config) {
                (None, None, None) if update.is_some() => {
                    let ms = duration_ms(&confirm).map_err(|e| bad(format!("--confirm {e}")))?;
                    json!({"type": "update", "version": update, "confirm_secs": ms / 1000})
                }
                (Some(f), None, None) => {
                    json!({"type": "routine", "document": read(&f)?, "ignore_window": ignore_window})
                }
                (None, Some(r), None) => {
                    json!({"type": "routine", "name": r, "ignore_window": ignore_window})
                }
                (None, None, Some(f)) => {
                    json!({"type": "config", "name": config_name.unwrap_or_default(), "toml": read(&f)?})
                }
                _ => {
                    return Err(bad(
                        "give a routine FILE, --routine NAME, --config FILE --config-name NAME, or --update VERSION"
                            .into(),
                    ))
                }
            };
            let spec = json!({
                "name": name.unwrap_or_default(),
                "action": action,
                "select": selector(&select).map_err(bad)?,
                "plan": {
                    "canary": canary, "waves": waves, "region_concurrency": region_cap,
                    "target_timeout_ms": duration_ms(&timeout).map_err(|e| bad(format!("--timeout {e}")))?,
                    "abort_failure_rate": abort_rate, "abort_min_finished": abort_min,
                    "expiry_ms": duration_ms(&expiry).map_err(|e| bad(format!("--expiry {e}")))?,
                },
                "window": {"when": window, "margin_minutes": margin_minutes, "avoid": avoid},
            });
            if dry_run {
                let v = json_of(&client.preview_task(&spec).await?);
                let keys = ["store", "region", "agent"];
                let text = format!(
                    "{}{} target(s); waves {}\n",
                    render(&keys, &rows(&v["targets"], &keys)),
                    v["total"],
                    v["waves"]
                );
                return Ok(out(&v, text));
            }
            let v = json_of(&client.push_task(&spec).await?);
            let text = format!(
                "task {} pushed to {} target(s); follow it with: storefleet task status {} --watch\n",
                cell(&v["id"]),
                v["total"],
                cell(&v["id"])
            );
            Ok(out(&v, text))
        }
        TaskCmd::List => {
            let v = json_of(&client.tasks().await?);
            let mut lines = Vec::new();
            for t in v.as_array().into_iter().flatten() {
                lines.push(vec![
                    cell(&t["id"]),
                    cell(&t["name"]),
                    cell(&t["phase"]),
                    bar(&t["counts"], t["total"].as_u64().unwrap_or(0), 20),
                    cell(&t["total"]),
                    cell(&t["created_by"]),
                ]);
            }
            let keys = ["id", "name", "phase", "progress", "targets", "by"];
            Ok(out(&v, render(&keys, &lines)))
        }
        TaskCmd::Status { id, watch } => loop {
            let task = json_of(&client.task(&id).await?);
            let done = !task["finished_at"].is_null();
            if !watch || done {
                let targets = json_of(&client.task_targets(&id).await?);
                return Ok(out(
                    &json!({"task": task, "targets": targets}),
                    status_text(&task, &targets),
                ));
            }
            println!("{}", status_text(&task, &Value::Null));
            tokio::time::sleep(Duration::from_secs(2)).await;
        },
        TaskCmd::Pause { id } => request(client, &id, "pause", json_out).await,
        TaskCmd::Resume { id } => request(client, &id, "resume", json_out).await,
        TaskCmd::Cancel { id } => request(client, &id, "cancel", json_out).await,
    }
}

async fn request(
    client: &Client,
    id: &str,
    what: &str,
    json_out: bool,
) -> Result<String, CliError> {
    let v = json_of(&client.task_request(id, what).await?);
    Ok(if json_out {
        format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
    } else {
        format!("task {id}: {what} requested (now {})\n", cell(&v["phase"]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_terms_become_the_api_selector() {
        let v = selector(&[
            "region=north, south".into(),
            "class=receipt-printer".into(),
            "version=<0.2.0".into(),
        ])
        .unwrap();
        assert_eq!(
            v,
            json!({"regions": ["north", "south"], "device_classes": ["receipt-printer"], "agent_version": "<0.2.0"})
        );
        assert_eq!(selector(&["all".into()]).unwrap(), json!({"all": true}));
        assert!(selector(&["colour=red".into()])
            .unwrap_err()
            .contains("expected region"));
        assert!(selector(&["north".into()]).is_err());
    }

    #[test]
    fn durations_and_the_bar() {
        assert_eq!(duration_ms("15m"), Ok(900_000));
        assert_eq!(duration_ms("90"), Ok(90_000));
        assert!(duration_ms("1w").is_err());
        let counts = json!({"succeeded": 5, "failed": 1, "running": 2, "queued": 2});
        assert_eq!(bar(&counts, 10, 10), "[#####x>>..]");
        assert_eq!(bar(&json!({}), 0, 4), "[....]");
    }
}
