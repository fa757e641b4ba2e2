//! `storefleet tickets` and `storefleet engineers`: the dispatch side from a terminal.

use std::fmt::Write as _;

use clap::Subcommand;
use serde_json::{json, Value};

use super::table::{cell, output, render, rows};
use super::{CliError, Client};

/// `tickets` subcommands.
#[derive(Debug, Subcommand)]
pub enum TicketsCmd {
    /// One ticket with its timeline.
    Show {
        /// Ticket id.
        id: i64,
    },
    /// Open a ticket by hand (a store called in).
    Open {
        /// Store code.
        #[arg(long)]
        store: String,
        /// What is wrong.
        #[arg(long)]
        title: String,
        /// The skill the fix needs.
        #[arg(long)]
        skill: String,
        /// critical, major or minor.
        #[arg(long, default_value = "minor")]
        severity: String,
        /// store, device or peripheral.
        #[arg(long, default_value = "peripheral")]
        impact: String,
        /// The device concerned.
        #[arg(long)]
        device: Option<String>,
    },
    /// Assign to an engineer.
    Assign {
        /// Ticket id.
        id: i64,
        /// Engineer id.
        engineer: String,
    },
    /// Accept, en-route, check-in, resume, reopen: one step of the lifecycle.
    Step {
        /// Ticket id.
        id: i64,
        /// accept, en_route, check_in, resume, reopen, unassign.
        action: String,
    },
    /// Put on hold (the SLA clock stops).
    Hold {
        /// Ticket id.
        id: i64,
        /// Why.
        reason: String,
    },
    /// Resolve with a service report.
    Resolve {
        /// Ticket id.
        id: i64,
        /// What was found and done.
        report: String,
    },
    /// Close with a satisfaction rating (1-5).
    Close {
        /// Ticket id.
        id: i64,
        /// 1 to 5.
        rating: u8,
    },
    /// Cancel.
    Cancel {
        /// Ticket id.
        id: i64,
        /// Why.
        reason: String,
    },
    /// Add a note to the timeline.
    Note {
        /// Ticket id.
        id: i64,
        /// The text.
        text: String,
    },
}

/// `engineers` subcommands.
#[derive(Debug, Subcommand)]
pub enum EngineersCmd {
    /// Add or replace an engineer.
    Add {
        /// Id (also their web UI login).
        id: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Skills, e.g. printers,pos.
        #[arg(long, value_delimiter = ',', required = true)]
        skills: Vec<String>,
        /// Regions, e.g. north,east; `*` for all.
        #[arg(long, value_delimiter = ',', required = true)]
        regions: Vec<String>,
        /// IANA time zone of the shift.
        #[arg(long, default_value = "UTC")]
        timezone: String,
        /// Shift hours, e.g. "Mo-Fr 07:00-16:00" or 24/7.
        #[arg(long, default_value = "24/7")]
        shift: String,
        /// Open tickets at once, at most.
        #[arg(long, default_value_t = 5)]
        capacity: u32,
        /// Phone number.
        #[arg(long, default_value = "")]
        phone: String,
    },
    /// Set the status: available, off, sick...
    Status {
        /// Engineer id.
        id: String,
        /// The status.
        status: String,
    },
}

async fn act(client: &Client, id: i64, body: Value) -> Result<Value, CliError> {
    client
        .call(
            "POST",
            &format!("/api/v1/tickets/{id}/actions"),
            Some(&body),
        )
        .await
}

fn show(v: &Value) -> String {
    let t = &v["ticket"];
    let mut s = String::new();
    let _ = writeln!(
        s,
        "#{} P{} {}  [{}{}]",
        cell(&t["id"]),
        cell(&t["priority"]),
        cell(&t["title"]),
        cell(&t["status"]),
        if t["escalation"].as_u64().unwrap_or(0) > 0 {
            format!(", escalation {}", cell(&t["escalation"]))
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        s,
        "store {} {} ({}), {}, {}, hours {}",
        cell(&t["store"]),
        cell(&t["store_name"]),
        cell(&t["region"]),
        cell(&t["address"]),
        cell(&t["timezone"]),
        cell(&t["trading_hours"])
    );
    let _ = writeln!(
        s,
        "skill {}, engineer {}, respond by {}, resolve by {}",
        cell(&t["skill"]),
        cell(&t["engineer"]),
        crate::fmt::utc(t["response_due"].as_i64().unwrap_or(0)),
        crate::fmt::utc(t["resolution_due"].as_i64().unwrap_or(0))
    );
    for a in t["assets"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "asset {} {} {} {} serial {} warranty {}{}",
            cell(&a["id"]),
            cell(&a["slot"]),
            cell(&a["vendor"]),
            cell(&a["model"]),
            cell(&a["serial"]),
            cell(&a["warranty_end"]),
            if a["under_warranty"] == true {
                " (vendor repair)"
            } else {
                ""
            }
        );
    }
    s.push('\n');
    let keys = ["ts", "kind", "actor", "text"];
    let mut lines = rows(&v["timeline"], &keys);
    for l in &mut lines {
        if let Ok(ms) = l[0].parse::<i64>() {
            l[0] = crate::fmt::utc(ms);
        }
    }
    s.push_str(&render(&["when", "kind", "who", "what"], &lines));
    s
}

