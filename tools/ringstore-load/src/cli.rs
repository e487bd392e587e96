//! Command-line flags: every knob of the workload, with its default.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde::Serialize;

use crate::error::LoadError;

const EXIT_CODES: &str = "\
Exit codes:
  0  the run completed and every acknowledged put was found on disk (lost = 0)
  1  the run failed (store, disk or put error); the message says what and where
  2  bad command line
  3  the run completed but acknowledged puts are missing from disk (lost > 0)

Units: latencies in microseconds, MB = 10^6 bytes. The default run is the
seed project's integration test (40 writers x 2400 puts of ~102.8 KB records
every 1 ms, 40 readers every 2 ms, 200 keys), about 10 GB written.";

/// When a put is acknowledged (see `ringstore::Durability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DurabilityArg {
    /// Acknowledge once durable (group commit; see --sync-method).
    Sync,
    /// Acknowledge after the memory update; flush in the background.
    Async,
}

impl DurabilityArg {
    /// The flag value: `sync` or `async`.
    pub fn name(self) -> &'static str {
        match self {
            DurabilityArg::Sync => "sync",
            DurabilityArg::Async => "async",
        }
    }
}

/// A design to run the same workload through (`--compare`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CompareArg {
    /// The seed project's architecture made durable: 8 `RwLock<HashMap>`
    /// shards, one bounded channel, 16 persister threads each appending to
    /// its own buffered file, one fdatasync per group of up to 64 records
    /// (no fdatasync with --durability async).
    SeedDesign,
}

/// How Sync batches are made durable (see `ringstore::SyncMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMethodArg {
    /// Segments opened O_DSYNC: each write durable at completion.
    Dsync,
    /// Each write followed by fdatasync.
    Fdatasync,
}

impl From<SyncMethodArg> for ringstore::SyncMethod {
    fn from(m: SyncMethodArg) -> Self {
        match m {
            SyncMethodArg::Dsync => ringstore::SyncMethod::Dsync,
            SyncMethodArg::Fdatasync => ringstore::SyncMethod::Fdatasync,
        }
    }
}

impl From<DurabilityArg> for ringstore::Durability {
    fn from(d: DurabilityArg) -> Self {
        match d {
            DurabilityArg::Sync => ringstore::Durability::Sync,
            DurabilityArg::Async => ringstore::Durability::Async,
        }
    }
}

/// Which I/O backend the store's shards use (see `ringstore::IoBackend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IoBackendArg {
    /// io_uring when the preflight check passes, else portable (with a
    /// logged reason).
    Auto,
    /// io_uring only: the run fails if it is unavailable.
    IoUring,
    /// Blocking O_DIRECT `pwrite` + `fdatasync` on std threads.
    Portable,
}

impl From<IoBackendArg> for ringstore::IoBackend {
    fn from(b: IoBackendArg) -> Self {
        match b {
            IoBackendArg::Auto => ringstore::IoBackend::Auto,
            IoBackendArg::IoUring => ringstore::IoBackend::IoUring,
            IoBackendArg::Portable => ringstore::IoBackend::Portable,
        }
    }
}

/// The name of a backend as the flag spells it: `auto`, `io-uring`,
/// `portable`.
pub fn backend_name(b: ringstore::IoBackend) -> &'static str {
    match b {
        ringstore::IoBackend::Auto => "auto",
        ringstore::IoBackend::IoUring => "io-uring",
        ringstore::IoBackend::Portable => "portable",
    }
}

/// Runs the seed workload against a fresh ringstore on a real disk and reports
/// put/get latency percentiles, throughput, and (with --baseline) what the raw
/// device gives in the same run.
#[derive(Debug, Clone, Parser, Serialize)]
#[command(name = "ringstore-load", version, after_help = EXIT_CODES)]
pub struct Args {
    /// Parent directory of the run's fresh temporary data dir. Must be on a
    /// filesystem with O_DIRECT (not tmpfs).
    #[arg(long, env = "RINGSTORE_LOAD_DIR", default_value = "/var/tmp")]
    pub dir: PathBuf,

    /// Writer threads.
    #[arg(long, default_value_t = 40)]
    pub writers: usize,

    /// Puts per writer (ignored with --duration).
    #[arg(long, default_value_t = 2400)]
    pub writes_per_writer: u64,

