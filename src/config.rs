//! Store configuration: every knob with its default, unit and bound.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Error;
use crate::segment::format::{MAX_KEY_BYTES, MAX_RECORD_BYTES_LIMIT};
use crate::segment::writer::{SealedCallback, SealedSegment};

/// The sealed-segment callback, wrapped so `Config` stays `Debug`.
#[derive(Clone)]
pub(crate) struct OnSealed(pub SealedCallback);

impl std::fmt::Debug for OnSealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnSealed(..)")
    }
}

/// When a put is acknowledged, and what a crash can take away.
///
/// | mode | put resolves `Ok` after | process crash loses | power loss loses |
/// |---|---|---|---|
/// | `Sync` | its frame is written with direct I/O and is durable (the `O_DSYNC` write completed, or `fdatasync` returned: see [`SyncMethod`]) | nothing acknowledged | nothing acknowledged |
/// | `Async` | the in-memory map was updated on the caller's thread and the frame was queued for its shard (the write is still to come; a put first waits for room while `max_batch_bytes` of frames are queued or wait for a write) | acknowledged puts not yet written: at most `max_batch_bytes` of frames waiting (queued or gathered) plus the `pipeline_depth` writes in flight (≤ 1 MiB each) | everything acknowledged in the last `flush_interval_ms` plus the write time of those batches |
///
/// In `Sync` mode a record becomes visible to `get` only after it is durable,
/// so a reader never sees a value that a crash could still take back. In
/// `Async` mode `get` sees a record as soon as it is acknowledged; a crash
/// can then lose it (see the table), and recovery returns the newest record
/// that reached the disk.
///
/// `Async` power loss, exactly: every write the shard made since the start
/// of its last background `fdatasync` that completed may reach the disk in
/// any subset (devices reorder writes). Recovery keeps the newest segment up
/// to the first write that is missing or torn and truncates the rest as a
/// torn tail, so the loss is every put whose write completed after the
/// start of the last completed flush, or had not completed (roughly the
/// puts of the last `flush_interval_ms` plus the time of the writes and of
/// that flush, and the puts still queued); every put written before is
/// kept, and the store opens in the default recovery mode
/// (`tests/crash_states.rs::every_async_crash_state_opens`). Each batch's
/// mark frame records how much of the segment was durable when it was
/// staged, which is how recovery tells those writes from corruption
/// (`docs/FORMAT.md`).
///
/// Concurrent `Async` puts of one key and the same
/// version are ordered by their place in the log, as recovery orders them:
/// the later one wins, the other returns `Stale` with its own version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Acknowledge only after the record is on stable storage (group commit).
    #[default]
    Sync,
    /// Acknowledge after the memory update; the log is written in the
    /// background and flushed at least every `flush_interval_ms`.
    Async,
}

/// How a `Sync` batch is made durable. Both give the guarantee of
/// [`Durability::Sync`]: a put is acknowledged only after its bytes and the
/// file size that covers them are on stable storage.
///
/// Measured on this project's ext4 test disk (1 MiB writes, two files, fio):
/// `O_DSYNC` writes 1.6–2.0 GiB/s, write + `fdatasync` 1.3–1.6 GiB/s — the
/// kernel flushes at the write's completion without a second system call
/// and a second trip through the ring. `Async` mode always writes without
/// `O_DSYNC` and flushes in the background.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMethod {
    /// Segments are opened with `O_DSYNC`: each batch's direct write is
    /// durable when it completes (one operation per batch).
    #[default]
    Dsync,
    /// Each batch's direct write is followed by `fdatasync` (two operations
    /// per batch).
    Fdatasync,
}

/// What recovery at `open` tolerates in the bytes it finds on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// A frame cut short at the end of a shard's newest segment (a crash
    /// mid-write) is dropped with a warning; any other bad frame fails `open`
    /// with its file and offset.
    #[default]
    TolerateTornTail,
    /// Any bad frame, even a torn tail, fails `open`.
    Strict,
    /// Bad frames are skipped; reading resumes at the next valid frame and the
    /// skipped bytes are counted in the recovery report.
    SkipCorrupt,
}

