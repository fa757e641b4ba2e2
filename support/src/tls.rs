//! TLS client configuration with rustls (ring provider) for MQTT connections: a CA file to
//! trust, and optionally a client certificate and key for mutual TLS. No OpenSSL, no system
//! roots: a client trusts exactly the CA its config names. Errors name the file, never its
//! content.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

struct Files<'a> {
    ca: &'a Path,
    client_cert: &'a Path,
    client_key: &'a Path,
}

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

/// A client configuration trusting the CAs in `ca_file`, with the client certificate in
/// `client_cert_file` and its key in `client_key_file` when the first is not empty.
pub fn client_config(
    ca_file: &Path,
    client_cert_file: &Path,
    client_key_file: &Path,
) -> Result<rustls::ClientConfig, TlsError> {
    let c = Files {
        ca: ca_file,
        client_cert: client_cert_file,
        client_key: client_key_file,
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(c.ca)
        .map_err(|e| pem_err(c.ca, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_err(c.ca, e))?;
    if certs.is_empty() {
        return Err(pem_err(c.ca, "no certificate in file"));
    }
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| pem_err(c.ca, format!("unusable CA certificate: {e}")))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots);
    if c.client_cert.as_os_str().is_empty() {
        return Ok(builder.with_no_client_auth());
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(c.client_cert)
        .map_err(|e| pem_err(c.client_cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_err(c.client_cert, e))?;
    if chain.is_empty() {
        return Err(pem_err(c.client_cert, "no certificate in file"));
    }
    // The key's content never appears in an error: only its path.
    let key = PrivateKeyDer::from_pem_file(c.client_key)
        .map_err(|_| pem_err(c.client_key, "no usable private key in file"))?;
    Ok(builder.with_client_auth_cert(chain, key)?)
}
