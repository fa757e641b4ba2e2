//! Running the controller: the embedded broker (unless an external one is configured), the
//! database, ingest, the HTTP API and UI, and housekeeping (retention), under one
//! cancellation token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use storefleet_protocol::{now_ms, PublicKey};
use storefleet_storage::SqlExt as _;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::db::{self, DbError};
use crate::ingest::{self, IngestError, Registry, Stats};
use crate::state::AppState;
use crate::tasks::engine::{self, Clock};
use crate::{agents, alerts, api, auth, telemetry, tickets, ui, webhooks};

/// Why the controller could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The database could not be opened or migrated.
    #[error("database {path}: {source}")]
    Db {
        /// The file.
        path: String,
        /// Why.
        source: DbError,
    },
    /// The signing key could not be loaded or made.
    #[error("controller key: {0}")]
    Key(#[from] storefleet_support::keyfile::KeyFileError),
    /// The embedded broker did not start.
    #[error(transparent)]
    Broker(#[from] storefleet_support::broker::BrokerError),
    /// Ingest settings are unusable.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The task engine cannot start.
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    /// A setting cannot be used (a file it names cannot be read).
    #[error("{0}")]
    Config(String),
    /// The HTTP listener could not bind.
    #[error("http.listen {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// First credentials, made when the database has no user and no API token.
#[derive(Debug, Clone)]
pub struct FirstLogin {
    /// User name.
    pub user: String,
    /// Its password.
    pub password: String,
    /// An API token for the CLI.
    pub api_token: String,
}

/// A started controller.
pub struct Running {
    /// Where the API and UI listen.
    pub http: SocketAddr,
    /// The broker URL agents use.
    pub mqtt_url: String,
    /// The controller's public key.
    pub public_key: PublicKey,
    /// Credentials made at this start (first start only).
    pub first_login: Option<FirstLogin>,
    /// Shared state (for in-process callers such as the demo).
    pub state: AppState,
    tracker: TaskTracker,
    token: CancellationToken,
}

impl Running {
    /// Waits until the token is cancelled, then until every task has stopped (at most 10 s).
    pub async fn wait(self) {
        self.token.cancelled().await;
        self.tracker.close();
        if tokio::time::timeout(Duration::from_secs(10), self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("Some tasks did not stop within 10 s");
        }
    }
}

fn db_err(config: &Config) -> impl FnOnce(DbError) -> ServerError + '_ {
    move |source| ServerError::Db {
        path: config.database_place(),
        source,
    }
}

/// Starts everything; runs until `token` is cancelled.
pub async fn start(config: Config, token: CancellationToken) -> Result<Running, ServerError> {
    start_with_clock(config, token, Clock::system()).await
}

/// [`start`], with the task engine on `clock` (tests move it through trading hours).
pub async fn start_with_clock(
    mut config: Config,
    token: CancellationToken,
    clock: Clock,
) -> Result<Running, ServerError> {
    std::fs::create_dir_all(&config.controller.state_dir).map_err(|e| ServerError::Db {
        path: config.controller.state_dir.display().to_string(),
        source: DbError::Backend(e.to_string()),
    })?;
    let key = Arc::new(storefleet_support::keyfile::load_or_create(
        &config.key_path(),
    )?);

    let served = crate::https::load_or_create(&config).map_err(ServerError::Config)?;

    // Bind HTTP first so that port 0 resolves before URLs are derived from it.
    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .map_err(|source| ServerError::Listen {
            addr: config.http.listen,
            source,
        })?;
    config.http.listen = listener
        .local_addr()
        .map_err(|source| ServerError::Listen {
            addr: config.http.listen,
            source,
        })?;

    let db = config.open_database().map_err(db_err(&config))?;
    owner_only(
        &config.controller.state_dir,
        config
            .database
            .url
            .is_empty()
            .then(|| config.database_path())
            .as_deref(),
    );
    let first_login = bootstrap(&db, &config).await.map_err(db_err(&config))?;
    let keys = db
        .read(|c| agents::keys(c))
        .await
        .map_err(db_err(&config))?;
    let registry = Registry::new(keys);
    // The controller's own broker credentials: its secret at the embedded broker, or what
    // the config gives for an external one.
    let broker_secret = crate::broker_auth::load_or_create_secret(&config.broker_secret_path())?;
    let broker_refusals = Arc::new(crate::broker_auth::Refusals::default());
    let credentials = if config.mqtt.url.is_empty() {
        Some(crate::broker_auth::Credentials {
            username: storefleet_protocol::broker::CONTROLLER_USER.into(),
            password: broker_secret.clone(),
        })
    } else {
        config.mqtt_credentials().map_err(ServerError::Config)?
    };
    let tls = if config.mqtt.ca_file.as_os_str().is_empty() {
        None
    } else {
        let trust = storefleet_support::tls::Trust {
            pin: None,
            ca_file: config.mqtt.ca_file.clone(),
        };
        Some(Arc::new(
            storefleet_support::tls::trusting(&trust)
                .map_err(|e| ServerError::Config(format!("mqtt.ca_file: {e}")))?,
        ))
    };
    let login = crate::broker_auth::BrokerLogin { credentials, tls };
    if config.mqtt.url.is_empty() {
        if config.mqtt.listen.port() == 0 {
            let probe = std::net::TcpListener::bind(config.mqtt.listen).map_err(|source| {
                ServerError::Listen {
                    addr: config.mqtt.listen,
                    source,
                }
            })?;
            config.mqtt.listen = probe.local_addr().map_err(|source| ServerError::Listen {
                addr: config.mqtt.listen,
                source,
            })?;
        }
        storefleet_support::broker::start_in_process(
            config.mqtt.listen,
            config.mqtt.max_connections,
            Some(crate::broker_auth::check(
                registry.clone(),
                broker_secret.clone(),
                config.mqtt.client_id.clone(),
                broker_refusals.clone(),
            )),
        )?;
        tracing::info!(listen = %config.mqtt.listen, "Embedded broker listening");
    }
    let mqtts = match (config.mqtt.tls_listen, &served) {
        (Some(addr), Some(served)) => {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Listen { addr, source })?;
            let bound = l
                .local_addr()
                .map_err(|source| ServerError::Listen { addr, source })?;
            config.mqtt.tls_listen = Some(bound);
            tracing::info!(listen = %bound, "Embedded broker listening with TLS");
            Some((l, served.config.clone()))
        }
        _ => None,
    };
    let broker_url = if config.mqtt.url.is_empty() {
        format!("mqtt://{}", config.mqtt.listen)
    } else {
        config.mqtt.url.clone()
    };

    let stats = Arc::new(Stats::default());
    let tracker = TaskTracker::new();
    if let Some((listener, tls)) = mqtts {
        tracker.spawn(crate::broker_tls::serve(
            listener,
            config.mqtt.listen,
            tls,
            config.mqtt.max_connections,
            token.clone(),
        ));
    }
    let signals =
        crate::cluster::Signals::local().replicate(&db, registry.clone(), &token, &tracker);
    ingest::start(
        &ingest::Settings {
            url: broker_url.clone(),
            client_id: config.mqtt_client_id(""),
            share_group: (!config.controller.replica.is_empty())
                .then(|| config.mqtt.share_group.clone()),
            login: login.clone(),
        },
        &ingest::Shared {
            db: db.clone(),
            registry: registry.clone(),
            stats: stats.clone(),
            signals: signals.clone(),
            series_ids: Arc::default(),
        },
        &token,
        &tracker,
    )?;
    // Checked here, so that a broker URL the engine cannot use stops the start.
    crate::broker_auth::mqtt_options(&broker_url, &config.mqtt_client_id("tasks"), &login)
        .map_err(|e| ServerError::Engine(engine::EngineError::new(e)))?;

    let tickets = tickets::Ctx {
        settings: config.tickets.clone(),
        hooks: Arc::new(config.webhooks.clone()),
        public_url: config.public_url(),
    };
    let ticket_counters = Arc::new(tickets::engine::Counters::default());
    let engines = Engines {
        task: engine::Settings {
            url: broker_url,
            client_id: config.mqtt_client_id("tasks"),
            login: login.clone(),
            offline_after_ms: (config.presence.offline_after_secs as i64) * 1000,
            clock: clock.clone(),
            releases_url: if config.releases.download_url.is_empty() {
                format!("{}/releases", config.public_url().trim_end_matches('/'))
            } else {
                config.releases.download_url.clone()
            },
        },
        tickets: tickets::engine::Settings {
            rules: Arc::new(alerts::effective(&config.rules)),
            ctx: tickets.clone(),
            presence: config.presence.clone(),
            clock: clock.clone(),
        },
        retention: config.telemetry.clone(),
        db: db.clone(),
        key: key.clone(),
        signals: signals.clone(),
        counters: ticket_counters.clone(),
        tracker: tracker.clone(),
    };
    let lease = crate::cluster::lease::run(&db, &token, &tracker, move |t| engines.start(t));

    let config = Arc::new(config);
    let state = AppState {
        db: db.clone(),
        config: config.clone(),
        registry,
        stats,
        key: key.clone(),
        signals,
        lease,
        tickets,
        ticket_counters,
        clock,
        release_key: storefleet_protocol::PublicKey::from_base64(&config.releases.public_key).ok(),
        tls_pin: served
            .as_ref()
            .map(|s| s.pin.to_string())
            .unwrap_or_default(),
        http_stats: Arc::default(),
        broker_refusals,
        login_limiter: Arc::new(auth::limit::LoginLimiter::new(
            config.http.login_failures_per_user,
            config.http.login_failures_per_address,
        )),
    };
    let app = crate::access::Routes::default()
        .merge(api::routes())
        .merge(ui::routes())
        .into_router(&state)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::guard::same_origin,
        ))
        .layer(axum::middleware::from_fn(crate::guard::security_headers))
        .layer(axum::extract::DefaultBodyLimit::max(1024 * 1024))
        .with_state(state.clone());
    let limits = crate::http::Limits {
        header_timeout: Duration::from_secs(config.http.header_timeout_secs),
        max_connections: crate::http::connection_cap(config.http.max_connections),
        per_address: config.http.max_connections_per_address,
    };
    tracker.spawn(crate::http::serve(
        listener,
        app,
        (limits, served.as_ref().map(|s| s.config.clone())),
        state.http_stats.clone(),
        token.clone(),
    ));
    tracing::info!(http = %config.http.listen, public_url = %config.public_url(), mqtt = %config.advertised_mqtt_url(), "Controller running");
    Ok(Running {
        http: config.http.listen,
        mqtt_url: config.advertised_mqtt_url(),
        public_key: key.public_key(),
        first_login,
        state,
        tracker,
        token,
    })
}

