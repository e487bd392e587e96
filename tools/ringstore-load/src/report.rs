//! The results: one `Report` that serializes to the documented JSON and
//! renders as a table for the terminal.

use std::fmt::Write as _;
use std::time::Duration;

use crate::workload::LatencyHistogram;
use serde::Serialize;

use crate::baseline::Baseline;
use crate::cli::Args;
use crate::sampling::{Sample, SoakSummary};
use crate::system::DeviceInfo;
use crate::verify::Verification;

/// `--get-cpu`: the gets slower than `threshold_us`, split by what their
/// thread did meanwhile.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SlowGetFigures {
    /// The threshold, µs.
    pub threshold_us: f64,
    /// Gets slower than it.
    pub count: u64,
    /// Of those, gets whose thread ran on a CPU for more than half of the
    /// get: the get itself worked that long (the rest waited for a CPU).
    pub mostly_running: u64,
    /// The longest thread CPU time of any get, µs: the most work one get
    /// did.
    pub cpu_max_us: f64,
}

/// A latency distribution in microseconds: the harness's own (exact), or
/// the store's (`ShardStats` histograms, every shard's merged: quantiles are
/// the upper bound of their bucket, at most 12.5 % wide; no min or mean).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LatencySummary {
    /// Operations recorded.
    pub count: u64,
    /// Fastest (null for the store's histograms).
    pub min: Option<f64>,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// 99.99th percentile.
    pub p9999: f64,
    /// Slowest.
    pub max: f64,
    /// Arithmetic mean (null for the store's histograms).
    pub mean: Option<f64>,
}

impl LatencySummary {
    /// Summarizes a histogram of nanoseconds (zeros when empty).
    pub fn from_ns(h: &LatencyHistogram) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        LatencySummary::from_quantiles(
            h.len(),
            Some(us(h.min())),
            us(h.max()),
            Some(h.mean() / 1000.0),
            |q| us(h.value_at_quantile(q)),
        )
    }

    /// Summarizes every shard's histogram `of` together.
    pub fn merged(
        stats: &[ringstore::ShardStats],
        of: fn(&ringstore::ShardStats) -> &ringstore::LatencyHistogram,
    ) -> LatencySummary {
        let mut h = ringstore::LatencyHistogram::default();
        for s in stats {
            h.merge(of(s));
        }
        let us = |d: std::time::Duration| d.as_secs_f64() * 1e6;
        LatencySummary::from_quantiles(h.count(), None, us(h.max()), None, |q| us(h.quantile(q)))
    }

    /// A summary from a histogram's count, extremes, mean and quantile
    /// function (all in µs).
    fn from_quantiles(
        count: u64,
        min: Option<f64>,
        max: f64,
        mean: Option<f64>,
        quantile: impl Fn(f64) -> f64,
    ) -> LatencySummary {
        LatencySummary {
            count,
            min,
            p50: quantile(0.5),
            p90: quantile(0.9),
            p99: quantile(0.99),
            p999: quantile(0.999),
            p9999: quantile(0.9999),
            max,
            mean,
        }
    }
}

/// How long preparing the payload took, kept out of the latencies.
#[derive(Debug, Clone, Serialize)]
pub struct Generation {
    /// Strings in the pre-generated pool.
    pub pool_strings: usize,
    /// Time to prepare the pool before the clock started, ms.
    pub pool_prepare_ms: f64,
    /// Time writers spent refreshing their records for each put (new id,
    /// every double, a few strings from the pool), summed, ms.
    pub record_build_ms_total: f64,
    /// The same per put, µs.
    pub record_build_us_mean: f64,
    /// CPU time of the writer threads outside `put_blocking`, seconds.
    pub writer_cpu_outside_puts_seconds: f64,
    /// CPU time of the reader threads, seconds: their gets and everything
    /// around them (timing, the control's busy-wait, waking every read
    /// interval). Part of `store_cpu_seconds_per_gb` (the issue's
    /// definition excludes only record generation); it costs the same per
    /// second however fast the disk is.
    pub reader_cpu_seconds: f64,
}

