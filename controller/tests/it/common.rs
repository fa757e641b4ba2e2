//! The real `storefleet serve` process in a temporary state directory, and calls to its API;
//! and the config and API client of a controller run in the test's own process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use storefleet_support::http::{self, Request};
pub use storefleet_testkit::agent::{post_json, AgentHome};
use storefleet_testkit::free_port;

/// With `STOREFLEET_TEST_DATABASE=postgres` (and `STOREFLEET_TEST_PG`), every controller of
/// the suite runs on a fresh PostgreSQL database instead of SQLite: the whole suite on the
/// second backend.
pub fn test_database() -> Option<storefleet_storage::postgres::testing::TestDb> {
    if std::env::var("STOREFLEET_TEST_DATABASE").as_deref() != Ok("postgres") {
        return None;
    }
    let db = storefleet_storage::postgres::testing::database("suite on PostgreSQL");
    assert!(
        db.is_some(),
        "STOREFLEET_TEST_DATABASE=postgres needs STOREFLEET_TEST_PG"
    );
    db
}

/// Databases of in-process controllers, dropped when the test binary ends its tests.
static IN_PROCESS_DATABASES: std::sync::Mutex<Vec<storefleet_storage::postgres::testing::TestDb>> =
    std::sync::Mutex::new(Vec::new());

/// The config of a controller run in this process: state in `dir/controller`, HTTP and the
/// embedded broker on free loopback ports.
pub fn in_process_config(dir: &std::path::Path) -> storefleet_controller::config::Config {
    let mut config = storefleet_controller::config::Config::default();
    config.controller.state_dir = dir.join("controller");
    config.http.listen = ([127, 0, 0, 1], 0).into();
    config.mqtt.listen = ([127, 0, 0, 1], 0).into();
    config.database.synchronous = "normal".into();
    if let Some(db) = test_database() {
        config.database.url.clone_from(&db.url);
        IN_PROCESS_DATABASES.lock().unwrap().push(db);
    }
    config
}

/// The API client of a controller run in this process, with its first admin token.
pub fn client_of(
    running: &storefleet_controller::server::Running,
) -> storefleet_controller::client::Client {
    storefleet_controller::client::Client {
        base: running.state.config.public_url(),
        trust: http::Trust::pinned(&running.state.tls_pin).unwrap(),
        token: running
            .first_login
            .as_ref()
            .expect("a new state directory")
            .api_token
            .clone(),
    }
}

/// The controller binary under test.
pub const STOREFLEET: &str = env!("CARGO_BIN_EXE_storefleet");

/// The agent binary (built on first use).
pub fn agent_binary() -> PathBuf {
    storefleet_testkit::broker::cargo_bin("storefleet-agent", "storefleet-agent")
}

/// A running controller process.
pub struct Controller {
    child: Option<Child>,
    /// Its state and config.
    pub dir: tempfile::TempDir,
    /// API and UI address.
    pub http: SocketAddr,
    /// The broker it uses (embedded or external).
    pub mqtt: SocketAddr,
    /// Its MQTT client id.
    pub client_id: String,
    /// Whether the broker is external (then its session is cleared at the end).
    pub external: bool,
    /// Its PostgreSQL database, when the suite runs on PostgreSQL (dropped with it).
    _database: Option<storefleet_storage::postgres::testing::TestDb>,
    /// The first admin API token.
    pub token: String,
    /// The process's open-files limit, when the test sets one.
    pub nofile: Option<u64>,
}

impl Controller {
    /// Starts `storefleet serve` with the embedded broker, or with the external one.
    pub fn start(external: Option<SocketAddr>) -> Controller {
        Controller::start_with(external, "")
    }

    /// [`Controller::start`] with `extra` as the drop-in `controller.d/50-test.toml`.
    pub fn start_with(external: Option<SocketAddr>, extra: &str) -> Controller {
        Controller::launch(external, extra, None)
    }

