//! Wire details a client written from these docs needs, with test vectors.
//!
//! # MQTT session
//!
//! - MQTT 3.1.1 (protocol level 4). Agents and the controller connect with a persistent
//!   session (clean session = false), so QoS 1 messages wait at the broker while they are
//!   away.
//! - An agent's client id and username are its agent id; its password is a broker token
//!   ([`crate::broker`]), made anew for every connection attempt.
//! - After its CONNACK an agent subscribes to `sf/v1/{agent_id}/down/+` at QoS 1
//!   ([`crate::topic::Topic::agent_downlink_filter`]). The controller subscribes to every
//!   agent's uplink at QoS 1, one filter per kind (`sf/v1/+/up/telemetry` on one
//!   connection, `sf/v1/+/up/event`, `.../presence` and the other kinds on a second,
//!   [`crate::topic::Topic::uplink_kind_filter`]), so an agent's messages of different
//!   kinds may be received out of the order it sent them (as may any two messages that
//!   replicas on a shared subscription receive). A receiver must not rely on arrival order:
//!   it orders presence and inventory reports by `seq` (an older report arriving later is
//!   skipped) and readings and device states by their time. A sender's `seq` only grows,
//!   across restarts and reinstalls.
//! - Everything is published at QoS 1; only presence is retained. A receiver acknowledges
//!   in the order messages arrived (MQTT 3.1.1 section 4.6).
//! - Presence and the last will: before each connection attempt the agent reserves two
//!   sequence numbers `n` and `n + 1`. Its last will (retained, QoS 1, on
//!   `sf/v1/{agent_id}/up/presence`) is a signed `offline` presence with seq `n + 1`; once
//!   connected it publishes the `online` presence with seq `n`. The will is signed first but
//!   its seq is higher, and receivers order presence by seq, so a will that fires later
//!   always wins over the hello before it.
//!
//! # Numbers, times and text
//!
//! - Times (`ts`, `exp`, `started_at`, `t`, ...) are JSON integers: milliseconds since the
//!   Unix epoch, UTC.
//! - `seq` is a JSON integer up to 2^64 - 1. Agents start their sequence at the clock in
//!   microseconds (about 1.7 x 10^18 in 2024), above 2^53: parse it as a 64-bit unsigned
//!   integer, not as a double. It only ever increases for a sender; gaps are normal (after
//!   a restart an agent may skip up to 1,024 numbers).
//! - Metric values (`v`, `min`, `max`) are JSON numbers (finite doubles).
//! - Public keys: the 32 raw Ed25519 bytes in standard base64 with padding (RFC 4648
//!   section 4); receivers also accept them unpadded. Signatures carried in JSON (enrollment
//!   request, release manifest, broker token) are the 64 raw bytes in standard base64 with
//!   padding. In a frame the signature is raw bytes.
//! - The enrollment token is `sfe1.` followed by the unpadded base64url (RFC 4648
//!   section 5) of its JSON ([`crate::enroll::EnrollToken`]).
//! - A TLS pin (`tls_pin` in the token) is `sha256//` followed by the standard base64 with
//!   padding of the SHA-256 of the server certificate's DER SubjectPublicKeyInfo: the form
//!   `curl --pinnedpubkey` takes. A client trusts a server whose certificate carries that
//!   key, whatever signed it.
//!
//! # Optional fields
//!
//! A field may be absent exactly when its type in [`crate::message`] is an `Option`, a
//! collection, a flag or a string with a documented default: absent means none, empty,
//! `false` or `""`. Senders leave such fields out when they are empty; receivers accept
//! them absent, `null` (for `Option`s) or present, and ignore fields they do not know. In
//! the envelope, `to` is absent on uplink and `exp` is absent unless set (a command must
//! carry it).
//!
//! # Names of enumerations (JSON strings)
//!
//! | where | values |
//! |---|---|
//! | envelope `kind`, topic `{kind}` | `presence`, `telemetry`, `event`, `inventory`, `command`, `command-result`, `routine-run` |
//! | presence `state` | `online`, `offline` |
//! | event `severity` | `info`, `warning`, `error`, `critical` |
//! | command `action` (a tag beside `id`) | `ping`, `reload-config`, `run-routine`, `apply-config`, `update` |
//! | command result `status` | `ok`, `failed`, `rejected`, `skipped`, `running` |
//! | routine run `outcome` | `already_fine`, `healed`, `failed`, `escalated`, `skipped` |
//! | routine step `kind` | `check`, `action`, `verify` |
//! | routine run `trigger.type` | `schedule`, `condition`, `task`, `manual` |
//!
//! An `action` this agent does not know decodes as unsupported and is answered `rejected`.
//!
//! # Enrollment request signature
//!
//! The agent signs, with the key it registers, the UTF-8 bytes of
//!
//! ```text
//! storefleet-enroll-v1\n{token_id}\n{agent_id}\n{public_key}\n{hostname}\n{ts}
//! ```
//!
//! where `\n` is a line feed (no trailing one), `public_key` is exactly the text sent in
//! the request's `public_key`, and `ts` the request's `ts` in decimal without leading
//! zeros; `signature` is that signature in standard base64. The controller refuses a
//! request whose `ts` is more than 10 minutes from its clock.
//!
//! # Test vectors
//!
//! The key below is made from a 32-byte seed of `0x07` bytes (PKCS#8 v1:
//! `302e020100300506032b657004220420` followed by the seed); its public key is
//! [`EXAMPLE_PUBLIC_KEY`]. [`EXAMPLE_FRAME`] is the standard base64 of a whole frame
//! (magic, version, signature, envelope) of agent `gw-example`, whose envelope is
//! [`EXAMPLE_ENVELOPE`]; Ed25519 is deterministic, so a correct signer makes exactly these
//! bytes. [`EXAMPLE_FRAME_ZLIB`] is the same envelope in a compressed version-2 frame. [`EXAMPLE_BROKER_TOKEN`] is that agent's broker token made at
//! `ts = 1700000000000`. The crate's `docs` test checks all of them, and that every body
//! example in the crate docs decodes.