/// What one shard did during the run (`Store::shard_stats`).
#[derive(Debug, Clone, Serialize)]
pub struct ShardFigures {
    /// Which shard.
    pub shard: usize,
    /// Group commits.
    pub batches: u64,
    /// Frames written.
    pub frames: u64,
    /// Mean frame bytes per batch.
    pub mean_batch_bytes: f64,
    /// Mean time to encode a batch into its DMA buffer, ms.
    pub mean_stage_ms: f64,
    /// Mean time of a batch's direct write, ms.
    pub mean_write_ms: f64,
    /// Mean time of one fdatasync, ms.
    pub mean_sync_ms: f64,
    /// Flushes.
    pub syncs: u64,
    /// Puts found only by the shard's periodic queue re-check.
    pub recheck_pickups: u64,
    /// Write completions found only by that re-check (see
    /// `ShardStats::recheck_completions`).
    pub recheck_completions: u64,
    /// Signals from the shard watchdog (`ShardStats::watchdog_wakes`).
    pub watchdog_wakes: u64,
    /// Of those, signals to an executor asleep in its loop
    /// (`ShardStats::watchdog_wakes_asleep`).
    pub watchdog_wakes_asleep: u64,
    /// Async: the longest wait of records for an earlier LSN, ms.
    pub lsn_wait_max_ms: f64,
    /// The longest single write, ms.
    pub write_max_ms: f64,
    /// Segments rotated out.
    pub rotations: u64,
    /// Mean time a rotation held up the shard's writes, ms.
    pub mean_rotation_ms: f64,
    /// Rotations whose next segment reused a spare file.
    pub rotations_into_spares: u64,
    /// Checkpoints (compactions) and the longest one, ms.
    pub checkpoints: u64,
    /// The longest time a checkpoint held up the shard's puts, ms.
    pub checkpoint_max_ms: f64,
    /// Share of the workload's wall time with no write of this shard in
    /// flight (`ShardStats::idle` during the workload ÷ its wall time).
    pub idle_fraction: f64,
}

impl ShardFigures {
    /// The figures of one snapshot; `idle` of them fell within the
    /// workload, which took `wall`.
    pub fn from_stats(
        s: &ringstore::ShardStats,
        idle: std::time::Duration,
        wall: std::time::Duration,
    ) -> Self {
        let per = |total: std::time::Duration, n: u64| total.as_secs_f64() * 1e3 / n.max(1) as f64;
        ShardFigures {
            shard: s.shard,
            batches: s.batches,
            frames: s.frames,
            mean_batch_bytes: s.bytes as f64 / s.batches.max(1) as f64,
            mean_stage_ms: per(s.stage, s.batches),
            mean_write_ms: per(s.write, s.batches),
            mean_sync_ms: per(s.sync, s.syncs),
            syncs: s.syncs,
            recheck_pickups: s.recheck_pickups,
            recheck_completions: s.recheck_completions,
            watchdog_wakes: s.watchdog_wakes,
            watchdog_wakes_asleep: s.watchdog_wakes_asleep,
            lsn_wait_max_ms: s.lsn_wait_max.as_secs_f64() * 1e3,
            write_max_ms: s.write_max.as_secs_f64() * 1e3,
            rotations: s.rotations,
            mean_rotation_ms: per(s.rotation, s.rotations),
            rotations_into_spares: s.rotations_into_spares,
            checkpoints: s.checkpoints,
            checkpoint_max_ms: s.checkpoint_max.as_secs_f64() * 1e3,
            idle_fraction: idle.as_secs_f64() / wall.as_secs_f64().max(1e-9),
        }
    }
}

/// The reopen after the run (`--recovery`).
#[derive(Debug, Clone, Serialize)]
pub struct RecoveryFigures {
    /// Wall time of `Store::open`, ms.
    pub open_ms: f64,
    /// Time recovery itself reported, ms.
    pub recovery_ms: f64,
    /// Segment files read.
    pub segments: usize,
    /// Frames read.
    pub frames: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Keys recovered.
    pub keys: usize,
    /// Segment bytes covered per second of `open`, MB/s (recovery may read
    /// less than all of them, e.g. through hints).
    pub segment_mb_per_s: f64,
    /// Torn tails found (should be 0 after a clean close).
    pub torn_tails: usize,
    /// Keys whose recovered version is not the newest acknowledged one.
    pub mismatched_keys: u64,
}