    /// [`Controller::start_with`] the embedded broker, `extra` config and at most `nofile`
    /// open files.
    pub fn start_limited(extra: &str, nofile: u64) -> Controller {
        Controller::launch(None, extra, Some(nofile))
    }

    fn launch(external: Option<SocketAddr>, extra: &str, nofile: Option<u64>) -> Controller {
        let dir = tempfile::tempdir().unwrap();
        let http: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let client_id = format!("ctl-test-{:016x}", rand::random::<u64>());
        let (mqtt, mqtt_section) = match external {
            Some(a) => (
                a,
                format!("url = \"mqtt://{a}\"\nclient_id = \"{client_id}\""),
            ),
            None => {
                let a: SocketAddr = ([127, 0, 0, 1], free_port()).into();
                (a, format!("listen = \"{a}\"\nclient_id = \"{client_id}\""))
            }
        };
        let database = test_database();
        let config = format!(
            "[controller]\nstate_dir = \"{}\"\n\n[http]\nlisten = \"{http}\"\n\n[mqtt]\n{mqtt_section}\n\n[database]\nsynchronous = \"normal\"\nurl = \"{}\"\n",
            dir.path().join("state").display(),
            database.as_ref().map_or("", |d| d.url.as_str())
        );
        Controller::from_files(
            dir,
            (http, mqtt, client_id),
            (&config, extra),
            external.is_some(),
            database,
            nofile,
        )
    }

    /// Writes `config` (and `extra` as a drop-in) into `dir` and starts the controller;
    /// reads the first admin token from `dir/state/admin-token` (made at first start, or
    /// put there beforehand).
    pub fn from_files(
        dir: tempfile::TempDir,
        (http, mqtt, client_id): (SocketAddr, SocketAddr, String),
        (config, extra): (&str, &str),
        external: bool,
        database: Option<storefleet_storage::postgres::testing::TestDb>,
        nofile: Option<u64>,
    ) -> Controller {
        std::fs::write(dir.path().join("controller.toml"), config).unwrap();
        if !extra.is_empty() {
            std::fs::create_dir_all(dir.path().join("controller.d")).unwrap();
            std::fs::write(dir.path().join("controller.d/50-test.toml"), extra).unwrap();
        }
        let mut c = Controller {
            child: None,
            dir,
            http,
            mqtt,
            client_id,
            external,
            _database: database,
            token: String::new(),
            nofile,
        };
        c.spawn();
        let token = std::fs::read_to_string(c.dir.path().join("state/admin-token")).unwrap();
        token.trim().clone_into(&mut c.token);
        c
    }

