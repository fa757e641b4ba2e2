//! Who may connect to the embedded broker, and the controller's own broker credentials.
//!
//! An agent connects as its agent id (client id = username) with a token signed by its
//! registered, unrevoked key ([`storefleet_protocol::broker`]); the controller's clients as
//! [`CONTROLLER_USER`] with the secret in `broker-secret` (state directory, mode 0600, made
//! at first start) and a client id that begins with `mqtt.client_id`. Everyone else is
//! refused, counted, and logged (at most once every 10 s, names escaped). The embedded
//! broker has no topic rules: see the README's Security section for what an authenticated
//! agent can still read.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use storefleet_protocol::broker::{check_agent_password, CONTROLLER_USER};
use storefleet_protocol::verify::KeyLookup as _;
use storefleet_support::broker::Auth;

use crate::ingest::Registry;

/// A username and password for the controller's own broker clients.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Username.
    pub username: String,
    /// Password (never logged).
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<secret>")
            .finish()
    }
}

/// Connections the embedded broker refused, by reason.
#[derive(Debug, Default)]
pub struct Refusals {
    /// No or wrong credentials, or a client id that is not the identity.
    pub refused: AtomicU64,
    last_log: Mutex<Option<Instant>>,
}

impl Refusals {
    fn refuse(&self, client_id: &str, user: &str, why: &str) -> bool {
        self.refused.fetch_add(1, Relaxed);
        let mut last = self
            .last_log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
            *last = Some(Instant::now());
            tracing::warn!(client_id = ?client_id, user = ?user, reason = why, refused_so_far = self.refused.load(Relaxed), "Broker connection refused");
        }
        false
    }
}

/// The embedded broker's check of every CONNECT.
pub fn check(
    registry: Registry,
    secret: String,
    controller_client_id: String,
    refusals: Arc<Refusals>,
) -> Auth {
    Arc::new(move |client_id: &str, user: &str, pass: &str| {
        if user == CONTROLLER_USER {
            if !crate::auth::same_bytes(pass.as_bytes(), secret.as_bytes()) {
                return refusals.refuse(client_id, user, "wrong controller secret");
            }
            if !client_id.starts_with(&controller_client_id) {
                return refusals.refuse(client_id, user, "client id is not the controller's");
            }
            return true;
        }
        if user != client_id {
            return refusals.refuse(client_id, user, "client id is not the username");
        }
        let Some(key) = registry.key_for(user) else {
            return refusals.refuse(client_id, user, "not an enrolled, unrevoked agent");
        };
        match check_agent_password(user, pass, &key, storefleet_protocol::now_ms()) {
            Ok(()) => true,
            Err(why) => refusals.refuse(client_id, user, why),
        }
    })
}

/// The controller's broker secret in `path`, made (random, mode 0600) when missing.
pub fn load_or_create_secret(
    path: &Path,
) -> Result<String, storefleet_support::keyfile::KeyFileError> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let s = text.trim().to_owned();
        if s.len() >= 32 {
            return Ok(s);
        }
    }
    let secret = crate::auth::random_secret();
    storefleet_support::keyfile::write_private(path, format!("{secret}\n").as_bytes())?;
    Ok(secret)
}

/// The controller's own login at its embedded broker, for an extra client of the controller
/// (benchmarks, tools on its machine): a client id under its prefix (`{client_id}-{suffix}`)
/// and the credentials.
pub fn controller_login(
    config: &crate::config::Config,
    suffix: &str,
) -> std::io::Result<(String, Credentials)> {
    let secret = std::fs::read_to_string(config.broker_secret_path())?;
    Ok((
        format!("{}-{suffix}", config.mqtt.client_id),
        Credentials {
            username: CONTROLLER_USER.into(),
            password: secret.trim().to_owned(),
        },
    ))
}

/// How the controller's own clients log in to the broker: credentials, and TLS for
/// `mqtts://`.
#[derive(Debug, Clone, Default)]
pub struct BrokerLogin {
    /// Username and password.
    pub credentials: Option<Credentials>,
    /// TLS client configuration (trusting `mqtt.ca_file`).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// MQTT options for a controller client of `url` as `client_id`, logged in with `login`.
pub fn mqtt_options(
    url: &str,
    client_id: &str,
    login: &BrokerLogin,
) -> Result<rumqttc::MqttOptions, String> {
    let url = storefleet_support::mqtt_url::MqttUrl::parse(url)?;
    let mut o = rumqttc::MqttOptions::new(client_id, url.host, url.port);
    if let Some(c) = &login.credentials {
        o.set_credentials(&c.username, &c.password);
    }
    if url.tls {
        let tls = login
            .tls
            .clone()
            .ok_or("mqtts:// needs mqtt.ca_file: the CA to trust")?;
        o.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(tls),
        ));
    }
    Ok(o)
}
