//! The Storefleet wire contract, shared by the store agent and the controller.
//!
//! This crate is pure: serde and ring, no I/O, no MQTT client, no database. It owns the
//! topics, the message bodies, the signed envelope and its verification. A third party can
//! write a compatible agent from this page and the item docs below.
//!
//! # Layout
//!
//! - [`topic`]: the MQTT topic tree and how to parse it.
//! - [`message`]: the message bodies (presence, telemetry, event, inventory, command, result).
//! - [`routine`]: the record of a maintenance routine's run.
//! - [`enroll`]: the enrollment token and the agent's enrollment request.
//! - [`broker`]: credentials at the MQTT broker (the agent's signed, short-lived password).
//! - [`release`]: agent releases and their signature with the release key.
//! - [`envelope`]: the envelope that wraps every body, and the signed frame that carries it.
//! - [`keys`]: Ed25519 signing and public keys and their text form.
//! - [`verify`]: verification of a received frame: key lookup, signature, expiry, replay.
//! - [`wire`]: the MQTT session, number and text encodings, optional fields, enum names,
//!   the enrollment signature, and test vectors.
//!
//! # Topics
//!
//! ```text
//! sf/v1/{agent_id}/up/{kind}     agent -> controller
//! sf/v1/{agent_id}/down/{kind}   controller -> agent
//! ```
//!
//! `kind` is one of `presence`, `telemetry`, `event`, `inventory`, `command`,
//! `command-result`, `routine-run`. A broker ACL can bind an agent to its own subtree with one pattern rule
//! (`sf/v1/%c/#` in Mosquitto when the client id is the agent id). Presence is published
//! retained on `up/presence`, and the agent's MQTT last will is a signed `offline` presence on
//! the same topic. All other messages are QoS 1, not retained.
//!
//! # Frame
//!
//! Every MQTT payload is one frame:
//!
//! ```text
//! offset  size  field
//! 0       2     magic "SF"
//! 2       1     frame version (1)
//! 3       64    Ed25519 signature over bytes 67..end
//! 67      n     the envelope, UTF-8 JSON
//! ```
//!
//! The signature covers the exact envelope bytes as sent; a receiver verifies before it
//! acts and never re-serialises before verifying.
//!
//! A frame of version 2 carries a content byte before the envelope, and its signature
//! covers that byte and the envelope as sent:
//!
//! ```text
//! offset  size  field
//! 0       2     magic "SF"
//! 2       1     frame version (2)
//! 3       64    Ed25519 signature over bytes 67..end
//! 67      1     content: 0 = the envelope as UTF-8 JSON, 1 = the envelope JSON as a
//!               zlib stream (RFC 1950: deflate with an Adler-32 check)
//! 68      n     the envelope
//! ```
//!
//! Agents send telemetry batches (and any envelope of 256 bytes or more) compressed,
//! unless `[sync] compress = false`; a receiver accepts both versions, inflates at most
//! 4 MiB ([`envelope::MAX_FRAME_LEN`]) and refuses an unknown content byte as an
//! unsupported version. The controller sends version 1.
//!
//! # Envelope
//!
//! ```json
//! {"v":1,"from":"a-3f2c...","to":null,"seq":42,"ts":1700000000000,"exp":null,
//!  "kind":"telemetry","body":{...}}
//! ```
//!
//! - `v`: envelope version, 1.
//! - `from`: sender id: the agent id, or [`CONTROLLER_ID`] for the controller.
//! - `to`: recipient agent id on downlink messages (so that a command for one agent cannot be
//!   replayed to another); absent on uplink.
//! - `seq`: per-sender sequence number, persisted by the sender and strictly increasing over
//!   the sender's life. A message retransmitted after a lost acknowledgement keeps its `seq`,
//!   so receivers store each `(from, seq)` once.
//! - `ts`: when the message was sealed, milliseconds since the Unix epoch (UTC).
//! - `exp`: optional expiry, milliseconds since the Unix epoch; a receiver drops the message
//!   after it (allowing [`verify::CLOCK_SKEW_MS`] of clock skew).
//! - `kind` and `body`: the message; see [`message::Message`].
//!
//! # Bodies
//!
//! The `body` of each kind is the JSON form of the type in [`message`]; fields marked
//! optional there may be absent, and receivers ignore fields they do not know. Examples:
//!
//! ```json
//! {"kind":"presence","body":{"state":"online","agent_version":"0.1.0","started_at":1700000000000}}
//! {"kind":"telemetry","body":{"backlog":true,"series":[{"device":"printer-1","metric":"probe.up",
//!   "points":[{"t":1700000000000,"v":1.0},{"t":1700000060000,"v":0.75,
//!   "agg":{"res":60,"n":6,"min":0.0,"max":1.0}}]}]}}
//! {"kind":"event","body":{"id":"9f3c...","ts":1700000000000,"device":"printer-1","code":"device.down",
//!   "severity":"error","message":"printer-1 is down: ...","data":{"class":"receipt-printer"}}}
//! {"kind":"command","body":{"id":"c-42","action":"ping"}}
//! {"kind":"command-result","body":{"command_id":"c-42","status":"ok","message":"pong",
//!   "data":{"uptime_s":3600},"finished_at":1700000000000}}
//! ```
//!
//! Telemetry points of a series are in time order within a message. Points buffered during
//! an outage travel after live data, in batches marked `backlog`; an aggregate (`agg`) stands
//! for `n` raw points folded by the agent to stay under its disk quota, `t` being the start
//! of its `res`-second bucket.
//!
//! # Delivery
//!
//! Uplink messages are published with QoS 1 and may arrive more than once (a retransmission
//! after a lost PUBACK keeps its bytes and `seq`); a receiver stores each `(from, seq)` once.
//! A command is acted on at most once per command `id`; its result is sent like any event.
//! A command must carry `exp`, at most 7 days after its `ts`; the agent refuses one without.
//!
//! Verification ([`verify::Verifier`]) returns a typed [`verify::VerifyError`]: malformed,
//! unsupported version, unknown sender, bad signature, expired, replayed.

pub mod broker;
pub mod enroll;
pub mod envelope;
pub mod keys;
pub mod message;
pub mod release;
pub mod routine;
pub mod topic;
pub mod verify;
pub mod wire;

pub use envelope::{Envelope, FrameError};
pub use keys::{KeyError, PublicKey, SigningKey};
pub use message::{Kind, Message};
pub use topic::{Direction, Topic};
pub use verify::{KeyLookup, Verifier, VerifyError};

/// The sender id the controller uses in its envelopes.
pub const CONTROLLER_ID: &str = "controller";

/// Current envelope version (`v`).
pub const ENVELOPE_VERSION: u16 = 1;

/// Milliseconds since the Unix epoch for a [`std::time::SystemTime`]; 0 before the epoch.
pub fn unix_ms(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    unix_ms(std::time::SystemTime::now())
}
