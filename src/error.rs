//! The one error type of ringstore.
//!
//! Every variant says what failed, where (file, offset, key, shard) and, in
//! its message, what the caller can do about it. Errors are `Clone` because
//! one failed group commit fails every put it covered.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Everything that can go wrong in ringstore.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `Config` field is out of its documented bounds.
    #[error("invalid config: `{field}` {reason}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },

    /// The key is the empty string; every key needs at least one byte.
    #[error("empty key: keys must be 1 to {max_bytes} bytes of UTF-8")]
    EmptyKey {
        /// The maximum key length in bytes.
        max_bytes: usize,
    },

    /// The key is longer than the format allows.
    #[error("key of {len_bytes} bytes is too long (at most {max_bytes}); shorten it or hash it")]
    KeyTooLong {
        /// Length of the rejected key.
        len_bytes: usize,
        /// The maximum key length.
        max_bytes: usize,
    },

    /// The serialized record is larger than `Config::max_record_bytes`.
    #[error(
        "record for key {key:?} is {len_bytes} bytes once serialized, over the limit of {max_bytes}; \
         raise `Config::max_record_bytes` (bound {hard_max_bytes}) or split the record"
    )]
    RecordTooLarge {
        /// The key of the rejected put.
        key: String,
        /// Serialized size.
        len_bytes: usize,
        /// The configured limit.
        max_bytes: usize,
        /// The limit of the on-disk format.
        hard_max_bytes: usize,
    },

    /// The record has no top-level field named `Config::version_field`.
    #[error(
        "record for key {key:?} has no version field `{field}`; every record needs an integer \
         `{field}` (or set `Config::version_field`)"
    )]
    MissingVersion {
        /// The key of the rejected put.
        key: String,
        /// The configured version field.
        field: String,
    },

    /// The version field is present but not an integer.
    #[error(
        "record for key {key:?} has version field `{field}` of type {found}; it must be an Int"
    )]
    InvalidVersion {
        /// The key of the rejected put.
        key: String,
        /// The configured version field.
        field: String,
        /// The type that was found instead.
        found: &'static str,
    },

    /// A value nests deeper than `MAX_VALUE_DEPTH` lists/maps.
    #[error("record for key {key:?} nests lists/maps deeper than {max_depth} levels; flatten it")]
    TooDeep {
        /// The key of the rejected put.
        key: String,
        /// The limit.
        max_depth: usize,
    },

    /// The record could not be serialized.
    #[error("record for key {key:?} could not be serialized: {reason}")]
    Serialize {
        /// The key of the rejected put.
        key: String,
        /// What rkyv reported.
        reason: String,
    },

    /// The store was closed (or is closing); reopen it to write again.
    #[error("the store is closed; open it again with `Store::open`")]
    Closed,

    /// A shard hit a disk fault earlier and refuses writes until the store is
    /// reopened (a failed fsync is never retried as if the data were safe).
    #[error(
        "shard {shard} stopped accepting writes after a disk fault ({cause}); reads still work; \
         close and reopen the store once the disk is healthy"
    )]
    ShardFailed {
        /// The failed shard.
        shard: usize,
        /// The fault that stopped it.
        cause: String,
    },

    /// The disk is full: the put was not persisted and the shard stopped.
    #[error(
        "no space left on the device holding {path:?} (shard {shard}); free space, then reopen \
         the store"
    )]
    NoSpace {
        /// The shard whose write failed.
        shard: usize,
        /// The file being written.
        path: PathBuf,
    },

    /// An I/O operation failed.
    #[error("{op} failed on {path:?}: {source}")]
    Io {
        /// What was being done (`"writing segment"`, `"fdatasync"`, …).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: Arc<io::Error>,
    },

    /// Another process (or another `Store` in this process) holds the data dir.
    #[error(
        "data dir {path:?} is locked by another store{}; close that store or use another dir",
        match pid { Some(p) => format!(" (pid {p})"), None => String::new() }
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// The holder's pid, if it wrote one.
        pid: Option<u32>,
    },

    /// io_uring cannot be used on this machine.
    #[error("io_uring is unavailable: {reason}; {remedy}")]
    IoUringUnavailable {
        /// What the preflight saw.
        reason: String,
        /// What to change.
        remedy: &'static str,
    },

    /// RLIMIT_MEMLOCK is below what the io_uring executors need.
    #[error(
        "RLIMIT_MEMLOCK is {limit_bytes} bytes, below the {needed_bytes} bytes io_uring needs; \
         raise it (`ulimit -l`, systemd `LimitMEMLOCK=`, docker `--ulimit memlock=`)"
    )]
    MemlockTooLow {
        /// The current soft limit.
        limit_bytes: u64,
        /// The minimum needed.
        needed_bytes: u64,
    },

    /// The data dir is on a filesystem without O_DIRECT or durable storage
    /// (tmpfs, ramfs, …).
    #[error(
        "data dir {path:?} is on {filesystem}, which has no direct I/O or is not durable; put \
         the data dir on a disk-backed filesystem (ext4, xfs, btrfs) or set \
         `Config::allow_non_durable_dir(true)` for tests"
    )]
    NoDirectIo {
        /// The data dir.
        path: PathBuf,
        /// What the filesystem was identified as.
        filesystem: String,
    },

    /// A shard executor could not be started.
    #[error("shard {shard} executor could not start: {reason}")]
    ExecutorStart {
        /// The shard.
        shard: usize,
        /// What glommio or the OS reported.
        reason: String,
    },

    /// ringstore broke one of its own invariants on the durability path (a
    /// bug): nothing was written for the batch, its puts failed, and the
    /// shard stopped accepting writes.
    #[error(
        "internal invariant broken in shard {shard} while writing {path:?}: {what}; nothing \
         was written for it and the shard stopped accepting writes (a bug in ringstore: \
         reopen the store, and please report it)"
    )]
    Invariant {
        /// The shard.
        shard: usize,
        /// The segment being written.
        path: PathBuf,
        /// What did not hold.
        what: String,
    },

    /// Bytes on disk are not a valid segment or frame.
    #[error("corrupt data in {path:?} at byte offset {offset}: {reason}")]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the bad header or frame.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
}

impl Error {
    /// Wraps an `io::Error` with the operation and path it came from.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source: Arc::new(source),
        }
    }

    /// Like [`Error::io`] for an operation of shard `shard`, except that a
    /// full device (ENOSPC, from a write, an fdatasync or a create) is
    /// [`Error::NoSpace`] whatever the operation. glommio wraps OS errors in
    /// its own type (no raw errno left), so the error kind counts too.
    pub(crate) fn shard_io(
        op: &'static str,
        path: impl Into<PathBuf>,
        shard: usize,
        source: io::Error,
    ) -> Self {
        if source.raw_os_error() == Some(ENOSPC) || source.kind() == io::ErrorKind::StorageFull {
            return Error::NoSpace {
                shard,
                path: path.into(),
            };
        }
        Error::io(op, path, source)
    }
}

/// errno of a full device.
const ENOSPC: i32 = 28;
