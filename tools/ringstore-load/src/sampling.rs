//! Time series for soak runs (`--sample-interval-ms`): every interval, the
//! process's RSS, the puts and gets of the interval with their own latency
//! percentiles, and the bytes of the store's data dir; at the end a summary
//! that says whether memory stayed flat and latency did not drift.
//!
//! Each worker records into its own interval histogram behind a mutex that
//! only the sampler contends for, once per interval, when it merges and
//! resets them; the run's totals are kept separately by the workers.

use std::fs;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::workload::LatencyHistogram;
use serde::Serialize;

use crate::system;
use crate::workload::Live;

/// Longest sleep of the sampler between checks that the writers are done.
const POLL: Duration = Duration::from_millis(50);
/// Share of the samples treated as warm-up and left out of the RSS figures.
const WARMUP_FRACTION: f64 = 0.1;

/// One interval of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// End of the interval, seconds since the workload started.
    pub t_s: f64,
    /// Length of the interval, seconds (the last one may be shorter).
    pub interval_s: f64,
    /// Resident set size at the end of the interval (VmRSS), bytes.
    pub rss_bytes: Option<u64>,
    /// Puts acknowledged in the interval.
    pub puts: u64,
    /// Gets done in the interval.
    pub gets: u64,
    /// Put latency of the interval's puts, µs (0 when there were none).
    pub put_p50_us: f64,
    /// 99th percentile of the same.
    pub put_p99_us: f64,
    /// Slowest of the same.
    pub put_max_us: f64,
    /// Get latency of the interval's gets, µs.
    pub get_p50_us: f64,
    /// 99th percentile of the same.
    pub get_p99_us: f64,
    /// Slowest of the same.
    pub get_max_us: f64,
    /// Sum of the file sizes in the store's data dir (segments, hints),
    /// bytes; falls when compaction deletes superseded segments.
    pub dir_bytes: Option<u64>,
    /// Files in the store's data dir.
    pub dir_files: Option<u64>,
    /// CPU this process used in the interval (user + system, all threads),
    /// % of one core.
    pub cpu_pct: Option<f64>,
    /// CPU the whole host used in the interval (everything but idle and
    /// iowait), % of all its cores: well above this process's share means
    /// something else competed for the machine.
    pub host_cpu_pct: Option<f64>,
}

impl Sample {
    /// The sample as one line for the terminal.
    pub fn line(&self) -> String {
        let mb =
            |b: Option<u64>| b.map_or_else(|| "?".to_owned(), |b| format!("{:.1}", b as f64 / 1e6));
        format!(
            "sample t={:>7.1}s rss={:>7}MB puts={:<6} gets={:<6} put_us p50/p99/max={:.0}/{:.0}/{:.0} \
             get_us p50/p99/max={:.1}/{:.1}/{:.0} dir={}MB files={} cpu={}% host={}%",
            self.t_s,
            mb(self.rss_bytes),
            self.puts,
            self.gets,
            self.put_p50_us,
            self.put_p99_us,
            self.put_max_us,
            self.get_p50_us,
            self.get_p99_us,
            self.get_max_us,
            mb(self.dir_bytes),
            self.dir_files
                .map_or_else(|| "?".to_owned(), |f| f.to_string()),
            pct(self.cpu_pct),
            pct(self.host_cpu_pct),
        )
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "?".to_owned(), |p| format!("{p:.0}"))
}

/// One interval histogram per writer and per reader.
#[derive(Debug)]
pub struct IntervalHistograms {
    puts: Vec<Mutex<LatencyHistogram>>,
    gets: Vec<Mutex<LatencyHistogram>>,
    empty: LatencyHistogram,
}

impl IntervalHistograms {
    /// Slots for `writers` and `readers`, each a copy of `empty`.
    pub fn new(writers: usize, readers: usize, empty: &LatencyHistogram) -> IntervalHistograms {
        let slots = |n: usize| {
            (0..n)
                .map(|_| Mutex::new(LatencyHistogram::new_from(empty)))
                .collect()
        };
        IntervalHistograms {
            puts: slots(writers),
            gets: slots(readers),
            empty: empty.clone(),
        }
    }

    /// Records a put latency of writer `id`.
    pub fn record_put(&self, id: usize, ns: u64) {
        record(self.puts.get(id), ns);
    }

    /// Records a get latency of reader `id`.
    pub fn record_get(&self, id: usize, ns: u64) {
        record(self.gets.get(id), ns);
    }