/// Everything one run measured. Field names are the JSON contract.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Version of this harness.
    pub ringstore_load_version: &'static str,
    /// The I/O backend the store ran on (`io-uring` or `portable`; what
    /// `--io-backend auto` resolved to).
    pub io_backend: &'static str,
    /// Puts acknowledged (applied or stale).
    pub puts: u64,
    /// Puts acknowledged as stale (a newer version was already readable).
    pub stale_puts: u64,
    /// Puts that failed (the run stops at the first).
    pub put_errors: u64,
    /// The first put failure.
    pub first_put_error: Option<String>,
    /// Gets done.
    pub gets: u64,
    /// Gets that found a record.
    pub get_hits: u64,
    /// Gets that found none (the key not written yet).
    pub get_misses: u64,
    /// Acknowledged puts missing from disk.
    pub lost: u64,
    /// Workload wall time: start until the last writer finished, ms.
    pub wall_ms: f64,
    /// `Store::close` after the workload (drains and flushes), ms.
    pub close_ms: f64,
    /// The close error, if `close` failed.
    pub close_error: Option<String>,
    /// Puts acknowledged per millisecond of `wall_ms` (the seed's figure).
    pub writes_per_ms: f64,
    /// Gets per millisecond of `wall_ms` (the seed's figure).
    pub reads_per_ms: f64,
    /// Frame bytes persisted per second, until durable
    /// (`frame_bytes / (wall_ms + close_ms)`), MB = 10^6 bytes.
    pub write_mb_per_s: f64,
    /// Segment file bytes (padding included) per second, same window.
    pub disk_mb_per_s: f64,
    /// Whether the two figures above are estimates: with retention
    /// (`--compact-above-bytes`) compaction deletes most frames before they
    /// can be counted, so the bytes written are taken as puts x the mean
    /// frame left on disk (and its padding ratio).
    pub write_bytes_estimated: bool,
    /// Mean frame size: key, record and frame header, bytes.
    pub mean_record_bytes: f64,
    /// Put latency, call to acknowledgement, µs.
    pub put_latency_us: LatencySummary,
    /// Put latency corrected for coordinated omission (each put that took
    /// longer than the write interval also counts for the puts its writer
    /// could not start on time), µs. Same as `put_latency_us` in a closed loop.
    pub put_latency_corrected_us: LatencySummary,
    /// Sync: the part of each put spent in the store, from reaching its
    /// shard's queue to the reply (the rest of `put_latency_us` is the
    /// writer's thread: serializing before, being woken and scheduled
    /// after), µs; count 0 in Async mode.
    pub put_in_store_us: LatencySummary,
    /// Sync: of that, the wait from reaching the queue to the put's batch
    /// being written, µs; count 0 in Async mode.
    pub put_queued_us: LatencySummary,
    /// Every write of every shard (a batch, a checkpoint chunk), from
    /// submission to completion, µs.
    pub write_us: LatencySummary,
    /// Get latency, µs.
    pub get_latency_us: LatencySummary,
    /// The control for `get_latency_us`: after each get the same reader
    /// busy-waits as long as its typical get and times it the same way, µs.
    /// Where its tail matches the get tail, that tail is the machine
    /// (preemption, interrupts), not the store.
    pub timer_control_us: LatencySummary,
    /// `--get-cpu`, else null.
    pub slow_gets: Option<SlowGetFigures>,
    /// Writer ticks skipped because puts took longer than the interval.
    pub write_ticks_missed: u64,
    /// Reader ticks skipped.
    pub read_ticks_missed: u64,
    /// The raw device (`--baseline`), else null.
    pub baseline: Option<Baseline>,
    /// `write_mb_per_s` ÷ the baseline's durable bandwidth (sync) or raw
    /// bandwidth (async); null without `--baseline`.
    pub efficiency: Option<f64>,
    /// Sync: `write_mb_per_s` ÷ the durable bandwidth with only the
    /// workload's bytes in flight; null without `--baseline` or in Async.
    pub efficiency_at_workload_depth: Option<f64>,
    /// Sync: `write_mb_per_s` ÷ the durable bandwidth of the store's own
    /// write pattern (one file per shard, one 1 MiB write in flight on
    /// each); null without `--baseline` or in Async.
    pub efficiency_vs_shard_pattern: Option<f64>,
    /// Sync: `write_mb_per_s` ÷ the MB/s of the same closed loop through a
    /// bare group-commit log (one appending `O_DSYNC` file per shard, no
    /// map, encoding or readers); null without `--baseline` or in Async.
    pub efficiency_vs_group_commit: Option<f64>,
    /// Peak resident set size of the process from the workload's start to
    /// the end of `close`, bytes (the kernel's peak is reset before the
    /// workload, so neither the baseline nor the read-back counts).
    pub peak_rss_bytes: Option<u64>,
    /// Resident set size just before the workload (store open, records for
    /// the writers prepared), bytes.
    pub rss_before_workload_bytes: Option<u64>,
    /// Keys x mean frame: the live data the store must hold, bytes.
    pub live_data_bytes: u64,
    /// CPU time (user + system) from the workload's start to the end of
    /// `close`, all threads, seconds.
    pub cpu_seconds: Option<f64>,
    /// User part of `cpu_seconds`.
    pub cpu_user_seconds: Option<f64>,
    /// System part of `cpu_seconds`.
    pub cpu_system_seconds: Option<f64>,
    /// `cpu_seconds` minus the load generator's own CPU (writer threads
    /// outside `put_blocking`), per GB persisted: the store's CPU cost.
    pub store_cpu_seconds_per_gb: Option<f64>,
    /// CPU per put, µs: the process's CPU (user + system, every thread,
    /// io_uring workers included; not kernel threads such as the journal's)
    /// from the workload's start to the end of `close`, minus the writer
    /// threads' CPU outside `put_blocking` and the reader threads' CPU,
    /// divided by the puts.
    pub store_cpu_us_per_put: Option<f64>,
    /// Bytes the process sent to storage over the same window
    /// (/proc/self/io `write_bytes`; journal writes not included).
    pub process_write_bytes: Option<u64>,
    /// `process_write_bytes` ÷ the frame bytes persisted (keys, records
    /// and frame headers).
    pub process_write_bytes_per_frame_byte: Option<f64>,
    /// Bytes written to the data dir's block device over the same window,
    /// by everyone (journal and other processes included; sysfs).
    pub device_write_bytes: Option<u64>,
    /// `device_write_bytes` ÷ the frame bytes persisted.
    pub device_write_bytes_per_frame_byte: Option<f64>,
    /// `--compare seed-design`: the seed's architecture on the same
    /// workload, and the store's figures as ratios to it; else null.
    pub seed_design: Option<crate::seed_design::Comparison>,
    /// Record material preparation, kept out of the latencies.
    pub generation: Generation,
    /// Per shard: batches and where their time went.
    pub shards: Vec<ShardFigures>,
    /// The log read back after the run.
    pub verification: Verification,
    /// The reopen (`--recovery`), else null.
    pub recovery: Option<RecoveryFigures>,
    /// RSS flatness and p99 drift over the samples, else null.
    pub soak: Option<SoakSummary>,
    /// The time series (`--sample-interval-ms`), oldest first; empty when off.
    pub samples: Vec<Sample>,
    /// Every knob as used (`shards` resolved).
    pub config: Args,
    /// The data dir.
    pub data_dir: String,
    /// Whether the data dir was kept (`--keep`).
    pub kept: bool,
    /// The disk and filesystem of the data dir.
    pub device: DeviceInfo,
}

