//! The certificate the API and UI are served with: the operator's (`http.cert_file`,
//! `http.key_file`), or a self-signed one made on first start and kept in the state
//! directory (`https-cert.pem`, `https-key.pem` mode 0600). Its key's pin goes into every
//! enrollment token, so gateways trust this controller's certificate and no other; the
//! admin CLI on this machine pins it from the file.

use std::path::Path;
use std::sync::Arc;

use storefleet_support::tls::Pin;

use crate::config::Config;

/// What the HTTPS listener serves with.
#[derive(Clone)]
pub struct Served {
    /// The rustls server settings.
    pub config: Arc<rustls::ServerConfig>,
    /// The pin of the served certificate's key.
    pub pin: Pin,
}

/// Loads the configured or self-signed certificate, making the self-signed one first when
/// there is none. `None` when `http.tls` is off. Errors name the file.
pub fn load_or_create(config: &Config) -> Result<Option<Served>, String> {
    if !config.http.tls {
        return Ok(None);
    }
    let (cert, key) = (config.tls_cert_path(), config.tls_key_path());
    if config.http.cert_file.as_os_str().is_empty() && !cert.exists() {
        make_self_signed(config, &cert, &key)?;
    }
    let server = storefleet_support::tls::server_config(&cert, &key)
        .map_err(|e| format!("http.cert_file: {e}"))?;
    let pin = Pin::of_pem_file(&cert).map_err(|e| format!("http.cert_file: {e}"))?;
    Ok(Some(Served {
        config: Arc::new(server),
        pin,
    }))
}

/// The names a self-signed certificate is made for: loopback, the listen address, the
/// public URL's host and the machine's name.
fn names(config: &Config) -> Vec<String> {
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".into(), "::1".into()];
    let ip = config.http.listen.ip();
    if !ip.is_unspecified() {
        names.push(ip.to_string());
    }
    if let Ok(url) = url_host(&config.controller.public_url) {
        names.push(url);
    }
    if let Ok(h) = nix::unistd::gethostname() {
        if let Some(h) = h.to_str() {
            names.push(h.to_owned());
        }
    }
    names.sort();
    names.dedup();
    names.retain(|n| !n.is_empty());
    names
}

/// The host of `http(s)://host[:port]/...`, without brackets.
fn url_host(url: &str) -> Result<String, ()> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or(())?;
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    Ok(host.to_owned())
}

fn make_self_signed(config: &Config, cert: &Path, key: &Path) -> Result<(), String> {
    let names = names(config);
    let made = rcgen::generate_simple_self_signed(names.clone())
        .map_err(|e| format!("making a self-signed certificate for {names:?}: {e}"))?;
    std::fs::create_dir_all(&config.controller.state_dir)
        .map_err(|e| format!("{}: {e}", config.controller.state_dir.display()))?;
    // The key first: a certificate without its key would be kept and fail every start.
    storefleet_support::keyfile::write_private(key, made.signing_key.serialize_pem().as_bytes())
        .map_err(|e| e.to_string())?;
    storefleet_support::keyfile::write_private(cert, made.cert.pem().as_bytes())
        .map_err(|e| e.to_string())?;
    tracing::info!(cert = %cert.display(), names = ?names, "Made a self-signed HTTPS certificate");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.controller.state_dir = dir.path().join("state");
        config.controller.public_url = "https://ctl.example:8443/".into();
        let first = load_or_create(&config).unwrap().expect("tls is on");
        let again = load_or_create(&config).unwrap().expect("tls is on");
        assert_eq!(
            first.pin, again.pin,
            "the same certificate on the next start"
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(config.tls_key_path())
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        assert!(names(&config).contains(&"ctl.example".to_owned()));
        config.http.tls = false;
        assert!(load_or_create(&config).unwrap().is_none());
    }

    #[test]
    fn a_broken_certificate_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.controller.state_dir = dir.path().to_owned();
        config.http.cert_file = dir.path().join("cert.pem");
        config.http.key_file = dir.path().join("key.pem");
        std::fs::write(&config.http.cert_file, "not a certificate").unwrap();
        let e = load_or_create(&config).err().expect("refused");
        assert!(e.contains("cert.pem"), "{e}");
    }

    #[test]
    fn hosts_come_out_of_urls() {
        assert_eq!(url_host("https://a.b:1/x").unwrap(), "a.b");
        assert_eq!(url_host("http://[::2]:80").unwrap(), "::2");
        assert_eq!(url_host("http://h").unwrap(), "h");
        assert!(url_host("").is_err());
    }
}