    /// Merges every slot of `slots` into one histogram and empties them.
    fn drain(&self, slots: &[Mutex<LatencyHistogram>]) -> LatencyHistogram {
        let mut merged = self.empty.clone();
        for slot in slots {
            if let Ok(mut h) = slot.lock() {
                // Same bounds everywhere, so adding cannot fail.
                let _ = merged.add(&*h);
                h.reset();
            }
        }
        merged
    }
}

fn record(slot: Option<&Mutex<LatencyHistogram>>, ns: u64) {
    if let Some(Ok(mut h)) = slot.map(Mutex::lock) {
        crate::workload::record_ns(&mut h, ns);
    }
}

/// (p50, p99, max) of a histogram of nanoseconds, in µs; zeros when empty.
fn percentiles_us(h: &LatencyHistogram) -> (f64, f64, f64) {
    if h.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let us = |ns: u64| ns as f64 / 1000.0;
    (
        us(h.value_at_quantile(0.5)),
        us(h.value_at_quantile(0.99)),
        us(h.max()),
    )
}

/// Takes a sample every `interval` from `started` until the writers are
/// done, plus a last (shorter) one covering the rest. Prints each sample
/// line to stderr.
pub fn run(
    live: &Live,
    histograms: &IntervalHistograms,
    store_dir: &Path,
    interval: Duration,
    started: Instant,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut last_end = Duration::ZERO;
    let (mut last_puts, mut last_gets) = (0u64, 0u64);
    let mut last_cpu = process_cpu_s();
    let mut last_host = system::host_cpu_ticks();
    let mut next: u32 = 1;
    loop {
        let due = interval.saturating_mul(next);
        let done = loop {
            if live.writers_done.load(Ordering::Acquire) {
                break true;
            }
            let now = started.elapsed();
            if now >= due {
                break false;
            }
            std::thread::sleep((due - now).min(POLL));
        };
        let end = started.elapsed();
        let puts = live.puts.load(Ordering::Relaxed);
        let gets = live.gets.load(Ordering::Relaxed);
        let put = percentiles_us(&histograms.drain(&histograms.puts));
        let get = percentiles_us(&histograms.drain(&histograms.gets));
        let dir = dir_usage(store_dir);
        let (cpu, host) = (process_cpu_s(), system::host_cpu_ticks());
        let interval_s = (end - last_end).as_secs_f64();
        let sample = Sample {
            t_s: end.as_secs_f64(),
            interval_s,
            rss_bytes: system::rss_bytes(),
            puts: puts - last_puts,
            gets: gets - last_gets,
            put_p50_us: put.0,
            put_p99_us: put.1,
            put_max_us: put.2,
            get_p50_us: get.0,
            get_p99_us: get.1,
            get_max_us: get.2,
            dir_bytes: dir.map(|(bytes, _)| bytes),
            dir_files: dir.map(|(_, files)| files),
            cpu_pct: cpu
                .zip(last_cpu)
                .map(|(now, then)| (now - then) / interval_s.max(1e-9) * 100.0),
            host_cpu_pct: host.zip(last_host).and_then(|((busy, total), (b0, t0))| {
                let total = total.checked_sub(t0).filter(|&t| t > 0)?;
                Some(busy.saturating_sub(b0) as f64 / total as f64 * 100.0)
            }),
        };
        // A sliver after the last full interval measures nothing useful.
        if !done || sample.interval_s >= interval.as_secs_f64() / 10.0 {
            eprintln!("ringstore-load: {}", sample.line());
            samples.push(sample);
        }
        if done {
            return samples;
        }
        (last_end, last_puts, last_gets) = (end, puts, gets);
        (last_cpu, last_host) = (cpu, host);
        // Skip intervals the sampler slept through (a stalled machine),
        // like the workers' tickers, rather than sampling back to back.
        let elapsed_intervals = end.as_nanos() / interval.as_nanos().max(1);
        next = u32::try_from(elapsed_intervals + 1).unwrap_or(u32::MAX);
    }
}

/// User + system CPU seconds of this process.
fn process_cpu_s() -> Option<f64> {
    system::cpu_seconds().map(|(user, sys)| user + sys)
}

/// (bytes, files) under the store dir: its shard folders, one level deep.
/// Files that vanish while listed (compaction) are skipped.
pub fn dir_usage(dir: &Path) -> Option<(u64, u64)> {
    let (mut bytes, mut files) = (0u64, 0u64);
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if meta.is_dir() {
            let Ok(listing) = fs::read_dir(entry.path()) else {
                continue;
            };
            for m in listing.flatten().filter_map(|e| e.metadata().ok()) {
                if m.is_file() {
                    bytes += m.len();
                    files += 1;
                }
            }
        } else if meta.is_file() {
            bytes += meta.len();
            files += 1;
        }
    }
    Some((bytes, files))
}

