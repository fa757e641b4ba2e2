//! Checks of values that must make sense together, each error naming its key.

use storefleet_support::mqtt_url::MqttUrl;

use super::{bad, tickets, Config, ConfigError};

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
        if !(1..=3600).contains(&t.rollup_every_secs) {
            return Err(bad("telemetry.rollup_every_secs", "1 to 3600"));
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
}