/// A latency for the table: µs with precision fitting its size.
fn us(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2}")
    } else if v < 1000.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// One row of the latency table: nothing for an empty distribution (the
/// store's put histograms in Async mode), `-` where a figure is not known.
fn latency_row(out: &mut String, name: &str, l: &LatencySummary) {
    if l.count == 0 {
        return;
    }
    let known = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), us);
    let _ = writeln!(
        out,
        "  {name:<12}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}{:>10}{:>9}",
        l.count,
        known(l.min),
        us(l.p50),
        us(l.p90),
        us(l.p99),
        us(l.p999),
        us(l.p9999),
        us(l.max),
        known(l.mean)
    );
}

/// `every N ms`, or `closed loop` for 0.
pub fn pace(interval: Duration) -> String {
    if interval.is_zero() {
        "closed loop".to_owned()
    } else if interval.subsec_micros() % 1000 == 0 {
        format!("every {} ms", interval.as_millis())
    } else {
        format!("every {:.3} ms", interval.as_secs_f64() * 1e3)
    }
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "?".to_owned(), ToString::to_string)
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "no",
        None => "?",
    }
}

/// The report as a table for the terminal.
pub fn render(r: &Report) -> String {
    let c = &r.config;
    let mut out = String::new();
    let load = match c.duration {
        Some(s) => format!("{} writers for {s} s", c.writers),
        None => format!("{} writers x {} puts", c.writers, c.writes_per_writer),
    };
    let _ = writeln!(
        out,
        "\nringstore-load: {load} {}, {} readers {}, {} keys, \
         records of {} doubles + {} strings x {} chars",
        pace(c.write_interval()),
        c.readers,
        pace(c.read_interval()),
        c.keys,
        c.doubles,
        c.strings,
        c.string_len
    );
    let _ = writeln!(
        out,
        "  store:  {} shards, durability {}, I/O backend {}, retention {}, seed {}, dir {} ({})",
        opt(&c.shards),
        c.durability.name(),
        r.io_backend,
        c.compact_above_bytes.map_or_else(
            || "off".to_owned(),
            |b| format!("compact above {:.1} MB sealed", b as f64 / 1e6)
        ),
        c.seed,
        r.data_dir,
        if r.kept { "kept" } else { "removed" }
    );
    let d = &r.device;
    let _ = writeln!(
        out,
        "  device: {} model {} on {} ({}), rotational {}, write cache {}, FUA {}",
        opt(&d.block_device),
        opt(&d.model),
        opt(&d.mount_source),
        opt(&d.filesystem),
        yes_no(d.rotational),
        opt(&d.write_cache),
        yes_no(d.fua)
    );
    let _ = writeln!(
        out,
        "\n  latency µs      count      min      p50      p90      p99    p99.9   p99.99       max     mean"
    );
    latency_row(&mut out, "put", &r.put_latency_us);
    if !c.write_interval().is_zero() {
        latency_row(&mut out, "put (CO)", &r.put_latency_corrected_us);
    }
    latency_row(&mut out, "  in store", &r.put_in_store_us);
    latency_row(&mut out, "  queued", &r.put_queued_us);
    latency_row(&mut out, "write", &r.write_us);
    latency_row(&mut out, "get", &r.get_latency_us);
    latency_row(&mut out, "get-long wait", &r.timer_control_us);
    if let Some(s) = &r.slow_gets {
        let _ = writeln!(
            out,
            "  slow gets   {} over {:.0} µs: {} ran on a CPU for most of it, the rest waited for one; \
             the most CPU one get used: {:.1} µs",
            s.count, s.threshold_us, s.mostly_running, s.cpu_max_us
        );
    }
    let _ = writeln!(
        out,
        "\n  throughput  writes/ms {:.3}   reads/ms {:.3}   {:.1} MB/s persisted ({:.1} MB/s to disk{}), \
         records of {:.0} bytes",
        r.writes_per_ms,
        r.reads_per_ms,
        r.write_mb_per_s,
        r.disk_mb_per_s,
        if r.write_bytes_estimated {
            "; estimated as puts x mean frame, compaction deleted the rest"
        } else {
            ""
        },
        r.mean_record_bytes
    );
    let hit_pct = if r.gets == 0 {
        0.0
    } else {
        r.get_hits as f64 * 100.0 / r.gets as f64
    };
    let _ = writeln!(
        out,
        "  operations  {} puts acknowledged ({} stale, {} errors), {} gets ({:.2} % hits), \
         ticks missed: writers {} readers {}",
        r.puts,
        r.stale_puts,
        r.put_errors,
        r.gets,
        hit_pct,
        r.write_ticks_missed,
        r.read_ticks_missed
    );
    if let Some(e) = &r.first_put_error {
        let _ = writeln!(out, "  put error   {e}");
    }
    if let Some(e) = &r.close_error {
        let _ = writeln!(out, "  close error {e}");
    }
    for s in &r.shards {
        let _ = writeln!(
            out,
            "  shard {:<4}  {} batches of {:.2} MB ({:.1} frames); per batch: stage {:.3} ms, write {:.3} ms (max {:.1}); \
             {} fdatasyncs of {:.3} ms; {} rotations of {:.1} ms ({} into spare files); {} checkpoints (longest {:.1} ms); {} puts and {} write completions found by the queue re-check; \
             {} watchdog signals ({} to an executor asleep in its loop); no write in flight {:.1} % of the time; \
             longest wait for an earlier LSN {:.1} ms",
            s.shard,
            s.batches,
            s.mean_batch_bytes / 1e6,
            s.frames as f64 / s.batches.max(1) as f64,
            s.mean_stage_ms,
            s.mean_write_ms,
            s.write_max_ms,
            s.syncs,
            s.mean_sync_ms,
            s.rotations,
            s.mean_rotation_ms,
            s.rotations_into_spares,
            s.checkpoints,
            s.checkpoint_max_ms,
            s.recheck_pickups,
            s.recheck_completions,
            s.watchdog_wakes,
            s.watchdog_wakes_asleep,
            s.idle_fraction * 100.0,
            s.lsn_wait_max_ms
        );
    }
    let v = &r.verification;
    let _ = writeln!(
        out,
        "  verified    lost = {}  ({} acknowledged puts checked against {} frames in {} segments, \
         {:.2} GB{}; {} keys behind; scan {:.0} ms)",
        r.lost,
        v.acked,
        v.frames,
        v.segments,
        v.disk_bytes as f64 / 1e9,
        match v.check {
            crate::verify::Check::ExactFrame => "",
            crate::verify::Check::SameOrNewerVersion => ", same or newer version (compacted)",
        },
        v.stale_keys,
        v.scan_ms
    );
    if let Some(b) = &r.baseline {
        let _ = writeln!(
            out,
            "  baseline    direct write {:.1} MB/s, durable (O_DSYNC) {:.1} MB/s at depth {}, \
             128 KiB write+fdatasync p50 {} µs p99 {} µs  (mean of before/after)",
            b.seq_write_mb_per_s,
            b.durable_write_mb_per_s,
            b.queue_depth,
            us(b.fsync_write_p50_us),
            us(b.fsync_write_p99_us)
        );
        let _ = writeln!(
            out,
            "              before: {:.1} / {:.1} MB/s, p99 {} µs;  after: {:.1} / {:.1} MB/s, p99 {} µs",
            b.before.seq_write_mb_per_s,
            b.before.durable_write_mb_per_s,
            us(b.before.fsync_write_us.p99),
            b.after.seq_write_mb_per_s,
            b.after.durable_write_mb_per_s,
            us(b.after.fsync_write_us.p99)
        );
        let ceiling = match c.durability {
            crate::cli::DurabilityArg::Sync => "durable ceiling",
            crate::cli::DurabilityArg::Async => "raw direct-write bandwidth",
        };
        let _ = writeln!(
            out,
            "  efficiency  {} of the {ceiling}; put p50 = {:.2} x one write+fdatasync p50",
            r.efficiency
                .map_or_else(|| "?".to_owned(), |e| format!("{e:.3}")),
            r.put_latency_us.p50 / b.fsync_write_p50_us.max(1e-9)
        );
        if let Some(e) = r.efficiency_at_workload_depth {
            let _ = writeln!(
                out,
                "              {e:.3} of the durable bandwidth with the closed loop's bytes in flight \
                 ({} x 1 MiB O_DSYNC writes: {:.1} MB/s)",
                b.workload_depth, b.durable_at_workload_depth_mb_per_s
            );
        }
        if let Some(e) = r.efficiency_vs_shard_pattern {
            let _ = writeln!(
                out,
                "              {e:.3} of the durable bandwidth of the store's write pattern \
                 ({} files, one 1 MiB O_DSYNC append in flight on each: {:.1} MB/s)",
                b.shard_files, b.durable_one_per_shard_mb_per_s
            );
        }
        if let Some(e) = r.efficiency_vs_group_commit {
            let _ = writeln!(
                out,
                "              {e:.3} of the same closed loop through a bare group-commit log \
                 ({} writers x {} B records, {} appending O_DSYNC files, everything queued in one write: {:.1} MB/s)",
                b.group_commit_writers,
                b.group_commit_record_bytes,
                b.shard_files,
                b.group_commit_mb_per_s
            );
        }
    }
    if let Some(rec) = &r.recovery {
        let _ = writeln!(
            out,
            "  recovery    open {:.0} ms: {} segments, {} frames, {:.2} GB of segments ({:.0} MB/s), {} keys; \
             {} keys not at their newest acknowledged version, {} torn tails",
            rec.open_ms,
            rec.segments,
            rec.frames,
            rec.bytes as f64 / 1e9,
            rec.segment_mb_per_s,
            rec.keys,
            rec.mismatched_keys,
            rec.torn_tails
        );
    }
    if let Some(s) = &r.soak {
        render_soak(&mut out, s);
    }
    let g = &r.generation;
    let _ = writeln!(
        out,
        "  resources   wall {:.1} s + close {:.0} ms, CPU {} s (user {}, sys {}; {} s/GB without \
         the load generator's {:.1} s; readers {:.1} s), peak RSS {} MB (before the workload {} MB, live data {:.1} MB); \
         payload pool {:.1} ms, record build {:.1} µs/put",
        r.wall_ms / 1000.0,
        r.close_ms,
        r.cpu_seconds
            .map_or_else(|| "?".to_owned(), |s| format!("{s:.1}")),
        r.cpu_user_seconds
            .map_or_else(|| "?".to_owned(), |s| format!("{s:.1}")),
        r.cpu_system_seconds
            .map_or_else(|| "?".to_owned(), |s| format!("{s:.1}")),
        r.store_cpu_seconds_per_gb
            .map_or_else(|| "?".to_owned(), |s| format!("{s:.2}")),
        g.writer_cpu_outside_puts_seconds,
        g.reader_cpu_seconds,
        r.peak_rss_bytes
            .map_or_else(|| "?".to_owned(), |b| format!("{:.0}", b as f64 / 1e6)),
        r.rss_before_workload_bytes
            .map_or_else(|| "?".to_owned(), |b| format!("{:.0}", b as f64 / 1e6)),
        r.live_data_bytes as f64 / 1e6,
        g.pool_prepare_ms,
        g.record_build_us_mean
    );
    let _ = writeln!(
        out,
        "  per put     store CPU {} µs (process minus writers outside puts and readers); \
         written by the process {} bytes, to the device {} bytes per frame byte",
        opt_us(r.store_cpu_us_per_put),
        ratio(r.process_write_bytes_per_frame_byte),
        ratio(r.device_write_bytes_per_frame_byte),
    );
    if let Some(c) = &r.seed_design {
        render_comparison(&mut out, r, c);
    }
    let _ = writeln!(
        out,
        "  seed (Go, no fsync, its own hardware): writes/ms 1.66, reads/ms 17.2, \
         put mean 576 µs max 113289 µs, get mean 17.6 µs max 79856 µs"
    );
    out
}