    /// Pause between a writer's puts, scheduled by deadline (missed ticks are
    /// skipped, never bunched). 0 = closed loop, as fast as possible.
    #[arg(long, default_value_t = 1)]
    pub write_interval_ms: u64,

    /// Pace the writers together at this fraction of the raw direct-write
    /// bandwidth the baseline measures just before the workload, instead of
    /// `--write-interval-ms` (needs `--baseline`). 0.5 is issue 7's "half of
    /// the device's bandwidth" on any disk. A put counts as its payload
    /// (doubles and strings); field names and framing add ~4 % to the seed's
    /// records. Bound: above 0, at most 10.
    #[arg(long, conflicts_with = "write_interval_ms")]
    pub offer_fraction: Option<f64>,

    /// The writers' pause that `--offer-fraction` came to, µs (set by the
    /// run once the baseline is measured; in the JSON's config).
    #[arg(skip)]
    pub paced_write_interval_us: Option<u64>,

    /// Reader threads; they read until the writers finish.
    #[arg(long, default_value_t = 40)]
    pub readers: usize,

    /// Pause between a reader's gets, scheduled by deadline. 0 = closed loop.
    #[arg(long, default_value_t = 2)]
    pub read_interval_ms: u64,

    /// Distinct keys (sensor0, sensor1, …), chosen uniformly at random.
    #[arg(long, default_value_t = 200)]
    pub keys: usize,

    /// Float fields per record (metricdbl1..N).
    #[arg(long, default_value_t = 50)]
    pub doubles: usize,

    /// String fields per record (metricstr1..N).
    #[arg(long, default_value_t = 50)]
    pub strings: usize,

    /// Characters per string field (a 128-hex-char SHA-512 digest repeated).
    #[arg(long, default_value_t = 2048)]
    pub string_len: usize,

    /// Store shards (executor threads) [default: the number of CPUs].
    #[arg(long)]
    pub shards: Option<usize>,

    /// When a put is acknowledged.
    #[arg(long, value_enum, default_value_t = DurabilityArg::Sync)]
    pub durability: DurabilityArg,

    /// Async mode: longest time an acknowledged record stays unflushed, in ms
    /// [default: the store's, 10].
    #[arg(long)]
    pub flush_interval_ms: Option<u64>,

    /// Group commits each shard keeps in flight (1 = no pipelining)
    /// [default: the store's, 2].
    #[arg(long)]
    pub pipeline_depth: Option<usize>,

    /// Signal a shard executor that has I/O due and has not turned for this
    /// long (0 = no watchdog) [default: the store's, 100].
    #[arg(long)]
    pub wake_stalled_shard_after_ms: Option<u64>,

    /// How Sync batches are made durable: `dsync` (O_DSYNC writes) or
    /// `fdatasync` (write, then fdatasync).
    #[arg(long, value_enum, default_value_t = SyncMethodArg::Dsync)]
    pub sync_method: SyncMethodArg,

    /// Largest group commit in bytes [default: the store's, 8 MiB].
    #[arg(long)]
    pub max_batch_bytes: Option<usize>,

    /// Most bytes the store keeps in superseded records' buffers for reuse
    /// (0 = free them all) [default: the store's, 8 MiB].
    #[arg(long)]
    pub record_buffer_pool_bytes: Option<usize>,

    /// I/O backend of the store; the one `auto` resolved to is reported.
    #[arg(long, value_enum, default_value_t = IoBackendArg::Auto)]
    pub io_backend: IoBackendArg,

    /// Retention: the store compacts in the background whenever its sealed
    /// segments exceed this many bytes (minimum 1 MiB), so long runs do not
    /// fill the disk. Compaction deletes superseded frames, so verification
    /// then counts a put as found when its key is on disk at that version or
    /// a newer one [default: off].
    #[arg(long, value_name = "BYTES")]
    pub compact_above_bytes: Option<u64>,

    /// Seal segments at this size, bytes (default: the store's, 256 MiB).
    #[arg(long, value_name = "BYTES")]
    pub max_segment_bytes: Option<u64>,

    /// Retired segment files each shard keeps for new segments to overwrite
    /// (default: the store's, 2; 0 deletes them).
    #[arg(long, value_name = "N")]
    pub spare_segments: Option<usize>,

