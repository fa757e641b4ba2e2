//! `storefleet tickets` and `storefleet engineers`: the dispatch side from a terminal.

use std::fmt::Write as _;

use clap::Subcommand;
use serde_json::{json, Value};

use super::table::{json_of, output, render, rows};
use super::{CliError, Client};
use crate::engineers::Engineer;
use crate::tickets::db::NewTicket;
use crate::tickets::lifecycle::Action;
use crate::tickets::{Ticket, TicketView};

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
        /// The lowest skill level that may take it: junior (anyone), senior, specialist.
        #[arg(long, default_value = "junior")]
        level: storefleet_core::engineer::Level,
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
    /// Note a spare part on a ticket (needed, ordered or used).
    Part {
        /// Ticket id.
        id: i64,
        /// Part number or name.
        part: String,
        /// How many.
        #[arg(long, default_value_t = 1)]
        qty: u32,
        /// needed, ordered, used or returned.
        #[arg(long, default_value = "needed")]
        state: String,
        /// Supplier, order number.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Move a ticket's spare part to a new state.
    PartState {
        /// Ticket id.
        id: i64,
        /// Part id (as `tickets show` lists it).
        part: i64,
        /// needed, ordered, used or returned.
        state: String,
        /// A new note.
        #[arg(long)]
        note: Option<String>,
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
        /// Skill level: junior, senior, specialist.
        #[arg(long, default_value = "senior")]
        level: storefleet_core::engineer::Level,
        /// Home base: LAT,LON in degrees, e.g. 53.5511,9.9937.
        #[arg(long, allow_hyphen_values = true)]
        home: Option<storefleet_core::geo::Coord>,
    },
    /// Set the status: available, off, sick...
    Status {
        /// Engineer id.
        id: String,
        /// The status.
        status: String,
    },
}

