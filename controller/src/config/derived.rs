//! What the configuration implies: paths in the state directory, URLs to advertise, the
//! database to open, this replica's MQTT client ids.

use std::path::PathBuf;

use super::Config;

impl Config {
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
