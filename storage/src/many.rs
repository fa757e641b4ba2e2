//! Multi-row statements: rows written (or looked up) a few hundred per statement instead
//! of one round trip each, with a handful of statement shapes so that both backends keep
//! them prepared.

use std::fmt::Write as _;

use crate::{Error, Row, Sql, Value};

/// Rows per multi-row statement, largest first: a batch's rows go out in as few statements
/// as these sizes allow, and each backend prepares at most this many shapes per table.
const ROWS_PER_STATEMENT: [usize; 3] = [256, 16, 1];

/// Writes `rows` (each `width` values, no two with the same key) as
/// `{head}(?1, ...), (...), ...{tail}`: one round trip per statement, not per row.
pub fn many(
    c: &dyn Sql,
    head: &str,
    width: usize,
    tail: &str,
    rows: &[Vec<Value>],
) -> Result<(), Error> {
    many_rows((head, width, tail), rows, |sql, params| {
        c.execute(sql, params).map(drop)
    })
}

/// [`many`] for a statement that returns rows (`RETURNING`, or a `SELECT ... IN (VALUES
/// ...)`): every statement's rows.
pub fn many_query(
    c: &dyn Sql,
    head: &str,
    width: usize,
    tail: &str,
    rows: &[Vec<Value>],
) -> Result<Vec<Row>, Error> {
    let mut out = Vec::new();
    many_rows((head, width, tail), rows, |sql, params| {
        out.extend(c.query(sql, params)?);
        Ok(())
    })?;
    Ok(out)
}

/// Keys per statement for [`lookup`].
const KEYS_PER_LOOKUP: usize = 16;

/// [`many_query`] for looking rows up by a few hundred keys at most (`... WHERE key IN
/// (VALUES ...)`), at most 16 keys per statement. Given hundreds of keys at once, PostgreSQL
/// plans a scan of the whole table (a hash join), which on a large, busy table costs more
/// than looking each key up in its index.
pub fn lookup(
    c: &dyn Sql,
    head: &str,
    width: usize,
    tail: &str,
    keys: &[Vec<Value>],
) -> Result<Vec<Row>, Error> {
    let mut out = Vec::new();
    for chunk in keys.chunks(KEYS_PER_LOOKUP) {
        out.extend(many_query(c, head, width, tail, chunk)?);
    }
    Ok(out)
}

fn many_rows(
    (head, width, tail): (&str, usize, &str),
    rows: &[Vec<Value>],
    mut run: impl FnMut(&str, &[Value]) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut rest = rows;
    for size in ROWS_PER_STATEMENT {
        if rest.len() < size {
            continue;
        }
        let mut sql = String::with_capacity(head.len() + tail.len() + size * width * 6);
        sql.push_str(head);
        for r in 0..size {
            sql.push_str(if r == 0 { "(" } else { ", (" });
            for k in 0..width {
                if k > 0 {
                    sql.push_str(", ");
                }
                let _ = write!(sql, "?{}", r * width + k + 1);
            }
            sql.push(')');
        }
        sql.push_str(tail);
        while rest.len() >= size {
            let (now, later) = rest.split_at(size);
            let params: Vec<Value> = now.iter().flatten().cloned().collect();
            run(&sql, &params)?;
            rest = later;
        }
    }
    Ok(())
}
