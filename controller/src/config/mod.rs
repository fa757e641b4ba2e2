//! The controller's configuration: typed structs with compiled-in defaults.
//!
//! Load order ([`load`]): compiled-in defaults, the main file, `controller.d/*.toml`
//! drop-ins in name order, then `STOREFLEET_CONTROLLER__<SECTION>__<KEY>` environment
//! variables; then [`Config::validate`]. Every error names the file or variable, the key and
//! what was expected. `storefleet generate-config` prints `default.toml`, which a test keeps
//! equal to [`Config::default`].

mod tickets;

pub use tickets::{TicketsSection, WebhookConfig, WEBHOOK_EVENTS};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
pub use storefleet_support::config::{ConfigError, ConfigSource};
use storefleet_support::config::{Layered, Layering};
use storefleet_support::mqtt_url::MqttUrl;

/// The documented default configuration, as printed by `generate-config`.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

/// Prefix of environment variables that override config keys.
pub const ENV_PREFIX: &str = "STOREFLEET_CONTROLLER__";

/// The drop-in directory's name, beside the main file.
pub const DROPIN_DIR: &str = "controller.d";

/// The whole controller configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where state lives and how the controller is reached.
    pub controller: ControllerSection,
    /// The HTTP API and web UI.
    pub http: HttpSection,
    /// The broker.
    pub mqtt: MqttSection,
    /// The database.
    pub database: DatabaseSection,
    /// Telemetry retention.
    pub telemetry: TelemetrySection,
    /// Online, offline and stale.
    pub presence: PresenceSection,
    /// Enrollment tokens.
    pub enrollment: EnrollmentSection,
    /// Agent releases.
    pub releases: ReleasesSection,
    /// Alerts become tickets: windows, circuit breaker, SLA.
    pub tickets: TicketsSection,
    /// Alert rules added to (or replacing) the built-in ones.
    pub rules: Vec<crate::alerts::Rule>,
    /// External ITSM endpoints for ticket events.
    pub webhooks: Vec<WebhookConfig>,
}

/// `[controller]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControllerSection {
    /// Directory for the database, the signing key and the first admin token.
    pub state_dir: PathBuf,
    /// The URL agents and the CLI use to reach the API; empty: `https://<http.listen>`
    /// (`http://` without TLS).
    pub public_url: String,
    /// This replica's name when several controllers share one PostgreSQL database and an
    /// external broker; empty: the only controller.
    pub replica: String,
}

impl Default for ControllerSection {
    fn default() -> Self {
        ControllerSection {
            state_dir: PathBuf::from("/var/lib/storefleet-controller"),
            public_url: String::new(),
            replica: String::new(),
        }
    }
}

/// `[http]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSection {
    /// Listen address of the API and UI.
    pub listen: SocketAddr,
    /// Serve HTTPS (with `cert_file`, else a self-signed certificate made on first start).
    pub tls: bool,
    /// PEM certificate chain to serve; empty: the self-signed one in the state directory.
    pub cert_file: PathBuf,
    /// PEM private key of `cert_file`.
    pub key_file: PathBuf,
    /// Web UI session lifetime, hours.
    pub session_hours: u64,
    /// Seconds a client has to send a request's headers, on a new connection and between
    /// requests on a kept-alive one; then the connection is closed.
    pub header_timeout_secs: u64,
    /// Open HTTP connections at most (capped at a quarter of the process's file limit, so
    /// the broker and the database always keep theirs); more are closed at once.
    pub max_connections: usize,
    /// Open HTTP connections from one address at most; 0: no per-address cap (behind a
    /// load balancer every client has its address).
    pub max_connections_per_address: usize,
    /// Failed sign-ins a user name may have per 15 minutes (refilled evenly); then sign-in
    /// for it waits, from every address.
    pub login_failures_per_user: u32,
    /// Failed sign-ins one client address may have per 15 minutes, whatever the names.
    pub login_failures_per_address: u32,
    /// Serve `/metrics` to anyone (a Prometheus scraper on a trusted network); when false
    /// it needs an API token or a session like every other route.
    pub metrics_public: bool,
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            listen: ([127, 0, 0, 1], 8080).into(),
            tls: true,
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
            session_hours: 12,
            header_timeout_secs: 10,
            max_connections: 4096,
            max_connections_per_address: 256,
            login_failures_per_user: 5,
            login_failures_per_address: 20,
            metrics_public: false,
        }
    }
}

