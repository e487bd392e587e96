//! `Async` mode: callers take their LSNs as they publish and send their
//! records concurrently, so records can arrive out of LSN order (a caller
//! preempted between the two). The frames of a segment are written in log
//! order (recovery tells a crash's torn batches from corruption by it), so
//! records wait here until every LSN before theirs has arrived or is known
//! to be skipped (a checkpoint's copies, a put refused at close).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::shard::submission::Unwritten;

/// Async mode: puts back in LSN order the records that callers took LSNs
/// for and sent concurrently (frames of a segment are written in log order:
/// recovery tells a crash's torn batches from corruption by it). LSNs a
/// checkpoint spent never arrive and are skipped.
pub(super) struct Reorder {
    /// The next LSN to hand on.
    next: u64,
    /// LSNs beyond `next` that arrived (`Some`) or are to be skipped
    /// (`None`).
    early: BTreeMap<u64, Option<Unwritten>>,
    /// Since when `early` is not empty.
    waiting_since: Option<Instant>,
}

impl Default for Reorder {
    fn default() -> Self {
        // LSNs start at 1 in every generation.
        Reorder {
            next: 1,
            early: BTreeMap::new(),
            waiting_since: None,
        }
    }
}

impl Reorder {
    /// `lsn` arrived with `record` (or is to be skipped, `None`): moves
    /// every record now in order to `ready`. Returns how long records had
    /// waited for it, if this ended a wait.
    pub fn arrive(
        &mut self,
        lsn: u64,
        record: Option<Unwritten>,
        ready: &mut VecDeque<Unwritten>,
    ) -> Option<Duration> {
        debug_assert!(!self.early.contains_key(&lsn), "LSN {lsn} twice");
        // Behind `next` only after a disk fault's `drain_all` went past it
        // (its put took the LSN before the fault): nothing is written any
        // more, so nothing to wait for.
        if lsn < self.next || (lsn == self.next && self.early.is_empty()) {
            self.next = self.next.max(lsn + 1);
            ready.extend(record);
            return None;
        }
        self.early.insert(lsn, record);
        self.waiting_since.get_or_insert_with(Instant::now);
        while let Some(entry) = self.early.first_entry() {
            if *entry.key() != self.next {
                break;
            }
            self.next += 1;
            ready.extend(entry.remove());
        }
        self.wait_ended()
    }

    fn wait_ended(&mut self) -> Option<Duration> {
        if self.early.is_empty() {
            self.waiting_since.take().map(|since| since.elapsed())
        } else {
            None
        }
    }

    /// Moves everything that arrived to `ready` in LSN order, past any LSN
    /// still missing (at shutdown: a put that failed `Closed` after taking
    /// its LSN; after a disk fault: to drop them all).
    pub fn drain_all(&mut self, ready: &mut VecDeque<Unwritten>) {
        if let Some((&last, _)) = self.early.last_key_value() {
            self.next = last + 1;
        }
        ready.extend(std::mem::take(&mut self.early).into_values().flatten());
        self.waiting_since = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record_ref::RecordRef;

    fn unwritten(lsn: u64) -> Unwritten {
        let r = crate::Record::new().with("collection_time", 1i64);
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&r).expect("serialize");
        Unwritten {
            write: crate::write::Write::Put(
                RecordRef::from_untrusted("k", 1, &bytes).expect("a valid record"),
            ),
            payload_crc: 0,
            lsn,
        }
    }

    fn lsns(ready: &VecDeque<Unwritten>) -> Vec<u64> {
        ready.iter().map(|u| u.lsn).collect()
    }

    #[test]
    fn records_are_handed_on_in_lsn_order_whatever_their_arrival() {
        let (mut order, mut ready) = (Reorder::default(), VecDeque::new());
        let _ = order.arrive(2, Some(unwritten(2)), &mut ready);
        let _ = order.arrive(4, Some(unwritten(4)), &mut ready);
        assert!(ready.is_empty(), "1 has not arrived");
        let waited = order.arrive(1, Some(unwritten(1)), &mut ready);
        assert_eq!(lsns(&ready), [1, 2]);
        assert!(waited.is_none(), "4 still waits for 3");
        // 3 was spent by a checkpoint: skipped, and 4 follows.
        let waited = order.arrive(3, None, &mut ready);
        assert_eq!(lsns(&ready), [1, 2, 4]);
        assert!(
            waited.is_some(),
            "nothing waits any more: the wait is measured"
        );
        let waited = order.arrive(5, Some(unwritten(5)), &mut ready);
        assert_eq!(lsns(&ready), [1, 2, 4, 5]);
        assert!(waited.is_none(), "in order: no wait");
    }

    #[test]
    fn at_shutdown_what_arrived_goes_out_past_a_missing_lsn() {
        let (mut order, mut ready) = (Reorder::default(), VecDeque::new());
        let _ = order.arrive(1, Some(unwritten(1)), &mut ready);
        let _ = order.arrive(4, Some(unwritten(4)), &mut ready);
        let _ = order.arrive(3, Some(unwritten(3)), &mut ready);
        order.drain_all(&mut ready);
        assert_eq!(lsns(&ready), [1, 3, 4]);
        let _ = order.arrive(5, Some(unwritten(5)), &mut ready);
        assert_eq!(lsns(&ready), [1, 3, 4, 5]);
        // The missing one, late (sent before a fault): handed on at once.
        let _ = order.arrive(2, Some(unwritten(2)), &mut ready);
        assert_eq!(lsns(&ready), [1, 3, 4, 5, 2]);
        let _ = order.arrive(6, Some(unwritten(6)), &mut ready);
        assert_eq!(lsns(&ready), [1, 3, 4, 5, 2, 6]);
    }
}
