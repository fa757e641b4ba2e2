//! PostgreSQL: a small pool of connections (rust-postgres' synchronous client) on tokio's
//! blocking threads, each statement prepared once per connection, and [`Sql`] on a
//! transaction. Reads run in read-only transactions; a write is one transaction, committed
//! before its caller hears back.

use std::cell::RefCell;
use std::collections::HashMap;
use std::str::FromStr as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};
use postgres::{Client, NoTls, Statement, Transaction};
use tokio::sync::Semaphore;

mod session;
pub use session::{Notification, Session};

use crate::sql::dollar_params;
use crate::{Dialect, Error, Row, Sql, Value};

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match (self, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Int(v), &Type::INT8) => v.to_sql(ty, out),
            (Value::Int(v), &Type::INT4) => i32::try_from(*v)?.to_sql(ty, out),
            (Value::Int(v), &Type::INT2) => i16::try_from(*v)?.to_sql(ty, out),
            (Value::Int(v), &Type::BOOL) => (*v != 0).to_sql(ty, out),
            (Value::Int(v), &Type::FLOAT8) => (*v as f64).to_sql(ty, out),
            (Value::Int(v), t) if <&str as ToSql>::accepts(t) => v.to_string().to_sql(ty, out),
            (Value::Bool(b), &Type::BOOL) => b.to_sql(ty, out),
            (Value::Bool(b), &Type::INT8) => i64::from(*b).to_sql(ty, out),
            (Value::Bool(b), &Type::INT4) => i32::from(*b).to_sql(ty, out),
            (Value::Real(v), &Type::FLOAT8) => v.to_sql(ty, out),
            (Value::Real(v), &Type::FLOAT4) => (*v as f32).to_sql(ty, out),
            (Value::Text(s), t) if <&str as ToSql>::accepts(t) => s.as_str().to_sql(ty, out),
            (Value::Blob(b), &Type::BYTEA) => b.as_slice().to_sql(ty, out),
            (v, t) => Err(format!("a parameter of kind {} cannot be sent as {t}", v.kind()).into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A column's value, whatever its type.
struct Cell(Value);

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Cell(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT2 => Value::Int(i64::from(i16::from_sql(ty, raw)?)),
            Type::BOOL => Value::Bool(bool::from_sql(ty, raw)?),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f64::from(f32::from_sql(ty, raw)?)),
            Type::BYTEA => Value::Blob(Vec::<u8>::from_sql(ty, raw)?),
            ref t if <&str as FromSql>::accepts(t) => Value::Text(String::from_sql(ty, raw)?),
            ref t => {
                return Err(format!("column type {t} is not read (cast it in the query)").into())
            }
        }))
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Cell(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Statements kept prepared per connection, at most.
const STATEMENTS: usize = 512;

/// A pooled connection and its prepared statements.
struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
}

/// A transaction on a pooled connection.
struct Tx<'a> {
    tx: RefCell<Transaction<'a>>,
    statements: RefCell<&'a mut HashMap<String, Statement>>,
}

impl Tx<'_> {
    fn statement(&self, sql: &str) -> Result<Statement, Error> {
        if let Some(s) = self.statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        let st = self.tx.borrow_mut().prepare(&dollar_params(sql))?;
        let mut cache = self.statements.borrow_mut();
        if cache.len() >= STATEMENTS {
            cache.clear();
        }
        cache.insert(sql.to_owned(), st.clone());
        Ok(st)
    }
}

fn refs(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

impl Sql for Tx<'_> {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, Error> {
        let st = self.statement(sql)?;
        Ok(self.tx.borrow_mut().execute(&st, &refs(params))?)
    }

    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, Error> {
        let st = self.statement(sql)?;
        let names: Arc<[String]> = st.columns().iter().map(|c| c.name().to_owned()).collect();
        let rows = self.tx.borrow_mut().query(&st, &refs(params))?;
        rows.iter()
            .map(|r| {
                let values = (0..names.len())
                    .map(|i| r.try_get::<_, Cell>(i).map(|c| c.0))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Row {
                    names: names.clone(),
                    values,
                })
            })
            .collect()
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
}

/// Runs `f` where rust-postgres' synchronous client may block: on this thread, or on a
/// thread of its own when this one drives an async runtime (the client runs a runtime of
/// its own, which cannot start inside another).
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// Idle connections; closed off any async runtime when the pool goes.
struct Idle(Mutex<Vec<Conn>>);

impl Drop for Idle {
    fn drop(&mut self) {
        let conns = std::mem::take(
            self.0
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if !conns.is_empty() {
            off_runtime(move || drop(conns));
        }
    }
}

/// Connections to one PostgreSQL database; cheap to clone.
#[derive(Clone)]
pub struct Pool {
    config: Arc<postgres::Config>,
    /// TLS to the server (verified), or none.
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    idle: Arc<Idle>,
    permits: Arc<Semaphore>,
    /// Where it is, without a password (for logs and errors).
    place: Arc<str>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("place", &self.place)
            .finish_non_exhaustive()
    }
}

