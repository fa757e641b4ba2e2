//! `tls.cert_expiry`: a certificate is valid for at least `warn_days` more days, read from
//! a TLS server (`address`, e.g. the POS server's HTTPS port or the payment terminal's) or
//! from a PEM file on the gateway (`file`).
//!
//! ```toml
//! action = "tls.cert_expiry"
//! args = { address = "pos.store.local:443", warn_days = 21 }
//! ```
//!
//! Reading a server's certificate does not judge whom it was issued by: the handshake checks
//! the server's signature (it holds the key for the certificate it shows) and nothing else,
//! because the point is the expiry date of what the store's devices are being shown.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use serde::Deserialize;

use super::Done;

fn three_weeks() -> u64 {
    21
}

fn ten() -> u64 {
    10
}

/// `tls.cert_expiry`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertExpiry {
    /// `host:port` of a TLS server.
    #[serde(default)]
    pub address: String,
    /// Name to ask the server for (SNI); default: the host of `address`.
    #[serde(default)]
    pub server_name: String,
    /// A PEM certificate file instead of a server.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Fail when it expires within this many days.
    #[serde(default = "three_weeks")]
    pub warn_days: u64,
    /// Seconds for the connection and handshake.
    #[serde(default = "ten")]
    pub timeout_secs: u64,
}

/// Subject and expiry (Unix seconds) of a DER certificate.
pub fn expiry(der: &[u8]) -> Result<(String, i64), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    Ok((
        cert.subject().to_string(),
        cert.validity().not_after.timestamp(),
    ))
}

impl CertExpiry {
    async fn leaf(&self) -> Result<Vec<u8>, String> {
        if let Some(file) = &self.file {
            let cert = CertificateDer::from_pem_file(file)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            return Ok(cert.to_vec());
        }
        if self.address.is_empty() {
            return Err("tls.cert_expiry needs address or file".into());
        }
        let host = self
            .address
            .rsplit_once(':')
            .map_or(self.address.as_str(), |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let name = if self.server_name.is_empty() {
            host
        } else {
            &self.server_name
        };
        let name = ServerName::try_from(name.to_owned())
            .map_err(|e| format!("server name {name:?}: {e}"))?;
        let config = storefleet_support::tls::reading_any().map_err(|e| e.to_string())?;
        let connect = async {
            let tcp = tokio::net::TcpStream::connect(&self.address)
                .await
                .map_err(|e| format!("{}: {e}", self.address))?;
            let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(name, tcp)
                .await
                .map_err(|e| format!("{}: TLS handshake: {e}", self.address))?;
            tls.get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.to_vec())
                .ok_or_else(|| format!("{}: no certificate shown", self.address))
        };
        tokio::time::timeout(Duration::from_secs(self.timeout_secs), connect)
            .await
            .map_err(|_| {
                format!(
                    "{}: no handshake within {} s",
                    self.address, self.timeout_secs
                )
            })?
    }

    /// Runs it.
    pub async fn run(&self) -> Done {
        let what = self
            .file
            .as_ref()
            .map_or_else(|| self.address.clone(), |f| f.display().to_string());
        let (subject, not_after) = match self.leaf().await.and_then(|der| expiry(&der)) {
            Ok(x) => x,
            Err(e) => return Done::fail(e),
        };
        let now = jiff::Timestamp::now().as_second();
        let days = (not_after - now) as f64 / 86_400.0;
        let when = jiff::Timestamp::from_second(not_after)
            .map_or_else(|_| not_after.to_string(), |t| t.to_string());
        let out = if days < 0.0 {
            format!("{what}: certificate {subject} expired {when}")
        } else {
            format!("{what}: certificate {subject} valid until {when} ({days:.0} days)")
        };
        Done::from(days >= self.warn_days as f64, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate valid for `days` made by the openssl tool, as an operator would.
    fn cert(dir: &std::path::Path, days: u32) -> (PathBuf, PathBuf) {
        let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
        let out = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args([
                "-nodes",
                "-subj",
                "/CN=pos.store.local",
                "-days",
                &days.to_string(),
            ])
            .arg("-keyout")
            .arg(&k)
            .arg("-out")
            .arg(&c)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (c, k)
    }

    fn from(file: Option<PathBuf>, address: String, warn_days: u64) -> CertExpiry {
        CertExpiry {
            address,
            server_name: "pos.store.local".into(),
            file,
            warn_days,
            timeout_secs: 5,
        }
    }

    /// Needs the `openssl` tool (on the CI machine); skipped, and says so, where it is missing.
    #[tokio::test]
    async fn expiry_is_read_from_a_file_and_from_a_real_tls_server() {
        if std::process::Command::new("openssl")
            .arg("version")
            .output()
            .is_err()
        {
            eprintln!("skipped: needs the openssl tool (the CI machine has it)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = cert(dir.path(), 10);
        let soon = from(Some(c.clone()), String::new(), 21).run().await;
        assert!(
            !soon.ok && soon.output.contains("pos.store.local"),
            "{}",
            soon.output
        );
        assert!(
            soon.output.contains("(10 days)") || soon.output.contains("(9 days)"),
            "{}",
            soon.output
        );
        assert!(from(Some(c.clone()), String::new(), 5).run().await.ok);

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = std::process::Command::new("openssl")
            .args([
                "s_server",
                "-quiet",
                "-accept",
                &format!("127.0.0.1:{port}"),
            ])
            .arg("-cert")
            .arg(&c)
            .arg("-key")
            .arg(&k)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("openssl s_server");
        let address = format!("127.0.0.1:{port}");
        let mut d = from(None, address.clone(), 5).run().await;
        for _ in 0..50 {
            if d.ok {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            d = from(None, address.clone(), 5).run().await;
        }
        let _ = server.kill();
        let _ = server.wait();
        assert!(d.ok && d.output.contains("valid until"), "{}", d.output);
        let gone = from(None, address, 5).run().await;
        assert!(!gone.ok, "{}", gone.output);
    }
}
