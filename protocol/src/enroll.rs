//! Enrollment: the token an operator hands to a gateway, and the request the agent makes
//! with it.
//!
//! `storefleet enroll-token create --store S123` prints a token: `sfe1.` followed by the
//! unpadded base64url of the JSON [`EnrollToken`]. It carries what the agent needs (the
//! controller's API URL, the broker URL, the controller's public key, the store) and a
//! secret; the controller keeps only the secret's SHA-256.
//!
//! `storefleet-agent enroll TOKEN` POSTs an [`EnrollRequest`] to `{api}/api/v1/enroll`.
//! The request is signed with the agent's new key over [`EnrollRequest::signed_bytes`],
//! proving that the agent holds the key it registers. The controller checks the secret,
//! the token's expiry, uses and revocation, the signature and the time, then registers the
//! key for the agent id and answers with an [`EnrollResponse`]. The agent pins the
//! controller key from the token (not from the answer), so a man in the middle cannot
//! substitute his own.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The token's text prefix (format version 1).
pub const TOKEN_PREFIX: &str = "sfe1.";

/// Domain separation for the request signature.
const SIGNING_CONTEXT: &str = "storefleet-enroll-v1";

/// What an enrollment token carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollToken {
    /// Token id (public; names the token in lists and logs).
    pub id: String,
    /// The secret, base64url; only its hash is stored by the controller.
    pub secret: String,
    /// The controller's HTTP API base URL.
    pub api: String,
    /// The broker URL agents connect to.
    pub mqtt: String,
    /// The controller's public key (base64), which the agent pins.
    pub key: String,
    /// The store the gateway belongs to.
    pub store: String,
    /// Expiry, ms since the epoch.
    pub exp: i64,
    /// The release key (base64) agent updates must be signed with, when the controller has
    /// one; pinned like `key`, from the token that came out of band.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub release_key: String,
    /// The controller's TLS key, pinned: `sha256//` and the base64 of the SHA-256 of its
    /// certificate's SubjectPublicKeyInfo (curl's `--pinnedpubkey` form). The agent trusts
    /// an `https://` API or `mqtts://` broker whose certificate carries this key, whoever
    /// signed it (the controller's self-signed certificate), and otherwise only what its CAs
    /// vouch for. Absent when the controller does not serve TLS itself.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tls_pin: String,
}

/// Why a token could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Storefleet enrollment token: {0}")]
pub struct TokenError(pub String);

impl EnrollToken {
    /// The token's text form.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!(
            "{TOKEN_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
        )
    }

    /// Reads a token's text form.
    pub fn decode(text: &str) -> Result<EnrollToken, TokenError> {
        let body = text
            .trim()
            .strip_prefix(TOKEN_PREFIX)
            .ok_or_else(|| TokenError(format!("it does not start with {TOKEN_PREFIX:?}")))?;
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|e| TokenError(format!("bad base64url ({e}); was it cut short?")))?;
        serde_json::from_slice(&json).map_err(|e| TokenError(format!("bad content ({e})")))
    }

    /// SHA-256 of the secret, as stored by the controller.
    pub fn secret_hash(secret: &str) -> Vec<u8> {
        ring::digest::digest(&ring::digest::SHA256, secret.as_bytes())
            .as_ref()
            .to_vec()
    }
}

/// The agent's enrollment request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The whole token text.
    pub token: String,
    /// The agent id the key is registered for.
    pub agent_id: String,
    /// The agent's public key (base64).
    pub public_key: String,
    /// The gateway's host name.
    pub hostname: String,
    /// The agent's version.
    pub agent_version: String,
    /// When the request was made, ms since the epoch.
    pub ts: i64,
    /// Ed25519 signature (base64) over [`EnrollRequest::signed_bytes`] with the agent's key.
    pub signature: String,
}

impl EnrollRequest {
    /// The bytes the signature covers: context, token id, agent id, key, host, time.
    pub fn signed_bytes(
        token_id: &str,
        agent_id: &str,
        public_key: &str,
        hostname: &str,
        ts: i64,
    ) -> Vec<u8> {
        format!("{SIGNING_CONTEXT}\n{token_id}\n{agent_id}\n{public_key}\n{hostname}\n{ts}")
            .into_bytes()
    }
}

/// The controller's answer to a successful enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// The registered agent id.
    pub agent_id: String,
    /// The store.
    pub store: String,
    /// The broker URL to use.
    pub mqtt_url: String,
    /// The agent's password at an external broker that checks passwords (Mosquitto);
    /// absent when the controller's embedded broker takes the agent's signed tokens
    /// ([`crate::broker`]). The agent keeps it in its enrollment drop-in (mode 0600).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mqtt_password: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_damage_is_named() {
        let t = EnrollToken {
            id: "t1".into(),
            secret: "s".into(),
            api: "http://c:8080".into(),
            mqtt: "mqtt://c:1883".into(),
            key: "k".into(),
            store: "S1".into(),
            exp: 5,
            release_key: String::new(),
            tls_pin: "sha256//AAAA".into(),
        };
        let text = t.encode();
        assert!(text.starts_with(TOKEN_PREFIX));
        assert_eq!(EnrollToken::decode(&format!(" {text}\n")).unwrap(), t);
        assert!(EnrollToken::decode("xyz").unwrap_err().0.contains("start"));
        assert!(EnrollToken::decode(&text[..text.len() - 7]).is_err());
    }
}
