//! Bulk imports from CSV: stores here, assets in [`crate::assets::import`].
//!
//! A file is read whole and every row checked before anything is written; one bad row and
//! nothing is imported (the write is one transaction besides). Each refused row is named by
//! its line in the file (the header is line 1) and its column. A dry run checks and counts
//! what would be created, changed or left as it is, and writes nothing.

use std::collections::{HashMap, HashSet};

use storefleet_core::geo::Coord;
use storefleet_storage::Sql;

pub use storefleet_client::imports::{ImportReport, RowError};

use crate::db::DbError;
use crate::stores::{self, Store};

/// Data rows in one file at most.
pub const MAX_ROWS: usize = 100_000;
/// Characters in one field at most.
pub const MAX_FIELD: usize = 500;

/// A CSV file: its columns and its rows, each with its line in the file.
#[derive(Debug)]
pub struct Table {
    columns: HashMap<String, usize>,
    /// (line, fields) of each data row.
    pub rows: Vec<(u32, Vec<String>)>,
}

fn refuse(row: u32, column: &str, error: impl Into<String>) -> RowError {
    RowError {
        row,
        column: column.to_owned(),
        error: error.into(),
    }
}

impl Table {
    /// Reads `text`: a header naming only columns of `known` (any order, any case), with
    /// every column of `required`, then rows of as many fields. Blank lines are skipped.
    pub fn read(text: &[u8], known: &[&str], required: &[&str]) -> Result<Table, Vec<RowError>> {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(false)
            .from_reader(text);
        let mut records = r.records();
        let header = match records.next() {
            None => {
                return Err(vec![refuse(
                    1,
                    "",
                    "the file is empty: a header line first",
                )])
            }
            Some(Err(e)) => return Err(vec![refuse(1, "", format!("the header: {e}"))]),
            Some(Ok(h)) => h,
        };
        let mut columns = HashMap::new();
        let mut errors = Vec::new();
        for (i, name) in header.iter().enumerate() {
            let name = name
                .trim()
                .trim_start_matches('\u{feff}')
                .to_ascii_lowercase();
            if !known.contains(&name.as_str()) {
                errors.push(refuse(
                    1,
                    &name,
                    format!("unknown column; known: {}", known.join(", ")),
                ));
            } else if columns.insert(name.clone(), i).is_some() {
                errors.push(refuse(1, &name, "the column is named twice"));
            }
        }
        for need in required {
            if !columns.contains_key(*need) {
                errors.push(refuse(1, need, "missing column"));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut rows = Vec::new();
        let mut lines = Lines {
            text,
            at: 0,
            line: 1,
        };
        for rec in records {
            let rec = match rec {
                Ok(rec) => rec,
                Err(e) => {
                    let line = lines.of(e.position());
                    errors.push(refuse(line, "", e.to_string()));
                    if errors.len() >= 100 {
                        break;
                    }
                    continue;
                }
            };
            let line = lines.of(rec.position());
            if rec.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            if rows.len() == MAX_ROWS {
                errors.push(refuse(
                    line,
                    "",
                    format!("more than {MAX_ROWS} rows: split the file"),
                ));
                break;
            }
            let fields: Vec<String> = rec.iter().map(|f| f.trim().to_owned()).collect();
            if let Some((i, _)) = fields
                .iter()
                .enumerate()
                .find(|(_, f)| f.chars().count() > MAX_FIELD)
            {
                let name = columns
                    .iter()
                    .find(|(_, c)| **c == i)
                    .map_or("", |(n, _)| n.as_str());
                errors.push(refuse(
                    line,
                    name,
                    format!("longer than {MAX_FIELD} characters"),
                ));
                continue;
            }
            rows.push((line, fields));
        }
        if errors.is_empty() {
            Ok(Table { columns, rows })
        } else {
            Err(errors)
        }
    }
}

/// Line numbers of records as people count them: the reader places a record after the
/// previous one's terminator, which with CRLF endings is still on the line before.
struct Lines<'a> {
    text: &'a [u8],
    at: usize,
    line: u32,
}

impl Lines<'_> {
    /// The line where the record at `pos` starts; records come in order.
    fn of(&mut self, pos: Option<&csv::Position>) -> u32 {
        let Some(pos) = pos else { return 0 };
        let mut start = usize::try_from(pos.byte())
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        while start < self.text.len() && matches!(self.text[start], b'\r' | b'\n') {
            start += 1;
        }
        if start >= self.at {
            let newlines = self.text[self.at..start].split(|b| *b == b'\n').count() - 1;
            self.line += u32::try_from(newlines).unwrap_or(u32::MAX);
            self.at = start;
        }
        self.line
    }
}

