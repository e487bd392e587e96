//! One load run from flags to report: a fresh data dir on a real disk, the
//! baseline before, the workload (sampled over time with
//! `--sample-interval-ms`), close, the baseline after, the log read back,
//! the optional reopen, and the data dir removed unless kept.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::workload::LatencyHistogram;
use ringstore::{Config, Store};

use crate::acklog::AckLog;
use crate::baseline::{self, Baseline, BaselineSpec};
use crate::cli::{self, Args, CompareArg, DurabilityArg};
use crate::error::LoadError;
use crate::payload::{Payload, PayloadSpec};
use crate::report::{
    Generation, LatencySummary, RecoveryFigures, Report, ShardFigures, SlowGetFigures,
};
use crate::sampling;
use crate::seed_design::{self, Comparison};
use crate::system;
use crate::verify::{self, Check, ms};
use crate::workload::{self, WorkloadSpec};

/// A finished run: the report and the raw histograms (for the plot).
#[derive(Debug)]
pub struct Outcome {
    /// Everything measured.
    pub report: Report,
    /// Put latencies, nanoseconds.
    pub put_latency_ns: LatencyHistogram,
    /// Get latencies, nanoseconds.
    pub get_latency_ns: LatencyHistogram,
}

/// A progress note on stderr (stdout carries the report).
fn note(text: &str) {
    eprintln!("ringstore-load: {text}");
}

