//! Checks that the values make sense together, after loading.

use std::net::SocketAddr;
use storefleet_protocol::topic::valid_agent_id;

use storefleet_protocol::PublicKey;

pub use storefleet_support::mqtt_url::MqttUrl;

use super::{Config, ConfigError, Probe};

/// Whether `address` is `host:port`.
fn host_port(address: &str) -> bool {
    address
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
}

fn bad(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::validation(key, message)
}

/// What is wrong with a Modbus register map, as `(key under the device, expected)`.
fn check_registers(registers: &[super::Register]) -> Result<(), (String, &'static str)> {
    if registers.is_empty() {
        return Err(("probe.registers".into(), "at least one register"));
    }
    let mut names = std::collections::HashSet::new();
    for (j, r) in registers.iter().enumerate() {
        let key = |f: &str| format!("probe.registers[{j}].{f}");
        // `probe.*` is the probe's own (up, latency).
        if !crate::collect::ingest::valid_name(&r.name)
            || r.name.starts_with("probe.")
            || !names.insert(&r.name)
        {
            return Err((key("name"), "a unique metric name, not probe.*"));
        }
        if !r.scale.is_finite() || r.scale == 0.0 {
            return Err((key("scale"), "a finite number other than 0"));
        }
    }
    Ok(())
}