    /// Starts the process (again) and waits until its API answers and ingest is connected.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("controller.log"))
            .unwrap();
        let mut cmd = match self.nofile {
            // Through the shell, whose `ulimit` sets the limit the process inherits.
            Some(n) => {
                let mut c = Command::new("sh");
                c.args([
                    "-c",
                    &format!("ulimit -n {n} && exec \"$0\" \"$@\""),
                    STOREFLEET,
                ]);
                c
            }
            None => Command::new(STOREFLEET),
        };
        let child = cmd
            .args(["--config", self.config_path().to_str().unwrap(), "serve"])
            .env("STOREFLEET_LOG", "info,storefleet_controller=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = self.health_connected();
            if ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "controller did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the API answers and ingest is connected (on a thread of its own with its
    /// own runtime, so that it works inside or outside a runtime).
    fn health_connected(&self) -> bool {
        if std::net::TcpStream::connect(self.http).is_err() {
            return false;
        }
        let (url, trust) = (format!("{}/api/v1/health", self.url()), self.trust());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let r = http::Client::new(&trust)
                    .unwrap()
                    .send(
                        Request {
                            method: "GET",
                            url: &url,
                            ..Request::default()
                        },
                        Duration::from_secs(5),
                    )
                    .await;
                r.is_ok_and(|r| r.status == 200 && r.text().contains("\"ingest_connected\":true"))
            })
        })
        .join()
        .unwrap_or(false)
    }

    /// The config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("controller.toml")
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("controller.log")).unwrap_or_default()
    }

    /// The config as the controller uses it.
    pub fn config(&self) -> storefleet_controller::config::Config {
        storefleet_controller::config::load(&storefleet_controller::config::source(
            &self.config_path(),
        ))
        .unwrap()
    }

    /// The API base URL: `https://` unless the test turned TLS off.
    pub fn url(&self) -> String {
        self.config().public_url()
    }

    /// The typed API client (the CLI's) with the admin token.
    pub fn client(&self) -> storefleet_controller::client::Client {
        storefleet_controller::client::Client {
            base: self.url(),
            token: self.token.clone(),
            trust: self.trust(),
        }
    }

    /// What a client trusts of this controller: its certificate's pinned key.
    pub fn trust(&self) -> http::Trust {
        let config = self.config();
        http::Trust {
            pin: config
                .http
                .tls
                .then(|| http::Pin::of_pem_file(&config.tls_cert_path()).unwrap()),
            ca_file: PathBuf::new(),
        }
    }

    /// Sends `req` with a client that trusts this controller's certificate.
    pub async fn send(
        &self,
        req: Request<'_>,
        timeout: Duration,
    ) -> Result<http::Response, http::HttpError> {
        http::Client::new(&self.trust())?.send(req, timeout).await
    }

    /// An API call with the admin token (`auth`) or without; returns status and JSON.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        auth: bool,
    ) -> (u16, Value) {
        let token = auth.then(|| self.token.clone());
        self.call_as(token.as_deref(), method, path, body).await
    }

    /// An API call with `token` as bearer (or none).
    pub async fn call_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut headers = Vec::new();
        if let Some(t) = token {
            headers.push(("authorization", format!("Bearer {t}")));
        }
        let r = self.request(method, path, headers, body).await;
        let v = serde_json::from_slice(&r.body).unwrap_or_else(|_| Value::String(r.text()));
        (r.status, v)
    }

    /// `method path` with `headers` and a JSON body; the whole answer.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: Vec<(&str, String)>,
        body: Option<&Value>,
    ) -> http::Response {
        let url = format!("{}{path}", self.url());
        self.send(
            Request {
                method,
                url: &url,
                headers,
                body: body.map(|b| ("application/json", b.to_string().into_bytes())),
            },
            Duration::from_secs(30),
        )
        .await
        .unwrap()
    }

    /// Posts the sign-in form for `user` from this controller's own origin.
    pub async fn post_login(&self, user: &str, password: &str) -> http::Response {
        let enc = storefleet_controller::fmt::url_encode;
        let form = format!("user={}&password={}&next=/", enc(user), enc(password));
        self.send(
            Request {
                method: "POST",
                url: &format!("{}/login", self.url()),
                headers: vec![("origin", self.url())],
                body: Some(("application/x-www-form-urlencoded", form.into_bytes())),
            },
            Duration::from_secs(30),
        )
        .await
        .unwrap()
    }

    /// GET with the admin token; panics unless 200.
    pub async fn get(&self, path: &str) -> Value {
        let (s, v) = self.call("GET", path, None, true).await;
        assert_eq!(s, 200, "GET {path}: {v}");
        v
    }

    /// A counter from `/metrics` (0 when absent).
    pub async fn metric(&self, line_start: &str) -> u64 {
        let (_, v) = self.call("GET", "/metrics", None, true).await;
        v.as_str()
            .unwrap_or_default()
            .lines()
            .find_map(|l| {
                l.strip_prefix(line_start)
                    .map(|r| r.trim().parse().unwrap_or(0))
            })
            .unwrap_or(0)
    }

    /// Runs the admin CLI against this controller; returns (success, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(STOREFLEET)
            .args(["--url", &self.url(), "--token", &self.token, "--config"])
            .arg(self.config_path())
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.kill();
        if self.external {
            for lane in storefleet_controller::ingest::Lane::ALL {
                let id = lane.client_id(&self.client_id);
                let _ = storefleet_support::broker::clear_session(self.mqtt, &id);
            }
        }
    }
}