/// `[mqtt]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttSection {
    /// External broker URL; empty: the embedded broker.
    pub url: String,
    /// Embedded broker listen address.
    pub listen: SocketAddr,
    /// Where the embedded broker also listens with TLS (the API's certificate); agents are
    /// then given `mqtts://` this address. None: plain MQTT only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_listen: Option<SocketAddr>,
    /// Broker URL given to agents in enrollment tokens; empty: derived.
    pub advertised_url: String,
    /// The controller's MQTT client id (a replica's ids end in `-<replica>`).
    pub client_id: String,
    /// The shared-subscription group through which replicas split the agents' uplink.
    pub share_group: String,
    /// Connections the embedded broker accepts.
    pub max_connections: usize,
    /// The controller's username at an external broker (the embedded one needs none).
    pub username: String,
    /// A file holding the controller's password at an external broker (never in this file,
    /// never logged).
    pub password_file: PathBuf,
    /// PEM file of the CA certificates to trust for an `mqtts://` broker (required then).
    pub ca_file: PathBuf,
}

impl Default for MqttSection {
    fn default() -> Self {
        MqttSection {
            url: String::new(),
            listen: ([127, 0, 0, 1], 1883).into(),
            tls_listen: None,
            advertised_url: String::new(),
            client_id: "storefleet-controller".into(),
            share_group: "storefleet".into(),
            max_connections: 20_000,
            username: String::new(),
            password_file: PathBuf::new(),
            ca_file: PathBuf::new(),
        }
    }
}

/// `[database]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSection {
    /// PostgreSQL (`postgres://user:password@host:5432/db`), for several replicas; empty:
    /// SQLite at `path`.
    pub url: String,
    /// SQLite file; empty: `controller.db` in the state directory.
    pub path: PathBuf,
    /// SQLite: `full` or `normal`.
    pub synchronous: String,
    /// PEM file of the CA certificates to trust for PostgreSQL over TLS; set, TLS is
    /// required. Empty: TLS only with `sslmode=require` in the URL, checked against the
    /// system's CAs.
    pub ca_file: PathBuf,
}

impl Default for DatabaseSection {
    fn default() -> Self {
        DatabaseSection {
            url: String::new(),
            path: PathBuf::new(),
            synchronous: "full".into(),
            ca_file: PathBuf::new(),
        }
    }
}

/// `[telemetry]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySection {
    /// Days raw points are kept.
    pub raw_retention_days: u32,
    /// Days per-minute rollups are kept.
    pub minute_retention_days: u32,
    /// Days per-hour rollups are kept.
    pub hour_retention_days: u32,
}

impl Default for TelemetrySection {
    fn default() -> Self {
        TelemetrySection {
            raw_retention_days: 7,
            minute_retention_days: 90,
            hour_retention_days: 730,
        }
    }
}

/// `[presence]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PresenceSection {
    /// An agent silent this long is offline.
    pub offline_after_secs: u64,
    /// A device silent for this many intervals is stale.
    pub stale_after_intervals: u32,
    /// Interval assumed for devices that report none, seconds.
    pub default_interval_secs: u32,
}

impl Default for PresenceSection {
    fn default() -> Self {
        PresenceSection {
            offline_after_secs: 180,
            stale_after_intervals: 3,
            default_interval_secs: 60,
        }
    }
}

/// `[releases]`
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReleasesSection {
    /// The release key's public half (base64). Releases must be signed with its private
    /// half, which stays where releases are built; empty: no release can be published.
    pub public_key: String,
    /// Where agents download release binaries (a mirror or CDN closer to the stores);
    /// empty: this controller, `{public_url}/releases`.
    pub download_url: String,
}

