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
    /// Write completions found when that re-check ran: mostly completions
    /// that arrived with the re-check's timer; any whose wake-up did not
    /// reach the executor would show here too.
    pub recheck_completions: u64,
    /// Times the shard watchdog (`Config::wake_stalled_shard_after_ms`)
    /// signalled this shard's executor: it had a write, flush or timer due
    /// (or puts queued) and had not turned for that long. A slow disk draws
    /// these too; an executor that slept through its completions would
    /// otherwise have stayed asleep.
    pub watchdog_wakes: u64,
    /// Of those, signals sent while the shard waited for events in its
    /// loop with its thread in an interruptible sleep (`S` in `/proc`: not
    /// waiting for a CPU, not blocked on I/O in the kernel). There its 2 ms
    /// re-check timer (glommio backend) turns it even while a write is
    /// slow, so each of these is an executor that slept through its own
    /// timers: the stall the watchdog exists for (a warning is logged). On
    /// a virtual machine, timer interrupts delivered late give short ones
    /// too. The other signals came while the shard waited
    /// for I/O within a turn (a rotation waiting for a slow write) or got
    /// no CPU for that long.
    pub watchdog_wakes_asleep: u64,
    /// `Async` mode: the longest time records waited to be written because
    /// an earlier LSN had not arrived yet (its caller took it and had not
    /// sent its frame: preempted between the two). Zero in `Sync` mode.
    pub lsn_wait_max: Duration,
    /// The longest single direct write (an `O_DSYNC` write includes its
    /// flush; a separate `fdatasync` is not counted): a stuck write shows
    /// here, a slow queue or a sleeping executor does not.
    pub write_max: Duration,
    /// Every write's time (as in `write`): its distribution.
    pub write_times: LatencyHistogram,
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
    /// `Sync` mode: for each acknowledged put, the time from reaching the
    /// shard's queue to its batch's write being submitted (waiting for a
    /// batch to fill, for room in the pipeline, for a rotation).
    pub put_queued: LatencyHistogram,
    /// `Sync` mode: for each acknowledged put, the time from reaching the
    /// shard's queue to its reply being sent (queued, written, durable,
    /// published). What a caller measures beyond this is its own thread:
    /// serializing the record before, and being woken and scheduled after.
    pub put_in_store: LatencyHistogram,
}

/// Width of a [`LatencyHistogram`] bucket: 1/`SUB_BUCKETS` of an octave.
const SUB_BUCKETS: u64 = 8;
/// Values below 2^`FIRST_OCTAVE` ns (~1 µs) share the first bucket.
const FIRST_OCTAVE: u32 = 10;
/// Values from 2^`LAST_OCTAVE` ns (~18 min) on share the last bucket.
const LAST_OCTAVE: u32 = 40;
const BUCKETS: usize = 1 + ((LAST_OCTAVE - FIRST_OCTAVE) as usize) * SUB_BUCKETS as usize;

/// A distribution of durations in buckets at most 12.5 % wide (8 per
/// octave, from 1 µs to ~18 min), plus the exact maximum. Quantiles are the
/// upper bound of their bucket (never above the maximum), so they err high
/// by less than one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencyHistogram {
    counts: [u64; BUCKETS],
    max_ns: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: [0; BUCKETS],
            max_ns: 0,
        }
    }
}

impl LatencyHistogram {
    /// How many durations were recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The longest duration recorded (zero if none).
    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.max_ns)
    }

    /// The duration at or below which a fraction `q` (0..=1, clamped) of
    /// the recorded ones fall, rounded up to its bucket's upper bound; zero
    /// if nothing was recorded.
    pub fn quantile(&self, q: f64) -> Duration {
        let count = self.count();
        if count == 0 {
            return Duration::ZERO;
        }
        // Rank of the wanted value, 1-based: at least the first.
        let rank = ((q.clamp(0.0, 1.0) * count as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (bucket, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Duration::from_nanos(bucket_upper_ns(bucket).min(self.max_ns));
            }
        }
        self.max()
    }

    /// Adds `other`'s durations to these (e.g. every shard's together).
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine += theirs;
        }
        self.max_ns = self.max_ns.max(other.max_ns);
    }
}

/// The bucket holding `ns`.
fn bucket_of(ns: u64) -> usize {
    let octave = 63 - ns.max(1).leading_zeros();
    if octave < FIRST_OCTAVE {
        return 0;
    }
    if octave >= LAST_OCTAVE {
        return BUCKETS - 1;
    }
    // The three bits after the leading one pick the sub-bucket.
    let sub = (ns >> (octave - 3)) & (SUB_BUCKETS - 1);
    1 + ((octave - FIRST_OCTAVE) as u64 * SUB_BUCKETS + sub) as usize
}

/// The smallest duration above every value of `bucket`, in ns.
fn bucket_upper_ns(bucket: usize) -> u64 {
    if bucket == 0 {
        return 1 << FIRST_OCTAVE;
    }
    if bucket >= BUCKETS - 1 {
        return u64::MAX;
    }
    let index = (bucket - 1) as u64;
    let octave = FIRST_OCTAVE as u64 + index / SUB_BUCKETS;
    let sub = index % SUB_BUCKETS;
    (SUB_BUCKETS + sub + 1) << (octave - 3)
}

const _: () = assert!(
    SUB_BUCKETS == 8,
    "bucket_of takes three bits after the leading one"
);

