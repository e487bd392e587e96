//! A shard's map: key → newest record (in `Sync` mode: newest durable
//! record). Read lock-free from any thread (scc `HashIndex` readers never
//! block and never wait for a writer). Written by the shard's executor in
//! `Sync` mode, and by the callers' threads themselves in `Async` mode:
//! a publish is a compare-and-swap that only ever moves a key forward in
//! the order recovery uses, so concurrent writers need no lock.
//!
//! Each key maps to a [`Slot`] that holds the current record behind an
//! epoch-protected atomic pointer; a new version swaps the pointer and the
//! map entry itself is written once per key. Why not replace the map entry:
//! `HashIndex` keeps a replaced entry in its bucket until that bucket fills
//! up, so with a few keys per bucket every bucket kept up to 32 superseded
//! 100 KB records alive (measured: about 20 MB per shard for 100 keys). A
//! swapped-out record is instead released as soon as no reader can still
//! see the old pointer (the next epoch), or later if a reader holds a
//! `RecordRef` to it.
//!
//! Superseded records are freed on the thread that advances the epoch:
//! usually a writer at its next publish, sometimes a reader.

use std::sync::atomic::{AtomicUsize, Ordering};

use scc::hash_index::Entry;
use scc::{AtomicShared, Guard, Shared, Tag};
use xxhash_rust::xxh3::Xxh3Builder;

use crate::outcome::PutOutcome;
use crate::record_ref::RecordRef;

/// Where a write stands in its key's history, after its version: ties of
/// version go to the higher rank, in memory exactly as in recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct LogRank {
    /// Store generation of the frame.
    pub generation: u64,
    /// Its log sequence number within the shard and generation.
    pub lsn: u64,
}

/// A record with the rank of the frame that holds it.
struct Ranked {
    record: RecordRef,
    rank: LogRank,
}

impl Ranked {
    /// Whether `self` wins over a write of `version` at `rank`.
    fn beats(&self, version: i64, rank: LogRank) -> bool {
        (self.record.version(), self.rank) > (version, rank)
    }
}

/// The newest record of one key.
pub(crate) struct Slot {
    current: AtomicShared<Ranked>,
}

impl Slot {
    /// A slot whose first record is still being published (`get` sees no
    /// record yet).
    fn empty() -> Self {
        Slot {
            current: AtomicShared::null(),
        }
    }

    /// Newest wins: puts `record` in place of the current one unless the
    /// current one ranks higher. The old record goes to the epoch collector
    /// (readers that loaded it before the swap can still clone it), and
    /// `guard` is asked to advance the epoch when it ends, so superseded
    /// records are freed within a few puts instead of piling up for the
    /// collector's default cadence (128 guards: about 20 MB per shard of
    /// 100 KB records).
    /// The `bool` says whether the slot held no record before.
    fn offer(&self, record: RecordRef, rank: LogRank, guard: &Guard) -> (PutOutcome, bool) {
        let version = record.version();
        let mut new = Some(Shared::new(Ranked { record, rank }));
        let mut current = self.current.load(Ordering::Acquire, guard);
        // Each failed exchange means another writer moved the key forward,
        // so this ends once the slot stops changing or outranks us.
        loop {
            if let Some(c) = current.as_ref() {
                if c.beats(version, rank) {
                    let stale = PutOutcome::Stale {
                        current_version: c.record.version(),
                    };
                    return (stale, false);
                }
            }
            match self.current.compare_exchange(
                current,
                (new.take(), Tag::None),
                Ordering::AcqRel,
                Ordering::Acquire,
                guard,
            ) {
                Ok((previous, _)) => {
                    guard.accelerate();
                    return (PutOutcome::Applied, previous.is_none());
                }
                Err((ours, actual)) => {
                    new = ours;
                    current = actual;
                }
            }
        }
    }

    /// Gives the current record the new rank `rank` (a checkpoint copying
    /// it into a fresh frame) and returns it; `None` unless the current
    /// record is still the write ranked `seen` (ranks are unique per write):
    /// a newer put's frame follows the checkpoint.
    fn rerank(&self, seen: LogRank, rank: LogRank, guard: &Guard) -> Option<RecordRef> {
        let current = self.current.load(Ordering::Acquire, guard);
        let record = match current.as_ref() {
            Some(c) if c.rank == seen => c.record.clone(),
            _ => return None,
        };
        let moved = Shared::new(Ranked {
            record: record.clone(),
            rank,
        });
        self.current
            .compare_exchange(
                current,
                (Some(moved), Tag::None),
                Ordering::AcqRel,
                Ordering::Acquire,
                guard,
            )
            .ok()
            .map(|_| record)
    }