fn render_comparison(out: &mut String, r: &Report, c: &crate::seed_design::Comparison) {
    let _ = writeln!(
        out,
        "  seed design {} shards, {} persister threads, {} ({} records per group at most); \
         runs before / after the store: {:.0} / {:.0} puts/s, put p99 {} / {} µs, CPU {} / {} µs per put",
        c.shards,
        c.persisters,
        if c.durable {
            "one fdatasync per group"
        } else {
            "no fsync"
        },
        c.group_max_records,
        c.before.puts_per_s,
        c.after.puts_per_s,
        us(c.before.put_latency_us.p99),
        us(c.after.put_latency_us.p99),
        opt_us(c.before.cpu_us_per_put),
        opt_us(c.after.cpu_us_per_put),
    );
    let _ = writeln!(
        out,
        "  vs seed design  store {:.0} puts/s = {:.2} x the design's {:.0}; put p50 {} µs = {:.2} x, \
         p99 {} µs = {:.2} x; CPU {} µs per put = {} x",
        r.writes_per_ms * 1e3,
        c.puts_per_s_ratio,
        c.puts_per_s,
        us(r.put_latency_us.p50),
        c.put_p50_ratio,
        us(r.put_latency_us.p99),
        c.put_p99_ratio,
        opt_us(r.store_cpu_us_per_put),
        ratio(c.cpu_per_put_ratio),
    );
}