/// `[enrollment]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnrollmentSection {
    /// Default token lifetime, hours.
    pub token_ttl_hours: u64,
}

impl Default for EnrollmentSection {
    fn default() -> Self {
        EnrollmentSection {
            token_ttl_hours: 72,
        }
    }
}

fn bad(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::validation(key, message)
}

impl Layered for Config {
    const LAYERING: Layering<'static> = Layering {
        env_prefix: ENV_PREFIX,
        appended: &["rules", "webhooks"],
    };
    const DROPIN_DIR: &'static str = DROPIN_DIR;

    fn check(&self) -> Result<(), ConfigError> {
        self.validate()
    }
}

/// The main file at `path`, its `controller.d/` drop-ins, and this process's environment.
pub fn source(path: &Path) -> ConfigSource {
    Config::source(path)
}

/// Loads and validates the configuration.
pub fn load(src: &ConfigSource) -> Result<Config, ConfigError> {
    Config::load_checked(src)
}

impl Config {
    /// Checks values that must make sense together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.controller.state_dir.as_os_str().is_empty() {
            return Err(bad("controller.state_dir", "a directory path"));
        }
        if !(1..=300).contains(&self.http.header_timeout_secs) {
            return Err(bad("http.header_timeout_secs", "1 to 300 seconds"));
        }
        if self.http.login_failures_per_user == 0 || self.http.login_failures_per_address == 0 {
            return Err(bad(
                "http.login_failures_per_user",
                "at least 1 (and login_failures_per_address too)",
            ));
        }
        if self.http.cert_file.as_os_str().is_empty() != self.http.key_file.as_os_str().is_empty() {
            return Err(bad(
                "http.cert_file",
                "both cert_file and key_file, or neither (a self-signed certificate)",
            ));
        }
        if self.http.max_connections == 0 {
            return Err(bad("http.max_connections", "at least 1"));
        }
        if !self.releases.download_url.is_empty()
            && !self.releases.download_url.starts_with("http://")
            && !self.releases.download_url.starts_with("https://")
        {
            return Err(bad(
                "releases.download_url",
                "an http:// or https:// URL (agents check what they download against the signed manifest)",
            ));
        }
        if !self.releases.public_key.is_empty() {
            storefleet_protocol::PublicKey::from_base64(&self.releases.public_key)
                .map_err(|e| bad("releases.public_key", e.to_string()))?;
        }
        if !self.controller.public_url.is_empty()
            && !self.controller.public_url.starts_with("http://")
            && !self.controller.public_url.starts_with("https://")
        {
            return Err(bad("controller.public_url", "an http:// or https:// URL"));
        }
        if self.mqtt.url.starts_with("mqtts://") && self.mqtt.ca_file.as_os_str().is_empty() {
            return Err(bad(
                "mqtt.ca_file",
                "a PEM file of the CA to trust, for an mqtts:// broker",
            ));
        }
        for (key, url) in [
            ("mqtt.url", &self.mqtt.url),
            ("mqtt.advertised_url", &self.mqtt.advertised_url),
        ] {
            if !url.is_empty() {
                MqttUrl::parse(url).map_err(|m| bad(key, m))?;
            }
        }
        if self.mqtt.tls_listen.is_some() && !self.http.tls {
            return Err(bad(
                "mqtt.tls_listen",
                "http.tls on: the broker serves the API's certificate",
            ));
        }
        if self.mqtt.tls_listen.is_some() && !self.mqtt.url.is_empty() {
            return Err(bad(
                "mqtt.tls_listen",
                "no tls_listen with an external broker (mqtt.url): that broker serves TLS itself",
            ));
        }
        if self.mqtt.client_id.is_empty() {
            return Err(bad("mqtt.client_id", "a client id"));
        }
        let group = &self.mqtt.share_group;
        if group.is_empty()
            || group.len() > 64
            || !group
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(bad(
                "mqtt.share_group",
                "1 to 64 letters, digits, '-' or '_'",
            ));
        }
        let replica = &self.controller.replica;
        if !replica.is_empty() {
            if replica.len() > 32
                || !replica
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                return Err(bad(
                    "controller.replica",
                    "1 to 32 lower-case letters, digits or '-'",
                ));
            }
            if self.database.url.is_empty() {
                return Err(bad(
                    "controller.replica",
                    "replicas share one PostgreSQL database: set database.url too",
                ));
            }
            if self.mqtt.url.is_empty() {
                return Err(bad(
                    "controller.replica",
                    "replicas share one external broker with shared subscriptions: set mqtt.url too",
                ));
            }
        }
        let url = &self.database.url;
        if !url.is_empty() && !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return Err(bad(
                "database.url",
                "empty (SQLite) or postgres://user:password@host:5432/database",
            ));
        }
        if !self.database.ca_file.as_os_str().is_empty() && self.database.url.is_empty() {
            return Err(bad(
                "database.ca_file",
                "only with database.url (TLS to PostgreSQL)",
            ));
        }
        if !matches!(self.database.synchronous.as_str(), "full" | "normal") {
            return Err(bad("database.synchronous", "\"full\" or \"normal\""));
        }
        let t = &self.telemetry;
        if t.raw_retention_days == 0
            || t.minute_retention_days < t.raw_retention_days
            || t.hour_retention_days < t.minute_retention_days
        {
            return Err(bad(
                "telemetry",
                "retention days above 0, raw <= minute <= hour",
            ));
        }
        if self.presence.offline_after_secs == 0 {
            return Err(bad("presence.offline_after_secs", "more than 0"));
        }
        if self.presence.stale_after_intervals == 0 || self.presence.default_interval_secs == 0 {
            return Err(bad(
                "presence",
                "stale_after_intervals and default_interval_secs above 0",
            ));
        }
        if self.enrollment.token_ttl_hours == 0 {
            return Err(bad("enrollment.token_ttl_hours", "more than 0"));
        }
        if self.http.session_hours == 0 {
            return Err(bad("http.session_hours", "more than 0"));
        }
        tickets::validate(&self.tickets, &self.rules, &self.webhooks)
    }

    /// The MQTT client id of this replica's connection for `purpose` ("" for ingest,
    /// "tasks" for the task engine's downlink).
    pub fn mqtt_client_id(&self, purpose: &str) -> String {
        let mut id = self.mqtt.client_id.clone();
        for part in [purpose, self.controller.replica.as_str()] {
            if !part.is_empty() {
                id.push('-');
                id.push_str(part);
            }
        }
        id
    }

    /// Where the data is, for messages: the SQLite file, or the PostgreSQL URL without its
    /// password.
    pub fn database_place(&self) -> String {
        if self.database.url.is_empty() {
            return self.database_path().display().to_string();
        }
        storefleet_storage::postgres::place(&self.database.url)
    }

    /// Opens the configured database: PostgreSQL at `database.url`, else SQLite.
    pub fn open_database(&self) -> Result<crate::db::Db, crate::db::DbError> {
        if self.database.url.is_empty() {
            crate::db::open(&self.database_path(), self.database.synchronous == "full")
        } else {
            crate::db::connect(&self.database.url, self.database_tls(&self.database.url)?)
        }
    }

    /// The TLS settings for PostgreSQL at `url`: with `database.ca_file`, or when the URL
    /// says `sslmode=require` (the system's CAs); else none.
    pub fn database_tls(
        &self,
        url: &str,
    ) -> Result<Option<rustls::ClientConfig>, crate::db::DbError> {
        let ca_file = &self.database.ca_file;
        if ca_file.as_os_str().is_empty() && !storefleet_storage::postgres::wants_tls(url) {
            return Ok(None);
        }
        let trust = storefleet_support::tls::Trust {
            pin: None,
            ca_file: ca_file.clone(),
        };
        storefleet_support::tls::trusting(&trust)
            .map(Some)
            .map_err(|e| crate::db::DbError::Invalid(format!("database.ca_file: {e}")))
    }

    /// The SQLite file (when `database.url` is empty).
    pub fn database_path(&self) -> PathBuf {
        if self.database.path.as_os_str().is_empty() {
            self.controller.state_dir.join("controller.db")
        } else {
            self.database.path.clone()
        }
    }

    /// The controller's command-signing key.
    pub fn key_path(&self) -> PathBuf {
        self.controller.state_dir.join("controller.key")
    }

    /// The controller's secret at its embedded broker (0600).
    pub fn broker_secret_path(&self) -> PathBuf {
        self.controller.state_dir.join("broker-secret")
    }

    /// The controller's credentials at an external broker (`mqtt.username` and the
    /// password in `mqtt.password_file`); `None` without a username.
    pub fn mqtt_credentials(&self) -> Result<Option<crate::broker_auth::Credentials>, String> {
        if self.mqtt.username.is_empty() {
            return Ok(None);
        }
        let password = std::fs::read_to_string(&self.mqtt.password_file).map_err(|e| {
            format!(
                "mqtt.password_file {}: {e}",
                self.mqtt.password_file.display()
            )
        })?;
        Ok(Some(crate::broker_auth::Credentials {
            username: self.mqtt.username.clone(),
            password: password.trim_end_matches(['\r', '\n']).to_owned(),
        }))
    }

    /// The certificate the API serves (configured, or the self-signed one).
    pub fn tls_cert_path(&self) -> PathBuf {
        if self.http.cert_file.as_os_str().is_empty() {
            self.controller.state_dir.join("https-cert.pem")
        } else {
            self.http.cert_file.clone()
        }
    }

    /// The private key of [`Config::tls_cert_path`].
    pub fn tls_key_path(&self) -> PathBuf {
        if self.http.key_file.as_os_str().is_empty() {
            self.controller.state_dir.join("https-key.pem")
        } else {
            self.http.key_file.clone()
        }
    }

    /// Where the first admin API token is written (0600).
    pub fn admin_token_path(&self) -> PathBuf {
        self.controller.state_dir.join("admin-token")
    }

    /// The API's URL as agents and the CLI reach it.
    pub fn public_url(&self) -> String {
        if self.controller.public_url.is_empty() {
            let scheme = if self.http.tls { "https" } else { "http" };
            format!("{scheme}://{}", self.http.listen)
        } else {
            self.controller.public_url.trim_end_matches('/').to_owned()
        }
    }

    /// The broker URL for agents.
    pub fn advertised_mqtt_url(&self) -> String {
        if !self.mqtt.advertised_url.is_empty() {
            self.mqtt.advertised_url.clone()
        } else if !self.mqtt.url.is_empty() {
            self.mqtt.url.clone()
        } else if let Some(a) = self.mqtt.tls_listen {
            format!("mqtts://{a}")
        } else {
            format!("mqtt://{}", self.mqtt.listen)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_config_equals_the_defaults() {
        let parsed: Config = toml::from_str(DEFAULT_TOML).unwrap();
        assert_eq!(parsed, Config::default());
        Config::default().validate().unwrap();
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut c = Config::default();
        c.mqtt.url = "tcp://x".into();
        assert!(c.validate().unwrap_err().to_string().contains("mqtt.url"));
        let mut c = Config::default();
        c.database.synchronous = "off".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("database.synchronous"));
        let mut c = Config::default();
        c.database.url = "mysql://root@db/x".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("database.url"));
    }

    #[test]
    fn the_database_is_named_without_its_password() {
        let mut c = Config::default();
        assert!(c.database_place().ends_with("controller.db"));
        c.database.url = "postgres://storefleet:s3cret@db.example:5432/fleet".into();
        assert!(c.validate().is_ok());
        assert_eq!(
            c.database_place(),
            "postgres://storefleet@db.example:5432/fleet"
        );
        c.database.url = "postgresql://db.example/fleet".into();
        assert_eq!(c.database_place(), "postgres://db.example:5432/fleet");
        c.database.url = "postgres://a:b@".into();
        assert!(!c.database_place().contains('b'), "{}", c.database_place());
    }
}
