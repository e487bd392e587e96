//! What a shard has done so far: counters the executor bumps once per batch
//! (never per get), readable from any thread as a [`ShardStats`] snapshot.
//! They tell where a put's time goes: encoding and copying into the DMA
//! buffer on the executor, the direct write, and the flush.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A snapshot of one shard's work since `open` (see `Store::shard_stats`).
/// Times are sums over batches, so `write + sync` can exceed wall time when
/// batches overlap (`Config::pipeline_depth` > 1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShardStats {
    /// Which shard.
    pub shard: usize,
    /// Group commits (batches) written.
    pub batches: u64,
    /// Frames (puts, applied or stale) written by those batches.
    pub frames: u64,
    /// Frame bytes in those batches (the filler up to the next block
    /// excluded).
    pub bytes: u64,
    /// Time spent encoding frames into the batch's DMA buffer (the one copy
    /// of each record on the shard), on the executor thread.
    pub stage: Duration,
    /// Time from submitting each batch's write to its completion.
    pub write: Duration,
    /// Time spent in `fdatasync` (Sync: per batch; Async: per background
    /// flush).
    pub sync: Duration,
    /// Flushes issued.
    pub syncs: u64,
    /// Time with no write of this shard in flight: from the completion that
    /// emptied the pipeline to the next write's submission (the last such
    /// gap is counted once the next write starts). Under load, idle time is
    /// time the disk could have been writing this shard's log.
    pub idle: Duration,
    /// Times the shard found puts waiting only when its periodic queue
    /// re-check (every 2 ms while waiting, glommio backend) ran: a wake-up
    /// from a caller's thread that did not reach the executor, or an
    /// executor that got no CPU for that long.
    pub recheck_pickups: u64,
    /// `Async` mode: the longest time records waited to be written because
    /// an earlier LSN had not arrived yet (its caller took it and had not
    /// sent its frame: preempted between the two). Zero in `Sync` mode.
    pub lsn_wait_max: Duration,
    /// The longest single direct write (an `O_DSYNC` write includes its
    /// flush; a separate `fdatasync` is not counted): a stuck write shows
    /// here, a slow queue or a sleeping executor does not.
    pub write_max: Duration,
    /// Segments rotated out by size or record count (not counting
    /// checkpoints and close).
    pub rotations: u64,
    /// Time those rotations held up the shard's writes: from the decision
    /// to rotate (writes in flight still to complete) until the next
    /// segment was ready.
    pub rotation: Duration,
    /// How many of those rotations put the next segment in a spare file
    /// (`Config::spare_segments`) instead of a new one.
    pub rotations_into_spares: u64,
    /// Checkpoints written by `Store::compact`.
    pub checkpoints: u64,
    /// The longest time a checkpoint held up the shard's puts. `Sync`: from
    /// waiting for the writes in flight until its first segment was ready
    /// (the copies then go between put batches). `Async`: the whole
    /// checkpoint (puts do not wait for it).
    pub checkpoint_max: Duration,
}

/// The shared counters behind [`ShardStats`]: written by the shard's
/// executor only (relaxed atomics, no ordering needed between them).
#[derive(Debug, Default)]
pub(crate) struct ShardCounters {
    batches: AtomicU64,
    frames: AtomicU64,
    bytes: AtomicU64,
    stage_ns: AtomicU64,
    write_ns: AtomicU64,
    sync_ns: AtomicU64,
    syncs: AtomicU64,
    idle_ns: AtomicU64,
    recheck_pickups: AtomicU64,
    lsn_wait_max_ns: AtomicU64,
    write_max_ns: AtomicU64,
    rotations: AtomicU64,
    rotation_ns: AtomicU64,
    rotations_into_spares: AtomicU64,
    checkpoints: AtomicU64,
    checkpoint_max_ns: AtomicU64,
}

/// How long one batch's I/O took.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct IoTimes {
    pub write: Duration,
    pub sync: Option<Duration>,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl ShardCounters {
    /// A batch of `frames` frames and `bytes` bytes was encoded in `stage`.
    pub fn staged(&self, frames: usize, bytes: usize, stage: Duration) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.frames.fetch_add(frames as u64, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        self.stage_ns.fetch_add(nanos(stage), Ordering::Relaxed);
    }

    /// A batch's write (and maybe its sync) completed.
    pub fn io_done(&self, times: IoTimes) {
        self.write_ns
            .fetch_add(nanos(times.write), Ordering::Relaxed);
        self.write_max_ns
            .fetch_max(nanos(times.write), Ordering::Relaxed);
        if let Some(sync) = times.sync {
            self.synced(sync);
        }
    }

    /// A flush completed.
    pub fn synced(&self, sync: Duration) {
        self.sync_ns.fetch_add(nanos(sync), Ordering::Relaxed);
        self.syncs.fetch_add(1, Ordering::Relaxed);
    }

    /// The shard had no write in flight for `idle`.
    pub fn idled(&self, idle: Duration) {
        self.idle_ns.fetch_add(nanos(idle), Ordering::Relaxed);
    }

    /// The queue re-check found puts waiting.
    pub fn recheck_pickup(&self) {
        self.recheck_pickups.fetch_add(1, Ordering::Relaxed);
    }

    /// A rotation held up writes for `took`; `into_spare`: the new segment
    /// reused a spare file.
    pub fn rotated(&self, took: Duration, into_spare: bool) {
        self.rotations.fetch_add(1, Ordering::Relaxed);
        self.rotations_into_spares
            .fetch_add(u64::from(into_spare), Ordering::Relaxed);
        self.rotation_ns.fetch_add(nanos(took), Ordering::Relaxed);
    }

    /// A checkpoint held up puts for `took`.
    pub fn checkpointed(&self, took: Duration) {
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
        self.checkpoint_max_ns
            .fetch_max(nanos(took), Ordering::Relaxed);
    }

    /// Records waited `wait` for an earlier LSN.
    pub fn lsn_waited(&self, wait: Duration) {
        self.lsn_wait_max_ns
            .fetch_max(nanos(wait), Ordering::Relaxed);
    }

    pub fn snapshot(&self, shard: usize) -> ShardStats {
        let ns = |a: &AtomicU64| Duration::from_nanos(a.load(Ordering::Relaxed));
        ShardStats {
            shard,
            batches: self.batches.load(Ordering::Relaxed),
            frames: self.frames.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            stage: ns(&self.stage_ns),
            write: ns(&self.write_ns),
            sync: ns(&self.sync_ns),
            syncs: self.syncs.load(Ordering::Relaxed),
            idle: ns(&self.idle_ns),
            recheck_pickups: self.recheck_pickups.load(Ordering::Relaxed),
            lsn_wait_max: ns(&self.lsn_wait_max_ns),
            write_max: ns(&self.write_max_ns),
            rotations: self.rotations.load(Ordering::Relaxed),
            rotation: ns(&self.rotation_ns),
            rotations_into_spares: self.rotations_into_spares.load(Ordering::Relaxed),
            checkpoints: self.checkpoints.load(Ordering::Relaxed),
            checkpoint_max: ns(&self.checkpoint_max_ns),
        }
    }
}
