//! TLS to the controller (`mqtts://` broker, `https://` API and downloads): the
//! `[controller]` section's pinned key and CA file, and optionally a client certificate and
//! key for mutual TLS (see `storefleet_support::tls`). A store gateway trusts the key its
//! enrollment token pinned, and the CAs of its `ca_file` (or, without one, the system's).

pub use storefleet_support::tls::TlsError;

use crate::config::ControllerSection;

/// Builds the client configuration from the `[controller]` section.
pub fn client_config(c: &ControllerSection) -> Result<rustls::ClientConfig, TlsError> {
    storefleet_support::tls::client_config(&trust(c)?, &c.client_cert_file, &c.client_key_file)
}

/// What the agent trusts of the controller: the pinned key and the CA file.
pub fn trust(c: &ControllerSection) -> Result<storefleet_support::tls::Trust, TlsError> {
    let mut t = storefleet_support::tls::Trust::pinned(&c.tls_pin)?;
    t.ca_file.clone_from(&c.ca_file);
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = ControllerSection {
            ca_file: dir.path().join("nope.pem"),
            ..ControllerSection::default()
        };
        let e = client_config(&c).unwrap_err().to_string();
        assert!(e.contains("nope.pem"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        c.ca_file = empty;
        let e = client_config(&c).unwrap_err().to_string();
        assert!(
            e.contains("empty.pem") && e.contains("no certificate"),
            "{e}"
        );
    }
}