/// Whether the connection string `url` asks for TLS (`sslmode=require`).
pub fn wants_tls(url: &str) -> bool {
    postgres::Config::from_str(url)
        .is_ok_and(|c| c.get_ssl_mode() == postgres::config::SslMode::Require)
}

/// Where the connection string `url` points, without its password (for messages); what
/// cannot be read as a connection string is named as such, never echoed.
pub fn place(url: &str) -> String {
    match postgres::Config::from_str(url) {
        Ok(c) => place_of(&c),
        Err(_) => "an unreadable PostgreSQL URL".to_owned(),
    }
}

/// Where a connection string points, without its password.
fn place_of(config: &postgres::Config) -> String {
    let host = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            postgres::config::Host::Tcp(h) => h.clone(),
            postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .collect::<Vec<_>>()
        .join(",");
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    format!(
        "postgres://{user}{host}:{port}/{}",
        config.get_dbname().unwrap_or("")
    )
}

impl Pool {
    /// A pool of at most `max` connections to `url` (`postgres://user@host:port/db` or the
    /// key=value form); connects once to check it.
    pub fn connect(url: &str, max: usize) -> Result<Pool, Error> {
        Pool::connect_tls(url, max, None)
    }

    /// [`Pool::connect`], over TLS when `tls` is given: then TLS is required
    /// (`sslmode=require`) and the server's certificate is checked against the roots of
    /// `tls` and the host name, as `verify-full` does.
    pub fn connect_tls(
        url: &str,
        max: usize,
        tls: Option<rustls::ClientConfig>,
    ) -> Result<Pool, Error> {
        let mut config = postgres::Config::from_str(url)
            .map_err(|e| Error::Invalid(format!("database url: {e}")))?;
        if tls.is_some() {
            config.ssl_mode(postgres::config::SslMode::Require);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name("storefleet");
        let pool = Pool {
            place: place_of(&config).into(),
            config: Arc::new(config),
            tls: tls.map(tokio_postgres_rustls::MakeRustlsConnect::new),
            idle: Arc::new(Idle(Mutex::new(Vec::new()))),
            permits: Arc::new(Semaphore::new(max.max(1))),
        };
        let conn = pool.open()?;
        pool.put(conn);
        Ok(pool)
    }

    /// Where the pool connects, without a password.
    pub fn place(&self) -> &str {
        &self.place
    }

    /// A new connection with `config` (the pool's, or one changed from it).
    fn dial(&self, config: &postgres::Config) -> Result<Client, Error> {
        off_runtime(|| match &self.tls {
            Some(tls) => config.connect(tls.clone()),
            None => config.connect(NoTls),
        })
        .map_err(|e| {
            // The whole chain: "error performing TLS handshake" alone does not say why.
            let mut why = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                let text = c.to_string();
                if !why.contains(&text) {
                    why = format!("{why}: {text}");
                }
                cause = c.source();
            }
            Error::Unavailable(format!("{}: {why}", self.place))
        })
    }

    fn open(&self) -> Result<Conn, Error> {
        let client = self.dial(&self.config)?;
        Ok(Conn {
            client,
            statements: HashMap::new(),
        })
    }

    fn take(&self) -> Result<Conn, Error> {
        let idle = self.idle.0.lock().ok().and_then(|mut v| v.pop());
        match idle {
            Some(c) if !c.client.is_closed() => Ok(c),
            _ => self.open(),
        }
    }

    fn put(&self, conn: Conn) {
        if conn.client.is_closed() {
            off_runtime(move || drop(conn));
            return;
        }
        if let Ok(mut v) = self.idle.0.lock() {
            v.push(conn);
        }
    }

    /// Runs `f` in a transaction on a pooled connection on this thread: committed when it
    /// returns `Ok`, rolled back otherwise.
    pub fn run_blocking<T: Send>(
        &self,
        read_only: bool,
        f: impl FnOnce(&dyn Sql) -> Result<T, Error> + Send,
    ) -> Result<T, Error> {
        off_runtime(|| self.run_here(read_only, f))
    }

    fn run_here<T>(
        &self,
        read_only: bool,
        f: impl FnOnce(&dyn Sql) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut conn = self.take()?;
        let result = (|| {
            let Conn { client, statements } = &mut conn;
            let tx = client.build_transaction().read_only(read_only).start()?;
            let tx = Tx {
                tx: RefCell::new(tx),
                statements: RefCell::new(statements),
            };
            let out = f(&tx)?;
            tx.tx.into_inner().commit()?;
            Ok(out)
        })();
        self.put(conn);
        result
    }

