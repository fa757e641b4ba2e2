//! The controller's configuration: typed structs with compiled-in defaults.
//!
//! Load order ([`load`]): compiled-in defaults, the main file, `controller.d/*.toml`
//! drop-ins in name order, then `STOREFLEET_CONTROLLER__<SECTION>__<KEY>` environment
//! variables; then [`Config::validate`]. Every error names the file or variable, the key and
//! what was expected. `storefleet generate-config` prints `default.toml`, which a test keeps
//! equal to [`Config::default`].

mod derived;
mod tickets;
mod validate;

pub use tickets::{TicketsSection, WebhookConfig, WEBHOOK_EVENTS};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
pub use storefleet_support::config::{ConfigError, ConfigSource};
use storefleet_support::config::{Layered, Layering};

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
    /// Seconds between folds of new readings into the per-minute and per-hour rollups
    /// (by the replica that runs the engines); rollups are this much behind raw points.
    pub rollup_every_secs: u64,
}

impl Default for TelemetrySection {
    fn default() -> Self {
        TelemetrySection {
            raw_retention_days: 7,
            minute_retention_days: 90,
            hour_retention_days: 730,
            rollup_every_secs: 60,
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