/// Runs the load described by `args`.
pub fn run(mut args: Args) -> Result<Outcome, LoadError> {
    args.validate()?;
    std::fs::create_dir_all(&args.dir).map_err(|e| LoadError::io("creating", &args.dir, e))?;
    system::check_real_disk(&args.dir)?;
    let temp = tempfile::Builder::new()
        .prefix("ringstore-load-")
        .tempdir_in(&args.dir)
        .map_err(|e| LoadError::io("creating a temporary dir in", &args.dir, e))?;
    let store_dir = temp.path().join("store");
    let baseline_dir = temp.path().join("baseline");
    let device = system::device_info(temp.path());
    note(&format!("data dir {}", temp.path().display()));

    let payload = Payload::prepare(
        PayloadSpec {
            doubles: args.doubles,
            strings: args.strings,
            string_len: args.string_len,
        },
        args.seed,
    );
    let baseline_spec = BaselineSpec {
        bytes: args.baseline_mib.saturating_mul(1 << 20),
        depth: args.baseline_depth,
        // The closed loop's bytes in flight: every writer holds one record.
        workload_depth: ((args.writers as f64 * args.record_bytes_estimate() as f64)
            / baseline::BLOCK_BYTES as f64)
            .round()
            .max(1.0) as usize,
        // The store's shard count: as given, else its default (one per CPU).
        shard_files: args.shards.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
        }),
        writers: args.writers,
        record_bytes: payload.serialized_bytes(args.seed),
    };
    let before = if args.baseline {
        note("baseline (before): raw direct writes, durable writes, write+fdatasync");
        Some(baseline::measure(&baseline_dir, baseline_spec)?)
    } else {
        None
    };

    if let (Some(fraction), Some(before)) = (args.offer_fraction, &before) {
        args.pace_at(fraction, before.seq_write_mb_per_s);
        note(&format!(
            "pacing the writers {} for {fraction} of {:.0} MB/s",
            crate::report::pace(args.write_interval()),
            before.seq_write_mb_per_s
        ));
    }
    let keys: Vec<String> = (0..args.keys).map(|i| format!("sensor{i}")).collect();

    let spec = WorkloadSpec {
        writers: args.writers,
        writes_per_writer: args.writes_per_writer,
        write_interval: args.write_interval(),
        readers: args.readers,
        read_interval: args.read_interval(),
        duration: args.duration.map(Duration::from_secs_f64),
        seed: args.seed,
        sample_interval: (args.sample_interval_ms > 0)
            .then(|| Duration::from_millis(args.sample_interval_ms)),
        ack_dir: temp.path().join("acked"),
        get_cpu: args.get_cpu,
    };
    let design_dir = temp.path().join("seed-design");
    let design_spec = |round: &str| WorkloadSpec {
        ack_dir: temp.path().join(format!("seed-design-acked-{round}")),
        // The sampler's time series is the store's.
        sample_interval: None,
        ..spec.clone()
    };
    let durable_design = args.durability == DurabilityArg::Sync;
    let design_before = match args.compare {
        Some(CompareArg::SeedDesign) => {
            note("seed-design baseline (before)");
            Some(seed_design::measure(
                &design_dir,
                durable_design,
                &payload,
                &keys,
                &design_spec("before"),
            )?)
        }
        None => None,
    };

    let mut config = Config::new(&store_dir)
        .durability(args.durability.into())
        .sync_method(args.sync_method.into())
        .io_backend(args.io_backend.into())
        .compact_above_sealed_bytes(args.compact_above_bytes);
    if let Some(shards) = args.shards {
        config = config.shards(shards);
    }
    if let Some(bytes) = args.max_segment_bytes {
        config = config.max_segment_bytes(bytes);
    }
    if let Some(count) = args.spare_segments {
        config = config.spare_segments(count);
    }
    if let Some(ms) = args.flush_interval_ms {
        config = config.flush_interval_ms(ms);
    }
    if let Some(depth) = args.pipeline_depth {
        config = config.pipeline_depth(depth);
    }
    if let Some(ms) = args.wake_stalled_shard_after_ms {
        config = config.wake_stalled_shard_after_ms(ms);
    }
    if let Some(bytes) = args.max_batch_bytes {
        config = config.max_batch_bytes(bytes);
    }
    if let Some(bytes) = args.record_buffer_pool_bytes {
        config = config.record_buffer_pool_bytes(bytes);
    }
    let store = Store::open(config.clone())?;
    args.shards = Some(store.shard_count());
    let io_backend = cli::backend_name(store.io_backend());
    note(&format!("I/O backend {io_backend}"));

    note("running the workload");
    let rss_before_workload = system::rss_bytes();
    let peak_reset = system::reset_peak_rss();
    let cpu_before = system::cpu_seconds();
    let process_cpu_before = system::process_cpu();
    let process_written_before = system::process_write_bytes();
    let device_written_before = device
        .block_device
        .as_deref()
        .and_then(system::device_write_bytes);
    let idle_before: Vec<std::time::Duration> =
        store.shard_stats().iter().map(|s| s.idle).collect();
    let workload_started = Instant::now();
    let result = workload::run(&store, &payload, &keys, &spec);
    let workload_wall = workload_started.elapsed();
    let close_started = Instant::now();
    let closed = store.close();
    let stats = store.shard_stats();
    let put_in_store = LatencySummary::merged(&stats, |s| &s.put_in_store);
    let put_queued = LatencySummary::merged(&stats, |s| &s.put_queued);
    let write = LatencySummary::merged(&stats, |s| &s.write_times);
    let shards = stats
        .iter()
        .zip(
            idle_before
                .iter()
                .chain(std::iter::repeat(&std::time::Duration::ZERO)),
        )
        .map(|(s, before)| {
            ShardFigures::from_stats(s, s.idle.saturating_sub(*before), workload_wall)
        })
        .collect();
    let close_time = close_started.elapsed();
    let cpu_after = system::cpu_seconds();
    let process_cpu_after = system::process_cpu();
    let process_written = process_written_before
        .zip(system::process_write_bytes())
        .map(|(a, b)| b.saturating_sub(a));
    let device_written = device_written_before
        .zip(
            device
                .block_device
                .as_deref()
                .and_then(system::device_write_bytes),
        )
        .map(|(a, b)| b.saturating_sub(a));
    // Without the reset the kernel's peak would include the baseline.
    let peak_rss = system::peak_rss_bytes().filter(|_| peak_reset);
    drop(store);
    let result = result?;
    let store_cpu_us_per_put =
        seed_design::cpu_us_per_put(process_cpu_before, process_cpu_after, &result);

    let design_after = match design_before {
        Some(_) => {
            note("seed-design baseline (after)");
            Some(seed_design::measure(
                &design_dir,
                durable_design,
                &payload,
                &keys,
                &design_spec("after"),
            )?)
        }
        None => None,
    };

    let baseline = match before {
        Some(before) => {
            note("baseline (after)");
            let after = baseline::measure(&baseline_dir, baseline_spec)?;
            Some(Baseline::new(baseline_spec, before, after))
        }
        None => None,
    };

    note("verifying: reading every frame back");
    let check = match args.compact_above_bytes {
        Some(_) => Check::SameOrNewerVersion,
        None => Check::ExactFrame,
    };
    let verification = verify::verify(&store_dir, &keys, &result.acked, check)?;
    let recovery = if args.recovery {
        note("recovery: reopening the store");
        Some(reopen(config, &keys, &result.acked)?)
    } else {
        None
    };

    let data_dir = temp.path().display().to_string();
    if args.keep {
        let _kept = temp.keep();
        note(&format!(
            "kept the store at {} (ringstore-log ls/verify/dump take this path)",
            store_dir.display()
        ));
    } else {
        temp.close()
            .map_err(|e| LoadError::io("removing the data dir", &data_dir, e))?;
    }

    let wall_ms = ms(result.wall);
    let durable_ms = wall_ms + ms(close_time);
    let per_s = |bytes: u64| bytes as f64 / 1e6 / (durable_ms / 1000.0).max(1e-9);
    // With retention, compaction deleted most frames: what was written is
    // estimated as puts x the mean frame (every record has the same shape),
    // and the file bytes by the same padding ratio as what is left.
    let (written_frame_bytes, written_disk_bytes) = match verification.check {
        Check::ExactFrame => (verification.frame_bytes, verification.disk_bytes),
        Check::SameOrNewerVersion => {
            let per_frame = verification.frame_bytes as f64 / verification.frames.max(1) as f64;
            let padding = verification.disk_bytes as f64 / verification.frame_bytes.max(1) as f64;
            let frames = per_frame * result.puts as f64;
            (frames as u64, (frames * padding) as u64)
        }
    };
    let write_mb_per_s = per_s(written_frame_bytes);
    let efficiency = baseline.as_ref().map(|b| {
        let ceiling = match args.durability {
            DurabilityArg::Sync => b.durable_write_mb_per_s,
            DurabilityArg::Async => b.seq_write_mb_per_s,
        };
        write_mb_per_s / ceiling.max(1e-9)
    });
    // Sync only: the store's MB/s over one of the baseline's durable figures.
    let sync_ratio = |figure: fn(&Baseline) -> f64| match (&baseline, args.durability) {
        (Some(b), DurabilityArg::Sync) => Some(write_mb_per_s / figure(b).max(1e-9)),
        _ => None,
    };
    let efficiency_at_workload_depth = sync_ratio(|b| b.durable_at_workload_depth_mb_per_s);
    let efficiency_vs_shard_pattern = sync_ratio(|b| b.durable_one_per_shard_mb_per_s);
    let efficiency_vs_group_commit = sync_ratio(|b| b.group_commit_mb_per_s);
    let cpu = cpu_before
        .zip(cpu_after)
        .map(|((u0, s0), (u1, s1))| (u1 - u0, s1 - s0));
    let soak = sampling::summarize(&result.samples);
    let put_latency_us = LatencySummary::from_ns(&result.put_latency_ns);
    let seed_design = design_before.zip(design_after).map(|(before, after)| {
        Comparison::new(
            durable_design,
            before,
            after,
            result.puts as f64 * 1e3 / wall_ms.max(1e-9),
            &put_latency_us,
            store_cpu_us_per_put,
        )
    });
    let per_frame_byte =
        |bytes: Option<u64>| bytes.map(|b| b as f64 / written_frame_bytes.max(1) as f64);
    let report = Report {
        ringstore_load_version: env!("CARGO_PKG_VERSION"),
        io_backend,
        puts: result.puts,
        stale_puts: result.stale_puts,
        put_errors: result.put_errors,
        first_put_error: result.first_put_error.clone(),
        gets: result.gets,
        get_hits: result.get_hits,
        get_misses: result.gets - result.get_hits,
        lost: verification.lost,
        wall_ms,
        close_ms: ms(close_time),
        close_error: closed.err().map(|e| e.to_string()),
        writes_per_ms: result.puts as f64 / wall_ms.max(1e-9),
        reads_per_ms: result.gets as f64 / wall_ms.max(1e-9),
        write_mb_per_s,
        disk_mb_per_s: per_s(written_disk_bytes),
        write_bytes_estimated: verification.check == Check::SameOrNewerVersion,
        mean_record_bytes: verification.frame_bytes as f64 / verification.frames.max(1) as f64,
        put_latency_us,
        put_latency_corrected_us: LatencySummary::from_ns(&result.put_latency_corrected_ns),
        put_in_store_us: put_in_store,
        put_queued_us: put_queued,
        write_us: write,
        get_latency_us: LatencySummary::from_ns(&result.get_latency_ns),
        timer_control_us: LatencySummary::from_ns(&result.timer_control_ns),
        slow_gets: result.slow_gets.map(|s| SlowGetFigures {
            threshold_us: crate::workload::SLOW_GET.as_secs_f64() * 1e6,
            count: s.count,
            mostly_running: s.mostly_running,
            cpu_max_us: s.cpu_max.as_secs_f64() * 1e6,
        }),
        write_ticks_missed: result.write_ticks_missed,
        read_ticks_missed: result.read_ticks_missed,
        baseline,
        efficiency,
        efficiency_at_workload_depth,
        efficiency_vs_shard_pattern,
        efficiency_vs_group_commit,
        peak_rss_bytes: peak_rss,
        rss_before_workload_bytes: rss_before_workload,
        live_data_bytes: (verification.frame_bytes as f64 / verification.frames.max(1) as f64
            * keys.len() as f64) as u64,
        cpu_seconds: cpu.map(|(u, s)| u + s),
        cpu_user_seconds: cpu.map(|(u, _)| u),
        cpu_system_seconds: cpu.map(|(_, s)| s),
        store_cpu_seconds_per_gb: cpu.map(|(u, s)| {
            (u + s - result.generation_cpu.as_secs_f64()).max(0.0)
                / (written_frame_bytes as f64 / 1e9).max(1e-9)
        }),
        store_cpu_us_per_put,
        process_write_bytes: process_written,
        process_write_bytes_per_frame_byte: per_frame_byte(process_written),
        device_write_bytes: device_written,
        device_write_bytes_per_frame_byte: per_frame_byte(device_written),
        seed_design,
        generation: Generation {
            pool_strings: payload.pool_len(),
            pool_prepare_ms: ms(payload.prepare_time),
            record_build_ms_total: ms(result.build_time),
            record_build_us_mean: ms(result.build_time) * 1000.0 / result.puts.max(1) as f64,
            writer_cpu_outside_puts_seconds: result.generation_cpu.as_secs_f64(),
            reader_cpu_seconds: result.reader_cpu.as_secs_f64(),
        },
        shards,
        verification,
        recovery,
        soak,
        samples: result.samples,
        config: args,
        data_dir,
        kept: false,
        device,
    };
    let kept = report.config.keep;
    Ok(Outcome {
        report: Report { kept, ..report },
        put_latency_ns: result.put_latency_ns,
        get_latency_ns: result.get_latency_ns,
    })
}

