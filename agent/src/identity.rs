//! The agent's identity: its Ed25519 key pair on disk and the agent id derived from it.
//!
//! The key is made on first start and stored as PKCS#8 with owner-only permissions (0600)
//! in a directory only the owner can enter (0700). A key file that exists but cannot be
//! read as a key is an error, never silently replaced: a new key would be a new identity.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use storefleet_protocol::{PublicKey, SigningKey};

/// Errors from loading or creating the key.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The state directory or key file could not be created, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The key file exists but does not hold an Ed25519 key.
    #[error("{path}: not a usable key ({reason}); move it away to make a new identity")]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IdentityError + '_ {
    move |source| IdentityError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Loads the key at `path`, or makes and stores a new one if there is none.
pub fn load_or_create(path: &Path) -> Result<SigningKey, IdentityError> {
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(io(dir))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
        }
    }
    match fs::read(path) {
        Ok(bytes) => {
            let meta = fs::metadata(path).map_err(io(path))?;
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "Key file readable by others; setting mode 0600");
                fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io(path))?;
            }
            SigningKey::from_pkcs8(&bytes).map_err(|e| IdentityError::BadKey {
                path: path.to_owned(),
                reason: e.to_string(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SigningKey::generate().map_err(|e| IdentityError::BadKey {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
            let tmp = path.with_extension("key.new");
            let _ = fs::remove_file(&tmp);
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io(&tmp))?;
            f.write_all(key.pkcs8()).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
            fs::rename(&tmp, path).map_err(io(path))?;
            tracing::info!(path = %path.display(), "Created agent key");
            Ok(key)
        }
        Err(e) => Err(io(path)(e)),
    }
}

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