/// Polls `f` until it returns `Some`, for at most `secs`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    match within(secs, f).await {
        Some(v) => v,
        None => panic!("timed out waiting for {what}"),
    }
}

/// Polls `f` until it returns `Some`, for at most `secs`; `None` when it never did.
pub async fn within<T, F, Fut>(secs: u64, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An agent home with `extra` config, enrolled into `store` with a token made by the CLI
/// (not started).
pub fn enrolled_home(ctl: &Controller, store: &str, extra: &str) -> AgentHome {
    let (ok, token, err) = ctl.cli(&["enroll-token", "create", "--store", store]);
    assert!(ok, "{err}");
    let home = AgentHome::new(&agent_binary(), ([127, 0, 0, 1], 9).into(), extra);
    let out = home
        .command()
        .args(["enroll", token.trim()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    home
}

/// MQTT options for a test client that logs in to the embedded broker at `broker` as agent
/// `id` (client id = username = agent id, a token signed with `key`).
pub fn agent_mqtt(
    broker: SocketAddr,
    id: &str,
    key: &storefleet_protocol::SigningKey,
) -> rumqttc::MqttOptions {
    let mut o = rumqttc::MqttOptions::new(id, broker.ip().to_string(), broker.port());
    o.set_credentials(
        id,
        storefleet_protocol::broker::agent_password(id, storefleet_protocol::now_ms(), key),
    );
    o
}

/// MQTT options for a test client that logs in as the controller does: client id
/// `{client_id}-{suffix}`, the secret in `state_dir/broker-secret`.
pub fn controller_mqtt(
    broker: SocketAddr,
    state_dir: &std::path::Path,
    client_id: &str,
    suffix: &str,
) -> rumqttc::MqttOptions {
    let secret = std::fs::read_to_string(state_dir.join("broker-secret")).unwrap();
    let mut o = rumqttc::MqttOptions::new(
        format!("{client_id}-{suffix}"),
        broker.ip().to_string(),
        broker.port(),
    );
    o.set_credentials(
        storefleet_protocol::broker::CONTROLLER_USER,
        secret.trim().to_owned(),
    );
    o
}

/// Whether the broker accepts `o` (a CONNACK within 5 s); the client stays connected and
/// is returned with its event loop running when it does.
pub async fn mqtt_login(
    o: rumqttc::MqttOptions,
) -> Option<(
    rumqttc::AsyncClient,
    tokio::sync::mpsc::UnboundedReceiver<rumqttc::Publish>,
)> {
    let (client, mut ev) = rumqttc::AsyncClient::new(o, 64);
    let first = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ev.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(a))) => {
                    return a.code == rumqttc::ConnectReturnCode::Success
                }
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    })
    .await
    .unwrap_or(false);
    if !first {
        return None;
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(e) = ev.poll().await {
            if let rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) = e {
                let _ = tx.send(p);
            }
        }
    });
    Some((client, rx))
}

/// Serves `app` over HTTPS with the certificate `cert` and its key `key` on a free loopback
/// port; returns the address.
pub async fn serve_tls(
    app: axum::Router,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> SocketAddr {
    use tower::ServiceExt as _;
    let config = storefleet_support::tls::server_config(cert, key).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(s) = acceptor.accept(s).await else {
                    return;
                };
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        app.clone().oneshot(req.map(axum::body::Body::new))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

/// Drives a publisher's event loop in the background, counting the broker's PUBACKs.
pub fn count_pubacks(mut ev: rumqttc::EventLoop) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
    use std::sync::atomic::Ordering;
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let a = acked.clone();
    tokio::spawn(async move {
        loop {
            match ev.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => {
                    a.fetch_add(1, Ordering::SeqCst);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    acked
}