    /// The current record; `guard` keeps it from being reclaimed meanwhile.
    fn load<'g>(&self, guard: &'g Guard) -> Option<&'g Ranked> {
        self.current.load(Ordering::Acquire, guard).as_ref()
    }
}

/// A shard's map, with its count of keys holding a record.
pub(crate) struct Index {
    map: scc::HashIndex<Box<str>, Slot, Xxh3Builder>,
    /// Slots holding a record: kept here because `HashIndex::len` scans
    /// every bucket (and may start the map's maintenance on the caller).
    live: AtomicUsize,
}

impl Index {
    /// Keys holding a record (O(1)).
    pub(crate) fn len(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }
}

/// An empty map.
pub(crate) fn new_index() -> Index {
    Index {
        map: scc::HashIndex::with_hasher(Xxh3Builder::new()),
        live: AtomicUsize::new(0),
    }
}

/// The record of `key`, if any: a lock-free read (one atomic increment for
/// the returned handle).
pub(crate) fn get(index: &Index, key: &str) -> Option<RecordRef> {
    let guard = Guard::new();
    index
        .map
        .peek(key, &guard)
        .and_then(|slot| slot.load(&guard))
        .map(|r| r.record.clone())
}

/// The version stored for `key`.
pub(crate) fn version_of(index: &Index, key: &str) -> Option<i64> {
    let guard = Guard::new();
    index
        .map
        .peek(key, &guard)
        .and_then(|slot| slot.load(&guard))
        .map(|r| r.record.version())
}

/// Newest wins: makes `record` the record of its key unless the key holds
/// a higher (version, rank), and says which happened and at what rank.
/// `take_rank` runs once the key's slot exists — creating a slot may wait
/// for the map's bucket lock — and from then on nothing waits: a caller
/// that takes an LSN in `take_rank` holds it only for one compare-and-swap
/// loop. Entries are never removed, so the entry found stays valid.
pub(crate) fn publish(
    index: &Index,
    record: RecordRef,
    take_rank: impl FnOnce() -> LogRank,
) -> (PutOutcome, LogRank) {
    let guard = Guard::new();
    let slot = slot(index, record.key(), &guard);
    let rank = take_rank();
    let (outcome, first) = slot.offer(record, rank, &guard);
    if first {
        index.live.fetch_add(1, Ordering::Relaxed);
    }
    (outcome, rank)
}

/// The slot of `key`, created empty if there is none.
fn slot<'g>(index: &'g Index, key: &str, guard: &'g Guard) -> &'g Slot {
    loop {
        if let Some(slot) = index.map.peek(key, guard) {
            return slot;
        }
        // Inserted (by us or a concurrent put) and never removed: the next
        // peek finds it.
        if let Entry::Vacant(v) = index.map.entry_sync(key.into()) {
            v.insert_entry(Slot::empty());
        }
    }
}

/// The current record of every key of `index` whose key passes `keep`, in
/// no particular order. Lock-free and weakly consistent: each key's record
/// is the one current when the walk reached it; a key added or replaced
/// during the walk may or may not be seen, but no key present for the
/// whole walk is missed.
pub(crate) fn records(index: &Index, keep: impl Fn(&str) -> bool) -> Vec<RecordRef> {
    let guard = Guard::new();
    // scc may visit an entry twice while the map resizes: keep the first.
    let mut seen = std::collections::HashSet::new();
    index
        .map
        .iter(&guard)
        .filter(|(key, _)| keep(key) && seen.insert(*key))
        .filter_map(|(_, slot)| slot.load(&guard).map(|r| r.record.clone()))
        .collect()
}

/// Lets this thread's retired records go. A thread frees what it retired
/// (a superseded record, an entry a checkpoint re-ranked) only while it
/// enters the epoch collector; a shard executor in `Async` mode publishes
/// nothing, so without this the records it retires at each checkpoint would
/// wait for the next one, and pile up (measured: +4 MB per compaction).
pub(crate) fn reclaim() {
    let guard = Guard::new();
    if guard.has_garbage() {
        guard.accelerate();
    }
}

/// For a checkpoint: gives every key's current record a new rank from
/// `next_rank` and returns the records with their new LSNs. A key that a
/// concurrent put moved forward meanwhile is left out: that put's frame is
/// written after the checkpoint. Every rank taken is either returned or
/// was spent on such a key.
pub(crate) fn rerank_all(
    index: &Index,
    mut next_rank: impl FnMut() -> LogRank,
) -> Vec<(RecordRef, u64)> {
    let guard = Guard::new();
    let mut out = Vec::with_capacity(index.len());
    for (_, slot) in index.map.iter(&guard) {
        let Some(seen) = slot.load(&guard) else {
            continue;
        };
        let rank = next_rank();
        if let Some(record) = slot.rerank(seen.rank, rank, &guard) {
            out.push((record, rank.lsn));
        }
    }
    out
}

