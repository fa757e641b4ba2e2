//! One repository suite, run on both backends: SQLite (a migrated file, each job in its own
//! transaction) and PostgreSQL (a fresh database from `STOREFLEET_TEST_PG`, skipped with a
//! note when unset).

use storefleet_storage::postgres::{testing, Pool};
use storefleet_storage::Sql;

use super::DbError;

/// A job run in one transaction: committed when it returns `Ok`, rolled back otherwise.
pub type Job<'a> = &'a mut (dyn FnMut(&dyn Sql) -> Result<(), DbError> + Send);

/// A backend under test, running jobs.
pub type Backend<'a> = &'a dyn Fn(Job<'_>) -> Result<(), DbError>;

/// Runs `suite` on SQLite, then on PostgreSQL when the machine has one for tests.
pub fn on_each_backend(test: &str, suite: impl Fn(&str, Backend<'_>)) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("controller.db");
    drop(super::open(&path, false).unwrap());
    let conn = std::cell::RefCell::new(rusqlite::Connection::open(&path).unwrap());
    suite("sqlite", &|job| {
        let mut c = conn.borrow_mut();
        let tx = c.transaction()?;
        job(&*tx)?;
        tx.commit()?;
        Ok(())
    });
    let Some(db) = testing::database(test) else {
        return;
    };
    let pool = Pool::connect(&db.url, 2).unwrap();
    pool.migrate(super::postgres::MIGRATIONS).unwrap();
    suite("postgres", &|job| pool.run_blocking(false, |c| job(c)));
}

/// A fresh, migrated PostgreSQL database with one store `S`, for tests of what concurrent
/// transactions (replicas) do; `None` when the machine has none for tests. Keep the first
/// value alive as long as the pool: dropping it drops the database.
pub fn postgres_with_store(test: &str, connections: usize) -> Option<(testing::TestDb, Pool)> {
    let db = testing::database(test)?;
    let pool = Pool::connect(&db.url, connections).unwrap();
    pool.migrate(super::postgres::MIGRATIONS).unwrap();
    pool.run_blocking(false, |c| {
        c.execute(
            "INSERT INTO stores(code, name, created_at) VALUES ('S', 'S', 0)",
            &[],
        )?;
        Ok(())
    })
    .unwrap();
    Some((db, pool))
}

/// Runs `job` on a thread of its own and keeps its transaction open for `hold` after it
/// returned, so that the caller can run something against it while it is uncommitted; join
/// the handle for its result (after the commit).
pub fn uncommitted<T: Send + 'static>(
    pool: &Pool,
    hold: std::time::Duration,
    job: impl FnOnce(&dyn Sql) -> Result<T, DbError> + Send + 'static,
) -> std::thread::JoinHandle<Result<T, DbError>> {
    let pool = pool.clone();
    std::thread::spawn(move || {
        pool.run_blocking(false, move |c| {
            let out = job(c)?;
            std::thread::sleep(hold);
            Ok(out)
        })
    })
}