/// Reopens the closed store, times recovery and checks every key is back at
/// its newest acknowledged version.
fn reopen(config: Config, keys: &[String], acked: &AckLog) -> Result<RecoveryFigures, LoadError> {
    let newest = acked.newest_per_key(keys.len())?;
    let started = Instant::now();
    let store = Store::open(config)?;
    let open_time = started.elapsed();
    let mismatched_keys = keys
        .iter()
        .zip(&newest)
        .filter(|(key, want)| match want {
            Some(want) => store.get(key).is_none_or(|r| r.version() < *want),
            None => false,
        })
        .count() as u64;
    let report = store.recovery_report().clone();
    store.close()?;
    Ok(RecoveryFigures {
        open_ms: ms(open_time),
        recovery_ms: ms(report.elapsed),
        segments: report.segments,
        frames: report.frames,
        bytes: report.bytes,
        keys: report.keys,
        segment_mb_per_s: report.bytes as f64 / 1e6 / open_time.as_secs_f64().max(1e-9),
        torn_tails: report.torn_tails.len(),
        mismatched_keys,
    })
}

/// Whether `path`'s parent exists (for output files), so a typo fails before
/// a long run rather than after it.
pub fn check_output_path(flag: &'static str, path: &Path) -> Result<(), LoadError> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() && !parent.is_dir() => {
            Err(LoadError::Usage {
                flag,
                reason: format!("directory {} does not exist", parent.display()),
            })
        }
        _ => Ok(()),
    }
}
