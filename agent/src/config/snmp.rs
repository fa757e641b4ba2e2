//! The `snmp` device probe's settings: where the device is, which profile reads it, and the
//! credentials (v2c community, or a v3 user with authentication and privacy).

use serde::{Deserialize, Serialize};

/// A secret from the config (a community, a password): shown as `***` by `Debug` and
/// written as `<set>` (`check-config`), so that it never reaches a log or a screen.
#[derive(Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { "<set>" })
    }
}

impl Secret {
    /// A secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "***" })
    }
}

/// An SNMP device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnmpTarget {
    /// `host` or `host:port` (port 161 when not given).
    pub address: String,
    /// What the device is, and so which MIB objects are read.
    pub profile: SnmpProfile,
    /// SNMPv2c community, when no v3 `user` is given.
    #[serde(default = "public")]
    pub community: Secret,
    /// SNMPv3 user (authPriv); empty: v2c with `community`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// v3 authentication protocol.
    #[serde(default)]
    pub auth: SnmpAuth,
    /// v3 authentication password (at least 8 characters).
    #[serde(default)]
    pub auth_password: Secret,
    /// v3 privacy (encryption) protocol.
    #[serde(default)]
    pub privacy: SnmpPrivacy,
    /// v3 privacy password (at least 8 characters).
    #[serde(default)]
    pub privacy_password: Secret,
    /// v3 context name (most devices: empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub context: String,
}

fn public() -> Secret {
    Secret::new("public")
}

/// `host:port` of an SNMP address, with port 161 when it has none.
pub fn host_port(address: &str) -> String {
    let a = address.trim();
    let has_port = match a.rsplit_once(':') {
        // `[v6]:port`, or `host:port` (a bare IPv6 address has more than one colon).
        Some((host, port)) => {
            port.parse::<u16>().is_ok() && (host.ends_with(']') || !host.contains(':'))
        }
        None => false,
    };
    if has_port {
        a.to_owned()
    } else if a.contains(':') && !a.starts_with('[') {
        format!("[{a}]:161")
    } else {
        format!("{a}:161")
    }
}

impl SnmpTarget {
    /// `host:port`, with port 161 when the address has none.
    pub fn host_port(&self) -> String {
        host_port(&self.address)
    }

    /// Whether it speaks SNMPv3.
    pub fn v3(&self) -> bool {
        !self.user.is_empty()
    }
}

/// What an SNMP device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnmpProfile {
    /// A printer (Printer MIB and Host Resources MIB): status, faults such as a jam or an
    /// open door, supplies, pages printed.
    Printer,
    /// A UPS (UPS-MIB, or Eaton's XUPS-MIB): on battery, charge, runtime left, load, input
    /// voltage.
    Ups,
    /// A switch (IF-MIB): ports up, ports down that should be up, errors.
    Switch,
}

/// SNMPv3 authentication protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnmpAuth {
    /// HMAC-MD5-96 (old devices only).
    Md5,
    /// HMAC-SHA-96.
    #[default]
    Sha1,
    /// HMAC-SHA-224.
    Sha224,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-384.
    Sha384,
    /// HMAC-SHA-512.
    Sha512,
}

/// SNMPv3 privacy protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnmpPrivacy {
    /// DES (old devices only).
    Des,
    /// AES-128 (CFB).
    #[default]
    Aes128,
    /// AES-192.
    Aes192,
    /// AES-256.
    Aes256,
}

impl SnmpTarget {
    /// What is wrong with it, as `(key, expected)`.
    pub fn check(&self) -> Result<(), (&'static str, &'static str)> {
        let host = self.host_port();
        let host = host.rsplit_once(':').map_or("", |(h, _)| h);
        if host.is_empty() || host.chars().any(char::is_whitespace) {
            return Err(("address", "host or host:port"));
        }
        if self.v3() {
            if self.auth_password.expose().len() < 8 {
                return Err(("auth_password", "at least 8 characters (SNMPv3 USM)"));
            }
            if self.privacy_password.expose().len() < 8 {
                return Err(("privacy_password", "at least 8 characters (SNMPv3 USM)"));
            }
        } else if self.community.expose().is_empty() {
            return Err(("community", "a community, or a v3 user"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(address: &str) -> SnmpTarget {
        toml::from_str(&format!("address = \"{address}\"\nprofile = \"ups\"")).unwrap()
    }

    #[test]
    fn the_port_is_161_unless_given() {
        assert_eq!(target("10.0.0.5").host_port(), "10.0.0.5:161");
        assert_eq!(
            target("ups-1.store.lan:1161").host_port(),
            "ups-1.store.lan:1161"
        );
        assert_eq!(target("fe80::1").host_port(), "[fe80::1]:161");
        assert_eq!(target("[fe80::1]:162").host_port(), "[fe80::1]:162");
    }

    #[test]
    fn secrets_are_not_printed() {
        let mut t = target("10.0.0.5");
        t.user = "storefleet".into();
        t.auth_password = Secret::new("very secret auth");
        t.privacy_password = Secret::new("very secret priv");
        let shown = format!("{t:?}");
        assert!(
            !shown.contains("secret") && !shown.contains("public"),
            "{shown}"
        );
        assert!(shown.contains("***"), "{shown}");
    }

    #[test]
    fn v3_needs_passwords_of_8_characters() {
        let mut t = target("10.0.0.5");
        t.check().unwrap();
        t.user = "storefleet".into();
        assert_eq!(t.check().unwrap_err().0, "auth_password");
        t.auth_password = Secret::new("12345678");
        assert_eq!(t.check().unwrap_err().0, "privacy_password");
        t.privacy_password = Secret::new("1234567");
        assert_eq!(t.check().unwrap_err().0, "privacy_password");
        t.privacy_password = Secret::new("12345678");
        t.check().unwrap();
        assert_eq!(target("").check().unwrap_err().0, "address");
    }
}
