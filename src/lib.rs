//! # ringstore
//!
//! An embeddable, thread-per-core, in-memory key/record store for Linux that
//! persists every write through io_uring direct I/O.
//!
//! * `put` serializes the record on the caller's thread and hands it to the
//!   shard that owns the key (one glommio executor per shard); the shard
//!   appends a batch of puts as one direct write on a fresh aligned block,
//!   makes it durable with one `fdatasync` (group commit), then publishes the
//!   records and acknowledges the puts.
//! * `get` is synchronous and lock-free from any thread: it returns a
//!   ref-counted [`RecordRef`] to the archived record, never a copy.
//! * `open` recovers the newest record of every key from the log.
//!
//! ```no_run
//! use ringstore::{Config, Record, Store, PutOutcome};
//!
//! let store = Store::open(Config::new("/var/lib/myservice/ringstore"))?;
//! let record = Record::new()
//!     .with("collection_time", 1_700_000_000_000_000_000i64)
//!     .with("temperature", 21.5);
//! assert_eq!(store.put_blocking("sensor7", &record)?, PutOutcome::Applied);
//! let got = store.get("sensor7").expect("just written");
//! assert_eq!(got.version(), 1_700_000_000_000_000_000);
//! println!("{}", got.to_json());
//! store.close()?;
//! # Ok::<(), ringstore::Error>(())
//! ```

/// The README's examples are compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

mod backup;
mod buffer_pool;
mod compaction;
mod config;
mod error;
#[cfg(feature = "failpoints")]
mod hooks;
mod io;
mod layout;
mod lock;
#[cfg(feature = "metrics")]
mod metrics_out;
mod outcome;
mod preflight;
mod read_only;
mod record;
mod record_ref;
mod recovery;
mod retention;
mod sealed;
mod segment;
mod shard;
mod shipped;
mod store;
mod write;

pub use config::{Config, Durability, IoBackend, RecoveryMode, SyncMethod};
pub use error::Error;
pub use outcome::{BackupReport, CompactReport, PutOptions, PutOutcome};
pub use read_only::ReadOnlyStore;
pub use record::{ArchivedRecord, ArchivedValue, MAX_VALUE_DEPTH, Record, Value};
pub use record_ref::RecordRef;
pub use recovery::{DamageReport, RecoveryReport};
pub use segment::writer::SealedSegment;
pub use shard::stats::{LatencyHistogram, ShardStats};
pub use store::{Store, WeakStore};

/// Fault injection for tests (cargo feature `failpoints`, never in release
/// builds): install a [`failpoints::FaultPlan`] with `Config::fault_plan` to
/// fail the I/O of every shard on demand and record what reached the disk.
#[cfg(feature = "failpoints")]
pub mod failpoints {
    pub use crate::hooks::{Pause, PausePoint};
    pub use crate::io::faulty::{EIO, ENOSPC, EROFS, FaultOp, FaultPlan, IoEvent};
}

/// Internals for the tools, benches and tests: the on-disk format and its one
/// decoder. Not part of the stable API.
#[doc(hidden)]
pub mod inspect {
    pub use crate::record::write_json_str;
    pub use crate::record_ref::InvalidPayload;
    /// The data-dir layout: shard folders, file names, listings.
    pub mod layout {
        pub use crate::layout::*;
    }
    pub use crate::layout::{
        parse_segment_name, parse_shard_dir, retired, segment_file_name, segments, shard_dirs,
        spares,
    };
    pub use crate::recovery::{
        LatestDelete, LatestRecord, LatestState, scan_latest, scan_latest_state,
    };
    pub use crate::segment::damage;
    pub use crate::segment::format;
    pub use crate::segment::reader::{BYTES_AFTER_END, ReadError, SegmentReader};
    pub use crate::shard::shard_for;
}
