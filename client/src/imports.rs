//! Bulk imports from CSV (`POST /api/v1/stores/import`, `POST /api/v1/assets/import`):
//! every row is checked before any is written, and a file with one bad row imports
//! nothing. `?dry_run=true` checks and counts without writing.

use serde::{Deserialize, Serialize};

/// What an import did, or with `dry_run` would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    /// Nothing was written.
    pub dry_run: bool,
    /// Data rows read.
    pub rows: u32,
    /// Records created.
    pub created: u32,
    /// Records changed.
    pub updated: u32,
    /// Rows that matched a record as it is.
    pub unchanged: u32,
}

impl ImportReport {
    /// Nothing counted yet, for `rows` rows.
    pub fn new(dry_run: bool, rows: usize) -> ImportReport {
        ImportReport {
            dry_run,
            rows: u32::try_from(rows).unwrap_or(u32::MAX),
            created: 0,
            updated: 0,
            unchanged: 0,
        }
    }
}

/// A row refused, by its line in the file (the header is line 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    /// Line in the file.
    pub row: u32,
    /// The column at fault, empty for the row as a whole.
    pub column: String,
    /// What is wrong.
    pub error: String,
}
