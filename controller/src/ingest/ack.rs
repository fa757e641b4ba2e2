//! Acknowledging QoS 1 publishes in the order they arrived.
//!
//! MQTT 3.1.1 (section 4.6) wants PUBACKs in the order of the PUBLISHes, and brokers such
//! as the embedded one drop a connection that acknowledges out of order. Ingest knows a
//! message is due for its acknowledgement at different times: a rejected one at once, a
//! stored one when its batch commits, and batches commit concurrently. [`AckOrder`] holds
//! each arrival in line and releases the longest prefix whose members are all due; one task
//! sends what it releases, in that order.

use std::collections::VecDeque;

/// Arrivals in order, each waiting or due.
#[derive(Debug)]
pub struct AckOrder<T> {
    /// Ticket of the front of `line`.
    first: u64,
    line: VecDeque<(bool, Option<T>)>,
}

impl<T> Default for AckOrder<T> {
    fn default() -> Self {
        AckOrder {
            first: 0,
            line: VecDeque::new(),
        }
    }
}

impl<T> AckOrder<T> {
    /// Puts `item` in line, not yet due; returns its ticket.
    pub fn arrive(&mut self, item: T) -> u64 {
        self.line.push_back((false, Some(item)));
        self.first + self.line.len() as u64 - 1
    }

    /// Puts `item` in line, already due; returns what may be acknowledged now, in order.
    pub fn arrive_due(&mut self, item: T) -> Vec<T> {
        self.line.push_back((true, Some(item)));
        self.release()
    }

    /// Marks `tickets` due; returns what may be acknowledged now, in order. Unknown or
    /// already released tickets are ignored.
    pub fn due(&mut self, tickets: &[u64]) -> Vec<T> {
        for &t in tickets {
            if let Some(i) = t.checked_sub(self.first) {
                if let Some(slot) = self.line.get_mut(i as usize) {
                    slot.0 = true;
                }
            }
        }
        self.release()
    }

    /// Arrivals still waiting for an earlier one or for their own turn.
    pub fn len(&self) -> usize {
        self.line.len()
    }

    /// Whether nothing is in line.
    pub fn is_empty(&self) -> bool {
        self.line.is_empty()
    }

    fn release(&mut self) -> Vec<T> {
        let mut out = Vec::new();
        while self.line.front().is_some_and(|(due, _)| *due) {
            if let Some((_, Some(item))) = self.line.pop_front() {
                out.push(item);
            }
            self.first += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_batch_that_commits_first_waits_for_the_earlier_one() {
        let mut o = AckOrder::default();
        let a = o.arrive('a');
        let b = o.arrive('b');
        let c = o.arrive('c');
        assert!(o.due(&[c]).is_empty(), "c waits for a and b");
        assert_eq!(
            o.arrive_due('x'),
            Vec::<char>::new(),
            "a rejected one waits too"
        );
        assert_eq!(o.due(&[a]), vec!['a']);
        assert_eq!(o.due(&[b]), vec!['b', 'c', 'x']);
        assert!(o.is_empty());
        assert_eq!(o.arrive_due('y'), vec!['y'], "nothing ahead: at once");
    }

    #[test]
    fn stale_and_repeated_tickets_are_ignored() {
        let mut o = AckOrder::default();
        let a = o.arrive(1);
        assert_eq!(o.due(&[a, a, 99]), vec![1]);
        assert!(o.due(&[a]).is_empty());
        let b = o.arrive(2);
        assert_eq!(b, 1);
        assert_eq!(o.due(&[b]), vec![2]);
    }

    #[test]
    fn any_order_of_commits_acknowledges_in_arrival_order() {
        // Every permutation of 6 batches' commits releases 0..6 in order.
        fn perms(v: &mut Vec<u64>, k: usize, out: &mut Vec<Vec<u64>>) {
            if k == v.len() {
                out.push(v.clone());
                return;
            }
            for i in k..v.len() {
                v.swap(k, i);
                perms(v, k + 1, out);
                v.swap(k, i);
            }
        }
        let mut all = Vec::new();
        perms(&mut (0..6).collect(), 0, &mut all);
        for order in all {
            let mut o = AckOrder::default();
            for i in 0..6u64 {
                o.arrive(i);
            }
            let mut acked = Vec::new();
            for t in &order {
                acked.extend(o.due(&[*t]));
            }
            assert_eq!(acked, (0..6).collect::<Vec<_>>(), "commit order {order:?}");
        }
    }
}
