//! Secret files: an Ed25519 key pair kept as PKCS#8 with owner-only permissions (0600) in
//! a directory only the owner can enter (0700), and other small secrets written the same way.
//! A key file that exists but cannot be read as a key is an error, never silently replaced:
//! a new key would be a new identity.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use storefleet_protocol::SigningKey;

/// Errors from loading or creating the key.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
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

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Loads the key at `path`, or makes and stores a new one if there is none.
pub fn load_or_create(path: &Path) -> Result<SigningKey, KeyFileError> {
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
            SigningKey::from_pkcs8(&bytes).map_err(|e| KeyFileError::BadKey {
                path: path.to_owned(),
                reason: e.to_string(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SigningKey::generate().map_err(|e| KeyFileError::BadKey {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
            write_private(path, key.pkcs8())?;
            tracing::info!(path = %path.display(), "Created key");
            Ok(key)
        }
        Err(e) => Err(io(path)(e)),
    }
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename) with mode 0600.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyFileError> {
    let tmp = path.with_extension("new");
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))
}
