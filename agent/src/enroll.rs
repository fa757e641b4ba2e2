//! `storefleet-agent enroll TOKEN`: registering this gateway's key with the controller and
//! pinning the controller's key.
//!
//! The token (made by `storefleet enroll-token create`) names the controller's API and
//! broker, its public key and the store. The agent makes (or reuses) its key pair, signs an
//! enrollment request with it, and POSTs it to the controller. On success it writes a
//! drop-in, `agent.d/50-enrollment.toml`, with the store, the broker URL and the pinned
//! controller key; later drop-ins and the environment can still override them. The key
//! pinned is the token's, never one from the answer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use storefleet_protocol::enroll::{EnrollRequest, EnrollResponse, EnrollToken, TokenError};
use storefleet_protocol::{now_ms, PublicKey};
use storefleet_support::http::{self, HttpError, Request};

use crate::config::Config;
use crate::identity::{self, IdentityError};
use crate::sync::AGENT_VERSION;

/// Name of the drop-in written on success.
pub const DROPIN_NAME: &str = "50-enrollment.toml";

/// Why enrollment failed.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// The token text is not a token.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The token's expiry has passed (checked before asking the controller).
    #[error("the token expired at {0} (ms since the epoch); ask for a new one")]
    Expired(i64),
    /// The token's controller key is unusable.
    #[error("the token's controller key is unusable: {0}")]
    Key(String),
    /// The agent's key could not be loaded or made.
    #[error("agent key: {0}")]
    Identity(#[from] IdentityError),
    /// The controller could not be reached.
    #[error("cannot reach the controller at {url}: {source}")]
    Http {
        /// The URL.
        url: String,
        /// Why.
        source: HttpError,
    },
    /// The controller refused.
    #[error("the controller refused the enrollment ({status}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The controller's reason.
        message: String,
    },
    /// The drop-in could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What enrollment did.
#[derive(Debug, Clone)]
pub struct Enrolled {
    /// The controller's answer.
    pub response: EnrollResponse,
    /// The drop-in written.
    pub dropin: PathBuf,
}

fn hostname(config: &Config) -> String {
    let o = &config.inventory.gateway.hostname;
    if o.is_empty() {
        sysinfo::System::host_name().unwrap_or_default()
    } else {
        o.clone()
    }
}

/// Enrolls with `token_text`; writes the drop-in into `dropin_dir`.
pub async fn enroll(
    token_text: &str,
    config: &Config,
    dropin_dir: &Path,
) -> Result<Enrolled, EnrollError> {
    let token = EnrollToken::decode(token_text)?;
    if now_ms() > token.exp {
        return Err(EnrollError::Expired(token.exp));
    }
    let controller_key =
        PublicKey::from_base64(&token.key).map_err(|e| EnrollError::Key(e.to_string()))?;
    let key = identity::load_or_create(&config.key_path())?;
    let public_key = key.public_key().to_base64();
    let agent_id = identity::agent_id(&config.agent.id, &key.public_key());
    let host = hostname(config);
    let ts = now_ms();
    let signature = base64::engine::general_purpose::STANDARD.encode(key.sign(
        &EnrollRequest::signed_bytes(&token.id, &agent_id, &public_key, &host, ts),
    ));
    let req = EnrollRequest {
        token: token_text.trim().to_owned(),
        agent_id,
        public_key,
        hostname: host,
        agent_version: AGENT_VERSION.into(),
        ts,
        signature,
    };
    let url = format!("{}/api/v1/enroll", token.api.trim_end_matches('/'));
    let body = serde_json::to_vec(&req).unwrap_or_default();
    let trust = http::Trust::pinned(&token.tls_pin).map_err(|e| EnrollError::Http {
        url: url.clone(),
        source: e.into(),
    })?;
    let client = http::Client::new(&trust).map_err(|source| EnrollError::Http {
        url: url.clone(),
        source,
    })?;
    let resp = client
        .send(
            Request {
                method: "POST",
                url: &url,
                headers: Vec::new(),
                body: Some(("application/json", body)),
            },
            Duration::from_secs(30),
        )
        .await
        .map_err(|source| EnrollError::Http {
            url: url.clone(),
            source,
        })?;
    if resp.status != 200 {
        let message = serde_json::from_slice::<serde_json::Value>(&resp.body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| resp.text());
        return Err(EnrollError::Refused {
            status: resp.status,
            message,
        });
    }
    let response: EnrollResponse =
        serde_json::from_slice(&resp.body).map_err(|e| EnrollError::Refused {
            status: resp.status,
            message: format!("unreadable answer: {e}"),
        })?;
    let dropin = dropin_dir.join(DROPIN_NAME);
    let mut text = format!(
        "# Written by `storefleet-agent enroll` (token {}). Later drop-ins override it.\n\
         [agent]\nstore = {}\n\n[controller]\nmqtt_url = {}\npublic_key = {}\n",
        token.id,
        toml_str(&response.store),
        toml_str(&token.mqtt),
        toml_str(&controller_key.to_base64()),
    );
    if !token.tls_pin.is_empty() {
        text.push_str("tls_pin = ");
        text.push_str(&toml_str(&token.tls_pin));
        text.push('\n');
    }
    if !response.mqtt_password.is_empty() {
        text.push_str("mqtt_password = ");
        text.push_str(&toml_str(&response.mqtt_password));
        text.push('\n');
    }
    if !token.release_key.is_empty() {
        text.push_str("\n[update]\nrelease_key = ");
        text.push_str(&toml_str(&token.release_key));
        text.push('\n');
    }
    write_atomic(&dropin, text.as_bytes()).map_err(|source| EnrollError::Write {
        path: dropin.clone(),
        source,
    })?;
    Ok(Enrolled { response, dropin })
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("toml.new");
    std::fs::write(&tmp, bytes)?;
    // It may hold the broker password: the agent's user only.
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)
}
