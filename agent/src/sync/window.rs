//! The in-flight window: which buffer `seq` each MQTT packet id carries, so that a PUBACK
//! deletes exactly the message it acknowledges.
//!
//! The publisher queues a `seq` when it hands a publish to the MQTT client; the client
//! assigns packet ids in the order it takes publishes, and reports each with an
//! `Outgoing::Publish(pkid)` event, which pairs the oldest queued `seq` with that id. A
//! publish held back by a packet id collision is reported first as `AwaitAck(pkid)` and
//! again as `Publish(pkid)` when it finally goes out; it is paired once. On a connection
//! loss everything is forgotten: the unacknowledged messages are still in the outbox and
//! are published again after the reconnect.

use std::collections::{HashMap, VecDeque};

/// Pure state of the publishes in flight.
#[derive(Debug, Default)]
pub struct Window {
    capacity: usize,
    queued: VecDeque<u64>,
    by_pkid: HashMap<u16, u64>,
    collided: Option<u16>,
}

impl Window {
    /// A window of `capacity` messages.
    pub fn new(capacity: usize) -> Window {
        Window {
            capacity,
            ..Window::default()
        }
    }

    /// How many more publishes may be queued now.
    pub fn room(&self) -> usize {
        self.capacity
            .saturating_sub(self.queued.len() + self.by_pkid.len())
    }

    /// Messages in flight (queued or sent, not acknowledged).
    pub fn len(&self) -> usize {
        self.queued.len() + self.by_pkid.len()
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A publish carrying `seq` was handed to the client.
    pub fn queued(&mut self, seq: u64) {
        self.queued.push_back(seq);
    }

    /// The client sent a publish with `pkid`.
    pub fn on_publish(&mut self, pkid: u16) {
        if self.collided == Some(pkid) {
            // The collided publish finally went out; it was paired at AwaitAck.
            self.collided = None;
            return;
        }
        if let Some(seq) = self.queued.pop_front() {
            self.by_pkid.insert(pkid, seq);
        }
    }

    /// The client held a publish back because `pkid` is still unacknowledged.
    pub fn on_await_ack(&mut self, pkid: u16) {
        self.collided = Some(pkid);
        if let Some(seq) = self.queued.pop_front() {
            // Paired now under a key that cannot clash with the in-flight one.
            self.by_pkid.insert(0, seq);
        }
    }

    /// The broker acknowledged `pkid`; returns the seq it carried.
    pub fn on_puback(&mut self, pkid: u16) -> Option<u64> {
        let seq = self.by_pkid.remove(&pkid);
        if self.collided == Some(pkid) {
            // The held-back publish now takes this packet id.
            if let Some(held) = self.by_pkid.remove(&0) {
                self.by_pkid.insert(pkid, held);
            }
        }
        seq
    }

    /// Forgets everything (connection lost).
    pub fn reset(&mut self) {
        self.queued.clear();
        self.by_pkid.clear();
        self.collided = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pubacks_map_back_to_the_seq_in_send_order() {
        let mut w = Window::new(4);
        for seq in [10, 11, 12] {
            w.queued(seq);
        }
        assert_eq!(w.room(), 1);
        w.on_publish(1);
        w.on_publish(2);
        w.on_publish(3);
        assert_eq!(w.on_puback(2), Some(11));
        assert_eq!(w.on_puback(1), Some(10));
        assert_eq!(w.on_puback(3), Some(12));
        assert!(w.is_empty());
    }

    #[test]
    fn a_puback_for_an_unknown_packet_is_ignored() {
        let mut w = Window::new(2);
        w.queued(1);
        w.on_publish(5);
        assert_eq!(w.on_puback(6), None);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn a_collided_publish_is_paired_once_and_takes_over_the_packet_id() {
        let mut w = Window::new(4);
        w.queued(1);
        w.on_publish(1);
        w.queued(2);
        w.on_await_ack(1); // seq 2 waits for pkid 1 to be acked
        assert_eq!(w.on_puback(1), Some(1));
        w.on_publish(1); // the held publish goes out with pkid 1: no new pairing
        w.queued(3);
        w.on_publish(2);
        assert_eq!(w.on_puback(1), Some(2));
        assert_eq!(w.on_puback(2), Some(3));
        assert!(w.is_empty());
    }

    #[test]
    fn reset_forgets_and_frees_the_window() {
        let mut w = Window::new(2);
        w.queued(1);
        w.queued(2);
        w.on_publish(1);
        assert_eq!(w.room(), 0);
        w.reset();
        assert_eq!(w.room(), 2);
        assert_eq!(w.on_puback(1), None);
    }
}
