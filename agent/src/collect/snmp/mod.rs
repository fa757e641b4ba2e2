//! SNMP polling (v2c, or v3 with authentication and privacy) through the `snmp2` crate:
//! a session per probe, `GET` of known objects and `GETBULK` walks of tables, turned into
//! owned values that the profiles ([`profiles`]) read.
//!
//! At most [`MAX_SESSIONS`] devices are asked at once: each session holds two 64 KiB
//! datagram buffers, and a store's devices all come due at the same second after a start.

pub mod profiles;
pub mod traps;

use std::collections::BTreeMap;

use snmp2::v3::{Auth, AuthProtocol, Cipher, Security};
use snmp2::{AsyncSession, Error, Oid, Value};
use tokio::sync::Semaphore;

use crate::config::{SnmpAuth, SnmpPrivacy, SnmpTarget};

/// Sessions open at once, whatever the number of devices.
pub const MAX_SESSIONS: usize = 4;

static SESSIONS: Semaphore = Semaphore::const_new(MAX_SESSIONS);

/// Rows read by one walk at most (a switch with 48 ports has 48 rows per column).
const WALK_LIMIT: usize = 1024;

/// An object's value, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// INTEGER, Counter32/64, Gauge32 (Unsigned32), TimeTicks.
    Int(i64),
    /// OCTET STRING (text or bits).
    Bytes(Vec<u8>),
    /// OBJECT IDENTIFIER.
    Oid(Vec<u64>),
    /// Anything else (an IP address, opaque data).
    Other,
}

