//! Plain-text tables for the terminal.

use serde_json::Value;

/// A cell's text: strings as they are, null as empty, a list of plain values joined by
/// commas (tags), numbers and the rest as JSON.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(|i| !i.is_array() && !i.is_object()) => {
            items.iter().map(cell).collect::<Vec<_>>().join(",")
        }
        other => other.to_string(),
    }
}

/// Renders `rows` under `headers` with aligned columns.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| -> String {
        let mut s = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ");
        s.truncate(s.trim_end().len());
        s
    };
    let mut out = line(headers.iter().map(|h| h.to_uppercase()).collect());
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.clone()));
        out.push('\n');
    }
    out
}

/// Whether `key` holds an instant (ms since the epoch): `created_at`, `last_seen`, `ts`...
fn is_instant(key: &str) -> bool {
    key.ends_with("_at") || key == "last_seen" || key == "ts"
}

/// Rows of `items` (objects) for the given keys; instants are written for people
/// (`2026-12-04 18:40 UTC, 3 min ago`), the rest as [`cell`] says.
pub fn rows(items: &Value, keys: &[&str]) -> Vec<Vec<String>> {
    let now = storefleet_protocol::now_ms();
    items
        .as_array()
        .map(|a| {
            a.iter()
                .map(|it| {
                    keys.iter()
                        .map(|k| match it[*k].as_i64() {
                            Some(ms) if is_instant(k) => crate::fmt::when(now, ms),
                            _ => cell(&it[*k]),
                        })
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `--json` prints what the API answered; a typed answer is written back as it came.
pub fn json_of<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// What a command prints: the API's JSON with `--json`, else its table.
pub fn output(json_out: bool, v: &Value, table: String) -> String {
    if json_out {
        format!("{}\n", serde_json::to_string_pretty(v).unwrap_or_default())
    } else {
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_to_the_widest_cell() {
        let t = render(&["a", "bb"], &[vec!["xxx".into(), "y".into()]]);
        assert_eq!(t, "A    BB\nxxx  y\n");
    }

    #[test]
    fn a_list_of_plain_values_reads_as_the_cli_takes_it() {
        assert_eq!(cell(&serde_json::json!(["pilot", "mall"])), "pilot,mall");
        assert_eq!(cell(&serde_json::json!([])), "");
        assert_eq!(cell(&serde_json::json!([{"a": 1}])), "[{\"a\":1}]");
        assert_eq!(cell(&serde_json::json!(3)), "3");
    }
}
