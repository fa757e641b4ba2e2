//! Credentials at the MQTT broker.
//!
//! Every client of the controller's embedded broker authenticates, and its MQTT client id
//! must be the identity it authenticates as:
//!
//! - An agent connects with client id = username = its agent id, and as password a
//!   short-lived token signed with its enrolled key ([`agent_password`]):
//!
//!   ```text
//!   v1.{ts}.{signature}
//!   ```
//!
//!   `ts` is the time of making, milliseconds since the Unix epoch, in decimal; `signature`
//!   is the Ed25519 signature, standard base64 with padding, over the UTF-8 bytes of
//!
//!   ```text
//!   storefleet-mqtt-v1\n{agent_id}\n{ts}
//!   ```
//!
//!   (`\n` a line feed, no trailing one). The broker accepts it for
//!   [`PASSWORD_LIFETIME_MS`] either side of its own clock, for a key the controller has
//!   registered and not revoked. An agent makes a new one for every connection attempt.
//! - The controller's own clients connect with username [`CONTROLLER_USER`], a secret
//!   password, and a client id that begins with the controller's configured client id.
//!
//! Anything else is refused: the connection is closed without a CONNACK.

use base64::Engine as _;

use crate::{PublicKey, SigningKey};

/// Domain separation for the password's signature.
pub const CONTEXT: &str = "storefleet-mqtt-v1";
/// How long a token is accepted either side of the broker's clock, ms.
pub const PASSWORD_LIFETIME_MS: i64 = 10 * 60 * 1000;
/// The username of the controller's own clients.
pub const CONTROLLER_USER: &str = "storefleet-controller";

/// The bytes a token's signature covers.
pub fn signed_bytes(agent_id: &str, ts: i64) -> Vec<u8> {
    format!("{CONTEXT}\n{agent_id}\n{ts}").into_bytes()
}

/// A broker password for `agent_id`, made at `ts` (ms) with its key.
pub fn agent_password(agent_id: &str, ts: i64, key: &SigningKey) -> String {
    let sig = key.sign(&signed_bytes(agent_id, ts));
    format!(
        "v1.{ts}.{}",
        base64::engine::general_purpose::STANDARD.encode(sig)
    )
}

/// Checks a broker password of `agent_id` against its registered key at `now` (ms); the
/// error says what was wrong (never echoing the password).
pub fn check_agent_password(
    agent_id: &str,
    password: &str,
    key: &PublicKey,
    now: i64,
) -> Result<(), &'static str> {
    let mut parts = password.splitn(3, '.');
    let (Some("v1"), Some(ts), Some(sig)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("not a v1 broker token");
    };
    let ts: i64 = ts.parse().map_err(|_| "the token's time is not a number")?;
    if (now - ts).abs() > PASSWORD_LIFETIME_MS {
        return Err("the token is expired or from the future (check the gateway's clock)");
    }
    let sig = base64::engine::general_purpose::STANDARD
        .decode(sig)
        .map_err(|_| "the token's signature is not base64")?;
    if !key.verify(&signed_bytes(agent_id, ts), &sig) {
        return Err("the token's signature does not match the agent's key");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_for_its_agent_within_its_lifetime_only() {
        let key = SigningKey::generate().unwrap();
        let pk = key.public_key();
        let t = 1_700_000_000_000;
        let p = agent_password("gw-1", t, &key);
        assert!(p.starts_with("v1.1700000000000."), "{p}");
        assert_eq!(check_agent_password("gw-1", &p, &pk, t + 60_000), Ok(()));
        assert!(
            check_agent_password("gw-2", &p, &pk, t).is_err(),
            "another agent"
        );
        assert!(check_agent_password("gw-1", &p, &pk, t + PASSWORD_LIFETIME_MS + 1).is_err());
        let other = SigningKey::generate().unwrap().public_key();
        assert!(
            check_agent_password("gw-1", &p, &other, t).is_err(),
            "another key"
        );
        for junk in ["", "v1", "v1.x.y", "v2.1.AAAA", "v1.1700000000000.!!"] {
            assert!(
                check_agent_password("gw-1", junk, &pk, t).is_err(),
                "{junk}"
            );
        }
    }

    /// The example in the module docs, computed the documented way, verifies.
    #[test]
    fn the_documented_bytes_are_what_is_signed() {
        assert_eq!(
            signed_bytes("gw-1", 42),
            b"storefleet-mqtt-v1\ngw-1\n42".to_vec()
        );
    }
}
