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
//!
//! A versioned delete publishes a tombstone like a put publishes a record:
//! the record is released, `get` and iteration see no record, and the
//! tombstone's version still makes older writes `Stale`. A checkpoint
//! forgets a tombstone older than `Config::tombstone_retention` by removing
//! the key's entry ([`Slot::carry`]): the slot is first marked dead (so no write
//! can land in it), then removed, and a writer that met the dead slot looks
//! the key up again.

use std::sync::atomic::{AtomicUsize, Ordering};

use scc::hash_index::Entry;
use scc::{AtomicShared, Guard, Shared, Tag};
use xxhash_rust::xxh3::Xxh3Builder;

use crate::outcome::PutOutcome;
use crate::record_ref::RecordRef;
use crate::write::{Tombstone, Write};

/// Where a write stands in its key's history, after its version: ties of
/// version go to the higher rank, in memory exactly as in recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct LogRank {
    /// Store generation of the frame.
    pub generation: u64,
    /// Its log sequence number within the shard and generation.
    pub lsn: u64,
}

/// A write (record or tombstone) with the rank of the frame that holds it.
struct Ranked {
    write: Write,
    rank: LogRank,
    /// A tombstone's stale hits: bit 0, an older write lost to it since it
    /// was last placed (published or copied by a checkpoint); bit 1, one
    /// did in the period before. Such a write's frame may follow the
    /// tombstone's in the log, so forgetting the tombstone waits until two
    /// checkpoints have seen no hit (see [`Slot::carry`]).
    hits: u8,
}

impl Ranked {
    /// Whether `self` wins over a write of `version` at `rank`.
    fn beats(&self, version: i64, rank: LogRank) -> bool {
        (self.write.version(), self.rank) > (version, rank)
    }
}

/// Tag of a slot being forgotten: nothing may be written into it any more.
const DEAD: Tag = Tag::First;

/// What an offer to a slot did.
enum Offered {
    /// Applied or stale; the `i8` is the change in keys holding a record.
    Done(PutOutcome, i8),
    /// The slot is being forgotten: look the key up again and offer the
    /// write (given back) there.
    Dead(Write),
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
    fn offer(&self, write: Write, rank: LogRank, guard: &Guard) -> Offered {
        let version = write.version();
        let adds_record = write.record().is_some();
        let mut current = self.current.load(Ordering::Acquire, guard);
        if current.tag() == DEAD {
            return Offered::Dead(write);
        }
        let new = Shared::new(Ranked {
            write,
            rank,
            hits: 0,
        });
        // Each failed exchange means another writer moved the key forward,
        // so this ends once the slot stops changing or outranks us.
        loop {
            if current.tag() == DEAD {
                // Rare (a key forgotten while written): give the write back.
                return Offered::Dead(new.write.clone());
            }
            if let Some(c) = current.as_ref() {
                if c.beats(version, rank) {
                    if !self.note_hit(c, guard) {
                        // Changed meanwhile: decide again.
                        current = self.current.load(Ordering::Acquire, guard);
                        continue;
                    }
                    let stale = PutOutcome::Stale {
                        current_version: c.write.version(),
                    };
                    return Offered::Done(stale, 0);
                }
            }
            match self.current.compare_exchange(
                current,
                (Some(new.clone()), Tag::None),
                Ordering::AcqRel,
                Ordering::Acquire,
                guard,
            ) {
                Ok((previous, _)) => {
                    guard.accelerate();
                    let had_record = previous
                        .as_ref()
                        .is_some_and(|p| p.write.record().is_some());
                    let delta = i8::from(adds_record) - i8::from(had_record);
                    return Offered::Done(PutOutcome::Applied, delta);
                }
                Err((_, actual)) => current = actual,
            }
        }
    }

    /// Gives the current write the new rank `rank` (a checkpoint copying
    /// it into a fresh frame) and returns it; `None` unless the current
    /// write is still the one ranked `seen` (ranks are unique per write):
    /// a newer write's frame follows the checkpoint.
    /// A dead slot holds no write, so it is never re-ranked.
    fn rerank(&self, seen: LogRank, rank: LogRank, guard: &Guard) -> Option<Write> {
        let current = self.current.load(Ordering::Acquire, guard);
        let (write, hits) = match current.as_ref() {
            Some(c) if c.rank == seen => (c.write.clone(), (c.hits & 1) << 1),
            _ => return None,
        };
        let moved = Shared::new(Ranked {
            write: write.clone(),
            rank,
            hits,
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
            .map(|_| write)
    }

    /// The current write; `guard` keeps it from being reclaimed meanwhile.
    fn load<'g>(&self, guard: &'g Guard) -> Option<&'g Ranked> {
        self.current.load(Ordering::Acquire, guard).as_ref()
    }

