//! A shard's map: key → newest durable record. Written only by the shard's
//! executor; read lock-free from any thread (scc `HashIndex` readers never
//! block and never wait for the writer).

use scc::hash_index::Entry;
use xxhash_rust::xxh3::Xxh3Builder;

use crate::record_ref::RecordRef;

/// The map type.
pub(crate) type Index = scc::HashIndex<Box<str>, RecordRef, Xxh3Builder>;

/// An empty map.
pub(crate) fn new_index() -> Index {
    scc::HashIndex::with_hasher(Xxh3Builder::new())
}

/// The record of `key`, if any: a lock-free read.
pub(crate) fn get(index: &Index, key: &str) -> Option<RecordRef> {
    index.peek_with(key, |_, r| r.clone())
}

/// The version stored for `key`.
pub(crate) fn version_of(index: &Index, key: &str) -> Option<i64> {
    index.peek_with(key, |_, r| r.version())
}

/// Inserts or replaces the record of its key. Only the owning shard calls it.
pub(crate) fn publish(index: &Index, record: RecordRef) {
    match index.entry_sync(record.key().into()) {
        Entry::Occupied(mut o) => o.update(record),
        Entry::Vacant(v) => {
            v.insert_entry(record);
        }
    }
}
