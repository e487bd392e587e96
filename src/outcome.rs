//! What the store's operations report: a put's outcome and a compaction's
//! figures (shared by the store facade and the shard executors).

use crate::config::Durability;

/// What a put (or a delete) did to the in-memory map. Both outcomes are
/// persisted: the log keeps the full history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The record is now the readable one for its key (a delete: the key
    /// now has no record).
    Applied,
    /// A write with a higher version was already stored: a record, which
    /// stays readable, or a delete, which keeps the key absent. (`Async`
    /// mode: or a concurrent write of the same version, later in the log,
    /// won the tie; `current_version` then equals the write's own.)
    Stale {
        /// The version that stays current (a record's or a delete's).
        current_version: i64,
    },
}

/// How one put is acknowledged (`Store::put_with`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutOptions {
    /// When the put's future resolves: once durable (`Sync`) or once
    /// handed on for writing (`Async`), whatever the store's own mode.
    pub durability: Durability,
}

/// What `Store::backup_to` copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupReport {
    /// Segment files copied.
    pub segments: usize,
    /// Bytes copied (segments and hints).
    pub bytes: u64,
}

/// What `Store::compact` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Live records and remembered tombstones rewritten into the
    /// checkpoint segments.
    pub records: usize,
    /// Tombstones forgotten: older than `Config::tombstone_retention`, so
    /// their keys are unknown again (see `Store::delete`).
    pub tombstones_forgotten: usize,
    /// Segment files deleted (superseded history).
    pub segments_removed: usize,
    /// Bytes freed.
    pub bytes_removed: u64,
    /// Superseded segment files kept as spares for later segments to
    /// overwrite (`Config::spare_segments`); their bytes are not freed.
    pub segments_recycled: usize,
    /// Shard folders of earlier runs with more shards, retired.
    pub folders_removed: usize,
    /// Superseded segments kept because the shipper's table does not hold
    /// them yet (`Config::retain_until_shipped`); a later compaction
    /// retires them once shipped.
    pub segments_kept_unshipped: usize,
}
