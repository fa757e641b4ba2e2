//! The controller's database: SQLite (the default, one file) or PostgreSQL
//! (`[database] url`, for several replicas), both behind [`Db`], which hands repositories a
//! storage-neutral connection ([`Sql`]) for a write transaction or a read.
//!
//! SQLite runs in WAL mode with one writer. A dedicated thread owns the only writing connection and is fed by a bounded channel.
//! It takes every job waiting in the queue (up to [`MAX_GROUP`]) into one transaction,
//! each job in its own savepoint, and commits once: under load many small writes share
//! one fsync, and one failing job rolls back alone. A job's caller hears back only after
//! the commit, so "written" means on disk. Readers use their own read-only connections
//! (WAL lets them run beside the writer) on tokio's blocking pool.
//!
//! Schema changes are ordered migrations ([`migrations`]) numbered by `PRAGMA user_version`;
//! PostgreSQL has its own ([`postgres`]), kept alike by a test. On PostgreSQL a write is one
//! transaction on a pooled connection ([`storefleet_storage::postgres::Pool`]).

pub mod copy;
pub mod migrations;
pub mod postgres;
#[cfg(test)]
mod suite;
#[cfg(test)]
pub mod testing;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use storefleet_storage::postgres::Pool;
use storefleet_storage::Sql;
use tokio::sync::oneshot;

/// Jobs taken into one transaction, at most.
pub const MAX_GROUP: usize = 512;

/// Jobs waiting for the writer, at most; callers wait beyond that.
const QUEUE: usize = 1024;

/// Errors from the database and from the operations on it: the storage-neutral error.
pub use storefleet_storage::Error as DbError;

type Finish = Box<dyn FnOnce(Result<(), DbError>) + Send>;
/// A queued write: given the connection it runs and says whether it succeeded; given an
/// error (its group failed before its turn) it does nothing. Either way it returns how to
/// tell its caller the outcome of the commit.
type Job = Box<dyn FnOnce(Result<&Connection, DbError>) -> (bool, Finish) + Send>;

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Db(Backend);

#[derive(Clone)]
enum Backend {
    Sqlite(Sqlite),
    Postgres(Pool),
}

/// SQLite: the writer thread's queue and a few read-only connections.
#[derive(Clone)]
struct Sqlite {
    jobs: std::sync::mpsc::SyncSender<Job>,
    readers: Arc<Mutex<Vec<Connection>>>,
    path: PathBuf,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Db").field(&self.place()).finish()
    }
}

/// Connections to PostgreSQL per controller, at most.
pub const POSTGRES_CONNECTIONS: usize = 16;

/// Connects to PostgreSQL at `url` and brings its schema up to date.
/// Over TLS when `tls` is given (then required).
pub fn connect(url: &str, tls: Option<rustls::ClientConfig>) -> Result<Db, DbError> {
    let pool = Pool::connect_tls(url, POSTGRES_CONNECTIONS, tls)?;
    pool.migrate(postgres::MIGRATIONS)?;
    Ok(Db(Backend::Postgres(pool)))
}

/// Opens (creating if needed) and migrates the database, and starts its writer thread.
pub fn open(path: &Path, synchronous_full: bool) -> Result<Db, DbError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| DbError::Backend(format!("{}: {e}", dir.display())))?;
    }
    let mut conn =
        Connection::open(path).map_err(|e| DbError::Backend(format!("{}: {e}", path.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(
        None,
        "synchronous",
        if synchronous_full { "FULL" } else { "NORMAL" },
    )?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "cache_size", -32_000)?;
    migrations::apply(&mut conn)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(QUEUE);
    std::thread::Builder::new()
        .name("db-writer".into())
        .spawn(move || writer(conn, &rx))
        .map_err(|e| DbError::Backend(format!("cannot start the writer thread: {e}")))?;
    Ok(Db(Backend::Sqlite(Sqlite {
        jobs: tx,
        readers: Arc::new(Mutex::new(Vec::new())),
        path: path.to_owned(),
    })))
}

fn writer(mut conn: Connection, rx: &std::sync::mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let mut finishers = Vec::with_capacity(jobs.len());
        let mut pending = jobs.into_iter();
        let outcome = (|| -> Result<(), DbError> {
            let mut tx = conn.transaction()?;
            for job in pending.by_ref() {
                let sp = tx.savepoint()?;
                let (ok, finish) = job(Ok(&sp));
                finishers.push(finish);
                if ok {
                    sp.commit()?;
                } else {
                    drop(sp); // rolls back this job only
                }
            }
            tx.commit()?;
            Ok(())
        })();
        if let Err(e) = &outcome {
            tracing::error!(error = %e, "Database commit failed; the writes of this group are not stored");
            // Jobs that never ran (the group failed before their turn) hear the error too.
            for job in pending {
                finishers.push(job(Err(e.clone())).1);
            }
        }
        for f in finishers {
            f(outcome.clone());
        }
    }
}

