//! `assets` subcommands: one record with its history, one made by hand, a CSV import.

use clap::Subcommand;
use serde_json::{json, Value};
use storefleet_client::Client;

use super::table::{json_of, output, render, rows};
use super::CliError;

/// `assets` subcommands.
#[derive(Debug, Subcommand)]
pub enum AssetsCmd {
    /// One asset with its history.
    Show {
        /// Asset id.
        id: i64,
    },
    /// Make a device record by hand; its gateway's later report of the slot continues it.
    Add {
        /// Store code.
        #[arg(long)]
        store: String,
        /// The device's id at the store, as its gateway names it (printer-2).
        #[arg(long)]
        slot: String,
        /// Class, e.g. receipt-printer.
        #[arg(long)]
        class: String,
        /// Vendor.
        #[arg(long, default_value = "")]
        vendor: String,
        /// Model.
        #[arg(long, default_value = "")]
        model: String,
        /// Serial number.
        #[arg(long, default_value = "")]
        serial: String,
        /// Lifecycle state (default active).
        #[arg(long, default_value = "")]
        lifecycle: String,
        /// Purchase date, YYYY-MM-DD.
        #[arg(long, default_value = "")]
        purchase_date: String,
        /// Warranty end, YYYY-MM-DD.
        #[arg(long, default_value = "")]
        warranty_end: String,
    },
    /// Import asset records from CSV (the export's columns); one bad row imports nothing.
    Import {
        /// The CSV file.
        file: std::path::PathBuf,
        /// Check and count only.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Runs an `assets` subcommand.
pub async fn run(client: &Client, cmd: AssetsCmd, json_out: bool) -> Result<String, CliError> {
    let out = |v: &Value, table: String| output(json_out, v, table);
    match cmd {
        AssetsCmd::Import { file, dry_run } => {
            super::import::run(client, "assets", &file, dry_run, json_out).await
        }
        AssetsCmd::Add {
            store,
            slot,
            class,
            vendor,
            model,
            serial,
            lifecycle,
            purchase_date,
            warranty_end,
        } => {
            let n = storefleet_client::assets::NewAsset {
                store,
                slot,
                class,
                vendor,
                model,
                serial,
                firmware: String::new(),
                lifecycle,
                purchase_date,
                warranty_end,
            };
            let a = client.create_asset(&n).await?;
            Ok(out(
                &json_of(&a),
                format!(
                    "asset {} created: {} {} at {}\n",
                    a.id, a.class, n.slot, n.store
                ),
            ))
        }
        AssetsCmd::Show { id } => {
            let a = json_of(&client.asset(id).await?);
            let h = json_of(&client.asset_history(id).await?);
            let v = json!({"asset": a, "history": h});
            let fields: Vec<Vec<String>> = a
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| vec![k.clone(), super::table::cell(v)])
                        .collect()
                })
                .unwrap_or_default();
            let hk = ["ts", "actor", "field", "before", "after"];
            Ok(out(
                &v,
                format!(
                    "{}\n{}",
                    render(&["field", "value"], &fields),
                    render(&hk, &rows(&h, &hk))
                ),
            ))
        }
    }
}