/// Which I/O backend the shards use.
///
/// | backend | shards run on | log writes | needs |
/// |---|---|---|---|
/// | `IoUring` | one glommio executor per shard | O_DIRECT (+ `O_DSYNC` or `fdatasync`, see [`SyncMethod`]) through io_uring | io_uring allowed (sysctl, seccomp), RLIMIT_MEMLOCK ≥ 512 KiB, Linux ≥ 5.8 |
/// | `Portable` | one std thread per shard | O_DIRECT `pwrite` (+ `O_DSYNC` or `fdatasync`) | nothing special |
///
/// Both write the same files and frames with the same group commit and the
/// same guarantees; a data dir written by one is recovered by the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IoBackend {
    /// `IoUring` when the preflight check passes, else `Portable` with a
    /// logged warning that says why io_uring was refused.
    #[default]
    Auto,
    /// io_uring only: `open` fails with the preflight's typed error
    /// (`IoUringUnavailable`, `MemlockTooLow`) naming the remedy.
    IoUring,
    /// The portable blocking backend, always.
    Portable,
}

/// Configuration of a [`Store`](crate::Store). Build with [`Config::new`] and
/// the chained setters; [`Store::open`](crate::Store::open) validates it.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) dir: PathBuf,
    pub(crate) shards: usize,
    pub(crate) version_field: String,
    pub(crate) durability: Durability,
    pub(crate) sync_method: SyncMethod,
    pub(crate) flush_interval_ms: u64,
    pub(crate) max_segment_bytes: u64,
    pub(crate) max_segment_records: u64,
    pub(crate) max_record_bytes: usize,
    pub(crate) max_batch_bytes: usize,
    pub(crate) queue_depth: usize,
    pub(crate) max_queued_bytes: usize,
    pub(crate) pipeline_depth: usize,
    pub(crate) recovery_mode: RecoveryMode,
    pub(crate) pin_cpus: bool,
    pub(crate) allow_non_durable_dir: bool,
    pub(crate) compact_above_sealed_bytes: Option<u64>,
    pub(crate) spare_segments: usize,
    pub(crate) retain_until_shipped: bool,
    pub(crate) tombstone_retention: Duration,
    pub(crate) on_sealed: Option<OnSealed>,
    pub(crate) io_backend: IoBackend,
    pub(crate) wake_stalled_shard_after_ms: u64,
    pub(crate) record_buffer_pool_bytes: usize,
    #[cfg(feature = "failpoints")]
    pub(crate) fault_plan: Option<std::sync::Arc<crate::io::faulty::FaultPlan>>,
}

/// Default `max_segment_bytes`: 256 MiB.
pub const DEFAULT_MAX_SEGMENT_BYTES: u64 = 256 << 20;
/// Default `max_record_bytes`: 16 MiB.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 16 << 20;
/// Default `max_batch_bytes`: 8 MiB.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 8 << 20;
/// Default `queue_depth`: 4096 puts per shard.
pub const DEFAULT_QUEUE_DEPTH: usize = 4096;
/// Default `max_queued_bytes`: 64 MiB per shard.
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 64 << 20;
/// Default `pipeline_depth`: up to 2 batches in flight per shard.
pub const DEFAULT_PIPELINE_DEPTH: usize = 2;
/// Default `flush_interval_ms` (Async only): 10 ms.
pub const DEFAULT_FLUSH_INTERVAL_MS: u64 = 10;
/// Default `wake_stalled_shard_after_ms`: 100 ms.
pub const DEFAULT_WAKE_STALLED_SHARD_AFTER_MS: u64 = 100;
/// Default `record_buffer_pool_bytes`: 8 MiB.
pub const DEFAULT_RECORD_BUFFER_POOL_BYTES: usize = 8 << 20;
/// Default `tombstone_retention`: one day.
pub const DEFAULT_TOMBSTONE_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// Largest `tombstone_retention`: 100 years.
pub const MAX_TOMBSTONE_RETENTION: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
/// Default `spare_segments`: 4 retired segment files kept per shard (with
/// 2, a third of the rotations between compactions still appended in the
/// harness's retention runs).
pub const DEFAULT_SPARE_SEGMENTS: usize = 4;

