//! The envelope around every message and the signed frame that carries it.
//!
//! Owns encoding (serialise, sign, frame) and the first, key-independent half of decoding
//! (frame layout, JSON shape, version). Key lookup, expiry and replay are in
//! [`crate::verify`].

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::keys::{SigningKey, SIGNATURE_LEN};
use crate::message::{Kind, Message};
use crate::ENVELOPE_VERSION;

/// First two bytes of every frame.
pub const MAGIC: &[u8; 2] = b"SF";
/// Frame layout version (byte 2) of a frame whose envelope is plain JSON.
pub const FRAME_VERSION: u8 = 1;
/// Frame layout version of a frame with a content byte before the envelope.
pub const FRAME_VERSION_CONTENT: u8 = 2;
/// Content byte of a version-2 frame: the envelope is plain JSON.
pub const CONTENT_JSON: u8 = 0;
/// Content byte of a version-2 frame: the envelope is JSON compressed as a zlib stream
/// (RFC 1950, deflate).
pub const CONTENT_ZLIB: u8 = 1;
/// Envelopes shorter than this are not worth compressing.
pub const COMPRESS_FROM: usize = 256;
/// Bytes before the envelope JSON: magic, frame version, signature.
pub const HEADER_LEN: usize = 3 + SIGNATURE_LEN;
/// Largest frame a receiver accepts, in bytes.
pub const MAX_FRAME_LEN: usize = 4 * 1024 * 1024;

/// A decoded envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// Envelope version.
    pub v: u16,
    /// Sender id.
    pub from: String,
    /// Recipient agent id (downlink only).
    pub to: Option<String>,
    /// Per-sender sequence number.
    pub seq: u64,
    /// When sealed, ms since the epoch.
    pub ts: i64,
    /// Expiry, ms since the epoch.
    pub exp: Option<i64>,
    /// The message.
    pub message: Message,
}

/// Errors from encoding or decoding a frame.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// Too short, too long, wrong magic, or not an envelope.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A frame or envelope version this build does not speak.
    #[error("unsupported version: {0}")]
    UnsupportedVersion(String),
    /// The body could not be serialised.
    #[error("cannot encode body: {0}")]
    Encode(String),
}

#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    v: u16,
    from: &'a str,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to: Option<&'a str>,
    seq: u64,
    ts: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    kind: Kind,
    #[serde(borrow)]
    body: &'a RawValue,
}

/// A frame split into its parts, before the signature is checked.
#[derive(Debug)]
pub struct RawFrame<'a> {
    /// The signature bytes.
    pub signature: &'a [u8],
    /// The exact signed bytes (version 1: the envelope JSON; version 2: the content byte
    /// and the envelope as sent).
    pub signed: &'a [u8],
    /// The decoded envelope.
    pub envelope: Envelope,
}

impl Envelope {
    /// A new version-1 envelope.
    pub fn new(from: &str, seq: u64, ts: i64, message: Message) -> Envelope {
        Envelope {
            v: ENVELOPE_VERSION,
            from: from.to_owned(),
            to: None,
            seq,
            ts,
            exp: None,
            message,
        }
    }

    /// Sets the recipient.
    #[must_use]
    pub fn to(mut self, agent_id: &str) -> Envelope {
        self.to = Some(agent_id.to_owned());
        self
    }

    /// Sets the expiry.
    #[must_use]
    pub fn expires(mut self, exp_ms: i64) -> Envelope {
        self.exp = Some(exp_ms);
        self
    }

    /// The envelope JSON, exactly as it will be signed.
    pub fn to_json(&self) -> Result<Vec<u8>, FrameError> {
        let body = match &self.message {
            Message::Presence(b) => serde_json::to_string(b),
            Message::Telemetry(b) => serde_json::to_string(b),
            Message::Event(b) => serde_json::to_string(b),
            Message::Inventory(b) => serde_json::to_string(b),
            Message::Command(b) => serde_json::to_string(b),
            Message::CommandResult(b) => serde_json::to_string(b),
            Message::RoutineRun(b) => serde_json::to_string(b),
        }
        .map_err(|e| FrameError::Encode(e.to_string()))?;
        let body = RawValue::from_string(body).map_err(|e| FrameError::Encode(e.to_string()))?;
        let wire = Wire {
            v: self.v,
            from: &self.from,
            to: self.to.as_deref(),
            seq: self.seq,
            ts: self.ts,
            exp: self.exp,
            kind: self.message.kind(),
            body: &body,
        };
        serde_json::to_vec(&wire).map_err(|e| FrameError::Encode(e.to_string()))
    }

    /// Decodes envelope JSON as [`Envelope::to_json`] writes it (the signed part of a
    /// frame); checks neither signature, expiry nor replay.
    pub fn from_json(json: &[u8]) -> Result<Envelope, FrameError> {
        let wire: Wire<'_> = serde_json::from_slice(json)
            .map_err(|e| FrameError::Malformed(format!("envelope: {e}")))?;
        if wire.v != ENVELOPE_VERSION {
            return Err(FrameError::UnsupportedVersion(format!(
                "envelope version {}",
                wire.v
            )));
        }
        let body = wire.body.get();
        let bad = |e: serde_json::Error| {
            FrameError::Malformed(format!("{} body: {e}", wire.kind.as_str()))
        };
        let message = match wire.kind {
            Kind::Presence => Message::Presence(serde_json::from_str(body).map_err(bad)?),
            Kind::Telemetry => Message::Telemetry(serde_json::from_str(body).map_err(bad)?),
            Kind::Event => Message::Event(serde_json::from_str(body).map_err(bad)?),
            Kind::Inventory => Message::Inventory(serde_json::from_str(body).map_err(bad)?),
            Kind::Command => Message::Command(serde_json::from_str(body).map_err(bad)?),
            Kind::CommandResult => Message::CommandResult(serde_json::from_str(body).map_err(bad)?),
            Kind::RoutineRun => Message::RoutineRun(serde_json::from_str(body).map_err(bad)?),
        };
        Ok(Envelope {
            v: wire.v,
            from: wire.from.to_owned(),
            to: wire.to.map(str::to_owned),
            seq: wire.seq,
            ts: wire.ts,
            exp: wire.exp,
            message,
        })
    }