    /// The current record, unless the key is deleted.
    fn record<'g>(&self, guard: &'g Guard) -> Option<&'g RecordRef> {
        self.load(guard).and_then(|r| r.write.record())
    }

    /// Notes that an older write lost to `seen`, the current tombstone as
    /// loaded: sets its hit bit. Returns false if the slot changed
    /// meanwhile (the caller decides again); true when done or when the
    /// write is a record (nothing to note).
    fn note_hit(&self, seen: &Ranked, guard: &Guard) -> bool {
        if seen.write.record().is_some() || seen.hits & 1 == 1 {
            return true;
        }
        let current = self.current.load(Ordering::Acquire, guard);
        let Some(c) = current.as_ref().filter(|c| std::ptr::eq(*c, seen)) else {
            return false;
        };
        let marked = Shared::new(Ranked {
            write: c.write.clone(),
            rank: c.rank,
            hits: c.hits | 1,
        });
        self.current
            .compare_exchange(
                current,
                (Some(marked), Tag::None),
                Ordering::AcqRel,
                Ordering::Acquire,
                guard,
            )
            .is_ok()
    }

    /// What a checkpoint does with this key, whose write it saw ranked
    /// `seen`: copies it with rank `rank()` ([`Slot::rerank`]; `rank` runs
    /// only then), or, for a tombstone that `forget` lets go and that no
    /// older write hit for two periods, marks the slot dead (the caller
    /// removes the entry). A dead slot holds no write: `Moved`.
    fn carry(
        &self,
        seen: LogRank,
        forget: &Forget,
        rank: impl FnOnce() -> LogRank,
        guard: &Guard,
    ) -> Carry {
        let current = self.current.load(Ordering::Acquire, guard);
        let expired = match current.as_ref() {
            Some(c) if c.rank == seen => {
                c.hits == 0 && c.write.tombstone().is_some_and(|t| forget.lets_go(t))
            }
            _ => return Carry::Moved,
        };
        if !expired {
            let rank = rank();
            return match self.rerank(seen, rank, guard) {
                Some(w) => Carry::Copy(w, rank),
                None => Carry::Moved,
            };
        }
        match self.current.compare_exchange(
            current,
            (None, DEAD),
            Ordering::AcqRel,
            Ordering::Acquire,
            guard,
        ) {
            Ok(_) => Carry::Forgot,
            Err(_) => Carry::Moved,
        }
    }
}

/// When a checkpoint may forget a tombstone: once it is older than the
/// retention (`Config::tombstone_retention`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Forget {
    /// Now, nanoseconds since the Unix epoch.
    pub now_unix_ns: u64,
    /// The retention, in nanoseconds.
    pub retention_ns: u64,
}

impl Forget {
    /// Forgets nothing.
    pub const NEVER: Forget = Forget {
        now_unix_ns: 0,
        retention_ns: u64::MAX,
    };

    fn lets_go(&self, t: &Tombstone) -> bool {
        t.deleted_at_unix_ns().saturating_add(self.retention_ns) <= self.now_unix_ns
    }
}

/// What a checkpoint did with one key.
pub(crate) enum Carry {
    /// Copied into the checkpoint with this new rank.
    Copy(Write, LogRank),
    /// A tombstone forgotten: the key's entry is dead (remove it).
    Forgot,
    /// A newer write replaced what the checkpoint saw: its frame follows
    /// the checkpoint's start.
    Moved,
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
        .and_then(|slot| slot.record(&guard))
        .cloned()
}

/// The version stored for `key`: its record's, or its tombstone's.
pub(crate) fn version_of(index: &Index, key: &str) -> Option<i64> {
    let guard = Guard::new();
    index
        .map
        .peek(key, &guard)
        .and_then(|slot| slot.load(&guard))
        .map(|r| r.write.version())
}

/// Newest wins: makes `write` (a record or a tombstone) current for its
/// key unless the key holds a higher (version, rank), and says which
/// happened and at what rank. `take_rank` runs once the key's live slot
/// exists — creating a slot may wait for the map's bucket lock, or for a
/// checkpoint forgetting the key — and from then on nothing waits: a
/// caller that takes an LSN in `take_rank` holds it only for one
/// compare-and-swap loop. A slot is removed only after it is marked dead,
/// and nothing is written into a dead slot.
pub(crate) fn publish(
    index: &Index,
    write: Write,
    take_rank: impl FnOnce() -> LogRank,
) -> (PutOutcome, LogRank) {
    let guard = Guard::new();
    let mut slot = live_slot(index, write.key(), &guard);
    let rank = take_rank();
    let mut write = write;
    loop {
        match slot.offer(write, rank, &guard) {
            Offered::Done(outcome, delta) => {
                if delta > 0 {
                    index.live.fetch_add(1, Ordering::Relaxed);
                } else if delta < 0 {
                    index.live.fetch_sub(1, Ordering::Relaxed);
                }
                return (outcome, rank);
            }
            Offered::Dead(back) => {
                slot = live_slot(index, back.key(), &guard);
                write = back;
            }
        }
    }
}

