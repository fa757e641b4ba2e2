//! The agent's identity: its Ed25519 key pair on disk and the agent id derived from it.
//!
//! The key is made on first start and stored as PKCS#8 with owner-only permissions (0600)
//! in a directory only the owner can enter (0700). A key file that exists but cannot be
//! read as a key is an error, never silently replaced: a new key would be a new identity.

use storefleet_protocol::PublicKey;
pub use storefleet_support::keyfile::{load_or_create, KeyFileError as IdentityError};

/// The agent id: the configured one, or `a-` followed by 16 hex digits of the SHA-256 of
/// the public key.
pub fn agent_id(configured: &str, key: &PublicKey) -> String {
    if !configured.is_empty() {
        return configured.to_owned();
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let hex = digest.as_ref()[..8]
        .iter()
        .fold(String::with_capacity(16), |mut s, b| {
            use std::fmt::Write as _;
            let _ = write!(s, "{b:02x}");
            s
        });
    format!("a-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt as _;
    use storefleet_protocol::SigningKey;

    #[test]
    fn key_is_made_once_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/agent.key");
        let a = load_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        let b = load_or_create(&path).unwrap();
        assert_eq!(a.public_key(), b.public_key());
    }

    #[test]
    fn a_damaged_key_is_an_error_not_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.key");
        fs::write(&path, b"garbage").unwrap();
        let e = load_or_create(&path).unwrap_err().to_string();
        assert!(
            e.contains("agent.key") && e.contains("not a usable key"),
            "{e}"
        );
        assert_eq!(fs::read(&path).unwrap(), b"garbage");
    }

    #[test]
    fn derived_ids_are_stable_and_valid() {
        let k = SigningKey::generate().unwrap().public_key();
        let id = agent_id("", &k);
        assert_eq!(id, agent_id("", &k));
        assert!(storefleet_protocol::topic::valid_agent_id(&id));
        assert_eq!(id.len(), 18);
        assert_eq!(agent_id("gw-7", &k), "gw-7");
    }
}
