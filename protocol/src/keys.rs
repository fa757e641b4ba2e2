//! Ed25519 keys: the sender's signing key and the receiver's view of a public key.
//!
//! Keys travel as text in config files and tokens: a public key is 32 bytes in standard
//! base64; a signing key is stored by its owner as PKCS#8 bytes (see [`SigningKey::pkcs8`]).

use base64::Engine as _;
use ring::signature::{self, Ed25519KeyPair, KeyPair as _};

/// Length of an Ed25519 signature in bytes.
pub const SIGNATURE_LEN: usize = 64;

/// Errors from making, loading or parsing keys.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// The PKCS#8 document is not an Ed25519 private key.
    #[error("not an Ed25519 PKCS#8 private key: {0}")]
    BadPrivateKey(String),
    /// The public key text is not 32 bytes of base64.
    #[error("public key must be 32 bytes in base64: {0}")]
    BadPublicKey(String),
    /// The system random source failed.
    #[error("random source failed")]
    Random,
}

/// A key pair that signs frames.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print private material.
        f.debug_struct("SigningKey")
            .field("public", &self.public_key())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Makes a new random key pair.
    pub fn generate() -> Result<SigningKey, KeyError> {
        let rng = ring::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::Random)?;
        SigningKey::from_pkcs8(doc.as_ref())
    }

    /// Loads a key pair from its PKCS#8 bytes.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<SigningKey, KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8)
            .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8))
            .map_err(|e| KeyError::BadPrivateKey(e.to_string()))?;
        Ok(SigningKey {
            pair,
            pkcs8: pkcs8.to_vec(),
        })
    }

    /// The PKCS#8 bytes, for the owner to store (with owner-only permissions).
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(bytes)
    }

    /// Signs `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; SIGNATURE_LEN] {
        let sig = self.pair.sign(msg);
        let mut out = [0u8; SIGNATURE_LEN];
        out.copy_from_slice(sig.as_ref());
        out
    }
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

impl PublicKey {
    /// Wraps 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> PublicKey {
        PublicKey(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses standard base64 (with or without padding).
    pub fn from_base64(text: &str) -> Result<PublicKey, KeyError> {
        let text = text.trim();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
            .map_err(|e| KeyError::BadPublicKey(e.to_string()))?;
        let bytes: [u8; 32] = raw
            .try_into()
            .map_err(|v: Vec<u8>| KeyError::BadPublicKey(format!("{} bytes", v.len())))?;
        Ok(PublicKey(bytes))
    }

    /// Standard base64 with padding.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// Verifies `sig` over `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        signature::UnparsedPublicKey::new(&signature::ED25519, &self.0)
            .verify(msg, sig)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_verifies_only_with_the_right_key() {
        let a = SigningKey::generate().unwrap();
        let b = SigningKey::generate().unwrap();
        let sig = a.sign(b"hello");
        assert!(a.public_key().verify(b"hello", &sig));
        assert!(!b.public_key().verify(b"hello", &sig));
        assert!(!a.public_key().verify(b"hellO", &sig));
    }

    #[test]
    fn keys_survive_their_text_and_pkcs8_forms() {
        let a = SigningKey::generate().unwrap();
        let again = SigningKey::from_pkcs8(a.pkcs8()).unwrap();
        assert_eq!(again.public_key(), a.public_key());
        let text = a.public_key().to_base64();
        assert_eq!(PublicKey::from_base64(&text).unwrap(), a.public_key());
    }

    #[test]
    fn bad_key_text_is_named() {
        assert!(matches!(
            PublicKey::from_base64("AAAA"),
            Err(KeyError::BadPublicKey(m)) if m.contains("3 bytes")
        ));
        assert!(SigningKey::from_pkcs8(b"not a key").is_err());
    }

    #[test]
    fn debug_output_hides_the_private_key() {
        let a = SigningKey::generate().unwrap();
        let shown = format!("{a:?}");
        assert!(shown.contains(&a.public_key().to_base64()));
        assert!(!shown.contains("pkcs8"));
    }
}