/// For a checkpoint written in steps: every key with the rank of its
/// current record.
pub(crate) fn live_ranks(index: &Index) -> Vec<(Box<str>, LogRank)> {
    let guard = Guard::new();
    let mut out = Vec::with_capacity(index.len());
    for (key, slot) in index.map.iter(&guard) {
        if let Some(current) = slot.load(&guard) {
            out.push((key.clone(), current.rank));
        }
    }
    out
}

/// One step of such a checkpoint: gives `key`'s record the rank `rank` if
/// it is still the write ranked `seen`, and returns it; `None` if a newer
/// put replaced it (that put's frame follows the checkpoint's start).
pub(crate) fn rerank_key(
    index: &Index,
    key: &str,
    seen: LogRank,
    rank: LogRank,
) -> Option<RecordRef> {
    let guard = Guard::new();
    index.map.peek(key, &guard)?.rerank(seen, rank, &guard)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, version: i64) -> RecordRef {
        let r = crate::Record::new().with("collection_time", version);
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&r).expect("serialize");
        RecordRef::from_untrusted(key, version, &bytes).expect("a valid record")
    }

    fn rank(lsn: u64) -> LogRank {
        LogRank { generation: 2, lsn }
    }

    /// `len` is a counter kept by `publish` (it once scanned every bucket):
    /// a key counts once, from its first record on, whatever replaces it.
    #[test]
    fn len_counts_keys_holding_a_record() {
        let index = new_index();
        assert_eq!(index.len(), 0);
        let _ = publish(&index, record("a", 1), || rank(1));
        let _ = publish(&index, record("a", 2), || rank(2));
        let _ = publish(&index, record("a", 1), || rank(3));
        assert_eq!(index.len(), 1, "replaced and stale puts add nothing");
        let _ = publish(&index, record("b", 1), || rank(4));
        assert_eq!(index.len(), 2);
        let _ = rerank_all(&index, || rank(9));
        assert_eq!(index.len(), 2, "a checkpoint's re-rank adds nothing");
    }

    #[test]
    fn newest_version_then_latest_rank_wins() {
        let index = new_index();
        assert_eq!(
            publish(&index, record("k", 5), || rank(10)).0,
            PutOutcome::Applied
        );
        // A tie of version goes to the later write, whatever the arrival order.
        assert_eq!(
            publish(&index, record("k", 5), || rank(9)).0,
            PutOutcome::Stale { current_version: 5 }
        );
        assert_eq!(
            publish(&index, record("k", 5), || rank(11)).0,
            PutOutcome::Applied
        );
        assert_eq!(
            publish(&index, record("k", 4), || rank(12)).0,
            PutOutcome::Stale { current_version: 5 }
        );
        assert_eq!(
            publish(&index, record("k", 6), || rank(1)).0,
            PutOutcome::Applied
        );
        assert_eq!(version_of(&index, "k"), Some(6));
    }

    #[test]
    fn racing_writers_leave_the_highest_rank() {
        let index = new_index();
        let threads = 4u64;
        let per_thread = 2_000u64;
        std::thread::scope(|s| {
            for t in 0..threads {
                let index = &index;
                s.spawn(move || {
                    for i in 0..per_thread {
                        let lsn = i * threads + t + 1;
                        let _ = publish(index, record("k", 7), || rank(lsn));
                    }
                });
            }
        });
        let guard = Guard::new();
        let top = index
            .map
            .peek("k", &guard)
            .and_then(|s| s.load(&guard))
            .map(|r| r.rank);
        assert_eq!(top, Some(rank(threads * per_thread)));
    }

    #[test]
    fn a_rerank_moves_the_current_record_and_later_ties_lose_to_it() {
        let index = new_index();
        let _ = publish(&index, record("a", 1), || rank(1)).0;
        let _ = publish(&index, record("b", 1), || rank(2)).0;
        let mut next = 10;
        let moved = rerank_all(&index, || {
            next += 1;
            rank(next)
        });
        let mut lsns: Vec<u64> = moved.iter().map(|(_, lsn)| *lsn).collect();
        lsns.sort_unstable();
        assert_eq!(lsns, vec![11, 12]);
        // A put of the same version that took its LSN before the checkpoint
        // but publishes after it is older in the log: it loses.
        assert_eq!(
            publish(&index, record("a", 1), || rank(5)).0,
            PutOutcome::Stale { current_version: 1 }
        );
    }
}