/// The state directory (0700) and the database with its WAL files (0600) readable by the
/// controller's user only: they hold password hashes, tokens' hashes and every store's data.
fn owner_only(state_dir: &std::path::Path, db: Option<&std::path::Path>) {
    use std::os::unix::fs::PermissionsExt as _;
    let set = |p: &std::path::Path, mode: u32| {
        if let Err(e) = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %p.display(), error = %e, "Cannot restrict permissions");
            }
        }
    };
    set(state_dir, 0o700);
    let Some(db) = db else { return };
    for suffix in ["", "-wal", "-shm"] {
        set(
            std::path::Path::new(&format!("{}{suffix}", db.display())),
            0o600,
        );
    }
}

/// On a database with nobody in it: an `admin` user with a random password and an API
/// token, written owner-only into the state directory (never to the log).
async fn bootstrap(db: &db::Db, config: &Config) -> Result<Option<FirstLogin>, DbError> {
    let password = auth::random_secret()[..16].to_owned();
    let p = password.clone();
    // Replicas starting together on an empty database: one makes the admin.
    let made = db
        .write(move |c| {
            c.take_turn("first-start")?;
            if auth::has_principals(c)? {
                return Ok(None);
            }
            auth::set_user(c, "admin", &p, Some(auth::Role::Admin), now_ms())?;
            auth::create_api_token(
                c,
                "admin",
                auth::Role::Admin,
                &auth::NewToken {
                    name: "first admin token".into(),
                    role: None,
                },
                now_ms(),
            )
            .map(Some)
        })
        .await?;
    let Some((_, api_token)) = made else {
        return Ok(None);
    };
    let write = |path: std::path::PathBuf, text: &str| {
        storefleet_support::keyfile::write_private(&path, format!("{text}\n").as_bytes())
            .map_err(|e| DbError::Backend(e.to_string()))
    };
    write(config.admin_token_path(), &api_token)?;
    write(
        config.controller.state_dir.join("admin-password"),
        &password,
    )?;
    tracing::info!(
        user = "admin",
        password_file = %config.controller.state_dir.join("admin-password").display(),
        api_token_file = %config.admin_token_path().display(),
        "First start: created user admin and an API token (in the files named here, mode 0600)"
    );
    Ok(Some(FirstLogin {
        user: "admin".into(),
        password,
        api_token,
    }))
}

