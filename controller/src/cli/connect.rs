//! Where an admin command (or the simulator) finds the controller: `--url`, `--token`,
//! `--tls-pin`, `--ca-file`, else what the controller's own config on this machine says.

use std::path::PathBuf;

use storefleet_support::http;

use super::{CliError, Client};
use crate::config::{self, Config, ConfigError};

/// The options that say which controller to talk to and how to trust it.
#[derive(clap::Args, Debug, Clone)]
pub struct Connect {
    /// Main configuration file; drop-ins are read from `controller.d/` beside it.
    #[arg(
        long,
        short,
        env = "STOREFLEET_CONFIG",
        default_value = "/etc/storefleet/controller.toml"
    )]
    pub config: PathBuf,
    /// Admin commands: the API's URL (default: the config's public URL).
    #[arg(long, env = "STOREFLEET_URL", global = true)]
    pub url: Option<String>,
    /// Admin commands: the API token (default: the state directory's admin-token file).
    #[arg(long, env = "STOREFLEET_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Admin commands: trust the controller whose TLS key has this pin (sha256//BASE64, as
    /// `storefleet tls-pin` prints it on the controller); default: the pin of the config's
    /// certificate when it is readable here, and the system's CAs.
    #[arg(long, env = "STOREFLEET_TLS_PIN", global = true)]
    pub tls_pin: Option<String>,
    /// Admin commands: trust the CAs in this PEM file instead of the system's.
    #[arg(long, env = "STOREFLEET_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,
}

impl Connect {
    /// Loads and validates the configuration file and its drop-ins.
    pub fn load(&self) -> Result<Config, ConfigError> {
        config::load(&config::source(&self.config))
    }

    /// The API client: `--url`/`--token`, else the config's URL and the state directory's
    /// token file; `https://` trusts the pin given, else the config's certificate when it is
    /// readable here, and the CA file or the system's CAs.
    pub fn client(&self) -> Result<Client, CliError> {
        // Admin commands work without a config, given --url, --token and --tls-pin.
        let config = if self.url.is_none() || self.token.is_none() || self.tls_pin.is_none() {
            self.load().ok()
        } else {
            None
        };
        let base = self
            .url
            .clone()
            .or_else(|| config.as_ref().map(Config::public_url))
            .unwrap_or_else(|| "http://127.0.0.1:8080".into());
        let token = match self.token.clone() {
            Some(t) => t,
            None => {
                let path = config
                    .as_ref()
                    .map_or_else(|| PathBuf::from("admin-token"), Config::admin_token_path);
                std::fs::read_to_string(&path)
                    .map(|t| t.trim().to_owned())
                    .map_err(|e| CliError::NoToken(format!("{}: {e}", path.display())))?
            }
        };
        let mut trust = match &self.tls_pin {
            Some(pin) => http::Trust::pinned(pin).map_err(|e| CliError::Http(e.into()))?,
            // On the controller's machine: the certificate it serves.
            None => http::Trust {
                pin: config
                    .as_ref()
                    .filter(|c| c.http.tls)
                    .and_then(|c| http::Pin::of_pem_file(&c.tls_cert_path()).ok()),
                ca_file: PathBuf::new(),
            },
        };
        if let Some(ca) = &self.ca_file {
            trust.ca_file.clone_from(ca);
        }
        Ok(Client { base, token, trust })
    }
}
