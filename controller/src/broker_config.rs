//! What an external Mosquitto needs to hold Storefleet's clients to their own topics:
//! a password file (the controller's user and every enrolled, unrevoked agent) and an ACL
//! file with one pattern per direction, so that an agent (username = agent id) may publish
//! only under its own `up/` and read only its own `down/`.
//!
//! Agents get their broker password at enrollment when the controller uses an external
//! broker (the embedded one takes their signed tokens instead); the controller keeps only
//! its hash, in Mosquitto's own format (`$7$`: PBKDF2-HMAC-SHA512, 101 iterations, a
//! 12-byte salt, as `mosquitto_passwd` makes), so the files can be written again at any
//! time: `storefleet broker-config mosquitto --dir DIR`, then a SIGHUP to Mosquitto.

use std::fmt::Write as _;
use std::num::NonZeroU32;

use base64::Engine as _;
use rand::RngCore as _;
use storefleet_storage::{args, Sql, SqlExt as _};

use crate::db::DbError;

pub use storefleet_client::broker::MosquittoFiles;

const ITERATIONS: u32 = 101;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn derive(password: &str, salt: &[u8], iterations: u32) -> [u8; 64] {
    let mut out = [0u8; 64];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA512,
        NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN),
        salt,
        password.as_bytes(),
        &mut out,
    );
    out
}

/// A password hash in Mosquitto's `$7$` format.
pub fn mosquitto_hash(password: &str) -> String {
    let mut salt = [0u8; 12];
    rand::rng().fill_bytes(&mut salt);
    format!(
        "$7${ITERATIONS}${}${}",
        b64(&salt),
        b64(&derive(password, &salt, ITERATIONS))
    )
}

/// Whether `password` matches a `$7$` hash.
pub fn mosquitto_verify(hash: &str, password: &str) -> bool {
    let parts: Vec<&str> = hash.split('$').collect();
    let ["", "7", iters, salt, digest] = parts.as_slice() else {
        return false;
    };
    let dec = |s: &str| base64::engine::general_purpose::STANDARD.decode(s).ok();
    let (Ok(iters), Some(salt), Some(digest)) = (iters.parse::<u32>(), dec(salt), dec(digest))
    else {
        return false;
    };
    ring::pbkdf2::verify(
        ring::pbkdf2::PBKDF2_HMAC_SHA512,
        NonZeroU32::new(iters).unwrap_or(NonZeroU32::MIN),
        &salt,
        password.as_bytes(),
        &digest,
    )
    .is_ok()
}

/// A new random broker password for an agent.
pub fn new_agent_password() -> String {
    crate::auth::random_secret()
}

/// The files for the controller's user `controller_user` (whose password hashes as
/// `controller_hash`) and every enrolled, unrevoked agent with a broker password.
pub fn mosquitto_files(
    c: &dyn Sql,
    controller_user: &str,
    controller_hash: &str,
    dir: &str,
) -> Result<MosquittoFiles, DbError> {
    let mut passwd = format!("{controller_user}:{controller_hash}\n");
    let rows = c.all(
        "SELECT id, broker_pw_hash FROM agents
         WHERE revoked_at IS NULL AND broker_pw_hash IS NOT NULL ORDER BY id",
        args![],
        |r| Ok((r.text("id")?, r.text("broker_pw_hash")?)),
    )?;
    let mut agents = 0;
    for (id, hash) in rows {
        let _ = writeln!(passwd, "{id}:{hash}");
        agents += 1;
    }
    let acl = format!(
        "# Storefleet: written by `storefleet broker-config mosquitto`.\n\
         # Each agent (username = agent id) publishes only under its own up/ and reads only\n\
         # its own down/.\n\
         pattern write sf/v1/%u/up/#\n\
         pattern read sf/v1/%u/down/#\n\n\
         # The controller reads every uplink and writes every downlink.\n\
         user {controller_user}\n\
         topic readwrite sf/v1/#\n"
    );
    let dir = dir.trim_end_matches('/');
    let conf = format!(
        "# Storefleet: include from mosquitto.conf (include_dir {dir}).\n\
         allow_anonymous false\n\
         password_file {dir}/storefleet.passwd\n\
         acl_file {dir}/storefleet.acl\n"
    );
    Ok(MosquittoFiles {
        passwd,
        acl,
        conf,
        agents,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_what_mosquitto_passwd_makes() {
        // Made by `mosquitto_passwd -b -c FILE alice secret123` (Mosquitto 2.0).
        let real = "$7$101$jJEUM+9FjxjrI+GF$3heQisfoNIpfOGkRXb2EQwLybVoOYDm3uTn/QvNQ9VU1sOygrK1Q+/H/9JoJtHOwfpDcUB4SZOm7J6JBjgPuYw==";
        assert!(mosquitto_verify(real, "secret123"));
        assert!(!mosquitto_verify(real, "secret124"));
        let ours = mosquitto_hash("secret123");
        assert!(ours.starts_with("$7$101$"), "{ours}");
        assert!(mosquitto_verify(&ours, "secret123"));
        assert!(!mosquitto_verify("$7$x$y$z", "secret123"));
    }
}