/// Whether a long run stayed healthy: RSS after warm-up and the drift of
/// the per-interval p99 latencies.
#[derive(Debug, Clone, Serialize)]
pub struct SoakSummary {
    /// Samples taken.
    pub samples: usize,
    /// Samples left out of the RSS figures as warm-up (the first 10 %).
    pub warmup_samples: usize,
    /// Smallest RSS after warm-up, bytes.
    pub rss_min_bytes: Option<u64>,
    /// Median RSS after warm-up, bytes.
    pub rss_median_bytes: Option<u64>,
    /// Largest RSS after warm-up, bytes.
    pub rss_max_bytes: Option<u64>,
    /// `(rss_max / rss_min − 1) × 100`: RSS stayed flat within this many %.
    pub rss_flat_pct: Option<f64>,
    /// Median of the per-interval put p99 over the first quarter of the
    /// samples (intervals with puts), µs.
    pub put_p99_first_quarter_us: Option<f64>,
    /// The same over the last quarter, µs.
    pub put_p99_last_quarter_us: Option<f64>,
    /// Last over first: above 1 means put latency grew during the run.
    pub put_p99_drift: Option<f64>,
    /// Median of the per-interval get p99, first quarter, µs.
    pub get_p99_first_quarter_us: Option<f64>,
    /// The same over the last quarter, µs.
    pub get_p99_last_quarter_us: Option<f64>,
    /// Last over first for gets.
    pub get_p99_drift: Option<f64>,
    /// Worst per-interval put p99, µs.
    pub put_p99_max_us: Option<f64>,
    /// Intervals whose put p99 exceeded 10 x the median per-interval put
    /// p99: stalls (compaction, a competing process) that medians hide.
    pub put_p99_spikes: usize,
    /// Worst per-interval get p99, µs.
    pub get_p99_max_us: Option<f64>,
    /// Largest data-dir size seen, bytes.
    pub dir_max_bytes: Option<u64>,
    /// Data-dir size at the last sample, bytes.
    pub dir_last_bytes: Option<u64>,
    /// Times the data dir shrank between samples (compactions deleting
    /// superseded segments).
    pub dir_shrinks: u64,
}

/// Median of `values` (sorted in place); `None` when empty.
fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return None;
    }
    let upper = values.get(n / 2).copied()?;
    if n % 2 == 1 {
        Some(upper)
    } else {
        values.get(n / 2 - 1).map(|lower| (lower + upper) / 2.0)
    }
}

/// (first-quarter median, last-quarter median, last/first) of `values`.
fn drift(values: &[f64]) -> (Option<f64>, Option<f64>, Option<f64>) {
    let quarter = values.len().div_ceil(4);
    let first = median(&mut values.iter().take(quarter).copied().collect::<Vec<_>>());
    let last = median(
        &mut values
            .iter()
            .skip(values.len() - quarter)
            .copied()
            .collect::<Vec<_>>(),
    );
    let ratio = first
        .zip(last)
        .filter(|(f, _)| *f > 0.0)
        .map(|(f, l)| l / f);
    (first, last, ratio)
}

