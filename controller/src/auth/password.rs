//! Password hashes: argon2id (m = 19 MiB, t = 2, p = 1, the OWASP baseline), with a random
//! 16-byte salt, stored as `argon2id$v=19$m=19456,t=2,p=1$SALT$HASH` (base64url).
//!
//! Hashes of older controllers (`pbkdf2-sha256$ITERATIONS$SALT$HASH`) still verify and are
//! replaced by argon2id at the next successful sign-in ([`Checked::rehash`]). A name that
//! is not a user costs the same work as a wrong password ([`check_unknown_user`]), so
//! timing does not tell user names apart.

use std::num::NonZeroU32;
use std::sync::OnceLock;

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use rand::RngCore as _;

const M_KIB: u32 = 19_456;
const T_COST: u32 = 2;
const P_LANES: u32 = 1;
const OUT_LEN: usize = 32;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
}

fn argon2(m: u32, t: u32, p: u32) -> Option<Argon2<'static>> {
    let params = Params::new(m, t, p, Some(OUT_LEN)).ok()?;
    Some(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn derive(password: &str, salt: &[u8], m: u32, t: u32, p: u32) -> Option<[u8; OUT_LEN]> {
    let mut out = [0u8; OUT_LEN];
    argon2(m, t, p)?
        .hash_password_into(password.as_bytes(), salt, &mut out)
        .ok()?;
    Some(out)
}

/// Hashes a password for storage (argon2id).
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    // The parameters are constants known to be valid; derive cannot fail with them.
    let out = derive(password, &salt, M_KIB, T_COST, P_LANES).unwrap_or([0u8; OUT_LEN]);
    format!(
        "argon2id$v=19$m={M_KIB},t={T_COST},p={P_LANES}${}${}",
        b64(&salt),
        b64(&out)
    )
}

/// The result of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// The password is right.
    pub ok: bool,
    /// The hash is of an older kind or weaker parameters: store a new one.
    pub rehash: bool,
}

fn check_argon2(rest: &[&str], password: &str) -> Option<Checked> {
    let [v, params, salt, hash] = rest else {
        return None;
    };
    if *v != "v=19" {
        return None;
    }
    let mut m = None;
    let mut t = None;
    let mut p = None;
    for kv in params.split(',') {
        let (k, val) = kv.split_once('=')?;
        let val: u32 = val.parse().ok()?;
        match k {
            "m" => m = Some(val),
            "t" => t = Some(val),
            "p" => p = Some(val),
            _ => return None,
        }
    }
    let (m, t, p) = (m?, t?, p?);
    let out = derive(password, &unb64(salt)?, m, t, p)?;
    Some(Checked {
        ok: super::same_bytes(&out, &unb64(hash)?),
        rehash: m < M_KIB || t < T_COST,
    })
}

fn check_pbkdf2(rest: &[&str], password: &str) -> Option<Checked> {
    let [iters, salt, hash] = rest else {
        return None;
    };
    let iters = NonZeroU32::new(iters.parse().ok()?)?;
    let ok = ring::pbkdf2::verify(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iters,
        &unb64(salt)?,
        password.as_bytes(),
        &unb64(hash)?,
    )
    .is_ok();
    Some(Checked { ok, rehash: true })
}

/// Checks a password against a stored hash; an unreadable hash never matches.
pub fn check_password(stored: &str, password: &str) -> Checked {
    let parts: Vec<&str> = stored.split('$').collect();
    let checked = match parts.split_first() {
        Some((&"argon2id", rest)) => check_argon2(rest, password),
        Some((&"pbkdf2-sha256", rest)) => check_pbkdf2(rest, password),
        _ => None,
    };
    checked.unwrap_or(Checked {
        ok: false,
        rehash: false,
    })
}

/// The same work as checking a real user's password, for a name that is not a user.
pub fn check_unknown_user(password: &str) -> Checked {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("not a password anyone has"));
    let _ = check_password(dummy, password);
    Checked {
        ok: false,
        rehash: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_and_wrong_ones_do_not() {
        let h = hash_password("correct horse");
        assert!(h.starts_with("argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert_eq!(
            check_password(&h, "correct horse"),
            Checked {
                ok: true,
                rehash: false
            }
        );
        assert!(!check_password(&h, "correct horsE").ok);
        assert!(!check_password("garbage", "x").ok);
        assert!(!check_password("argon2id$v=19$m=8,t=1$AA$AA", "x").ok);
        assert_ne!(h, hash_password("correct horse"), "salted");
        assert!(!check_unknown_user("correct horse").ok);
    }

    #[test]
    fn an_old_pbkdf2_hash_verifies_and_asks_for_a_rehash() {
        let salt = [7u8; 16];
        let mut out = [0u8; 32];
        ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            NonZeroU32::new(1000).unwrap(),
            &salt,
            b"old password",
            &mut out,
        );
        let old = format!("pbkdf2-sha256$1000${}${}", b64(&salt), b64(&out));
        assert_eq!(
            check_password(&old, "old password"),
            Checked {
                ok: true,
                rehash: true
            }
        );
        assert!(!check_password(&old, "wrong").ok);
    }
}