fn show(v: &TicketView) -> String {
    let t = &v.ticket;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "#{} P{} {}  [{}{}]",
        t.id,
        t.priority,
        t.title,
        t.status,
        if t.escalation > 0 {
            format!(", escalation {}", t.escalation)
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        s,
        "store {} {} ({}), {}, {}, hours {}",
        t.store, t.store_name, t.region, t.address, t.timezone, t.trading_hours
    );
    let _ = writeln!(
        s,
        "skill {}, engineer {}, respond by {}, resolve by {}",
        t.skill,
        t.engineer.as_deref().unwrap_or(""),
        crate::fmt::utc(t.response_due),
        crate::fmt::utc(t.resolution_due)
    );
    for a in &t.assets {
        let _ = writeln!(
            s,
            "asset {} {} {} {} serial {} warranty {}{}",
            a.id,
            a.slot,
            a.vendor,
            a.model,
            a.serial,
            a.warranty_end,
            if a.under_warranty {
                " (vendor repair)"
            } else {
                ""
            }
        );
    }
    for p in &t.parts {
        let _ = writeln!(
            s,
            "part {} {} x{} {}{}",
            p.id,
            p.part,
            p.quantity,
            p.state.as_str(),
            if p.note.is_empty() {
                String::new()
            } else {
                format!(" ({})", p.note)
            }
        );
    }
    s.push('\n');
    let lines: Vec<Vec<String>> = v
        .timeline
        .iter()
        .map(|e| {
            vec![
                crate::fmt::utc(e.ts),
                e.kind.clone(),
                e.actor.clone(),
                e.text.clone(),
            ]
        })
        .collect();
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
    let done = |t: &Ticket| {
        output(
            json_out,
            &json_of(t),
            format!("ticket {} is {}\n", t.id, t.status),
        )
    };
    let act = |id: i64, a: Action| async move { client.act(id, &a).await };
    match cmd {
        None => {
            let list = client.tickets(&filter).await?;
            let lines: Vec<Vec<String>> = list
                .iter()
                .map(|t| {
                    vec![
                        t.id.to_string(),
                        t.priority.to_string(),
                        t.status.clone(),
                        t.store.clone(),
                        t.title.clone(),
                        t.skill.clone(),
                        t.engineer.clone().unwrap_or_default(),
                        t.escalation.to_string(),
                    ]
                })
                .collect();
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
            Ok(output(json_out, &json_of(&list), render(&keys, &lines)))
        }
        Some(TicketsCmd::Show { id }) => {
            let v = client.ticket(id).await?;
            Ok(output(json_out, &json_of(&v), show(&v)))
        }
        Some(TicketsCmd::Open {
            store,
            title,
            skill,
            level,
            severity,
            impact,
            device,
        }) => {
            let n = NewTicket {
                store,
                title,
                skill,
                level,
                severity: parse_word("--severity", &severity)?,
                impact: parse_word("--impact", &impact)?,
                device,
                description: String::new(),
                dedupe_key: String::new(),
                rule: String::new(),
                detected_at: None,
                fault_since: None,
                escalation: 0,
            };
            let t = client.open_ticket(&n).await?;
            Ok(output(
                json_out,
                &json_of(&t),
                format!("ticket {} opened (P{})\n", t.id, t.priority),
            ))
        }
        Some(TicketsCmd::Assign { id, engineer }) => {
            Ok(done(&act(id, Action::Assign { engineer }).await?))
        }
        Some(TicketsCmd::Step { id, action }) => {
            let a: Action = serde_json::from_value(json!({"action": action.replace('-', "_")}))
                .map_err(|e| CliError::Failed(format!("{action}: {e}")))?;
            Ok(done(&act(id, a).await?))
        }
        Some(TicketsCmd::Hold { id, reason }) => Ok(done(&act(id, Action::Hold { reason }).await?)),
        Some(TicketsCmd::Resolve { id, report }) => {
            Ok(done(&act(id, Action::Resolve { report }).await?))
        }
        Some(TicketsCmd::Close { id, rating }) => {
            Ok(done(&act(id, Action::Close { rating }).await?))
        }
        Some(TicketsCmd::Cancel { id, reason }) => {
            Ok(done(&act(id, Action::Cancel { reason }).await?))
        }
        Some(TicketsCmd::Note { id, text }) => Ok(done(&act(id, Action::Note { text }).await?)),
        Some(TicketsCmd::Part {
            id,
            part,
            qty,
            state,
            note,
        }) => {
            let n = storefleet_client::tickets::NewPart {
                part,
                quantity: qty,
                state: parse_word("--state", &state)?,
                note,
            };
            let p: storefleet_client::tickets::Part = client
                .send("POST", &format!("/api/v1/tickets/{id}/parts"), &n)
                .await?;
            Ok(part_line(id, &p))
        }
        Some(TicketsCmd::PartState {
            id,
            part,
            state,
            note,
        }) => {
            let ch = storefleet_client::tickets::PartChange {
                state: parse_word("state", &state)?,
                note,
            };
            let p: storefleet_client::tickets::Part = client
                .send("PATCH", &format!("/api/v1/tickets/{id}/parts/{part}"), &ch)
                .await?;
            Ok(part_line(id, &p))
        }
    }
}

/// What the CLI says of a part it added or moved.
fn part_line(id: i64, p: &storefleet_client::tickets::Part) -> String {
    format!(
        "Ticket {id}: part {} {} x{} {}",
        p.id,
        p.part,
        p.quantity,
        p.state.as_str()
    )
}

/// A lowercase word of a serde enum (`major`, `store`), or an error naming the option.
fn parse_word<T: serde::de::DeserializeOwned>(option: &str, word: &str) -> Result<T, CliError> {
    serde_json::from_value(Value::String(word.to_owned()))
        .map_err(|e| CliError::Failed(format!("{option} {word}: {e}")))
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
            let v = json_of(&client.engineers().await?);
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
            level,
            home,
        }) => {
            let e = Engineer {
                id,
                name,
                skills,
                regions,
                timezone,
                shift,
                capacity,
                status: "available".into(),
                phone,
                level,
                home,
            };
            let v = json_of(&client.save_engineer(&e).await?);
            Ok(out(&v, format!("engineer {} saved\n", e.id)))
        }
        Some(EngineersCmd::Status { id, status }) => {
            client.engineer_status(&id, &status).await?;
            Ok(output(
                json_out,
                &json!({ "status": status }),
                format!("engineer {id} is {status}\n"),
            ))
        }
    }
}