/// Public key of the test-vector key (seed of 32 `0x07` bytes).
pub const EXAMPLE_PUBLIC_KEY: &str = "6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw=";

/// The envelope JSON of the example frame, byte for byte.
pub const EXAMPLE_ENVELOPE: &str = r#"{"v":1,"from":"gw-example","seq":1700000000000001,"ts":1700000000000,"kind":"telemetry","body":{"series":[{"device":"printer-1","metric":"paper_pct","points":[{"t":1700000000000,"v":80.5}]}]}}"#;

/// The example frame, standard base64.
pub const EXAMPLE_FRAME: &str = "U0YBKejhHe21ukIrigXYT9RenmEliPvih2Z7K2n5/FoPrfyocEBO4pCvjXTkjMBifv1F1BJVB0KNO6lvXDtoFR1mBHsidiI6MSwiZnJvbSI6Imd3LWV4YW1wbGUiLCJzZXEiOjE3MDAwMDAwMDAwMDAwMDEsInRzIjoxNzAwMDAwMDAwMDAwLCJraW5kIjoidGVsZW1ldHJ5IiwiYm9keSI6eyJzZXJpZXMiOlt7ImRldmljZSI6InByaW50ZXItMSIsIm1ldHJpYyI6InBhcGVyX3BjdCIsInBvaW50cyI6W3sidCI6MTcwMDAwMDAwMDAwMCwidiI6ODAuNX1dfV19fQ==";

/// The example envelope in a version-2 frame, compressed by another implementation
/// (Python's `zlib.compress` at level 9) and signed with the test-vector key, standard
/// base64: a receiver must inflate and verify it. (Deflate output differs between
/// compressors, so a sender need not make these exact bytes.)
pub const EXAMPLE_FRAME_ZLIB: &str = "U0YCPxoYCJCuWXZG8wkn4aYcdH2jk7uYUFkg0o9GFAzU9ypV1OouIXM5714qlrujPEhZfVsePC0sZ3j5NryAZiKEBQF42mWO0Q6CMAxF/6XPw8CD0exXjDG4FbPI2CwNSBb+nUt8Mdq+3Z7TttBEtjHUSYpk6TFX/G5j7pkMjfzC7FR/F1Adf1JDzzB42Mo9R1ZZIN+TX8gWLJHAMC6FPE/BMbgsYVCWqgG388HtYZtZbtkpwpwAfCT9O4aHz/XhuF7R6wbOojhE";

/// The broker token of `gw-example` made at `1700000000000` with the test-vector key.
pub const EXAMPLE_BROKER_TOKEN: &str = "v1.1700000000000.svphCqef8xbfraVAtsvufp0JkU0/1Fu3nqAP2clBMN7Erpa+HHnuGKxlWIrddCTv4Q3kIkGAST01+h9c4BNGCw==";

/// PKCS#8 v1 of the test-vector key.
pub fn example_key_pkcs8() -> Vec<u8> {
    let mut pkcs8 = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    pkcs8.extend_from_slice(&[7u8; 32]);
    pkcs8
}