/// The shared side of a [`LatencyHistogram`]: bumped by the shard's
/// executor only, read by snapshots from any thread.
#[derive(Debug)]
struct AtomicHistogram {
    counts: [AtomicU64; BUCKETS],
    max_ns: AtomicU64,
}

impl Default for AtomicHistogram {
    fn default() -> Self {
        AtomicHistogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            max_ns: AtomicU64::new(0),
        }
    }
}

impl AtomicHistogram {
    fn record(&self, d: Duration) {
        let ns = nanos(d);
        if let Some(bucket) = self.counts.get(bucket_of(ns)) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.max_ns.fetch_max(ns, Ordering::Relaxed);
    }

    fn snapshot(&self) -> LatencyHistogram {
        let mut h = LatencyHistogram::default();
        for (n, a) in h.counts.iter_mut().zip(self.counts.iter()) {
            *n = a.load(Ordering::Relaxed);
        }
        h.max_ns = self.max_ns.load(Ordering::Relaxed);
        h
    }
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
    recheck_completions: AtomicU64,
    watchdog_wakes: AtomicU64,
    watchdog_wakes_asleep: AtomicU64,
    lsn_wait_max_ns: AtomicU64,
    write_max_ns: AtomicU64,
    write_times: AtomicHistogram,
    rotations: AtomicU64,
    rotation_ns: AtomicU64,
    rotations_into_spares: AtomicU64,
    checkpoints: AtomicU64,
    checkpoint_max_ns: AtomicU64,
    put_queued: AtomicHistogram,
    put_in_store: AtomicHistogram,
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
        self.write_times.record(times.write);
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

    /// The queue re-check found a write completed.
    pub fn recheck_completion(&self) {
        self.recheck_completions.fetch_add(1, Ordering::Relaxed);
    }

    /// The watchdog signalled the executor; `asleep`: asleep in its loop.
    pub fn watchdog_woke(&self, asleep: bool) {
        self.watchdog_wakes.fetch_add(1, Ordering::Relaxed);
        self.watchdog_wakes_asleep
            .fetch_add(u64::from(asleep), Ordering::Relaxed);
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

    /// A put that reached the queue `queued` ago is in a batch whose write
    /// was just submitted.
    pub fn put_written(&self, queued: Duration) {
        self.put_queued.record(queued);
    }

    /// A put that reached the queue `queued` ago was just answered.
    pub fn put_answered(&self, queued: Duration) {
        self.put_in_store.record(queued);
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
            recheck_completions: self.recheck_completions.load(Ordering::Relaxed),
            watchdog_wakes: self.watchdog_wakes.load(Ordering::Relaxed),
            watchdog_wakes_asleep: self.watchdog_wakes_asleep.load(Ordering::Relaxed),
            lsn_wait_max: ns(&self.lsn_wait_max_ns),
            write_max: ns(&self.write_max_ns),
            write_times: self.write_times.snapshot(),
            rotations: self.rotations.load(Ordering::Relaxed),
            rotation: ns(&self.rotation_ns),
            rotations_into_spares: self.rotations_into_spares.load(Ordering::Relaxed),
            checkpoints: self.checkpoints.load(Ordering::Relaxed),
            checkpoint_max: ns(&self.checkpoint_max_ns),
            put_queued: self.put_queued.snapshot(),
            put_in_store: self.put_in_store.snapshot(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_and_grow_by_an_eighth_of_an_octave() {
        let mut previous_upper = 0;
        for bucket in 0..BUCKETS - 1 {
            let upper = bucket_upper_ns(bucket);
            assert!(upper > previous_upper, "bucket {bucket}");
            // The last value below the bound lands here, the bound next.
            assert_eq!(bucket_of(upper - 1), bucket, "bucket {bucket}");
            assert_eq!(bucket_of(upper), bucket + 1, "bucket {bucket}");
            if bucket > 0 {
                let width = upper - previous_upper;
                assert!(
                    width * 8 <= previous_upper.max(1024),
                    "bucket {bucket}: {width}"
                );
            }
            previous_upper = upper;
        }
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_err_high_by_less_than_a_bucket() {
        let atomic = AtomicHistogram::default();
        // 1..=1000 µs, once each.
        for us in 1..=1000u64 {
            atomic.record(Duration::from_micros(us));
        }
        let h = atomic.snapshot();
        assert_eq!(h.count(), 1000);
        assert_eq!(h.max(), Duration::from_micros(1000));
        for (q, exact_us) in [(0.5, 500u64), (0.9, 900), (0.99, 990), (1.0, 1000)] {
            let got = h.quantile(q).as_nanos() as u64;
            let exact = exact_us * 1000;
            assert!(got >= exact && got <= exact + exact / 8, "q {q}: {got} ns");
        }
        assert_eq!(h.quantile(0.0), h.quantile(0.001));
        assert_eq!(LatencyHistogram::default().quantile(0.5), Duration::ZERO);
    }

    #[test]
    fn merged_histograms_count_both() {
        let a = AtomicHistogram::default();
        let b = AtomicHistogram::default();
        a.record(Duration::from_micros(10));
        b.record(Duration::from_millis(10));
        b.record(Duration::from_millis(20));
        let mut h = a.snapshot();
        h.merge(&b.snapshot());
        assert_eq!(h.count(), 3);
        assert_eq!(h.max(), Duration::from_millis(20));
        assert!(h.quantile(0.3) < Duration::from_micros(12));
        assert!(h.quantile(0.5) >= Duration::from_millis(10));
    }
}