/// What the replica holding the engine lease runs.
struct Engines {
    task: engine::Settings,
    tickets: tickets::engine::Settings,
    retention: crate::config::TelemetrySection,
    db: db::Db,
    key: Arc<storefleet_protocol::SigningKey>,
    signals: crate::cluster::Signals,
    counters: Arc<tickets::engine::Counters>,
    tracker: TaskTracker,
}

impl Engines {
    /// Starts the task, ticket and webhook engines, the rollup fold, the fleet tally and
    /// housekeeping; they run until `token` is cancelled (the lease lost, or the controller
    /// stopping).
    fn start(&self, token: CancellationToken) {
        use crate::cluster::Wake;
        let (db, tracker, signals) = (&self.db, &self.tracker, &self.signals);
        if let Err(e) = engine::start(
            self.task.clone(),
            db.clone(),
            self.key.clone(),
            signals.notify(Wake::Tasks),
            token.clone(),
            tracker,
        ) {
            tracing::error!(error = %e, "The task engine cannot start");
        }
        let (settings, t, tr) = (self.tickets.clone(), token.clone(), tracker.clone());
        let (d, s, counters) = (db.clone(), signals.clone(), self.counters.clone());
        tracker.spawn(async move {
            let started = tickets::engine::start(settings, d, &s, counters, t, &tr).await;
            if let Err(e) = started {
                tracing::error!(error = %e, "The ticket engine cannot start");
            }
        });
        crate::openings::watch::start(
            crate::openings::watch::Settings {
                ctx: self.tickets.ctx.clone(),
                presence: self.tickets.presence.clone(),
                clock: self.tickets.clock.clone(),
            },
            db.clone(),
            token.clone(),
            tracker,
        );
        let hooks = self.tickets.ctx.hooks.clone();
        let clock = self.tickets.clock.clone();
        tracker.spawn(webhooks::deliver(
            db.clone(),
            hooks,
            signals.notify(Wake::Webhooks),
            move || clock.now(),
            token.clone(),
        ));
        let every = Duration::from_secs(self.retention.rollup_every_secs);
        tracker.spawn(crate::ingest::rollups::run(
            db.clone(),
            every,
            token.clone(),
        ));
        tracker.spawn(crate::fleet::tally::run(
            db.clone(),
            self.tickets.presence.clone(),
            token.clone(),
        ));
        tracker.spawn(housekeeping(db.clone(), self.retention.clone(), token));
    }
}

async fn housekeeping(
    db: db::Db,
    retention: crate::config::TelemetrySection,
    token: CancellationToken,
) {
    loop {
        let retention = retention.clone();
        match db
            .write(move |c| telemetry::prune(c, &retention, now_ms()))
            .await
        {
            Ok(n) if n > 0 => tracing::info!(rows = n, "Pruned data past retention"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "Retention pruning failed; will retry"),
        }
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}