    async fn run<T, F>(&self, read_only: bool, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Sql) -> Result<T, Error> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Closed)?;
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            pool.run_here(read_only, f)
        })
        .await
        .map_err(|e| Error::Unavailable(format!("a database job stopped: {e}")))?
    }

    /// Runs `f` in a read-only transaction.
    pub async fn read<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Sql) -> Result<T, Error> + Send + 'static,
    {
        self.run(true, f).await
    }

    /// Runs `f` in a transaction; returns its value once committed.
    pub async fn write<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Sql) -> Result<T, Error> + Send + 'static,
    {
        self.run(false, f).await
    }

    /// Brings the schema up to date: `migrations[i]` takes version `i` to `i + 1`, each in
    /// its own transaction, under an advisory lock so that replicas starting together
    /// migrate once.
    pub fn migrate(&self, migrations: &[&str]) -> Result<u32, Error> {
        off_runtime(|| self.migrate_here(migrations))
    }

    fn migrate_here(&self, migrations: &[&str]) -> Result<u32, Error> {
        let mut conn = self.take()?;
        let result = (|| {
            let client = &mut conn.client;
            client.batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)",
            )?;
            loop {
                let mut tx = client.transaction()?;
                // One key for "storefleet migrates".
                tx.execute("SELECT pg_advisory_xact_lock(7313370001)", &[])?;
                let version: i64 = tx
                    .query_opt("SELECT version FROM schema_version", &[])?
                    .map_or(0, |r| r.get(0));
                if version as usize > migrations.len() {
                    return Err(Error::Backend(format!(
                        "the database has schema version {version}, newer than this controller knows ({}); run a newer controller",
                        migrations.len()
                    )));
                }
                let Some(step) = migrations.get(version as usize) else {
                    return Ok(version as u32);
                };
                tx.batch_execute(step).map_err(|e| {
                    Error::Backend(format!("migration {}: {}", version + 1, Error::from(e)))
                })?;
                tx.execute("DELETE FROM schema_version", &[])?;
                tx.execute(
                    "INSERT INTO schema_version(version) VALUES ($1)",
                    &[&(version + 1)],
                )?;
                tx.commit()?;
                tracing::info!(version = version + 1, "PostgreSQL schema migrated");
            }
        })();
        self.put(conn);
        result
    }
}

pub mod testing {
    //! A fresh database per test on the machine's PostgreSQL (`STOREFLEET_TEST_PG`).

    use std::sync::atomic::{AtomicU32, Ordering};

    /// A database made for one test and dropped after it.
    #[derive(Debug)]
    pub struct TestDb {
        /// Its URL.
        pub url: String,
        admin: String,
        name: String,
    }

    /// A new empty database on `STOREFLEET_TEST_PG` (a URL whose user may create
    /// databases), or `None` with a note on stderr when it is not set.
    pub fn database(test: &str) -> Option<TestDb> {
        super::off_runtime(|| make(test))
    }

    fn make(test: &str) -> Option<TestDb> {
        let Ok(admin) = std::env::var("STOREFLEET_TEST_PG") else {
            eprintln!("{test}: skipped on PostgreSQL (set STOREFLEET_TEST_PG=postgres://user@host:port/db; .ci/run does)");
            return None;
        };
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "sf_test_{}_{}_{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut client = postgres::Client::connect(&admin, postgres::NoTls)
            .unwrap_or_else(|e| panic!("STOREFLEET_TEST_PG={admin}: {e}"));
        // Databases of test processes that are gone (killed, or holding them to the end).
        static SWEPT: std::sync::Once = std::sync::Once::new();
        SWEPT.call_once(|| {
            let names = client
                .query(
                    "SELECT datname::text FROM pg_database WHERE datname LIKE 'sf_test_%'",
                    &[],
                )
                .map(|rows| {
                    rows.iter()
                        .map(|r| r.get::<_, String>(0))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            for name in names {
                let pid = name.split('_').nth(2).unwrap_or_default();
                if pid != std::process::id().to_string()
                    && !std::path::Path::new(&format!("/proc/{pid}")).exists()
                {
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
                }
            }
        });
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let (base, _) = admin
            .rsplit_once('/')
            .filter(|(b, _)| b.contains("://") && b.len() > b.find("://").unwrap_or(0) + 3)
            .expect("STOREFLEET_TEST_PG is a postgres://user@host:port/db URL");
        Some(TestDb {
            url: format!("{base}/{name}"),
            admin,
            name,
        })
    }

    impl Drop for TestDb {
        fn drop(&mut self) {
            super::off_runtime(|| {
                if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
                    let _ = c.batch_execute(&format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        self.name
                    ));
                }
            });
        }
    }
}
