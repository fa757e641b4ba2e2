//! TLS client configuration with rustls (ring provider): for `mqtts://` brokers and for
//! `https://` (the controller's API, webhooks, update downloads). No OpenSSL. Errors name
//! the file, never its content.
//!
//! A client trusts what its [`Trust`] says: the CAs in a file, or the system's CA
//! certificates, and optionally a pinned public key. A pin is `sha256//` and the base64 of
//! the SHA-256 of the server certificate's SubjectPublicKeyInfo (the form curl's
//! `--pinnedpubkey` takes); a server whose certificate carries that key is trusted whatever
//! signed it, so a controller's self-signed certificate is trusted by the gateways its
//! enrollment tokens reached, and nobody else's.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

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
    /// A pin is not `sha256//BASE64` of 32 bytes.
    #[error("bad TLS pin {0:?}: expected sha256// and the base64 of 32 bytes")]
    Pin(String),
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

/// The SHA-256 of a certificate's SubjectPublicKeyInfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pin([u8; 32]);

const PIN_PREFIX: &str = "sha256//";

impl Pin {
    /// The pin of the key in `cert` (DER).
    pub fn of_cert(cert: &CertificateDer<'_>) -> Result<Pin, rustls::Error> {
        let ee = webpki::EndEntityCert::try_from(cert)
            .map_err(|e| rustls::Error::General(format!("unreadable certificate: {e:?}")))?;
        let spki = ee.subject_public_key_info();
        let digest = ring::digest::digest(&ring::digest::SHA256, spki.as_ref());
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Ok(Pin(out))
    }

    /// The pin of the first certificate in a PEM file.
    pub fn of_pem_file(path: &Path) -> Result<Pin, TlsError> {
        let cert = certs(path)?.remove(0);
        Pin::of_cert(&cert).map_err(|e| pem_err(path, e))
    }

    /// Reads `sha256//BASE64`.
    pub fn parse(text: &str) -> Result<Pin, TlsError> {
        let bad = || TlsError::Pin(text.to_owned());
        let b64 = text.trim().strip_prefix(PIN_PREFIX).ok_or_else(bad)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| bad())?;
        Ok(Pin(bytes.try_into().map_err(|_| bad())?))
    }
}

impl std::fmt::Display for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{PIN_PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(self.0)
        )
    }
}

/// What a TLS client trusts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    /// A server whose certificate carries this key is trusted.
    pub pin: Option<Pin>,
    /// PEM file of the CAs to trust; empty: the system's CA certificates.
    pub ca_file: PathBuf,
}

impl Trust {
    /// Trusts the key pinned by `pin` (`sha256//...`; empty: none) and the system's CAs.
    pub fn pinned(pin: &str) -> Result<Trust, TlsError> {
        Ok(Trust {
            pin: if pin.trim().is_empty() {
                None
            } else {
                Some(Pin::parse(pin)?)
            },
            ca_file: PathBuf::new(),
        })
    }
}

fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_err(path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_err(path, e))?;
    if certs.is_empty() {
        return Err(pem_err(path, "no certificate in file"));
    }
    Ok(certs)
}

fn roots_from_file(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs(path)? {
        roots
            .add(cert)
            .map_err(|e| pem_err(path, format!("unusable CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// The system's CA certificates (read once; `SSL_CERT_FILE` and `SSL_CERT_DIR` are
/// honoured). Unreadable ones are left out; none at all is not an error here.
fn system_roots() -> Arc<rustls::RootCertStore> {
    static R: OnceLock<Arc<rustls::RootCertStore>> = OnceLock::new();
    R.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = rustls::RootCertStore::empty();
        let (_added, _unusable) = roots.add_parsable_certificates(found.certs);
        Arc::new(roots)
    })
    .clone()
}

/// Trusts a pinned key, else what the CAs vouch for; or, with `any`, whatever the server
/// shows (to read it, never to trust it). The handshake's signature is checked either way.
#[derive(Debug)]
struct PinOrRoots {
    pin: Option<Pin>,
    roots: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    any: bool,
}

impl ServerCertVerifier for PinOrRoots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.any {
            return Ok(ServerCertVerified::assertion());
        }
        if let Some(pin) = self.pin {
            if Pin::of_cert(end_entity)? == pin {
                return Ok(ServerCertVerified::assertion());
            }
        }
        match (&self.roots, self.pin) {
            (Some(v), _) => v
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                .map_err(|e| match self.pin {
                    Some(pin) => rustls::Error::General(format!(
                        "the server's key does not match the pinned {pin}, and {e}"
                    )),
                    None => e,
                }),
            (None, Some(pin)) => Err(rustls::Error::General(format!(
                "the server's key does not match the pinned {pin}"
            ))),
            (None, None) => Err(rustls::Error::General("nothing to trust".into())),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client configuration that trusts what `trust` says, without a client certificate.
pub fn trusting(trust: &Trust) -> Result<rustls::ClientConfig, TlsError> {
    client_config(trust, Path::new(""), Path::new(""))
}

/// A client configuration that trusts what `trust` says, with the client certificate in
/// `client_cert_file` and its key in `client_key_file` when the first is not empty
/// (mutual TLS).
pub fn client_config(
    trust: &Trust,
    client_cert_file: &Path,
    client_key_file: &Path,
) -> Result<rustls::ClientConfig, TlsError> {
    let roots = if trust.ca_file.as_os_str().is_empty() {
        system_roots()
    } else {
        Arc::new(roots_from_file(&trust.ca_file)?)
    };
    let provider = provider();
    let roots = if roots.is_empty() {
        None
    } else {
        Some(
            WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?,
        )
    };
    let verifier = PinOrRoots {
        pin: trust.pin,
        roots,
        provider: provider.clone(),
        any: false,
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    if client_cert_file.as_os_str().is_empty() {
        return Ok(builder.with_no_client_auth());
    }
    let chain = certs(client_cert_file)?;
    // The key's content never appears in an error: only its path.
    let key = PrivateKeyDer::from_pem_file(client_key_file)
        .map_err(|_| pem_err(client_key_file, "no usable private key in file"))?;
    Ok(builder.with_client_auth_cert(chain, key)?)
}

/// A client configuration that accepts any certificate a server shows, checking only that
/// the server holds its key (the handshake's signature): for reading a certificate (its
/// expiry), never for trusting a server with anything.
pub fn reading_any() -> Result<rustls::ClientConfig, TlsError> {
    let provider = provider();
    let verifier = PinOrRoots {
        pin: None,
        roots: None,
        provider: provider.clone(),
        any: true,
    };
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// A server configuration with the certificate chain in `cert_file` and its key in
/// `key_file` (PEM).
pub fn server_config(cert_file: &Path, key_file: &Path) -> Result<rustls::ServerConfig, TlsError> {
    let chain = certs(cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|_| pem_err(key_file, "no usable private key in file"))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            pem_err(
                key_file,
                format!("does not fit {}: {e}", cert_file.display()),
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_read_back_and_bad_ones_are_named() {
        let p = Pin([7u8; 32]);
        let text = p.to_string();
        assert!(text.starts_with("sha256//"));
        assert_eq!(Pin::parse(&text).unwrap(), p);
        for bad in ["", "sha256//", "sha1//AAAA", "sha256//!!", "sha256//AAAA"] {
            let e = Pin::parse(bad).unwrap_err().to_string();
            assert!(e.contains("sha256//"), "{bad}: {e}");
        }
        assert_eq!(Trust::pinned("").unwrap(), Trust::default());
    }
}
