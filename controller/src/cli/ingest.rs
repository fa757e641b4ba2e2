//! `storefleet ingest`: the messages ingest held apart because the database refused their
//! data; retry one once its cause is fixed, or drop it.

use clap::Subcommand;
use serde_json::json;

use super::table::{json_of, output, render};
use super::{CliError, Client};

/// `ingest` subcommands.
#[derive(Debug, Subcommand)]
pub enum IngestCmd {
    /// List the held messages, oldest first, with why each was refused.
    Held {
        /// Rows at most.
        #[arg(long, default_value_t = 200)]
        limit: u32,
    },
    /// Store a held message again (after fixing what made the database refuse it).
    Retry {
        /// Agent id.
        agent: String,
        /// The message's sequence number.
        seq: u64,
    },
    /// Drop a held message for good.
    Drop {
        /// Agent id.
        agent: String,
        /// The message's sequence number.
        seq: u64,
    },
}

/// Runs an `ingest` command.
pub async fn run(client: &Client, cmd: IngestCmd, json_out: bool) -> Result<String, CliError> {
    match cmd {
        IngestCmd::Held { limit } => {
            let list = client.held(limit).await?;
            let keys = ["held_at", "agent", "seq", "store", "kind", "bytes", "error"];
            let rows: Vec<Vec<String>> = list
                .messages
                .iter()
                .map(|h| {
                    vec![
                        crate::fmt::utc(h.held_at),
                        h.agent_id.clone(),
                        h.seq.to_string(),
                        h.store.clone(),
                        h.kind.clone(),
                        h.bytes.to_string(),
                        h.error.clone(),
                    ]
                })
                .collect();
            let table = if list.count == 0 {
                "no message is held\n".to_owned()
            } else {
                format!("{} held message(s)\n{}", list.count, render(&keys, &rows))
            };
            Ok(output(json_out, &json_of(&list), table))
        }
        IngestCmd::Retry { agent, seq } => {
            let r = client.retry_held(&agent, seq).await?;
            let text = if r.stored {
                format!("message {seq} of agent {agent} stored\n")
            } else {
                format!("message {seq} of agent {agent} had been stored already; no longer held\n")
            };
            Ok(output(json_out, &json_of(&r), text))
        }
        IngestCmd::Drop { agent, seq } => {
            client.drop_held(&agent, seq).await?;
            Ok(output(
                json_out,
                &json!({"dropped": {"agent_id": agent, "seq": seq}}),
                format!("message {seq} of agent {agent} dropped\n"),
            ))
        }
    }
}