fn mb(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "?".to_owned(), |b| format!("{:.1}", b as f64 / 1e6))
}

fn ratio(v: Option<f64>) -> String {
    v.map_or_else(|| "?".to_owned(), |v| format!("{v:.2}"))
}

fn opt_us(v: Option<f64>) -> String {
    v.map_or_else(|| "?".to_owned(), us)
}

fn render_soak(out: &mut String, s: &SoakSummary) {
    let _ = writeln!(
        out,
        "  soak        {} samples; RSS after warm-up ({} skipped) min {} / median {} / max {} MB: \
         flat within {} %",
        s.samples,
        s.warmup_samples,
        mb(s.rss_min_bytes),
        mb(s.rss_median_bytes),
        mb(s.rss_max_bytes),
        s.rss_flat_pct
            .map_or_else(|| "?".to_owned(), |p| format!("{p:.1}"))
    );
    let _ = writeln!(
        out,
        "              p99 per interval, median of first vs last quarter: put {} → {} µs (drift {}), \
         get {} → {} µs (drift {}); worst put {} µs, get {} µs; {} put stalls (p99 > 10 x median)",
        opt_us(s.put_p99_first_quarter_us),
        opt_us(s.put_p99_last_quarter_us),
        ratio(s.put_p99_drift),
        opt_us(s.get_p99_first_quarter_us),
        opt_us(s.get_p99_last_quarter_us),
        ratio(s.get_p99_drift),
        opt_us(s.put_p99_max_us),
        opt_us(s.get_p99_max_us),
        s.put_p99_spikes
    );
    let _ = writeln!(
        out,
        "              data dir max {} MB, last {} MB, shrank {} times (compactions)",
        mb(s.dir_max_bytes),
        mb(s.dir_last_bytes),
        s.dir_shrinks
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_out_ordered_in_microseconds() {
        let mut h = LatencyHistogram::new_with_bounds(1, 1_000_000_000, 3).unwrap();
        for ns in 1..=100_000u64 {
            h.record(ns * 10).unwrap();
        }
        let s = LatencySummary::from_ns(&h);
        assert_eq!(s.count, 100_000);
        assert!(s.min.unwrap() <= s.p50 && s.p50 <= s.p90 && s.p90 <= s.p99);
        assert!(s.p99 <= s.p999 && s.p999 <= s.p9999 && s.p9999 <= s.max);
        assert!((s.p50 - 500.0).abs() < 1.0, "{}", s.p50);
    }

    #[test]
    fn empty_histograms_summarize_to_zero() {
        let h = LatencyHistogram::new(3).unwrap();
        assert_eq!(LatencySummary::from_ns(&h).count, 0);
    }
}
