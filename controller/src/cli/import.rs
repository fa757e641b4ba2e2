//! `stores import FILE` and `assets import FILE`: a CSV file through the API's import, all
//! or nothing; `--dry-run` checks and counts only.

use std::path::Path;

use super::table::{json_of, output};
use super::CliError;
use storefleet_client::Client;

/// Imports `file` into `what` (`stores` or `assets`).
pub async fn run(
    client: &Client,
    what: &str,
    file: &Path,
    dry_run: bool,
    json_out: bool,
) -> Result<String, CliError> {
    let csv =
        std::fs::read(file).map_err(|e| CliError::Failed(format!("{}: {e}", file.display())))?;
    let r = client.import(what, csv, dry_run).await?;
    let verb = if r.dry_run { "would be" } else { "were" };
    Ok(output(
        json_out,
        &json_of(&r),
        format!(
            "{} rows: {} {what} {verb} created, {} changed, {} as they are{}\n",
            r.rows,
            r.created,
            r.updated,
            r.unchanged,
            if r.dry_run {
                " (dry run: nothing written)"
            } else {
                ""
            }
        ),
    ))
}