impl Table {
    /// The value of `column` in `row`: `None` when the file has no such column or the field
    /// is empty.
    pub fn get<'a>(&self, row: &'a [String], column: &str) -> Option<&'a str> {
        self.columns
            .get(column)
            .and_then(|i| row.get(*i))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Columns of a stores file.
pub const STORE_COLUMNS: &[&str] = &[
    "code",
    "name",
    "region",
    "address",
    "timezone",
    "trading_hours",
    "tags",
    "lat",
    "lon",
    "format",
    "opens_on",
];

/// Imports stores: a new code is a new store (it needs a name), a known one is changed in
/// the fields the row gives (empty fields keep their values). Tags are separated by `;` or
/// `,`; `lat` and `lon` come together; `format` and `opens_on` open the store from a format
/// on a day (a store with an opening may give one of them to change it).
pub fn stores(
    c: &dyn Sql,
    text: &[u8],
    dry_run: bool,
    actor: &str,
    now: i64,
) -> Result<Result<ImportReport, Vec<RowError>>, DbError> {
    let table = match Table::read(text, STORE_COLUMNS, &["code"]) {
        Ok(t) => t,
        Err(e) => return Ok(Err(e)),
    };
    let existing: HashMap<String, Store> = stores::list(c)?
        .into_iter()
        .map(|s| (s.code.clone(), s))
        .collect();
    let formats: HashSet<String> = crate::openings::formats(c)?
        .into_iter()
        .map(|f| f.name)
        .collect();
    let mut report = ImportReport::new(dry_run, table.rows.len());
    let mut errors = Vec::new();
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut writes = Vec::new();
    for (line, row) in &table.rows {
        let line = *line;
        let Some(code) = table.get(row, "code") else {
            errors.push(refuse(line, "code", "empty"));
            continue;
        };
        if let Some(first) = seen.insert(code.to_owned(), line) {
            errors.push(refuse(
                line,
                "code",
                format!("store {code} is also on line {first}"),
            ));
            continue;
        }
        let before = existing.get(code);
        let base = before.cloned().unwrap_or_else(|| Store::blank(code));
        let text = |col: &str, old: String| table.get(row, col).map_or(old, str::to_owned);
        let num = |col: &str| -> Result<Option<f64>, RowError> {
            table
                .get(row, col)
                .map(|v| {
                    v.parse::<f64>()
                        .map_err(|_| refuse(line, col, format!("{v:?}: not a number")))
                })
                .transpose()
        };
        let place = match (num("lat"), num("lon")) {
            (Err(e), _) | (_, Err(e)) => {
                errors.push(e);
                continue;
            }
            (Ok(None), Ok(None)) => base.place,
            (Ok(lat), Ok(lon)) => match Coord::from_parts(lat, lon) {
                Ok(p) => p,
                Err(e) => {
                    errors.push(refuse(line, "lat", e));
                    continue;
                }
            },
        };
        let store = Store {
            code: code.to_owned(),
            name: text("name", base.name),
            region: text("region", base.region),
            address: text("address", base.address),
            timezone: text("timezone", base.timezone),
            trading_hours: text("trading_hours", base.trading_hours),
            tags: match table.get(row, "tags") {
                Some(t) => t
                    .split([';', ','])
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect(),
                None => base.tags,
            },
            place,
        };
        if store.name.is_empty() {
            errors.push(refuse(
                line,
                "name",
                format!("store {code} is new: it needs a name"),
            ));
            continue;
        }
        if let Err(e) = stores::validate(&store) {
            errors.push(refuse(line, "", e.to_string()));
            continue;
        }
        let opening = match opening_of(c, &table, row, line, code, &formats) {
            Ok(o) => o,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        match before {
            None => report.created += 1,
            Some(b) if *b == store && opening.as_ref().is_none_or(|o| o.1) => {
                report.unchanged += 1;
                continue;
            }
            Some(_) => report.updated += 1,
        }
        writes.push((store, opening.map(|o| o.0)));
    }
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    if !dry_run {
        for (s, opening) in &writes {
            stores::put(c, s, true, now)?;
            if let Some(o) = opening {
                crate::openings::set(c, &s.code, o, actor, now)?;
            }
        }
    }
    Ok(Ok(report))
}

/// A row's opening (`format`, `opens_on`), completed from the store's opening, and whether
/// it is the one the store has; none when the row gives neither.
fn opening_of(
    c: &dyn Sql,
    table: &Table,
    row: &[String],
    line: u32,
    code: &str,
    formats: &HashSet<String>,
) -> Result<Option<(crate::openings::Opening, bool)>, RowError> {
    let (format, day) = (table.get(row, "format"), table.get(row, "opens_on"));
    if format.is_none() && day.is_none() {
        return Ok(None);
    }
    let had = crate::openings::opening_of(c, code)
        .map_err(|e| refuse(line, "", e.to_string()))?
        .map(|(o, _)| o);
    let pick = |given: Option<&str>, old: Option<&String>, col: &str| {
        given
            .map(str::to_owned)
            .or_else(|| old.cloned())
            .ok_or_else(|| refuse(line, col, "an opening needs both format and opens_on"))
    };
    let o = crate::openings::Opening {
        format: pick(format, had.as_ref().map(|o| &o.format), "format")?,
        opens_on: pick(day, had.as_ref().map(|o| &o.opens_on), "opens_on")?,
    };
    if !formats.contains(&o.format) {
        return Err(refuse(line, "format", format!("no format {:?}", o.format)));
    }
    crate::openings::parse_day(&o.opens_on).map_err(|e| refuse(line, "opens_on", e.to_string()))?;
    let same = had.as_ref() == Some(&o);
    Ok(Some((o, same)))
}

/// The distinct values of `column` in `table`, for a read of what rows refer to.
pub fn distinct(table: &Table, column: &str) -> HashSet<String> {
    table
        .rows
        .iter()
        .filter_map(|(_, r)| table.get(r, column))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_with_unknown_twice_named_or_missing_columns_is_refused_by_name() {
        let e = Table::read(b"code,naem,code\n", STORE_COLUMNS, &["code", "name"]).unwrap_err();
        let said: Vec<String> = e
            .iter()
            .map(|e| format!("{}:{}:{}", e.row, e.column, e.error))
            .collect();
        assert!(
            said.iter().any(|s| s.starts_with("1:naem:unknown column")),
            "{said:?}"
        );
        assert!(
            said.iter()
                .any(|s| s.starts_with("1:code:the column is named twice")),
            "{said:?}"
        );
        assert!(
            said.iter().any(|s| s == "1:name:missing column"),
            "{said:?}"
        );
        assert!(Table::read(b"", STORE_COLUMNS, &["code"]).unwrap_err()[0]
            .error
            .contains("empty"));
    }

    #[test]
    fn rows_keep_their_line_numbers_quotes_and_blank_lines() {
        let t = Table::read(
            b"Code,Name\r\nS1,\"Hamburg, Altona\"\r\n\r\nS2,\"Say \"\"hi\"\"\"\n",
            STORE_COLUMNS,
            &["code"],
        )
        .unwrap();
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[0].0, 2);
        assert_eq!(t.get(&t.rows[0].1, "name"), Some("Hamburg, Altona"));
        assert_eq!(t.rows[1].0, 4, "the blank line counts");
        assert_eq!(t.get(&t.rows[1].1, "name"), Some("Say \"hi\""));
        assert_eq!(t.get(&t.rows[1].1, "region"), None);
        let e = Table::read(b"code,name\nS1\n", STORE_COLUMNS, &["code"]).unwrap_err();
        assert_eq!(e[0].row, 2, "{e:?}");
        let e = Table::read(b"code\n\xff\xfe\n", STORE_COLUMNS, &["code"]).unwrap_err();
        assert_eq!(e[0].row, 2, "not UTF-8: {e:?}");
    }
}
