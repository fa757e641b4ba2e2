//! `storefleet migrate-db --to postgres://...`: moves an SQLite installation into an empty
//! PostgreSQL database and proves the copy.
//!
//! Tables are copied parents first (by their foreign keys), in pages in primary-key order,
//! as multi-row INSERTs. Identity sequences then start after the highest id copied. Each
//! table is then read back from PostgreSQL and compared with what was read from SQLite:
//! the same number of rows and the same checksum (a sum and an xor of each row's SHA-256,
//! so that it does not depend on the order rows come back in; integers, booleans and
//! integral reals compare as numbers). A difference fails the command naming the table.
//! The controller must be stopped while this runs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use storefleet_storage::postgres::Pool;
use storefleet_storage::{args, Row, Sql, SqlExt as _, Value};

use super::DbError;

/// Rows read or written at once (fewer for wide tables: PostgreSQL takes 65,535
/// parameters a statement).
const PAGE: usize = 1000;

/// What was copied of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// The table.
    pub table: String,
    /// Rows, the same on both sides.
    pub rows: u64,
    /// The checksum, the same on both sides.
    pub checksum: String,
}

/// A table's shape as SQLite declares it.
#[derive(Debug, Clone)]
struct Table {
    name: String,
    columns: Vec<String>,
    /// Primary-key columns in key order.
    key: Vec<String>,
}

/// Row count and an order-independent digest of the rows.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Sum {
    rows: u64,
    add: u64,
    xor: u64,
}

impl Sum {
    fn row(&mut self, values: &[Value]) {
        let mut text = String::new();
        for v in values {
            canonical(v, &mut text);
            text.push('\u{1f}');
        }
        let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&d.as_ref()[..8]);
        let h = u64::from_be_bytes(first);
        self.rows += 1;
        self.add = self.add.wrapping_add(h);
        self.xor ^= h;
    }

    fn text(self) -> String {
        format!("{:016x}{:016x}", self.add, self.xor)
    }
}