impl Db {
    /// Where the data is: the SQLite file, or the PostgreSQL server and database (without a
    /// password).
    pub fn place(&self) -> String {
        match &self.0 {
            Backend::Sqlite(s) => s.path.display().to_string(),
            Backend::Postgres(p) => p.place().to_owned(),
        }
    }

    /// Whether other processes may share this database (PostgreSQL): several replicas.
    pub fn shared(&self) -> bool {
        matches!(self.0, Backend::Postgres(_))
    }

    /// A PostgreSQL connection of its own, outside the pool (an advisory lock, LISTEN);
    /// blocks. SQLite has none.
    pub fn session(&self) -> Result<storefleet_storage::postgres::Session, DbError> {
        match &self.0 {
            Backend::Sqlite(_) => Err(DbError::Invalid(
                "a SQLite database has no sessions of its own".into(),
            )),
            Backend::Postgres(p) => p.session(),
        }
    }

    /// Runs `f` in a write transaction; returns its value once committed (on SQLite, in
    /// the writer's group commit: `f` runs in its own savepoint).
    pub async fn write<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Sql) -> Result<T, DbError> + Send + 'static,
    {
        match &self.0 {
            Backend::Sqlite(s) => s.write(f).await,
            Backend::Postgres(p) => p.write(f).await,
        }
    }

    /// Runs `f` on a read-only connection, off the async threads.
    pub async fn read<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Sql) -> Result<T, DbError> + Send + 'static,
    {
        match &self.0 {
            Backend::Sqlite(s) => {
                let s = s.clone();
                tokio::task::spawn_blocking(move || s.read_blocking(f))
                    .await
                    .map_err(|_| DbError::Closed)?
            }
            Backend::Postgres(p) => p.read(f).await,
        }
    }

    /// Runs `f` on a read-only connection on this thread.
    pub fn read_blocking<T: Send>(
        &self,
        f: impl FnOnce(&dyn Sql) -> Result<T, DbError> + Send,
    ) -> Result<T, DbError> {
        match &self.0 {
            Backend::Sqlite(s) => s.read_blocking(f),
            Backend::Postgres(p) => p.run_blocking(true, f),
        }
    }
}

impl Sqlite {
    async fn write<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Sql) -> Result<T, DbError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move |c: Result<&Connection, DbError>| {
            let r = c.and_then(|c| f(c));
            let ok = r.is_ok();
            let finish: Finish = Box::new(move |committed: Result<(), DbError>| {
                let _ = reply.send(match (r, committed) {
                    (Ok(v), Ok(())) => Ok(v),
                    (Err(e), _) | (Ok(_), Err(e)) => Err(e),
                });
            });
            (ok, finish)
        });
        let jobs = self.jobs.clone();
        // The queue is bounded: wait for room off the async threads.
        tokio::task::spawn_blocking(move || jobs.send(job))
            .await
            .map_err(|_| DbError::Closed)?
            .map_err(|_| DbError::Closed)?;
        rx.await.map_err(|_| DbError::Closed)?
    }

    fn read_blocking<T>(
        &self,
        f: impl FnOnce(&dyn Sql) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let conn = self.readers.lock().ok().and_then(|mut v| v.pop());
        let conn = match conn {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.busy_timeout(std::time::Duration::from_secs(30))?;
                c.pragma_update(None, "cache_size", -16_000)?;
                c
            }
        };
        let r = f(&conn);
        if let Ok(mut v) = self.readers.lock() {
            if v.len() < 16 {
                v.push(conn);
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn a_failing_job_rolls_back_alone_and_the_others_commit() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir.path().join("t.db"), false).unwrap();
        let mut handles = Vec::new();
        for i in 0..50i64 {
            let db = db.clone();
            handles.push(tokio::spawn(async move {
                db.write(move |c| {
                    c.execute(
                        "INSERT INTO stores(code, name, created_at) VALUES (?1, 'x', 0)",
                        storefleet_storage::args![format!("S{i}")],
                    )?;
                    if i % 10 == 0 {
                        return Err(DbError::Invalid("no".into()));
                    }
                    Ok(i)
                })
                .await
            }));
        }
        let mut failed = 0;
        for h in handles {
            if h.await.unwrap().is_err() {
                failed += 1;
            }
        }
        assert_eq!(failed, 5);
        let n = db
            .read(|c| {
                storefleet_storage::SqlExt::int(c, "SELECT count(*) AS n FROM stores", &[], "n")
            })
            .await
            .unwrap();
        assert_eq!(n, 45);
    }
}