impl Config {
    /// A configuration for the data dir `dir` with every other field at its
    /// default.
    pub fn new(dir: impl AsRef<Path>) -> Self {
        let shards = std::thread::available_parallelism().map_or(1, |n| n.get());
        Config {
            dir: dir.as_ref().to_path_buf(),
            shards,
            version_field: "collection_time".to_owned(),
            durability: Durability::Sync,
            sync_method: SyncMethod::Dsync,
            flush_interval_ms: DEFAULT_FLUSH_INTERVAL_MS,
            max_segment_bytes: DEFAULT_MAX_SEGMENT_BYTES,
            max_segment_records: u64::MAX,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            queue_depth: DEFAULT_QUEUE_DEPTH,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            pipeline_depth: DEFAULT_PIPELINE_DEPTH,
            recovery_mode: RecoveryMode::TolerateTornTail,
            pin_cpus: true,
            allow_non_durable_dir: false,
            compact_above_sealed_bytes: None,
            spare_segments: DEFAULT_SPARE_SEGMENTS,
            retain_until_shipped: false,
            tombstone_retention: DEFAULT_TOMBSTONE_RETENTION,
            on_sealed: None,
            io_backend: IoBackend::Auto,
            wake_stalled_shard_after_ms: DEFAULT_WAKE_STALLED_SHARD_AFTER_MS,
            record_buffer_pool_bytes: DEFAULT_RECORD_BUFFER_POOL_BYTES,
            #[cfg(feature = "failpoints")]
            fault_plan: None,
        }
    }