    /// Every this many ms of the run, record a sample: RSS, puts and gets of
    /// the interval, their p50/p99/max latency in the interval, the data
    /// dir's bytes. Each sample is printed to stderr as a `sample` line and
    /// kept in the JSON under "samples"; the report ends with a soak summary
    /// (RSS flatness, p99 drift). 0 = off.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub sample_interval_ms: u64,

    /// Run the writers for this long instead of a count: seconds, or a number
    /// with ms, s or m (e.g. 500ms, 30s, 2m).
    #[arg(long, value_parser = parse_duration_s)]
    pub duration: Option<f64>,

    /// Seed of every random choice (keys, payloads), for reproducible runs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Write the full results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Write an SVG of the put and get latency percentile curves to this file.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,

    /// Keep the data dir after the run (its path is printed).
    #[arg(long)]
    pub keep: bool,

    /// Measure the raw device in the same dir before and after the store:
    /// direct-I/O bandwidth, durable (O_DSYNC) bandwidth, write+fdatasync
    /// latency, and the workload's closed loop through a bare group-commit
    /// log (one appending O_DSYNC file per shard).
    #[arg(long)]
    pub baseline: bool,

    /// Also run the same workload (same seed, keys and records) in the same
    /// dir through another design, before and after the store, and report
    /// the store's puts/s, put latency and CPU per put as ratios to the
    /// mean of those two runs (`seed_design` in the JSON).
    #[arg(long, value_enum, value_name = "DESIGN")]
    pub compare: Option<CompareArg>,

    /// MiB written by each baseline bandwidth test.
    #[arg(long, default_value_t = 256)]
    pub baseline_mib: u64,

    /// Writes in flight in the baseline bandwidth tests (one thread each,
    /// each appending 1 MiB writes to its own file).
    #[arg(long, default_value_t = 32)]
    pub baseline_depth: usize,

    /// After the run, reopen the store, time its recovery and check that every
    /// key came back at its newest acknowledged version.
    #[arg(long)]
    pub recovery: bool,

    /// Also read each reader thread's CPU time around every get, and split
    /// the gets slower than 100 µs into those whose thread ran for most of
    /// the get (the get's own work) and those that waited for a CPU. Off by
    /// default: the extra syscall before each get can move a pending
    /// preemption out of the timed window.
    #[arg(long)]
    pub get_cpu: bool,
}

impl Args {
    /// Pause between a writer's puts: the one `--offer-fraction` came to,
    /// else `--write-interval-ms`. Zero is a closed loop.
    pub fn write_interval(&self) -> Duration {
        self.paced_write_interval_us.map_or_else(
            || Duration::from_millis(self.write_interval_ms),
            Duration::from_micros,
        )
    }

    /// Pause between a reader's gets (`--read-interval-ms`).
    pub fn read_interval(&self) -> Duration {
        Duration::from_millis(self.read_interval_ms)
    }

    /// Sets the writers' pause so that together they offer `fraction` of
    /// `raw_mb_per_s` (1 MB/s is one byte per µs), with each put counted as
    /// [`Args::record_bytes_estimate`] bytes.
    pub fn pace_at(&mut self, fraction: f64, raw_mb_per_s: f64) {
        let offered_bytes_per_us = (fraction * raw_mb_per_s).max(f64::MIN_POSITIVE);
        let interval_us =
            self.writers as f64 * self.record_bytes_estimate() as f64 / offered_bytes_per_us;
        self.paced_write_interval_us = Some((interval_us.round() as u64).max(1));
    }

    /// Payload bytes of one record (doubles and strings, without field
    /// names and framing): what each writer holds in flight.
    pub fn record_bytes_estimate(&self) -> usize {
        self.doubles * 8 + self.strings * self.string_len
    }

