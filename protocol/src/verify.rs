//! Verification of received frames: frame and topic, sender key, signature, expiry, replay.
//!
//! The order is deliberate: nothing about a message is believed (its sender, its sequence
//! number) until its signature checks out, so a forged message can neither use a key it
//! does not hold nor poison the replay window of a real sender.

use std::collections::HashMap;

use crate::envelope::{self, Envelope, FrameError};
use crate::keys::PublicKey;
use crate::topic::{Direction, Topic};

/// Clock skew tolerated when checking `exp`, in milliseconds.
pub const CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

/// How many sequence numbers below the highest seen are remembered per sender.
pub const REPLAY_WINDOW: u64 = 4096;

/// Why a frame was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    /// Not a frame, not an envelope, a bad body, or a topic that does not match it.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A frame or envelope version this build does not speak.
    #[error("unsupported version: {0}")]
    UnsupportedVersion(String),
    /// No key is registered for the sender.
    #[error("unknown sender {0:?}")]
    UnknownSender(String),
    /// The signature does not match the sender's key and the bytes.
    #[error("bad signature from {0:?}")]
    BadSignature(String),
    /// The message's `exp` has passed.
    #[error("expired message from {sender:?} (exp {exp}, now {now})")]
    Expired {
        /// Sender id.
        sender: String,
        /// The message's expiry.
        exp: i64,
        /// The receiver's clock.
        now: i64,
    },
    /// This `(sender, seq)` was seen before, or is too old to tell.
    #[error("replayed message from {sender:?} (seq {seq})")]
    Replayed {
        /// Sender id.
        sender: String,
        /// The repeated sequence number.
        seq: u64,
    },
}

impl VerifyError {
    /// A short stable label, for counters and log fields.
    pub fn label(&self) -> &'static str {
        match self {
            VerifyError::Malformed(_) => "malformed",
            VerifyError::UnsupportedVersion(_) => "unsupported_version",
            VerifyError::UnknownSender(_) => "unknown_sender",
            VerifyError::BadSignature(_) => "bad_signature",
            VerifyError::Expired { .. } => "expired",
            VerifyError::Replayed { .. } => "replayed",
        }
    }
}

impl From<FrameError> for VerifyError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::UnsupportedVersion(m) => VerifyError::UnsupportedVersion(m),
            FrameError::Malformed(m) | FrameError::Encode(m) => VerifyError::Malformed(m),
        }
    }
}

/// Where a verifier finds a sender's public key.
pub trait KeyLookup {
    /// The key registered for `sender`, if any.
    fn key_for(&self, sender: &str) -> Option<PublicKey>;
}

impl<S: std::hash::BuildHasher> KeyLookup for HashMap<String, PublicKey, S> {
    fn key_for(&self, sender: &str) -> Option<PublicKey> {
        self.get(sender).copied()
    }
}

/// A single pinned key for one sender (how an agent knows its controller).
#[derive(Debug, Clone)]
pub struct Pinned {
    /// The sender id the key belongs to.
    pub sender: String,
    /// The key.
    pub key: PublicKey,
}

impl KeyLookup for Pinned {
    fn key_for(&self, sender: &str) -> Option<PublicKey> {
        (sender == self.sender).then_some(self.key)
    }
}

/// Remembers which sequence numbers of one sender were seen: the highest, and a bitmap of the
/// [`REPLAY_WINDOW`] below it. Anything older than the window counts as replayed.
#[derive(Debug, Clone, Default)]
pub struct ReplayWindow {
    highest: u64,
    seen: Vec<u64>,
}

impl ReplayWindow {
    /// A window that has already seen everything up to and including `highest`.
    pub fn starting_at(highest: u64) -> ReplayWindow {
        ReplayWindow {
            highest,
            seen: vec![u64::MAX; (REPLAY_WINDOW / 64) as usize],
        }
    }

    /// The highest sequence number seen.
    pub fn highest(&self) -> u64 {
        self.highest
    }

    fn bit(&mut self, seq: u64) -> (usize, u64) {
        if self.seen.is_empty() {
            self.seen = vec![0; (REPLAY_WINDOW / 64) as usize];
        }
        let slot = seq % REPLAY_WINDOW;
        ((slot / 64) as usize, 1u64 << (slot % 64))
    }

    /// Records `seq`; `false` when it was seen before or is older than the window.
    pub fn accept(&mut self, seq: u64) -> bool {
        if seq == 0 {
            return false;
        }
        if seq > self.highest {
            // Clear the slots that the window slides past.
            let steps = (seq - self.highest).min(REPLAY_WINDOW);
            for s in 1..=steps {
                let (w, b) = self.bit(self.highest + s);
                self.seen[w] &= !b;
            }
            self.highest = seq;
            let (w, b) = self.bit(seq);
            self.seen[w] |= b;
            return true;
        }
        if self.highest - seq >= REPLAY_WINDOW {
            return false;
        }
        let (w, b) = self.bit(seq);
        if self.seen[w] & b != 0 {
            return false;
        }
        self.seen[w] |= b;
        true
    }
}