    /// Number of shards, each one executor thread with its own map and log.
    /// Default: the number of CPUs available. Bound: 1..=1024.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = shards;
        self
    }

    /// Name of the top-level integer field holding each record's version.
    /// Default `"collection_time"`. Must be non-empty.
    pub fn version_field(mut self, field: impl Into<String>) -> Self {
        self.version_field = field.into();
        self
    }

    /// When puts are acknowledged. Default [`Durability::Sync`].
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sync mode: how each batch is made durable. Default
    /// [`SyncMethod::Dsync`]; ignored in Async mode.
    pub fn sync_method(mut self, method: SyncMethod) -> Self {
        self.sync_method = method;
        self
    }

    /// Async mode only: the longest time, in milliseconds, an acknowledged
    /// record may stay unflushed. Default 10. Bound: 1..=60000.
    pub fn flush_interval_ms(mut self, ms: u64) -> Self {
        self.flush_interval_ms = ms;
        self
    }

    /// Seal the active segment once it holds this many bytes. Default 256 MiB.
    /// Bound: at least 1 MiB and at least `max_record_bytes` + 64 KiB. A segment
    /// may exceed it by at most one group commit (`max_batch_bytes`).
    pub fn max_segment_bytes(mut self, bytes: u64) -> Self {
        self.max_segment_bytes = bytes;
        self
    }

    /// Seal the active segment once it holds this many frames. Default
    /// unlimited (`u64::MAX`). Bound: at least 1.
    pub fn max_segment_records(mut self, records: u64) -> Self {
        self.max_segment_records = records;
        self
    }

    /// Largest accepted serialized record, in bytes. Default 16 MiB. Bound:
    /// 1..=256 MiB (the format's limit).
    pub fn max_record_bytes(mut self, bytes: usize) -> Self {
        self.max_record_bytes = bytes;
        self
    }

    /// Largest group commit a shard assembles, in bytes: a batch closes when
    /// it reaches this size (or when the queue is empty). Default 8 MiB.
    /// Bound: 64 KiB..=1 GiB. One record larger than this still goes alone.
    /// In `Async` mode it is also the most frame bytes acknowledged but not
    /// yet handed to a write, per shard (puts wait beyond it).
    pub fn max_batch_bytes(mut self, bytes: usize) -> Self {
        self.max_batch_bytes = bytes;
        self
    }

    /// `Sync` puts a shard may hold queued before new puts wait
    /// (back-pressure; `Async` puts are bounded by `max_batch_bytes`).
    /// Default 4096. Bound: 1..=1_048_576. Together with
    /// [`Config::max_queued_bytes`]: each queued put holds its frame bytes,
    /// but at least `max_queued_bytes / queue_depth`.
    pub fn queue_depth(mut self, depth: usize) -> Self {
        self.queue_depth = depth;
        self
    }

    /// Frame bytes of `Sync` puts a shard may hold queued before new puts
    /// wait, first come first served (back-pressure that bounds memory
    /// whatever the record size). A record larger than this waits until
    /// the queue is empty, then goes alone. Default 64 MiB. Bound:
    /// 64 KiB..=1 GiB.
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.max_queued_bytes = bytes;
        self
    }

    /// Group commits a shard keeps in flight at once: the next batch is
    /// written while the previous one is being flushed. Each batch is still
    /// acknowledged only after its own write and flush, and in order.
    /// With a batch in flight, the next starts only once half a MiB of puts
    /// has gathered (a put arriving at an idle shard is written at once).
    /// Default 2: a crash can leave the last 2 batches of the newest segment
    /// incomplete, and recovery treats damage there as a torn tail (with 1,
    /// at most one incomplete batch: the classic torn tail). Measured here:
    /// 0.63 vs 0.56 of the durable ceiling for 2 vs 1 in a closed loop
    /// (docs/BENCHMARKS.md). Bound: 1..=16 (1 = strictly one batch at a
    /// time).
    pub fn pipeline_depth(mut self, depth: usize) -> Self {
        self.pipeline_depth = depth;
        self
    }

    /// What recovery tolerates. Default [`RecoveryMode::TolerateTornTail`].
    pub fn recovery_mode(mut self, mode: RecoveryMode) -> Self {
        self.recovery_mode = mode;
        self
    }

    /// Pin shard `i` to the `i`-th allowed CPU (modulo their count). Default
    /// `true`; turn off when the host process pins its own threads.
    pub fn pin_cpus(mut self, pin: bool) -> Self {
        self.pin_cpus = pin;
        self
    }

    /// Accept a data dir on a filesystem without direct I/O or durable
    /// storage (tmpfs, ramfs). Default `false`: `open` refuses such a dir,
    /// because nothing written there survives a power loss.
    pub fn allow_non_durable_dir(mut self, allow: bool) -> Self {
        self.allow_non_durable_dir = allow;
        self
    }

    /// Retention: when the sealed segments of the dir hold more than `bytes`
    /// (checked every second), the store runs [`Store::compact`](crate::Store::compact) by itself,
    /// keeping only the live set plus what was written since. To avoid
    /// compacting in a loop when the live set alone is that large, it waits
    /// until the sealed bytes are also more than twice what the previous
    /// compaction left. Default: off (`None`); the minimum is 1 MiB.
    pub fn compact_above_sealed_bytes(mut self, bytes: Option<u64>) -> Self {
        self.compact_above_sealed_bytes = bytes;
        self
    }

    /// How many of the segments [`Store::compact`](crate::Store::compact)
    /// retires each shard folder keeps as spares (`<seq>.spare`) instead of
    /// deleting them; a new segment then overwrites a spare's blocks. A
    /// durable write over blocks the filesystem has already allocated and
    /// written changes no metadata, so it needs no journal commit: on ext4
    /// such writes took about half as long as appends. Spares hold their
    /// disk space (up to this many × `max_segment_bytes` per shard) until a
    /// new segment takes them. A segment retired by `compact` must no longer
    /// be read or copied by anyone: unlike a deleted file, whose open
    /// handles keep its old contents, a spare is rewritten. Not used
    /// with [`RecoveryMode::Strict`]: after a crash, a reused file holds its
    /// earlier frames after the end of the new data, which `Strict` would
    /// refuse as a torn tail.
    ///
    /// Erasure: a spare, and the part of a reused file past the new
    /// segment's data, keep superseded (and deleted) records on disk until
    /// new segments overwrite those blocks. Where data must be gone from
    /// the disk once superseded, set 0: `compact` then deletes every
    /// retired segment (and any spares left from earlier runs).
    ///
    /// Default 4; 0 deletes retired segments. Bound: 0..=64.
    pub fn spare_segments(mut self, count: usize) -> Self {
        self.spare_segments = count;
        self
    }

    /// Most memory, in bytes, the store keeps in the buffers of superseded
    /// records for `put` to serialize the next records into, instead of
    /// freeing them (at most 32 buffers; none larger than a quarter of
    /// this; a buffer serves only a record that needs at least half of
    /// it, so small records never pin big buffers). A buffer comes back when the last [`RecordRef`](crate::RecordRef)
    /// to its record drops. Reused buffers are already resident and leave
    /// no free chunks in the allocator's per-thread arenas: in the seed
    /// workload, 8 × fewer page faults and a peak RSS of 81 instead of
    /// 97 MB. Default 8 MiB; 0 frees every
    /// buffer. Bound: 0..=1 GiB.
    pub fn record_buffer_pool_bytes(mut self, bytes: usize) -> Self {
        self.record_buffer_pool_bytes = bytes;
        self
    }

    /// Calls `callback` with every segment a shard seals (by rotation or at
    /// `close`), once it is durable and its hint is written: the hook for
    /// shipping segments to an analytics store. Default: none.
    ///
    /// It runs on one notifier thread of the store, never on a shard
    /// executor, one segment at a time in the order the shards sealed them
    /// (a slow callback delays later calls, not puts). It may use the store
    /// (`put`, `compact`, `close` — a `compact` or `put` during `close`
    /// fails `Closed`); a panic in it is logged and the next segment is
    /// still delivered. `close` returns after every segment sealed before
    /// it (its own last seals included) was delivered. To reach the store
    /// from the callback, capture a [`WeakStore`](crate::WeakStore)
    /// (`Store::downgrade`): a `Store` captured by its own callback would
    /// keep it open until `close`. A copy must be finished before
    /// `Store::compact` retires the segment when `spare_segments` is above
    /// 0: the file may then be reused.
    pub fn on_sealed(mut self, callback: impl Fn(&SealedSegment) + Send + Sync + 'static) -> Self {
        self.on_sealed = Some(OnSealed(std::sync::Arc::new(callback)));
        self
    }

    /// Whether compaction (and so retention) keeps every segment that the
    /// shipper (`ringstore-ship`) has not committed to its analytics table
    /// yet, as its watermark `<dir>/SHIPPED` says: such a segment is neither
    /// deleted nor reused as a spare, superseded or not, until a later
    /// compaction finds it shipped (`CompactReport::segments_kept_unshipped`
    /// counts them). Without a `SHIPPED` file nothing counts as shipped, so
    /// nothing is retired: the history then grows until the shipper runs.
    /// A damaged `SHIPPED` makes `compact` fail with `Corrupt` (nothing is
    /// retired). Default `false`: compaction ignores the shipper.
    pub fn retain_until_shipped(mut self, on: bool) -> Self {
        self.retain_until_shipped = on;
        self
    }

    /// How long a delete is remembered: a compaction copies a tombstone
    /// forward until it is older than this (by the time `delete` was
    /// called), then forgets it and the key's memory. While remembered, a
    /// put older than the delete is `Stale`; once forgotten, the key is
    /// unknown and a put of any version applies. Set it above the longest
    /// delay with which an older version of a key can still arrive. A
    /// compaction also keeps a tombstone for one or two more compactions
    /// after an older write lost to it (that write's frame follows the
    /// tombstone in the log, and must never outlive it). Default one day.
    /// Bound: at most 100 years; zero forgets at the next compaction.
    pub fn tombstone_retention(mut self, retention: Duration) -> Self {
        self.tombstone_retention = retention;
        self
    }

    /// Which I/O backend the shards use. Default [`IoBackend::Auto`].
    pub fn io_backend(mut self, backend: IoBackend) -> Self {
        self.io_backend = backend;
        self
    }

    /// io_uring backend: a watchdog thread signals (`SIGURG`, sent to that
    /// thread only) a shard executor that has had a write, flush or timer
    /// due, or puts queued, without turning for this long. With glommio 0.9
    /// on Linux 6.18 an executor can (rarely: twice in ~120 harness runs)
    /// sleep for minutes through a finished write until its thread is
    /// interrupted; the signal interrupts it. A slow disk draws signals
    /// too, which change nothing. The store installs a `SIGURG` handler in
    /// the process once (it chains to an existing one); other threads never
    /// get the signal. Counted in `ShardStats::watchdog_wakes`. Default
    /// 100; 0 turns the watchdog off. Bound: 0..=60000.
    pub fn wake_stalled_shard_after_ms(mut self, ms: u64) -> Self {
        self.wake_stalled_shard_after_ms = ms;
        self
    }

    /// The configured I/O backend (see `Store::io_backend` for the one
    /// `Auto` picked).
    pub fn io_backend_choice(&self) -> IoBackend {
        self.io_backend
    }

    /// Tests only (cargo feature `failpoints`): route every I/O operation of
    /// every shard through `plan`, which fails operations on demand and can
    /// record them. Default: none.
    #[cfg(feature = "failpoints")]
    pub fn fault_plan(mut self, plan: std::sync::Arc<crate::io::faulty::FaultPlan>) -> Self {
        self.fault_plan = Some(plan);
        self
    }

    /// The data dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configured durability.
    pub fn durability_mode(&self) -> Durability {
        self.durability
    }

    /// Whether segment files are opened with `O_DSYNC` (every write durable
    /// at completion): Sync mode with [`SyncMethod::Dsync`].
    pub(crate) fn write_through(&self) -> bool {
        self.durability == Durability::Sync && self.sync_method == SyncMethod::Dsync
    }

    /// The Async flush interval as a `Duration`.
    pub(crate) fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.flush_interval_ms)
    }

    /// Spare files each shard folder keeps: none in `Strict` mode.
    pub(crate) fn spares_kept(&self) -> usize {
        match self.recovery_mode {
            RecoveryMode::Strict => 0,
            _ => self.spare_segments,
        }
    }

    /// Checks every field against its documented bound.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |field: &'static str, reason: String| Err(Error::InvalidConfig { field, reason });
        if self.dir.as_os_str().is_empty() {
            return bad("dir", "must not be empty".into());
        }
        if !(1..=1024).contains(&self.shards) {
            return bad("shards", format!("is {}, must be 1..=1024", self.shards));
        }
        if self.version_field.is_empty() {
            return bad("version_field", "must not be empty".into());
        }
        if !(1..=60_000).contains(&self.flush_interval_ms) {
            return bad(
                "flush_interval_ms",
                format!("is {}, must be 1..=60000", self.flush_interval_ms),
            );
        }
        if self.max_record_bytes == 0 || self.max_record_bytes > MAX_RECORD_BYTES_LIMIT {
            return bad(
                "max_record_bytes",
                format!(
                    "is {}, must be 1..={MAX_RECORD_BYTES_LIMIT}",
                    self.max_record_bytes
                ),
            );
        }
        let min_segment =
            (1u64 << 20).max(self.max_record_bytes as u64 + MAX_KEY_BYTES as u64 + (64 << 10));
        if self.max_segment_bytes < min_segment {
            return bad(
                "max_segment_bytes",
                format!(
                    "is {}, must be at least {min_segment} (1 MiB and one max-size record)",
                    self.max_segment_bytes
                ),
            );
        }
        if self.max_segment_records == 0 {
            return bad("max_segment_records", "must be at least 1".into());
        }
        if !((64 << 10)..=(1 << 30)).contains(&self.max_batch_bytes) {
            return bad(
                "max_batch_bytes",
                format!("is {}, must be 65536..=1073741824", self.max_batch_bytes),
            );
        }
        if self.compact_above_sealed_bytes.is_some_and(|b| b < 1 << 20) {
            return bad(
                "compact_above_sealed_bytes",
                "must be at least 1 MiB (1048576)".into(),
            );
        }
        if self.spare_segments > 64 {
            return bad(
                "spare_segments",
                format!("is {}, must be 0..=64", self.spare_segments),
            );
        }
        if self.wake_stalled_shard_after_ms > 60_000 {
            return bad(
                "wake_stalled_shard_after_ms",
                format!("is {}, must be 0..=60000", self.wake_stalled_shard_after_ms),
            );
        }
        if !(1..=16).contains(&self.pipeline_depth) {
            return bad(
                "pipeline_depth",
                format!("is {}, must be 1..=16", self.pipeline_depth),
            );
        }
        if self.record_buffer_pool_bytes > 1 << 30 {
            return bad(
                "record_buffer_pool_bytes",
                format!(
                    "is {}, must be 0..=1073741824",
                    self.record_buffer_pool_bytes
                ),
            );
        }
        if !((64 << 10)..=(1 << 30)).contains(&self.max_queued_bytes) {
            return bad(
                "max_queued_bytes",
                format!("is {}, must be 65536..=1073741824", self.max_queued_bytes),
            );
        }
        if self.tombstone_retention > MAX_TOMBSTONE_RETENTION {
            return bad(
                "tombstone_retention",
                format!(
                    "is {:?}, must be at most 100 years",
                    self.tombstone_retention
                ),
            );
        }
        if !(1..=1 << 20).contains(&self.queue_depth) {
            return bad(
                "queue_depth",
                format!("is {}, must be 1..=1048576", self.queue_depth),
            );
        }
        Ok(())
    }
}