    /// Serialises, signs and frames the envelope: the bytes to publish.
    pub fn seal(&self, key: &SigningKey) -> Result<Vec<u8>, FrameError> {
        let json = self.to_json()?;
        Ok(frame(&json, key))
    }
}

/// Seals a body that is already serialised JSON (a sender that stores bodies as text, such
/// as the agent's buffer, does not parse them again). `body_json` must be one JSON value.
pub fn seal_raw(
    from: &str,
    seq: u64,
    ts: i64,
    kind: Kind,
    body_json: &str,
    key: &SigningKey,
) -> Result<Vec<u8>, FrameError> {
    Ok(frame(&envelope_raw(from, seq, ts, kind, body_json)?, key))
}

/// The envelope JSON around a body that is already serialised JSON, to frame with
/// [`frame`] or [`frame_compressed`].
pub fn envelope_raw(
    from: &str,
    seq: u64,
    ts: i64,
    kind: Kind,
    body_json: &str,
) -> Result<Vec<u8>, FrameError> {
    let body: &RawValue =
        serde_json::from_str(body_json).map_err(|e| FrameError::Encode(e.to_string()))?;
    let wire = Wire {
        v: ENVELOPE_VERSION,
        from,
        to: None,
        seq,
        ts,
        exp: None,
        kind,
        body,
    };
    serde_json::to_vec(&wire).map_err(|e| FrameError::Encode(e.to_string()))
}

/// Frames already-serialised envelope JSON with its signature.
pub fn frame(envelope_json: &[u8], key: &SigningKey) -> Vec<u8> {
    let sig = key.sign(envelope_json);
    let mut out = Vec::with_capacity(HEADER_LEN + envelope_json.len());
    out.extend_from_slice(MAGIC);
    out.push(FRAME_VERSION);
    out.extend_from_slice(&sig);
    out.extend_from_slice(envelope_json);
    out
}

/// Frames envelope JSON compressed (a version-2 frame, content [`CONTENT_ZLIB`]), unless
/// it is short or does not shrink: then a version-1 frame, as [`frame`].
pub fn frame_compressed(envelope_json: &[u8], key: &SigningKey) -> Vec<u8> {
    use std::io::Write as _;
    if envelope_json.len() < COMPRESS_FROM {
        return frame(envelope_json, key);
    }
    let mut z = flate2::write::ZlibEncoder::new(
        Vec::with_capacity(1 + envelope_json.len() / 4),
        flate2::Compression::default(),
    );
    let mut signed = vec![CONTENT_ZLIB];
    if z.write_all(envelope_json).is_err() {
        return frame(envelope_json, key);
    }
    match z.finish() {
        Ok(c) if c.len() + 1 < envelope_json.len() => signed.extend_from_slice(&c),
        _ => return frame(envelope_json, key),
    }
    let sig = key.sign(&signed);
    let mut out = Vec::with_capacity(HEADER_LEN + signed.len());
    out.extend_from_slice(MAGIC);
    out.push(FRAME_VERSION_CONTENT);
    out.extend_from_slice(&sig);
    out.extend_from_slice(&signed);
    out
}

fn inflate(compressed: &[u8]) -> Result<Vec<u8>, FrameError> {
    use std::io::Read as _;
    let mut out = Vec::with_capacity(compressed.len() * 4);
    let limit = MAX_FRAME_LEN as u64;
    flate2::read::ZlibDecoder::new(compressed)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| FrameError::Malformed(format!("compressed envelope: {e}")))?;
    if out.len() as u64 > limit {
        return Err(FrameError::Malformed(format!(
            "compressed envelope inflates past the {MAX_FRAME_LEN}-byte limit"
        )));
    }
    Ok(out)
}

/// Splits a frame and decodes its envelope (inflating it when compressed); checks neither
/// signature, expiry nor replay.
///
/// Never panics, whatever the input.
pub fn open(bytes: &[u8]) -> Result<RawFrame<'_>, FrameError> {
    if bytes.len() > MAX_FRAME_LEN {
        return Err(FrameError::Malformed(format!(
            "{} bytes is over the {MAX_FRAME_LEN}-byte limit",
            bytes.len()
        )));
    }
    if bytes.len() < HEADER_LEN + 2 {
        return Err(FrameError::Malformed(format!(
            "{} bytes is shorter than a frame",
            bytes.len()
        )));
    }
    if &bytes[..2] != MAGIC {
        return Err(FrameError::Malformed("bad magic".into()));
    }
    let signature = &bytes[3..HEADER_LEN];
    let signed = &bytes[HEADER_LEN..];
    let envelope = match bytes[2] {
        FRAME_VERSION => Envelope::from_json(signed)?,
        FRAME_VERSION_CONTENT => match signed[0] {
            CONTENT_JSON => Envelope::from_json(&signed[1..])?,
            CONTENT_ZLIB => Envelope::from_json(&inflate(&signed[1..])?)?,
            other => {
                return Err(FrameError::UnsupportedVersion(format!(
                    "content encoding {other}"
                )))
            }
        },
        other => {
            return Err(FrameError::UnsupportedVersion(format!(
                "frame version {other}"
            )))
        }
    };
    Ok(RawFrame {
        signature,
        signed,
        envelope,
    })
}