/// Summarizes `samples`; `None` when there are none.
pub fn summarize(samples: &[Sample]) -> Option<SoakSummary> {
    if samples.is_empty() {
        return None;
    }
    let warmup = (samples.len() as f64 * WARMUP_FRACTION).floor() as usize;
    let mut rss: Vec<u64> = samples
        .iter()
        .skip(warmup)
        .filter_map(|s| s.rss_bytes)
        .collect();
    rss.sort_unstable();
    let rss_min = rss.first().copied();
    let rss_max = rss.last().copied();
    let rss_median = rss.get(rss.len() / 2).copied();
    let put_p99: Vec<f64> = samples
        .iter()
        .filter(|s| s.puts > 0)
        .map(|s| s.put_p99_us)
        .collect();
    let get_p99: Vec<f64> = samples
        .iter()
        .filter(|s| s.gets > 0)
        .map(|s| s.get_p99_us)
        .collect();
    let (put_first, put_last, put_drift) = drift(&put_p99);
    let put_median = median(&mut put_p99.clone());
    let put_p99_spikes =
        put_median.map_or(0, |m| put_p99.iter().filter(|&&p| p > 10.0 * m).count());
    let worst = |values: &[f64]| values.iter().copied().reduce(f64::max);
    let (get_first, get_last, get_drift) = drift(&get_p99);
    let dirs: Vec<u64> = samples.iter().filter_map(|s| s.dir_bytes).collect();
    Some(SoakSummary {
        samples: samples.len(),
        warmup_samples: warmup,
        rss_min_bytes: rss_min,
        rss_median_bytes: rss_median,
        rss_max_bytes: rss_max,
        rss_flat_pct: rss_min
            .zip(rss_max)
            .filter(|(min, _)| *min > 0)
            .map(|(min, max)| (max as f64 / min as f64 - 1.0) * 100.0),
        put_p99_first_quarter_us: put_first,
        put_p99_last_quarter_us: put_last,
        put_p99_drift: put_drift,
        get_p99_first_quarter_us: get_first,
        get_p99_last_quarter_us: get_last,
        get_p99_drift: get_drift,
        put_p99_max_us: worst(&put_p99),
        put_p99_spikes,
        get_p99_max_us: worst(&get_p99),
        dir_max_bytes: dirs.iter().max().copied(),
        dir_last_bytes: dirs.last().copied(),
        dir_shrinks: dirs.windows(2).filter(|w| w.get(1) < w.first()).count() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: f64, rss: u64, put_p99: f64, dir: u64) -> Sample {
        Sample {
            t_s: t,
            interval_s: 1.0,
            rss_bytes: Some(rss),
            puts: 10,
            gets: 10,
            put_p50_us: put_p99 / 2.0,
            put_p99_us: put_p99,
            put_max_us: put_p99 * 2.0,
            get_p50_us: 1.0,
            get_p99_us: 2.0,
            get_max_us: 3.0,
            dir_bytes: Some(dir),
            dir_files: Some(1),
            cpu_pct: Some(50.0),
            host_cpu_pct: Some(30.0),
        }
    }

    #[test]
    fn warmup_is_skipped_and_drift_compares_quarters() {
        // 20 samples: 2 of warm-up at 10 MB, then 100..=117 MB; put p99
        // 100 µs in the first half, 150 µs in the second; the dir shrinks
        // twice.
        let samples: Vec<Sample> = (0..20u64)
            .map(|i| {
                let rss = if i < 2 {
                    10_000_000
                } else {
                    100_000_000 + (i - 2) * 1_000_000
                };
                let p99 = if i < 10 { 100.0 } else { 150.0 };
                let dir = [5, 9, 3, 8, 2].get((i % 5) as usize).copied().unwrap_or(0) * (i + 1);
                sample(i as f64, rss, p99, dir)
            })
            .collect();
        let s = summarize(&samples).unwrap();
        assert_eq!((s.samples, s.warmup_samples), (20, 2));
        assert_eq!(s.rss_min_bytes, Some(100_000_000));
        assert_eq!(s.rss_max_bytes, Some(117_000_000));
        assert_eq!(s.rss_median_bytes, Some(109_000_000));
        assert!((s.rss_flat_pct.unwrap() - 17.0).abs() < 1e-9);
        assert_eq!(s.put_p99_first_quarter_us, Some(100.0));
        assert_eq!(s.put_p99_last_quarter_us, Some(150.0));
        assert!((s.put_p99_drift.unwrap() - 1.5).abs() < 1e-12);
        assert_eq!(s.get_p99_drift, Some(1.0));
        assert_eq!((s.put_p99_max_us, s.put_p99_spikes), (Some(150.0), 0));
        assert_eq!(s.get_p99_max_us, Some(2.0));
        assert!(s.dir_shrinks > 0);
    }

    #[test]
    fn no_samples_no_summary_and_medians_of_even_counts() {
        assert!(summarize(&[]).is_none());
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
        let (first, last, ratio) = drift(&[1.0]);
        assert_eq!((first, last, ratio), (Some(1.0), Some(1.0), Some(1.0)));
    }

    #[test]
    fn dir_usage_counts_files_one_level_deep() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("shard-0")).unwrap();
        fs::write(dir.path().join("shard-0/1.seg"), [0u8; 100]).unwrap();
        fs::write(dir.path().join("LOCK"), [0u8; 5]).unwrap();
        assert_eq!(dir_usage(dir.path()), Some((105, 2)));
        assert_eq!(dir_usage(&dir.path().join("missing")), None);
    }
}