fn canonical(v: &Value, out: &mut String) {
    let _ = match v {
        Value::Null => write!(out, "null"),
        Value::Int(i) => write!(out, "n{i}"),
        Value::Bool(b) => write!(out, "n{}", i64::from(*b)),
        Value::Real(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => write!(out, "n{}", *f as i64),
        Value::Real(f) => write!(out, "r{:x}", f.to_bits()),
        Value::Text(s) => write!(out, "t{s}"),
        Value::Blob(b) => {
            let _ = write!(out, "b");
            b.iter().try_for_each(|x| write!(out, "{x:02x}"))
        }
    };
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// The tables to copy, parents before children.
fn tables(c: &dyn Sql) -> Result<Vec<Table>, DbError> {
    let names: Vec<String> = c.all(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        args![],
        |r| r.text("name"),
    )?;
    let mut parents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut shapes = BTreeMap::new();
    for name in &names {
        let mut columns = Vec::new();
        let mut key: Vec<(i64, String)> = Vec::new();
        for r in c.query(
            "SELECT name, pk FROM pragma_table_info(?1) ORDER BY cid",
            args![name.as_str()],
        )? {
            let col = r.text("name")?;
            let pk = r.i64("pk")?;
            if pk > 0 {
                key.push((pk, col.clone()));
            }
            columns.push(col);
        }
        key.sort();
        if key.is_empty() {
            return Err(DbError::Invalid(format!(
                "table {name} has no primary key; cannot page through it"
            )));
        }
        let key = key.into_iter().map(|(_, k)| k).collect();
        let p: BTreeSet<String> = c
            .all(
                "SELECT \"table\" AS parent FROM pragma_foreign_key_list(?1)",
                args![name.as_str()],
                |r| r.text("parent"),
            )?
            .into_iter()
            .collect();
        parents.insert(name.clone(), p);
        shapes.insert(
            name.clone(),
            Table {
                name: name.clone(),
                columns,
                key,
            },
        );
    }
    // Parents first: repeatedly take the tables whose parents are all placed.
    let mut ordered = Vec::new();
    let mut placed = BTreeSet::new();
    while placed.len() < names.len() {
        let ready: Vec<String> = names
            .iter()
            .filter(|n| !placed.contains(*n))
            .filter(|n| {
                parents[*n]
                    .iter()
                    .all(|p| placed.contains(p) || p == *n || !shapes.contains_key(p))
            })
            .cloned()
            .collect();
        if ready.is_empty() {
            return Err(DbError::Invalid(
                "the tables' foreign keys form a cycle; cannot order the copy".into(),
            ));
        }
        for n in ready {
            placed.insert(n.clone());
            ordered.push(shapes[&n].clone());
        }
    }
    Ok(ordered)
}

/// One page of `t` after `after` (its key values), in key order.
fn page(
    c: &dyn Sql,
    t: &Table,
    after: Option<&[Value]>,
    limit: usize,
) -> Result<Vec<Row>, DbError> {
    let cols: Vec<String> = t.columns.iter().map(|c| quote(c)).collect();
    let key: Vec<String> = t.key.iter().map(|c| quote(c)).collect();
    let mut sql = format!("SELECT {} FROM {}", cols.join(", "), quote(&t.name));
    let mut params = Vec::new();
    if let Some(after) = after {
        let marks: Vec<String> = (1..=after.len()).map(|i| format!("?{i}")).collect();
        let _ = write!(sql, " WHERE ({}) > ({})", key.join(", "), marks.join(", "));
        params.extend(after.iter().cloned());
    }
    let _ = write!(sql, " ORDER BY {} LIMIT {limit}", key.join(", "));
    c.query(&sql, &params)
}

fn values(t: &Table, r: &Row) -> Result<(Vec<Value>, Vec<Value>), DbError> {
    let row: Vec<Value> = t
        .columns
        .iter()
        .map(|c| r.value(c).cloned())
        .collect::<Result<_, _>>()?;
    let key = t
        .key
        .iter()
        .map(|k| r.value(k).cloned())
        .collect::<Result<_, _>>()?;
    Ok((row, key))
}

fn page_size(t: &Table) -> usize {
    PAGE.min(60_000 / t.columns.len().max(1)).max(1)
}

/// Reads every row of `t` in pages, calling `each` with each page's rows.
type Reader<'a> = &'a (dyn Fn(&dyn Sql) -> Result<Vec<Row>, DbError> + Sync);

fn scan(
    read: &dyn Fn(Reader<'_>) -> Result<Vec<Row>, DbError>,
    t: &Table,
    mut each: impl FnMut(Vec<Vec<Value>>) -> Result<(), DbError>,
) -> Result<Sum, DbError> {
    let mut sum = Sum::default();
    let mut after: Option<Vec<Value>> = None;
    let limit = page_size(t);
    loop {
        let a = after.clone();
        let rows = read(&|c| page(c, t, a.as_deref(), limit))?;
        let n = rows.len();
        let mut batch = Vec::with_capacity(n);
        for r in &rows {
            let (row, key) = values(t, r)?;
            sum.row(&row);
            batch.push(row);
            after = Some(key);
        }
        if !batch.is_empty() {
            each(batch)?;
        }
        if n < limit {
            return Ok(sum);
        }
    }
}

fn insert(c: &dyn Sql, t: &Table, rows: &[Vec<Value>]) -> Result<(), DbError> {
    let cols: Vec<String> = t.columns.iter().map(|c| quote(c)).collect();
    let head = format!(
        "INSERT INTO {} ({}) VALUES ",
        quote(&t.name),
        cols.join(", ")
    );
    storefleet_storage::many::many(c, &head, cols.len(), "", rows)
}

/// Copies the SQLite database at `from` into the (empty) PostgreSQL database at `to` and
/// verifies it; `progress` hears of each table as it is done.
pub fn sqlite_to_postgres(
    from: &Path,
    (to, tls): (&str, Option<rustls::ClientConfig>),
    mut progress: impl FnMut(&Copied),
) -> Result<Vec<Copied>, DbError> {
    if !from.exists() {
        return Err(DbError::NotFound(format!(
            "{}: no such file",
            from.display()
        )));
    }
    // Bring the source to the current schema first (what the controller would do at start).
    drop(super::open(from, true)?);
    let source = rusqlite::Connection::open_with_flags(
        from,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| DbError::Backend(format!("{}: {e}", from.display())))?;
    let pool = Pool::connect_tls(to, 2, tls)?;
    pool.migrate(super::postgres::MIGRATIONS)?;
    let tables = tables(&source)?;
    // Only into an empty database: a second run must not double anything.
    for t in &tables {
        let name = t.name.clone();
        let n = pool.run_blocking(true, move |c| {
            c.int(
                &format!("SELECT count(*) AS n FROM {}", quote(&name)),
                args![],
                "n",
            )
        })?;
        if n > 0 {
            return Err(DbError::Conflict(format!(
                "{}: table {} already holds {n} rows; migrate into an empty database",
                pool.place(),
                t.name
            )));
        }
    }
    let mut done = Vec::new();
    for t in &tables {
        let source_sum = scan(&|f| f(&source), t, |rows| {
            let t = t.clone();
            pool.run_blocking(false, move |c| {
                for chunk in rows.chunks(page_size(&t)) {
                    insert(c, &t, chunk)?;
                }
                Ok(())
            })
        })?;
        let target_sum = scan(&|f| pool.run_blocking(true, |c| f(c)), t, |_| Ok(()))?;
        if source_sum != target_sum {
            return Err(DbError::Invalid(format!(
                "table {}: SQLite has {} rows (checksum {}), PostgreSQL {} rows (checksum {}); the copy is not the same",
                t.name,
                source_sum.rows,
                source_sum.text(),
                target_sum.rows,
                target_sum.text()
            )));
        }
        let c = Copied {
            table: t.name.clone(),
            rows: source_sum.rows,
            checksum: source_sum.text(),
        };
        progress(&c);
        done.push(c);
    }
    pool.run_blocking(false, restart_identities)?;
    Ok(done)
}

/// Every identity column's sequence continues after the highest id copied.
fn restart_identities(c: &dyn Sql) -> Result<(), DbError> {
    let columns = c.query(
        "SELECT table_name, column_name FROM information_schema.columns
         WHERE is_identity = 'YES' AND table_schema = current_schema()",
        args![],
    )?;
    for r in columns {
        let (table, column) = (r.text("table_name")?, r.text("column_name")?);
        let max = c.int(
            &format!(
                "SELECT coalesce(max({}), 0) AS n FROM {}",
                quote(&column),
                quote(&table)
            ),
            args![],
            "n",
        )?;
        c.execute(
            "SELECT setval(pg_get_serial_sequence(?1, ?2), ?3, false)",
            args![quote(&table), &column[..], max + 1],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_ignores_order_and_number_types_but_not_content() {
        let rows = [
            vec![Value::Int(1), Value::Text("a".into()), Value::Real(2.5)],
            vec![Value::Int(2), Value::Null, Value::Blob(vec![0, 255])],
        ];
        let (mut a, mut b) = (Sum::default(), Sum::default());
        a.row(&rows[0]);
        a.row(&rows[1]);
        b.row(&rows[1]);
        b.row(&rows[0]);
        assert_eq!(a, b, "order does not matter");
        let (mut i, mut f) = (Sum::default(), Sum::default());
        i.row(&[Value::Int(1), Value::Int(0)]);
        f.row(&[Value::Real(1.0), Value::Bool(false)]);
        assert_eq!(i, f, "1 = 1.0, false = 0");
        let mut changed = Sum::default();
        changed.row(&rows[0]);
        changed.row(&[Value::Int(2), Value::Null, Value::Blob(vec![0, 254])]);
        assert_ne!(a, changed, "one byte differs");
        let mut shifted = Sum::default();
        shifted.row(&[Value::Text("ab".into()), Value::Text("c".into())]);
        let mut other = Sum::default();
        other.row(&[Value::Text("a".into()), Value::Text("bc".into())]);
        assert_ne!(shifted, other, "values are kept apart");
    }
}