impl Val {
    /// The number, if it is one.
    pub fn int(&self) -> Option<i64> {
        match self {
            Val::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The text, trimmed, if it is some.
    pub fn text(&self) -> Option<String> {
        match self {
            Val::Bytes(b) => {
                let s = String::from_utf8_lossy(b);
                let s = s.trim_matches(|c: char| c.is_whitespace() || c == '\0');
                (!s.is_empty()).then(|| s.to_owned())
            }
            _ => None,
        }
    }
}

/// What a device answered: object identifier to value (objects it does not have are
/// absent).
pub type Values = BTreeMap<Vec<u64>, Val>;

/// Parses `1.3.6.1...` (a profile's constant; never fails on one).
pub fn oid(dotted: &str) -> Vec<u64> {
    dotted.split('.').filter_map(|p| p.parse().ok()).collect()
}

/// An open session with a device.
pub struct Session {
    inner: AsyncSession,
    _permit: tokio::sync::SemaphorePermit<'static>,
}

fn describe(e: &Error) -> String {
    match e {
        Error::AuthFailure(kind) => {
            format!("SNMPv3 authentication failed ({kind:?}): check the user and its passwords")
        }
        Error::CommunityMismatch => "the answer's community is not ours".into(),
        Error::RequestIdMismatch => "an answer to another request".into(),
        other => other.to_string(),
    }
}

fn auth_protocol(a: SnmpAuth) -> AuthProtocol {
    match a {
        SnmpAuth::Md5 => AuthProtocol::Md5,
        SnmpAuth::Sha1 => AuthProtocol::Sha1,
        SnmpAuth::Sha224 => AuthProtocol::Sha224,
        SnmpAuth::Sha256 => AuthProtocol::Sha256,
        SnmpAuth::Sha384 => AuthProtocol::Sha384,
        SnmpAuth::Sha512 => AuthProtocol::Sha512,
    }
}

fn cipher(p: SnmpPrivacy) -> Cipher {
    match p {
        SnmpPrivacy::Des => Cipher::Des,
        SnmpPrivacy::Aes128 => Cipher::Aes128,
        SnmpPrivacy::Aes192 => Cipher::Aes192,
        SnmpPrivacy::Aes256 => Cipher::Aes256,
    }
}

/// Opens a session (for v3, discovers the device's engine first).
pub async fn open(t: &SnmpTarget) -> Result<Session, String> {
    open_in(t, &SESSIONS).await
}

/// Opens a session counted in `sessions` (a sweep's own, so that polling goes on beside it).
pub async fn open_in(t: &SnmpTarget, sessions: &'static Semaphore) -> Result<Session, String> {
    let permit = sessions
        .acquire()
        .await
        .map_err(|_| "SNMP is shutting down".to_owned())?;
    let addr = t.host_port();
    let start_id = rand::random::<i32>() & 0x3fff_ffff;
    let inner = if t.v3() {
        let security = Security::new(t.user.as_bytes(), t.auth_password.expose().as_bytes())
            .with_auth_protocol(auth_protocol(t.auth))
            .with_auth(Auth::AuthPriv {
                cipher: cipher(t.privacy),
                privacy_password: t.privacy_password.expose().as_bytes().to_vec(),
            })
            .with_context_name(&t.context);
        let mut s = AsyncSession::new_v3(addr.as_str(), start_id, security)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        s.init().await.map_err(|e| describe(&e))?;
        s
    } else {
        AsyncSession::new_v2c(addr.as_str(), t.community.expose().as_bytes(), start_id)
            .await
            .map_err(|e| format!("{addr}: {e}"))?
    };
    Ok(Session {
        inner,
        _permit: permit,
    })
}

fn owned(v: &Value<'_>) -> Option<Val> {
    Some(match v {
        Value::Integer(n) => Val::Int(*n),
        Value::Counter32(n) | Value::Unsigned32(n) | Value::Timeticks(n) => Val::Int(i64::from(*n)),
        Value::Counter64(n) => Val::Int(i64::try_from(*n).unwrap_or(i64::MAX)),
        Value::OctetString(b) => Val::Bytes(b.to_vec()),
        Value::ObjectIdentifier(o) => Val::Oid(o.iter().map(Iterator::collect).unwrap_or_default()),
        Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView | Value::Null => {
            return None
        }
        _ => Val::Other,
    })
}

fn to_oid(parts: &[u64]) -> Result<Oid<'static>, String> {
    Oid::from(parts).map_err(|e| format!("bad object identifier {parts:?}: {e:?}"))
}

/// The varbinds of an answer, owned; `None` where the object is missing.
type Answer = Vec<(Vec<u64>, Option<Val>)>;

fn answer(pdu: &snmp2::Pdu<'_>) -> Result<Answer, String> {
    if pdu.error_status != 0 {
        return Err(format!(
            "the device refused the request (error status {}, index {})",
            pdu.error_status, pdu.error_index
        ));
    }
    Ok(pdu
        .varbinds
        .clone()
        .map(|(name, v)| {
            let name: Vec<u64> = name.iter().map(Iterator::collect).unwrap_or_default();
            (name, owned(&v))
        })
        .collect())
}

impl Session {
    /// `GET` of `oids` (in requests of 16); what is missing is left out.
    pub async fn get(&mut self, oids: &[Vec<u64>], into: &mut Values) -> Result<(), String> {
        for chunk in oids.chunks(16) {
            let parsed: Vec<Oid<'static>> =
                chunk.iter().map(|o| to_oid(o)).collect::<Result<_, _>>()?;
            let refs: Vec<&Oid<'_>> = parsed.iter().collect();
            let mut tries = 0;
            let got = loop {
                match self.inner.get_many(&refs).await {
                    Ok(pdu) => break answer(&pdu)?,
                    // v3: the device's clock was learnt; ask again.
                    Err(Error::AuthUpdated) if tries < 2 => tries += 1,
                    Err(e) => return Err(describe(&e)),
                }
            };
            for (name, v) in got {
                if let Some(v) = v {
                    into.insert(name, v);
                }
            }
        }
        Ok(())
    }

    /// Walks the subtree under `root` with `GETBULK`.
    pub async fn walk(&mut self, root: &[u64], into: &mut Values) -> Result<(), String> {
        let mut at = root.to_vec();
        let mut rows = 0;
        loop {
            let o = to_oid(&at)?;
            let mut tries = 0;
            let got = loop {
                match self.inner.getbulk(&[&o], 0, 24).await {
                    Ok(pdu) => break answer(&pdu)?,
                    Err(Error::AuthUpdated) if tries < 2 => tries += 1,
                    Err(e) => return Err(describe(&e)),
                }
            };
            if got.is_empty() {
                return Ok(());
            }
            for (name, v) in got {
                if !name.starts_with(root) {
                    return Ok(());
                }
                let Some(v) = v else { return Ok(()) };
                if name <= at {
                    return Err(format!("the device's walk under {root:?} went backwards"));
                }
                at.clone_from(&name);
                into.insert(name, v);
                rows += 1;
                if rows >= WALK_LIMIT {
                    return Ok(());
                }
            }
        }
    }
}