/// Runs `tickets` (no subcommand: the list with `filter` applied).
pub async fn run_tickets(
    client: &Client,
    cmd: Option<TicketsCmd>,
    filter: String,
    json_out: bool,
) -> Result<String, CliError> {
    let out = |v: &Value, table: String| output(json_out, v, table);
    let done = |v: &Value| {
        out(
            v,
            format!("ticket {} is {}\n", cell(&v["id"]), cell(&v["status"])),
        )
    };
    match cmd {
        None => {
            let v = client
                .call("GET", &format!("/api/v1/tickets{filter}"), None)
                .await?;
            let keys = [
                "id",
                "priority",
                "status",
                "store",
                "title",
                "skill",
                "engineer",
                "escalation",
            ];
            Ok(out(&v, render(&keys, &rows(&v, &keys))))
        }
        Some(TicketsCmd::Show { id }) => {
            let v = client
                .call("GET", &format!("/api/v1/tickets/{id}"), None)
                .await?;
            Ok(out(&v, show(&v)))
        }
        Some(TicketsCmd::Open {
            store,
            title,
            skill,
            severity,
            impact,
            device,
        }) => {
            let v = client
                .call(
                    "POST",
                    "/api/v1/tickets",
                    Some(&json!({"store": store, "title": title, "skill": skill, "severity": severity, "impact": impact, "device": device})),
                )
                .await?;
            Ok(out(
                &v,
                format!(
                    "ticket {} opened (P{})\n",
                    cell(&v["id"]),
                    cell(&v["priority"])
                ),
            ))
        }
        Some(TicketsCmd::Assign { id, engineer }) => Ok(done(
            &act(
                client,
                id,
                json!({"action": "assign", "engineer": engineer}),
            )
            .await?,
        )),
        Some(TicketsCmd::Step { id, action }) => Ok(done(
            &act(client, id, json!({"action": action.replace('-', "_")})).await?,
        )),
        Some(TicketsCmd::Hold { id, reason }) => Ok(done(
            &act(client, id, json!({"action": "hold", "reason": reason})).await?,
        )),
        Some(TicketsCmd::Resolve { id, report }) => Ok(done(
            &act(client, id, json!({"action": "resolve", "report": report})).await?,
        )),
        Some(TicketsCmd::Close { id, rating }) => Ok(done(
            &act(client, id, json!({"action": "close", "rating": rating})).await?,
        )),
        Some(TicketsCmd::Cancel { id, reason }) => Ok(done(
            &act(client, id, json!({"action": "cancel", "reason": reason})).await?,
        )),
        Some(TicketsCmd::Note { id, text }) => Ok(done(
            &act(client, id, json!({"action": "note", "text": text})).await?,
        )),
    }
}

/// Runs `engineers` (no subcommand: the list with their load).
pub async fn run_engineers(
    client: &Client,
    cmd: Option<EngineersCmd>,
    json_out: bool,
) -> Result<String, CliError> {
    let out = |v: &Value, table: String| output(json_out, v, table);
    match cmd {
        None => {
            let v = client.call("GET", "/api/v1/engineers", None).await?;
            let keys = [
                "id", "name", "skills", "regions", "shift", "timezone", "load", "capacity",
                "status",
            ];
            Ok(out(&v, render(&keys, &rows(&v, &keys))))
        }
        Some(EngineersCmd::Add {
            id,
            name,
            skills,
            regions,
            timezone,
            shift,
            capacity,
            phone,
        }) => {
            let body = json!({"id": id, "name": name, "skills": skills, "regions": regions, "timezone": timezone, "shift": shift, "capacity": capacity, "phone": phone});
            let v = client
                .call(
                    "PUT",
                    &format!("/api/v1/engineers/{}", crate::ui::url_encode(&id)),
                    Some(&body),
                )
                .await?;
            Ok(out(&v, format!("engineer {id} saved\n")))
        }
        Some(EngineersCmd::Status { id, status }) => {
            let v = client
                .call(
                    "POST",
                    &format!("/api/v1/engineers/{}/status", crate::ui::url_encode(&id)),
                    Some(&json!({"status": status})),
                )
                .await?;
            Ok(out(&v, format!("engineer {id} is {status}\n")))
        }
    }
}