    /// Checks the values clap cannot: ranges that depend on meaning.
    pub fn validate(&self) -> Result<(), LoadError> {
        let bad = |flag: &'static str, reason: &str| {
            Err(LoadError::Usage {
                flag,
                reason: reason.to_owned(),
            })
        };
        if self.writers == 0 {
            return bad("writers", "must be at least 1");
        }
        if self.keys == 0 {
            return bad("keys", "must be at least 1");
        }
        if u32::try_from(self.keys).is_err() {
            return bad("keys", "must fit in 32 bits");
        }
        if self.duration.is_none() && self.writes_per_writer == 0 {
            return bad(
                "writes-per-writer",
                "must be at least 1 (or give --duration)",
            );
        }
        if self.shards == Some(0) {
            return bad("shards", "must be at least 1");
        }
        if self.compact_above_bytes.is_some_and(|b| b < 1 << 20) {
            return bad("compact-above-bytes", "must be at least 1048576 (1 MiB)");
        }
        if let Some(fraction) = self.offer_fraction {
            if !(fraction > 0.0 && fraction <= 10.0) {
                return bad("offer-fraction", "must be above 0 and at most 10");
            }
            if !self.baseline {
                return bad(
                    "offer-fraction",
                    "needs --baseline: it paces the writers at a fraction of the bandwidth the baseline measures",
                );
            }
        }
        if self.baseline && (self.baseline_depth == 0 || self.baseline_mib == 0) {
            return bad(
                "baseline-depth",
                "--baseline-depth and --baseline-mib must be at least 1",
            );
        }
        Ok(())
    }
}

/// `500ms`, `30s`, `2m` or a plain number of seconds → seconds.
fn parse_duration_s(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 500ms, 30s, 2m)"))?;
    let seconds = value * scale;
    if seconds.is_finite() && seconds > 0.0 {
        Ok(seconds)
    } else {
        Err(format!("`{text}` must be a positive duration"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration_s("30").unwrap(), 30.0);
        assert_eq!(parse_duration_s("30s").unwrap(), 30.0);
        assert_eq!(parse_duration_s("500ms").unwrap(), 0.5);
        assert_eq!(parse_duration_s("2m").unwrap(), 120.0);
        assert!(parse_duration_s("0").is_err());
        assert!(parse_duration_s("soon").is_err());
    }

    #[test]
    fn offer_fraction_paces_the_writers_at_that_share_of_the_raw_bandwidth() {
        let mut args =
            Args::try_parse_from(["ringstore-load", "--baseline", "--offer-fraction", "0.5"])
                .unwrap();
        args.validate().unwrap();
        assert_eq!(args.write_interval(), Duration::from_millis(1));
        // 40 writers x 102,800 payload bytes at half of 1,600 MB/s (800
        // bytes per µs): one put per writer every 5,140 µs.
        args.pace_at(0.5, 1600.0);
        assert_eq!(args.paced_write_interval_us, Some(5140));
        assert_eq!(args.write_interval(), Duration::from_micros(5140));
        // A disk too fast to pace still gets a pause of at least 1 µs.
        args.pace_at(10.0, 1e12);
        assert_eq!(args.write_interval(), Duration::from_micros(1));
    }

    #[test]
    fn offer_fraction_needs_the_baseline_and_a_sane_share() {
        let refused = |argv: &[&str]| {
            let args = Args::try_parse_from(argv).unwrap();
            match args.validate() {
                Err(LoadError::Usage { flag, .. }) => flag,
                other => panic!("{argv:?} gave {other:?}"),
            }
        };
        assert_eq!(
            refused(&["ringstore-load", "--offer-fraction", "0.5"]),
            "offer-fraction"
        );
        for bad in ["0", "-1", "10.5", "NaN"] {
            let flag = format!("--offer-fraction={bad}");
            assert_eq!(
                refused(&["ringstore-load", "--baseline", &flag]),
                "offer-fraction",
                "{bad}"
            );
        }
        assert!(
            Args::try_parse_from([
                "ringstore-load",
                "--baseline",
                "--offer-fraction",
                "0.5",
                "--write-interval-ms",
                "3"
            ])
            .is_err(),
            "a fraction and an interval conflict"
        );
    }

    #[test]
    fn defaults_are_the_seed_workload() {
        let args = Args::try_parse_from(["ringstore-load"]).unwrap();
        assert_eq!(
            (args.writers, args.writes_per_writer, args.write_interval_ms),
            (40, 2400, 1)
        );
        assert_eq!(
            (args.readers, args.read_interval_ms, args.keys),
            (40, 2, 200)
        );
        assert_eq!(
            (args.doubles, args.strings, args.string_len),
            (50, 50, 2048)
        );
        assert_eq!(args.io_backend, IoBackendArg::Auto);
        assert_eq!(
            (args.compact_above_bytes, args.sample_interval_ms),
            (None, 0)
        );
        args.validate().unwrap();
    }
}
