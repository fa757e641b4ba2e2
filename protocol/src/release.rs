//! Agent releases: one binary per architecture, described by a manifest (version,
//! architecture, size, SHA-256) that is signed with the **release key**. The release key is
//! not the controller's command key: it stays with whoever builds releases, and the
//! controller only holds its public half, so a controller that is taken over can still not
//! hand a gateway a binary of its own.
//!
//! The signature is Ed25519 over [`Release::signed_bytes`]:
//!
//! ```text
//! storefleet-release-v1\n{version}\n{arch}\n{size}\n{sha256 hex}
//! ```
//!
//! An agent checks the manifest's signature with the release key it pinned before it
//! downloads anything, and the binary's size and SHA-256 against the manifest before it
//! keeps it.

use base64::Engine as _;
use ring::digest;
use serde::{Deserialize, Serialize};

use crate::keys::{PublicKey, SigningKey};

/// Domain separation for release signatures.
pub const SIGNING_CONTEXT: &str = "storefleet-release-v1";

/// Architectures releases are made for, as Rust names them (`std::env::consts::ARCH`).
pub const ARCHES: [&str; 2] = ["x86_64", "aarch64"];

/// A signed release manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// Version, e.g. `0.2.0` (1 to 40 of `0-9 A-Z a-z . + -`).
    pub version: String,
    /// Architecture, one of [`ARCHES`].
    pub arch: String,
    /// Size of the binary, bytes.
    pub size: u64,
    /// SHA-256 of the binary, lower-case hex.
    pub sha256: String,
    /// Ed25519 signature (base64) over [`Release::signed_bytes`] with the release key.
    pub signature: String,
}

/// Why a release is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    /// A field is malformed.
    #[error("release manifest: {0}")]
    Malformed(String),
    /// The signature does not verify with the pinned release key.
    #[error(
        "release {version} ({arch}): the signature does not verify with the pinned release key"
    )]
    BadSignature {
        /// Version.
        version: String,
        /// Architecture.
        arch: String,
    },
    /// The binary is not the one the manifest describes.
    #[error("release {version} ({arch}): the binary does not match its manifest: {what}")]
    Mismatch {
        /// Version.
        version: String,
        /// Architecture.
        arch: String,
        /// What differs.
        what: String,
    },
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, bytes).as_ref())
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Checks a version string.
pub fn check_version(v: &str) -> Result<(), ReleaseError> {
    let ok = (1..=40).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
        && v.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(ReleaseError::Malformed(format!(
            "version {v:?}: 1 to 40 of letters, digits, '.', '+', '-', starting with a letter or digit"
        )))
    }
}

/// Checks an architecture name.
pub fn check_arch(a: &str) -> Result<(), ReleaseError> {
    if ARCHES.contains(&a) {
        Ok(())
    } else {
        Err(ReleaseError::Malformed(format!(
            "arch {a:?}: one of {}",
            ARCHES.join(", ")
        )))
    }
}

impl Release {
    /// The bytes the signature covers.
    pub fn signed_bytes(version: &str, arch: &str, size: u64, sha256: &str) -> Vec<u8> {
        format!("{SIGNING_CONTEXT}\n{version}\n{arch}\n{size}\n{sha256}").into_bytes()
    }

    /// Signs `binary` as `version` for `arch`.
    pub fn sign(
        version: &str,
        arch: &str,
        binary: &[u8],
        key: &SigningKey,
    ) -> Result<Release, ReleaseError> {
        check_version(version)?;
        check_arch(arch)?;
        let size = binary.len() as u64;
        let sha256 = sha256_hex(binary);
        let sig = key.sign(&Release::signed_bytes(version, arch, size, &sha256));
        Ok(Release {
            version: version.into(),
            arch: arch.into(),
            size,
            sha256,
            signature: base64::engine::general_purpose::STANDARD.encode(sig),
        })
    }

    /// Checks the fields and the signature with the release key.
    pub fn verify(&self, key: &PublicKey) -> Result<(), ReleaseError> {
        check_version(&self.version)?;
        check_arch(&self.arch)?;
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ReleaseError::Malformed(format!(
                "sha256 {:?}: 64 hex digits",
                self.sha256
            )));
        }
        let sig = base64::engine::general_purpose::STANDARD
            .decode(&self.signature)
            .map_err(|_| ReleaseError::Malformed("signature: not base64".into()))?;
        let msg = Release::signed_bytes(&self.version, &self.arch, self.size, &self.sha256);
        if key.verify(&msg, &sig) {
            Ok(())
        } else {
            Err(ReleaseError::BadSignature {
                version: self.version.clone(),
                arch: self.arch.clone(),
            })
        }
    }

    /// Checks that a binary of `size` bytes with digest `sha256` (hex) is this release's.
    pub fn check_binary(&self, size: u64, sha256: &str) -> Result<(), ReleaseError> {
        let what = if size != self.size {
            format!("{size} bytes, the manifest says {}", self.size)
        } else if !sha256.eq_ignore_ascii_case(&self.sha256) {
            format!("SHA-256 {sha256}, the manifest says {}", self.sha256)
        } else {
            return Ok(());
        };
        Err(ReleaseError::Mismatch {
            version: self.version.clone(),
            arch: self.arch.clone(),
            what,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_release_verifies_and_any_change_is_caught() {
        let key = SigningKey::generate().unwrap();
        let other = SigningKey::generate().unwrap();
        let bin = b"\x7fELF not really".to_vec();
        let r = Release::sign("0.2.0", "x86_64", &bin, &key).unwrap();
        r.verify(&key.public_key()).unwrap();
        r.check_binary(bin.len() as u64, &sha256_hex(&bin)).unwrap();
        assert!(matches!(
            r.verify(&other.public_key()),
            Err(ReleaseError::BadSignature { .. })
        ));
        let mut v = r.clone();
        v.version = "0.2.1".into();
        assert!(v.verify(&key.public_key()).is_err(), "version is signed");
        let mut a = r.clone();
        a.arch = "aarch64".into();
        assert!(a.verify(&key.public_key()).is_err(), "arch is signed");
        let mut tampered = bin.clone();
        tampered[0] ^= 1;
        let e = r
            .check_binary(tampered.len() as u64, &sha256_hex(&tampered))
            .unwrap_err();
        assert!(e.to_string().contains("SHA-256"), "{e}");
        assert!(r.check_binary(3, &r.sha256).is_err());
    }

    #[test]
    fn malformed_fields_are_named() {
        let key = SigningKey::generate().unwrap();
        assert!(Release::sign("../x", "x86_64", b"", &key)
            .unwrap_err()
            .to_string()
            .contains("version"));
        assert!(Release::sign("1.0", "mips", b"", &key)
            .unwrap_err()
            .to_string()
            .contains("arch"));
        let mut r = Release::sign("1.0", "aarch64", b"x", &key).unwrap();
        r.signature = "***".into();
        assert!(r
            .verify(&key.public_key())
            .unwrap_err()
            .to_string()
            .contains("base64"));
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
