//! TLS to the broker with rustls (ring provider): a CA file to trust, and optionally a
//! client certificate and key for mutual TLS. No OpenSSL, no system roots: a store gateway
//! trusts exactly the CA its config names.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::ControllerSection;

/// Errors building the TLS configuration; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or held nothing usable.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// rustls refused the material.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

fn pem_err(path: &Path, message: impl std::fmt::Display) -> TlsError {
    TlsError::Pem {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

/// Builds the client configuration from the `[controller]` section.
pub fn client_config(c: &ControllerSection) -> Result<rustls::ClientConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&c.ca_file)
        .map_err(|e| pem_err(&c.ca_file, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_err(&c.ca_file, e))?;
    if certs.is_empty() {
        return Err(pem_err(&c.ca_file, "no certificate in file"));
    }
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| pem_err(&c.ca_file, format!("unusable CA certificate: {e}")))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots);
    if c.client_cert_file.as_os_str().is_empty() {
        return Ok(builder.with_no_client_auth());
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&c.client_cert_file)
        .map_err(|e| pem_err(&c.client_cert_file, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_err(&c.client_cert_file, e))?;
    if chain.is_empty() {
        return Err(pem_err(&c.client_cert_file, "no certificate in file"));
    }
    // The key's content never appears in an error: only its path.
    let key = PrivateKeyDer::from_pem_file(&c.client_key_file)
        .map_err(|_| pem_err(&c.client_key_file, "no usable private key in file"))?;
    Ok(builder.with_client_auth_cert(chain, key)?)
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