/// The live slot of `key`, created empty if there is none; waits while a
/// checkpoint removes a dead one (a few instructions on its executor).
fn live_slot<'g>(index: &'g Index, key: &str, guard: &'g Guard) -> &'g Slot {
    loop {
        if let Some(slot) = index.map.peek(key, guard) {
            if slot.current.load(Ordering::Acquire, guard).tag() != DEAD {
                return slot;
            }
            std::thread::yield_now();
            continue;
        }
        // Inserted (by us or a concurrent writer); removed only once dead.
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
        .filter_map(|(_, slot)| slot.record(&guard).cloned())
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

/// For a checkpoint: gives every key's current write a new rank from
/// `next_rank` and returns the writes with their new LSNs, forgetting the
/// tombstones `forget` lets go (their entries are removed). A key that a
/// concurrent write moved forward meanwhile is left out: that write's frame
/// is written after the checkpoint. Every rank taken is either returned or
/// was spent on such a key. Returns the copies and the tombstones forgotten.
pub(crate) fn carry_all(
    index: &Index,
    forget: &Forget,
    mut next_rank: impl FnMut() -> LogRank,
) -> (Vec<(Write, u64)>, usize) {
    let guard = Guard::new();
    let mut out = Vec::with_capacity(index.len());
    let mut dead = Vec::new();
    for (key, slot) in index.map.iter(&guard) {
        let Some(seen) = slot.load(&guard) else {
            continue;
        };
        match slot.carry(seen.rank, forget, &mut next_rank, &guard) {
            Carry::Copy(w, rank) => out.push((w, rank.lsn)),
            Carry::Forgot => dead.push(key.clone()),
            Carry::Moved => {}
        }
    }
    drop(guard);
    let forgotten = dead.len();
    for key in dead {
        index.map.remove_sync(&key);
    }
    (out, forgotten)
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

/// One step of such a checkpoint: what it does with `key`, whose write it
/// saw ranked `seen` ([`Slot::carry`]); a forgotten key's entry is removed.
pub(crate) fn carry_key(
    index: &Index,
    key: &str,
    seen: LogRank,
    forget: &Forget,
    rank: impl FnOnce() -> LogRank,
) -> Carry {
    let guard = Guard::new();
    let Some(slot) = index.map.peek(key, &guard) else {
        return Carry::Moved;
    };
    let carried = slot.carry(seen, forget, rank, &guard);
    drop(guard);
    if matches!(carried, Carry::Forgot) {
        index.map.remove_sync(key);
    }
    carried
}

/// `Sync` mode, on the executor: an older write of `key` lost to its
/// tombstone (decided there, not by a publish); see [`Ranked::hits`].
pub(crate) fn note_stale(index: &Index, key: &str) {
    let guard = Guard::new();
    if let Some(slot) = index.map.peek(key, &guard) {
        // Only the executor writes in Sync mode: the slot cannot change.
        if let Some(seen) = slot.load(&guard) {
            let noted = slot.note_hit(seen, &guard);
            debug_assert!(noted, "a Sync slot changed under its executor");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, version: i64) -> Write {
        let r = crate::Record::new().with("collection_time", version);
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&r).expect("serialize");
        Write::Put(RecordRef::from_untrusted(key, version, &bytes).expect("a valid record"))
    }

    fn delete(key: &str, version: i64, at_unix_ns: u64) -> Write {
        Write::Delete(std::sync::Arc::new(Tombstone::at(key, version, at_unix_ns)))
    }

    /// Forgets tombstones made before `now`.
    fn forget_before(now_unix_ns: u64) -> Forget {
        Forget {
            now_unix_ns,
            retention_ns: 0,
        }
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
        let _ = carry_all(&index, &Forget::NEVER, || rank(9));
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
        let (moved, _) = carry_all(&index, &Forget::NEVER, || {
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

    #[test]
    fn a_delete_hides_the_record_and_keeps_older_writes_out() {
        let index = new_index();
        let _ = publish(&index, record("k", 5), || rank(1));
        assert_eq!(index.len(), 1);
        assert_eq!(
            publish(&index, delete("k", 4, 0), || rank(2)).0,
            PutOutcome::Stale { current_version: 5 },
            "a delete older than the record changes nothing"
        );
        assert!(get(&index, "k").is_some());
        assert_eq!(
            publish(&index, delete("k", 5, 0), || rank(3)).0,
            PutOutcome::Applied
        );
        assert!(get(&index, "k").is_none());
        assert_eq!(index.len(), 0, "a deleted key holds no record");
        assert_eq!(
            version_of(&index, "k"),
            Some(5),
            "the tombstone keeps its version"
        );
        assert!(records(&index, |_| true).is_empty());
        assert_eq!(
            publish(&index, record("k", 4), || rank(4)).0,
            PutOutcome::Stale { current_version: 5 }
        );
        assert_eq!(
            publish(&index, record("k", 6), || rank(5)).0,
            PutOutcome::Applied
        );
        assert_eq!(index.len(), 1, "a newer put brings the key back");
        assert_eq!(get(&index, "k").map(|r| r.version()), Some(6));
    }

    #[test]
    fn a_checkpoint_copies_young_tombstones_and_forgets_old_ones() {
        let index = new_index();
        let _ = publish(&index, delete("old", 1, 100), || rank(1));
        let _ = publish(&index, delete("young", 1, 900), || rank(2));
        let _ = publish(&index, record("kept", 1), || rank(3));
        let mut next = 10;
        let (copied, forgotten) = carry_all(&index, &forget_before(500), || {
            next += 1;
            rank(next)
        });
        assert_eq!(forgotten, 1);
        let mut keys: Vec<&str> = copied.iter().map(|(w, _)| w.key()).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["kept", "young"]);
        let guard = Guard::new();
        assert!(index.map.peek("old", &guard).is_none(), "its entry is gone");
        drop(guard);
        assert_eq!(version_of(&index, "old"), None);
        // The key is unknown now: any version applies.
        assert_eq!(
            publish(&index, record("old", 0), || rank(20)).0,
            PutOutcome::Applied
        );
    }

    /// An older write that lost to a tombstone may have its frame after the
    /// tombstone's in the log: the tombstone outlives it by two checkpoints.
    #[test]
    fn a_tombstone_an_older_write_hit_is_kept_two_more_checkpoints() {
        let index = new_index();
        let _ = publish(&index, delete("k", 5, 0), || rank(1));
        assert_eq!(
            publish(&index, record("k", 3), || rank(2)).0,
            PutOutcome::Stale { current_version: 5 }
        );
        let mut next = 10;
        let mut checkpoint = || {
            carry_all(&index, &forget_before(1), || {
                next += 1;
                rank(next)
            })
            .1
        };
        assert_eq!(checkpoint(), 0, "hit since placed: copied");
        assert_eq!(checkpoint(), 0, "hit in the period before: copied");
        assert_eq!(checkpoint(), 1, "no hit for two periods: forgotten");
    }

    /// An index whose key `k` was deleted and whose slot a checkpoint then
    /// marked dead, not removed yet.
    fn with_a_dead_slot() -> Index {
        let index = new_index();
        let _ = publish(&index, delete("k", 5, 0), || rank(1));
        let guard = Guard::new();
        let slot = index.map.peek("k", &guard).expect("slot");
        let seen = slot.load(&guard).expect("tombstone").rank;
        assert!(matches!(
            slot.carry(seen, &forget_before(1), || rank(2), &guard),
            Carry::Forgot
        ));
        drop(guard);
        index
    }

    #[test]
    fn a_write_into_a_dead_slot_lands_in_a_new_one() {
        let index = with_a_dead_slot();
        let guard = Guard::new();
        let slot = index.map.peek("k", &guard).expect("slot");
        // A writer that found the dead slot gets its write back.
        assert!(matches!(
            slot.offer(record("k", 1), rank(3), &guard),
            Offered::Dead(_)
        ));
        drop(guard);
        index.map.remove_sync("k");
        assert_eq!(
            publish(&index, record("k", 1), || rank(3)).0,
            PutOutcome::Applied
        );
        assert_eq!(get(&index, "k").map(|r| r.version()), Some(1));
        assert_eq!(index.len(), 1);
    }

    /// A writer that finds a dead slot still in the map waits for its
    /// removal, then writes into a fresh slot: the write is never lost in
    /// the dead one.
    #[test]
    fn a_writer_waits_for_a_dead_slot_to_be_removed() {
        let index = with_a_dead_slot();
        std::thread::scope(|s| {
            let writer = s.spawn(|| publish(&index, record("k", 1), || rank(3)).0);
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(
                !writer.is_finished(),
                "it waits while the dead slot is there"
            );
            index.map.remove_sync("k");
            assert_eq!(writer.join().expect("writer"), PutOutcome::Applied);
        });
        assert_eq!(get(&index, "k").map(|r| r.version()), Some(1));
        assert_eq!(index.len(), 1);
    }
}