/// Verifies frames from senders whose keys a [`KeyLookup`] knows, and remembers their
/// sequence numbers.
#[derive(Debug)]
pub struct Verifier<K> {
    keys: K,
    windows: HashMap<String, ReplayWindow>,
}

impl<K: KeyLookup> Verifier<K> {
    /// A verifier over `keys` with empty replay windows.
    pub fn new(keys: K) -> Verifier<K> {
        Verifier {
            keys,
            windows: HashMap::new(),
        }
    }

    /// The key source, to update it.
    pub fn keys_mut(&mut self) -> &mut K {
        &mut self.keys
    }

    /// Seeds a sender's replay window (from persisted state after a restart).
    pub fn seed(&mut self, sender: &str, highest: u64) {
        self.windows
            .insert(sender.to_owned(), ReplayWindow::starting_at(highest));
    }

    /// Verifies `payload` received on `topic` at `now_ms`.
    ///
    /// Checks, in order: the frame and envelope shape, that the topic's agent and kind match
    /// the envelope (`from` on uplink, `to` on downlink), the sender's key, the signature over
    /// the exact bytes, the expiry, and finally replay. Only a message that passes all of
    /// them is recorded in the replay window.
    pub fn verify(
        &mut self,
        topic: &str,
        payload: &[u8],
        now_ms: i64,
    ) -> Result<Envelope, VerifyError> {
        let env = self.authenticate(topic, payload, now_ms)?;
        let window = self.windows.entry(env.from.clone()).or_default();
        if !window.accept(env.seq) {
            return Err(VerifyError::Replayed {
                sender: env.from,
                seq: env.seq,
            });
        }
        Ok(env)
    }

    /// Every check of [`Verifier::verify`] but replay, which leaves the replay windows
    /// untouched: for a receiver that deduplicates `(from, seq)` durably itself (the
    /// controller, in the same transaction that stores the message).
    pub fn authenticate(
        &self,
        topic: &str,
        payload: &[u8],
        now_ms: i64,
    ) -> Result<Envelope, VerifyError> {
        let raw = envelope::open(payload)?;
        let env = raw.envelope;
        let t = Topic::parse(topic)
            .ok_or_else(|| VerifyError::Malformed(format!("not a storefleet topic: {topic:?}")))?;
        if t.kind != env.message.kind() {
            return Err(VerifyError::Malformed(format!(
                "topic kind {} but envelope kind {}",
                t.kind.as_str(),
                env.message.kind().as_str()
            )));
        }
        let routed = match t.direction {
            Direction::Up => env.from == t.agent_id,
            Direction::Down => env.to.as_deref() == Some(t.agent_id.as_str()),
        };
        if !routed {
            return Err(VerifyError::Malformed(format!(
                "envelope from {:?} to {:?} does not belong on topic {topic:?}",
                env.from, env.to
            )));
        }
        let key = self
            .keys
            .key_for(&env.from)
            .ok_or_else(|| VerifyError::UnknownSender(env.from.clone()))?;
        if !key.verify(raw.signed, raw.signature) {
            return Err(VerifyError::BadSignature(env.from));
        }
        if let Some(exp) = env.exp {
            if now_ms > exp.saturating_add(CLOCK_SKEW_MS) {
                return Err(VerifyError::Expired {
                    sender: env.from,
                    exp,
                    now: now_ms,
                });
            }
        }
        Ok(env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_accepts_each_seq_once_in_any_order() {
        let mut w = ReplayWindow::default();
        for s in [5, 3, 4, 1, 2, 10, 7] {
            assert!(w.accept(s), "{s}");
        }
        for s in [5, 3, 4, 1, 2, 10, 7] {
            assert!(!w.accept(s), "{s} again");
        }
        assert!(w.accept(8));
        assert_eq!(w.highest(), 10);
    }

    #[test]
    fn window_forgets_slots_it_slides_past_and_refuses_older() {
        let mut w = ReplayWindow::default();
        assert!(w.accept(1));
        assert!(w.accept(REPLAY_WINDOW + 1));
        // 1 is now too old to tell: refused.
        assert!(!w.accept(1));
        // A slot that was reused by the slide is free again for its new number.
        assert!(w.accept(REPLAY_WINDOW + 2 - 1 + 1));
        assert!(!w.accept(0));
    }

    #[test]
    fn seeded_window_refuses_everything_up_to_the_seed() {
        let mut w = ReplayWindow::starting_at(100);
        assert!(!w.accept(100));
        assert!(!w.accept(99));
        assert!(w.accept(101));
    }
}