impl Config {
    /// Checks the loaded values; the error names the key and what was expected.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.agent.id.is_empty() && !valid_agent_id(&self.agent.id) {
            return Err(bad(
                "agent.id",
                "1 to 64 ASCII letters, digits, '-', '_' or '.'",
            ));
        }
        if self.agent.state_dir.as_os_str().is_empty() {
            return Err(bad("agent.state_dir", "a directory path"));
        }
        let traps = &self.snmp.trap_listen;
        if !traps.is_empty() && traps.parse::<SocketAddr>().is_err() {
            return Err(bad("snmp.trap_listen", "address:port, e.g. 0.0.0.0:10162"));
        }
        self.discovery.check().map_err(|(k, e)| bad(&k, e))?;
        let url =
            MqttUrl::parse(&self.controller.mqtt_url).map_err(|m| bad("controller.mqtt_url", m))?;
        if !self.controller.public_key.is_empty() {
            PublicKey::from_base64(&self.controller.public_key)
                .map_err(|e| bad("controller.public_key", e.to_string()))?;
        }
        let cert = !self.controller.client_cert_file.as_os_str().is_empty();
        let key = !self.controller.client_key_file.as_os_str().is_empty();
        if cert != key {
            return Err(bad(
                "controller.client_cert_file",
                "client_cert_file and client_key_file go together",
            ));
        }
        if let Some(section) = self
            .controller
            .remote_config
            .iter()
            .find(|s| !crate::remote_config::SECTIONS.contains(&s.as_str()))
        {
            return Err(bad(
                "controller.remote_config",
                format!(
                    "{section:?} cannot be changed remotely; allowed: {}",
                    crate::remote_config::SECTIONS.join(", ")
                ),
            ));
        }
        if !self.controller.tls_pin.is_empty() {
            storefleet_support::tls::Pin::parse(&self.controller.tls_pin)
                .map_err(|e| bad("controller.tls_pin", e.to_string()))?;
        }
        if !url.tls && cert {
            return Err(bad(
                "controller.client_cert_file",
                "a client certificate needs an mqtts:// URL",
            ));
        }
        if !(5..=3600).contains(&self.controller.keep_alive_secs) {
            return Err(bad("controller.keep_alive_secs", "5 to 3600 seconds"));
        }
        if !(1..=1024).contains(&self.sync.inflight) {
            return Err(bad("sync.inflight", "1 to 1024 messages"));
        }
        if !(1..=100_000).contains(&self.sync.max_batch_points) {
            return Err(bad("sync.max_batch_points", "1 to 100000 points"));
        }
        if !(4096..=storefleet_protocol::envelope::MAX_FRAME_LEN / 2)
            .contains(&self.sync.max_batch_bytes)
        {
            return Err(bad("sync.max_batch_bytes", "4096 to 2097152 bytes"));
        }
        if self.sync.backoff_min_ms == 0 || self.sync.backoff_min_ms > self.sync.backoff_max_ms {
            return Err(bad(
                "sync.backoff_min_ms",
                "more than 0 and at most sync.backoff_max_ms",
            ));
        }
        if self.buffer.max_bytes < 1024 * 1024 {
            return Err(bad("buffer.max_bytes", "at least 1048576 bytes (1 MiB)"));
        }
        if self.buffer.events_max_bytes < 64 * 1024
            || self.buffer.events_max_bytes > self.buffer.max_bytes / 2
        {
            return Err(bad(
                "buffer.events_max_bytes",
                "at least 65536 bytes and at most half of buffer.max_bytes",
            ));
        }
        if !self.ingest.listen.ip().is_loopback() {
            return Err(bad(
                "ingest.listen",
                format!(
                    "a loopback address (127.0.0.1 or ::1), got {}",
                    self.ingest.listen.ip()
                ),
            ));
        }
        if self.ingest.max_body_bytes < 1024 {
            return Err(bad("ingest.max_body_bytes", "at least 1024 bytes"));
        }
        self.store.validate()?;
        self.routines.validate()?;
        if !self.update.release_key.is_empty() {
            PublicKey::from_base64(&self.update.release_key)
                .map_err(|e| bad("update.release_key", e.to_string()))?;
        }
        if self.update.max_bytes < 1024 * 1024 {
            return Err(bad("update.max_bytes", "at least 1048576 bytes"));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, d) in self.devices.iter().enumerate() {
            let k = |f: &str| format!("devices[{i}].{f}");
            if !valid_agent_id(&d.id) {
                return Err(bad(
                    &k("id"),
                    "1 to 64 ASCII letters, digits, '-', '_' or '.'",
                ));
            }
            if !seen.insert(d.id.as_str()) {
                return Err(bad(&k("id"), format!("device id {:?} is used twice", d.id)));
            }
            if d.class.trim().is_empty() {
                return Err(bad(&k("class"), "a device class, e.g. receipt-printer"));
            }
            if d.interval_secs == 0 {
                return Err(bad(&k("interval_secs"), "at least 1 second"));
            }
            if d.timeout_ms == 0 || d.timeout_ms > d.interval_secs * 1000 {
                return Err(bad(
                    &k("timeout_ms"),
                    "more than 0 and at most the interval",
                ));
            }
            match &d.probe {
                Probe::Tcp { address } => {
                    if !host_port(address) {
                        return Err(bad(&k("probe.address"), "host:port"));
                    }
                }
                Probe::Http {
                    url,
                    expect_status,
                    ca_file,
                    tls_pin,
                } => {
                    let https = url.starts_with("https://");
                    if !https && !url.starts_with("http://") {
                        return Err(bad(&k("probe.url"), "an http:// or https:// URL"));
                    }
                    if !https && (!ca_file.as_os_str().is_empty() || !tls_pin.is_empty()) {
                        return Err(bad(
                            &k("probe.url"),
                            "https:// (ca_file and tls_pin are for https only)",
                        ));
                    }
                    if https {
                        // Read now, so that a wrong pin or file is named at start.
                        if !tls_pin.is_empty() {
                            if let Err(e) = storefleet_support::tls::Pin::parse(tls_pin) {
                                return Err(bad(&k("probe.tls_pin"), e.to_string()));
                            }
                        }
                        if let Err(e) = crate::collect::http::tls(ca_file, tls_pin) {
                            return Err(bad(&k("probe.ca_file"), e.to_string()));
                        }
                    }
                    if !(100..=599).contains(expect_status) {
                        return Err(bad(&k("probe.expect_status"), "an HTTP status, 100 to 599"));
                    }
                }
                Probe::Modbus {
                    address, registers, ..
                } => {
                    if !host_port(address) {
                        return Err(bad(&k("probe.address"), "host:port"));
                    }
                    check_registers(registers).map_err(|(key, e)| bad(&k(&key), e))?;
                }
                Probe::ModbusRtu {
                    port,
                    baud,
                    stop_bits,
                    registers,
                    ..
                } => {
                    super::serial::check(port, *baud, *stop_bits)
                        .map_err(|(key, e)| bad(&k(&format!("probe.{key}")), e))?;
                    check_registers(registers).map_err(|(key, e)| bad(&k(&key), e))?;
                }
                Probe::Icmp { host } => {
                    let name_ok = !host.is_empty()
                        && host.len() <= 253
                        && host
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-.:".contains(c));
                    if !name_ok {
                        return Err(bad(&k("probe.host"), "an address or a host name"));
                    }
                }
                Probe::Ipp { url } => {
                    let ok = url
                        .strip_prefix("ipp://")
                        .and_then(|rest| rest.split_once('/'))
                        .is_some_and(|(host, _)| !host.is_empty());
                    if !ok {
                        return Err(bad(&k("probe.url"), "ipp://host[:port]/path"));
                    }
                }
                Probe::Snmp(t) => {
                    if let Err((key, expected)) = t.check() {
                        return Err(bad(&k(&format!("probe.{key}")), expected));
                    }
                }
                Probe::Exec { command, .. } => {
                    if command.is_empty() || command[0].is_empty() {
                        return Err(bad(&k("probe.command"), "a program and its arguments"));
                    }
                }
                Probe::Push => {}
                Probe::Catalog => {
                    return Err(bad(
                        &k("probe"),
                        "a probe, or a class of the catalog and an address",
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    /// A device's probe is checked at start, naming the key: `https://` takes a CA file and
    /// a pin (`http://` neither; a file that cannot be read or a pin that is not one is
    /// named), `ipp://` needs a host, and a Modbus map needs an address and registers with
    /// unique names and a scale.
    #[test]
    fn device_probes_are_checked_at_start() {
        let check = |probe: &str| {
            let mut c = Config::default();
            let d: crate::config::DeviceConfig = toml::from_str(&format!(
                "id = \"p\"\nclass = \"printer\"\nprobe = {{ {probe} }}"
            ))
            .unwrap();
            c.devices.push(d);
            c.validate().map_err(|e| e.to_string())
        };
        let url = "type = \"http\", url = \"https://10.0.0.5/status\"";
        check(url).unwrap();
        check("type = \"ipp\", url = \"ipp://10.0.0.5/printers/receipt\"").unwrap();
        check("type = \"icmp\", host = \"scale-1.store.lan\"").unwrap();
        check("type = \"modbus\", address = \"10.0.0.40:502\", registers = [{ name = \"temp_c\", kind = \"input\", address = 0, type = \"i16\", scale = 0.1, unit = \"C\" }]").unwrap();
        check("type = \"snmp\", address = \"10.0.0.5\", profile = \"ups\"").unwrap();
        check("type = \"modbus_rtu\", port = \"/dev/ttyUSB0\", registers = [{ name = \"energy_kwh\", address = 0, type = \"u32\" }]").unwrap();
        let pin = format!("sha256//{}", "A".repeat(43) + "=");
        check(&format!("{url}, tls_pin = \"{pin}\"")).unwrap();
        for (probe, key, says) in [
            (
                format!("{url}, tls_pin = \"md5//x\""),
                "probe.tls_pin",
                "md5//x",
            ),
            (
                format!("{url}, ca_file = \"/nonexistent/ca.pem\""),
                "probe.ca_file",
                "/nonexistent/ca.pem",
            ),
            (
                "type = \"http\", url = \"http://10.0.0.5/\", tls_pin = \"x\"".to_owned(),
                "probe.url",
                "https only",
            ),
            (
                "type = \"http\", url = \"ftp://10.0.0.5/\"".to_owned(),
                "probe.url",
                "https://",
            ),
            (
                "type = \"ipp\", url = \"http://10.0.0.5:631/printers/r\"".to_owned(),
                "probe.url",
                "ipp://host",
            ),
            (
                "type = \"icmp\", host = \"10.0.0.5; reboot\"".to_owned(),
                "probe.host",
                "host name",
            ),
            (
                "type = \"ipp\", url = \"ipp:///printers/r\"".to_owned(),
                "probe.url",
                "ipp://host",
            ),
            (
                "type = \"modbus\", address = \"10.0.0.40\", registers = [{ name = \"t\", address = 0 }]".to_owned(),
                "probe.address",
                "host:port",
            ),
            (
                "type = \"modbus\", address = \"10.0.0.40:502\", registers = []".to_owned(),
                "probe.registers",
                "at least one",
            ),
            (
                "type = \"modbus\", address = \"10.0.0.40:502\", registers = [{ name = \"t\", address = 0 }, { name = \"t\", address = 1 }]".to_owned(),
                "probe.registers[1].name",
                "unique",
            ),
            (
                "type = \"modbus_rtu\", port = \"ttyUSB0\", registers = [{ name = \"t\", address = 0 }]".to_owned(),
                "probe.port",
                "/dev/ttyUSB0",
            ),
            (
                "type = \"modbus_rtu\", port = \"/dev/ttyUSB0\", baud = 9601, registers = [{ name = \"t\", address = 0 }]".to_owned(),
                "probe.baud",
                "one of [1200",
            ),
            (
                "type = \"modbus_rtu\", port = \"/dev/ttyUSB0\", stop_bits = 3, registers = [{ name = \"t\", address = 0 }]".to_owned(),
                "probe.stop_bits",
                "1 or 2",
            ),
            (
                "type = \"modbus_rtu\", port = \"/dev/ttyUSB0\", registers = []".to_owned(),
                "probe.registers",
                "at least one",
            ),
            (
                "type = \"modbus\", address = \"10.0.0.40:502\", registers = [{ name = \"probe.up\", address = 0 }]".to_owned(),
                "probe.registers[0].name",
                "not probe.*",
            ),
            (
                "type = \"modbus\", address = \"10.0.0.40:502\", registers = [{ name = \"t\", address = 0, scale = 0.0 }]".to_owned(),
                "probe.registers[0].scale",
                "other than 0",
            ),
            (
                "type = \"snmp\", address = \"10.0.0.5\", profile = \"ups\", user = \"sf\", auth_password = \"short\"".to_owned(),
                "probe.auth_password",
                "at least 8",
            ),
        ] {
            let e = check(&probe).unwrap_err();
            assert!(e.contains(key) && e.contains(says), "{probe}: {e}");
        }
    }

    #[test]
    fn non_loopback_ingest_is_refused() {
        let mut c = Config::default();
        c.ingest.listen = "0.0.0.0:9181".parse().unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("ingest.listen") && e.contains("loopback"), "{e}");
    }
}
