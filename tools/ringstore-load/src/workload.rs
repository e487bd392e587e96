//! The workload: writer threads putting fresh records to random keys and
//! reader threads getting random keys, each on a deadline schedule, every
//! operation timed into its thread's HDR histogram (nanoseconds), and with
//! `--sample-interval-ms` also into its interval histogram for the sampler.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::thread::ScopedJoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ringstore::{PutOutcome, Record, Store};

use crate::acklog::{AckLog, AckWriter};
use crate::error::LoadError;
use crate::pacing::Ticker;
use crate::payload::{Payload, Rng, STRINGS_PER_PUT, now_ns};
use crate::progress;
use crate::sampling::{self, IntervalHistograms, Sample};

/// What the workload runs against: the store, or the seed-design baseline
/// (`crate::seed_design`), through the same three calls, so both run the
/// same workload code.
pub trait Target: Sync {
    /// What a failed put says.
    type Error: std::fmt::Display;
    /// What a get hands back (dropped after the get is timed).
    type Handle;
    /// Stores `record` under `key` and returns once it is acknowledged.
    fn put_blocking(&self, key: &str, record: &Record) -> Result<PutOutcome, Self::Error>;
    /// The newest record of `key`, if any.
    fn get(&self, key: &str) -> Option<Self::Handle>;
    /// The directory it writes to (the sampler measures its size).
    fn dir(&self) -> &Path;
}

impl Target for Store {
    type Error = ringstore::Error;
    type Handle = ringstore::RecordRef;
    fn put_blocking(&self, key: &str, record: &Record) -> Result<PutOutcome, Self::Error> {
        Store::put_blocking(self, key, record)
    }
    fn get(&self, key: &str) -> Option<Self::Handle> {
        Store::get(self, key)
    }
    fn dir(&self) -> &Path {
        Store::dir(self)
    }
}

/// Records each writer keeps and refreshes in turn. `put` serializes the
/// record before it returns, so one is enough; more would only add the load
/// generator's memory to the peak RSS the run reports.
const RECORDS_PER_WRITER: usize = 1;

/// Longest latency a histogram holds exactly (longer ones saturate): 10 min.
const MAX_LATENCY_NS: u64 = 600_000_000_000;

/// A latency histogram in nanoseconds. Counts are `u32` (no thread records
/// 4 billion values into one bucket) and the histogram grows only as far
/// as the largest value recorded: each writer and reader keeps two, and
/// with fixed 10-minute bounds and `u64` counts those 160 histograms took
/// 40 MB (254 KB each, zero-filled) — about a third of the peak RSS the
/// seed run reported for the whole process (measured with heaptrack).
pub type LatencyHistogram = Histogram<u32>;

/// Records `ns` (capped at 10 minutes). A growing histogram only fails to
/// record a value it cannot grow to; the cap keeps every value in reach.
pub fn record_ns(h: &mut LatencyHistogram, ns: u64) {
    let recorded = h.record(ns.min(MAX_LATENCY_NS));
    debug_assert!(recorded.is_ok(), "{recorded:?}");
}

/// An empty latency histogram: nanoseconds, 3 significant digits.
pub fn new_histogram() -> Result<LatencyHistogram, LoadError> {
    Histogram::new(3).map_err(|e| LoadError::Histogram {
        reason: e.to_string(),
    })
}

/// What the workload does.
#[derive(Debug, Clone)]
pub struct WorkloadSpec {
    /// Writer threads.
    pub writers: usize,
    /// Puts per writer (when `duration` is `None`).
    pub writes_per_writer: u64,
    /// Pause between a writer's puts (zero: closed loop).
    pub write_interval: Duration,
    /// Reader threads.
    pub readers: usize,
    /// Pause between a reader's gets (zero: closed loop).
    pub read_interval: Duration,
    /// Run the writers for this long instead of a count.
    pub duration: Option<Duration>,
    /// Seed of every random choice.
    pub seed: u64,
    /// Take a sample this often (`None`: no samples).
    pub sample_interval: Option<Duration>,
    /// Directory of the acknowledged-put files (one per writer).
    pub ack_dir: PathBuf,
    /// Also time each get's thread CPU time (`--get-cpu`).
    pub get_cpu: bool,
}

/// Gets slower than this are split by whether they ran or waited.
pub const SLOW_GET: Duration = Duration::from_micros(100);

/// `--get-cpu`: what the slow gets did with their time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SlowGets {
    /// Gets slower than [`SLOW_GET`].
    pub count: u64,
    /// Of those, the ones whose thread ran on a CPU for more than half of
    /// the get: the get itself worked that long.
    pub mostly_running: u64,
    /// The longest thread CPU time of any get.
    pub cpu_max: Duration,
}

/// Counters the progress bar reads while the run goes on.
#[derive(Debug, Default)]
pub struct Live {
    /// Puts acknowledged so far.
    pub puts: AtomicU64,
    /// Gets done so far.
    pub gets: AtomicU64,
    /// Set when a put failed: every writer stops.
    pub failed: AtomicBool,
    /// Set when every writer has finished: readers and the bar stop.
    pub writers_done: AtomicBool,
}

/// One acknowledged put: the key's index and the version written.
pub type Acked = (u32, i64);

/// Everything the workload measured.
#[derive(Debug)]
pub struct WorkloadResult {
    /// Put latency, call to acknowledgement, nanoseconds.
    pub put_latency_ns: LatencyHistogram,
    /// Put latency corrected for coordinated omission: a put that took
    /// several intervals also stands for the puts its writer could not start
    /// on schedule (HdrHistogram's `record_correct`). Equal to
    /// `put_latency_ns` in a closed loop.
    pub put_latency_corrected_ns: LatencyHistogram,
    /// Get latency, nanoseconds.
    pub get_latency_ns: LatencyHistogram,
    /// `--get-cpu`: the slow gets split by running vs waiting.
    pub slow_gets: Option<SlowGets>,
    /// Puts acknowledged (applied or stale).
    pub puts: u64,
    /// Puts acknowledged as stale (a newer version was already stored).
    pub stale_puts: u64,
    /// Puts that returned an error.
    pub put_errors: u64,
    /// The first put error, if any.
    pub first_put_error: Option<String>,
    /// Gets done.
    pub gets: u64,
    /// Gets that found a record.
    pub get_hits: u64,
    /// Every acknowledged put, for verification.
    pub acked: AckLog,
    /// From the start signal until the last writer finished.
    pub wall: Duration,
    /// Time writers spent building records (summed over writers).
    pub build_time: Duration,
    /// CPU time of the writer threads outside `put_blocking` (building
    /// records, pacing, bookkeeping): the load generator's own cost, to be
    /// subtracted from the process CPU when judging the store.
    pub generation_cpu: Duration,
    /// CPU time of the reader threads from the start signal to their end
    /// (their gets, timing, control busy-waits and sleeps' wake-ups).
    pub reader_cpu: Duration,
    /// The control for get latency: right after each get, the reader
    /// busy-waits for as long as a typical get of its own (a running mean of
    /// its get latencies, outliers clipped) and times that the same way,
    /// nanoseconds. Any excess over the wait is the machine (the thread
    /// preempted, an interrupt), not the store: a window as long as a get
    /// is hit as often as a get is.
    pub timer_control_ns: LatencyHistogram,
    /// Writer ticks skipped because a put took longer than the interval.
    pub write_ticks_missed: u64,
    /// Reader ticks skipped.
    pub read_ticks_missed: u64,
    /// The time series (`sample_interval`), else empty.
    pub samples: Vec<Sample>,
}

/// A start line: workers wait until the main thread opens or aborts it.
#[derive(Debug, Default)]
struct Gate {
    state: Mutex<Option<bool>>,
    changed: Condvar,
}

impl Gate {
    fn wait(&self) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        loop {
            if let Some(go) = *state {
                return go;
            }
            state = match self.changed.wait(state) {
                Ok(s) => s,
                Err(_) => return false,
            };
        }
    }

    fn set(&self, go: bool) {
        if let Ok(mut state) = self.state.lock() {
            *state = Some(go);
        }
        self.changed.notify_all();
    }
}

/// What one writer measured.
struct WriterOut {
    latency: LatencyHistogram,
    corrected: LatencyHistogram,
    acked: AckWriter,
    /// Appending to `acked` failed (the writer stopped).
    ack_error: Option<LoadError>,
    stale: u64,
    errors: u64,
    first_error: Option<String>,
    build_time: Duration,
    generation_cpu: Duration,
    missed: u64,
}

/// What one reader measured.
struct ReaderOut {
    latency: LatencyHistogram,
    control: LatencyHistogram,
    slow: SlowGets,
    gets: u64,
    hits: u64,
    missed: u64,
    cpu: Duration,
}

/// Shared read-only inputs of the workers.
struct Shared<'a, T: Target> {
    store: &'a T,
    payload: &'a Payload,
    keys: &'a [String],
    spec: &'a WorkloadSpec,
    live: &'a Live,
    gate: &'a Gate,
    empty: &'a LatencyHistogram,
    interval: Option<&'a IntervalHistograms>,
}

/// Runs the workload against `store` and returns what it measured.
pub fn run<T: Target>(
    store: &T,
    payload: &Payload,
    keys: &[String],
    spec: &WorkloadSpec,
) -> Result<WorkloadResult, LoadError> {
    let empty = new_histogram()?;
    let live = Live::default();
    let gate = Gate::default();
    let interval = spec
        .sample_interval
        .map(|_| IntervalHistograms::new(spec.writers, spec.readers, &empty));
    let shared = Shared {
        store,
        payload,
        keys,
        spec,
        live: &live,
        gate: &gate,
        empty: &empty,
        interval: interval.as_ref(),
    };
    std::fs::create_dir_all(&spec.ack_dir)
        .map_err(|e| LoadError::io("creating", &spec.ack_dir, e))?;
    let mut ack_writers = Vec::with_capacity(spec.writers);
    for id in 0..spec.writers {
        ack_writers.push(AckWriter::create(
            &spec.ack_dir.join(format!("writer-{id}.acked")),
        )?);
    }
    let target = match spec.duration {
        Some(d) => progress::Target::Time(d),
        None => progress::Target::Puts(spec.writes_per_writer.saturating_mul(spec.writers as u64)),
    };
    std::thread::scope(|scope| {
        let shared = &shared;
        let mut writers: Vec<ScopedJoinHandle<'_, WriterOut>> = Vec::new();
        let mut readers: Vec<ScopedJoinHandle<'_, ReaderOut>> = Vec::new();
        let mut spawned = Ok(());
        for (id, acked) in ack_writers.into_iter().enumerate() {
            match std::thread::Builder::new()
                .name(format!("writer-{id}"))
                .spawn_scoped(scope, move || writer(shared, id, acked))
            {
                Ok(h) => writers.push(h),
                Err(e) => {
                    spawned = Err(LoadError::io("spawning writer thread", "", e));
                    break;
                }
            }
        }
        for id in 0..spec.readers {
            if spawned.is_err() {
                break;
            }
            match std::thread::Builder::new()
                .name(format!("reader-{id}"))
                .spawn_scoped(scope, move || reader(shared, id))
            {
                Ok(h) => readers.push(h),
                Err(e) => spawned = Err(LoadError::io("spawning reader thread", "", e)),
            }
        }
        if let Err(e) = spawned {
            gate.set(false);
            live.writers_done.store(true, Ordering::Release);
            return Err(e);
        }
        // Sample lines are the progress report when sampling; the bar would
        // overwrite them.
        let bar = match spec.sample_interval {
            None => progress::spawn(scope, &live, target),
            Some(_) => None,
        };
        gate.set(true);
        let started = Instant::now();
        let sampler = match (spec.sample_interval, interval.as_ref()) {
            (Some(every), Some(histograms)) => {
                let live = &live;
                let spawned = std::thread::Builder::new()
                    .name("sampler".into())
                    .spawn_scoped(scope, move || {
                        sampling::run(live, histograms, store.dir(), every, started)
                    });
                if spawned.is_err() {
                    // The writers are already running: stop them, then fail.
                    live.failed.store(true, Ordering::Relaxed);
                }
                Some(spawned)
            }
            _ => None,
        };
        let writer_outs: Vec<_> = writers.into_iter().map(ScopedJoinHandle::join).collect();
        let wall = started.elapsed();
        live.writers_done.store(true, Ordering::Release);
        let reader_outs: Vec<_> = readers.into_iter().map(ScopedJoinHandle::join).collect();
        if let Some(bar) = bar {
            let _ = bar.join();
        }
        let samples = match sampler {
            Some(Ok(h)) => h
                .join()
                .map_err(|_| LoadError::Panicked { role: "sampler" })?,
            Some(Err(e)) => return Err(LoadError::io("spawning the sampler thread", "", e)),
            None => Vec::new(),
        };
        let mut result = merge(&empty, writer_outs, reader_outs, wall, spec.get_cpu)?;
        result.samples = samples;
        Ok(result)
    })
}

fn merge(
    empty: &LatencyHistogram,
    writer_outs: Vec<std::thread::Result<WriterOut>>,
    reader_outs: Vec<std::thread::Result<ReaderOut>>,
    wall: Duration,
    get_cpu: bool,
) -> Result<WorkloadResult, LoadError> {
    let mut result = WorkloadResult {
        put_latency_ns: Histogram::new_from(empty),
        put_latency_corrected_ns: Histogram::new_from(empty),
        get_latency_ns: Histogram::new_from(empty),
        slow_gets: None,
        puts: 0,
        stale_puts: 0,
        put_errors: 0,
        first_put_error: None,
        gets: 0,
        get_hits: 0,
        acked: AckLog::default(),
        wall,
        build_time: Duration::ZERO,
        generation_cpu: Duration::ZERO,
        reader_cpu: Duration::ZERO,
        timer_control_ns: Histogram::new_from(empty),
        write_ticks_missed: 0,
        read_ticks_missed: 0,
        samples: Vec::new(),
    };
    for out in writer_outs {
        let out = out.map_err(|_| LoadError::Panicked { role: "writer" })?;
        // Same bounds everywhere, so adding cannot fail.
        let _ = result.put_latency_ns.add(&out.latency);
        let _ = result.put_latency_corrected_ns.add(&out.corrected);
        if let Some(e) = out.ack_error {
            return Err(e);
        }
        result.puts += out.acked.count();
        result.acked.add(out.acked.finish()?);
        result.stale_puts += out.stale;
        result.put_errors += out.errors;
        if result.first_put_error.is_none() {
            result.first_put_error = out.first_error;
        }
        result.build_time += out.build_time;
        result.generation_cpu += out.generation_cpu;
        result.write_ticks_missed += out.missed;
    }
    for out in reader_outs {
        let out = out.map_err(|_| LoadError::Panicked { role: "reader" })?;
        let _ = result.get_latency_ns.add(&out.latency);
        let _ = result.timer_control_ns.add(&out.control);
        if get_cpu {
            let slow = result.slow_gets.get_or_insert_with(SlowGets::default);
            slow.count += out.slow.count;
            slow.mostly_running += out.slow.mostly_running;
            slow.cpu_max = slow.cpu_max.max(out.slow.cpu_max);
        }
        result.gets += out.gets;
        result.get_hits += out.hits;
        result.read_ticks_missed += out.missed;
        result.reader_cpu += out.cpu;
    }
    Ok(result)
}

fn writer<T: Target>(shared: &Shared<'_, T>, id: usize, acked: AckWriter) -> WriterOut {
    let spec = shared.spec;
    let mut rng = Rng::new(spec.seed, id as u64);
    let mut out = WriterOut {
        latency: Histogram::new_from(shared.empty),
        corrected: Histogram::new_from(shared.empty),
        acked,
        ack_error: None,
        stale: 0,
        errors: 0,
        first_error: None,
        build_time: Duration::ZERO,
        generation_cpu: Duration::ZERO,
        missed: 0,
    };
    let mut cpu_in_puts = Duration::ZERO;
    let cpu_at_start = thread_cpu();
    let mut records = shared.payload.records(&mut rng, RECORDS_PER_WRITER);
    if !shared.gate.wait() {
        return out;
    }
    let origin = Instant::now() + phase(spec.write_interval, id, spec.writers);
    let mut ticker = Ticker::new(origin, spec.write_interval);
    let mut done: u64 = 0;
    // Closed loop (zero interval): nothing was scheduled, nothing to correct.
    let interval_ns = if spec.write_interval.is_zero() {
        0
    } else {
        nanos(spec.write_interval)
    };
    loop {
        let finished = match spec.duration {
            Some(d) => origin.elapsed() >= d,
            None => done >= spec.writes_per_writer,
        };
        if finished || shared.live.failed.load(Ordering::Relaxed) {
            break;
        }
        ticker.wait();
        let index = rng.below(shared.keys.len());
        let Some(key) = shared.keys.get(index) else {
            break;
        };
        let slot = (done % RECORDS_PER_WRITER as u64) as usize;
        let Some(record) = records.get_mut(slot) else {
            break;
        };
        let build_started = Instant::now();
        shared
            .payload
            .refresh(record, key, &mut rng, STRINGS_PER_PUT);
        let version = now_ns();
        record.insert("collection_time", version);
        let cpu_before_put = thread_cpu();
        let put_started = Instant::now();
        out.build_time += put_started - build_started;
        let result = shared.store.put_blocking(key, record);
        let latency = put_started.elapsed();
        cpu_in_puts += thread_cpu().saturating_sub(cpu_before_put);
        done += 1;
        match result {
            Ok(outcome) => {
                record_ns(&mut out.latency, nanos(latency));
                let _ = out
                    .corrected
                    .record_correct(nanos(latency).min(MAX_LATENCY_NS), interval_ns);
                if let Some(interval) = shared.interval {
                    interval.record_put(id, nanos(latency));
                }
                if matches!(outcome, PutOutcome::Stale { .. }) {
                    out.stale += 1;
                }
                shared.live.puts.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = out.acked.push((index as u32, version)) {
                    out.ack_error = Some(e);
                    shared.live.failed.store(true, Ordering::Relaxed);
                    break;
                }
            }
            Err(e) => {
                out.errors += 1;
                out.first_error = Some(format!("put of key {key}: {e}"));
                shared.live.failed.store(true, Ordering::Relaxed);
                break;
            }
        }
    }
    out.missed = ticker.missed();
    out.generation_cpu = thread_cpu()
        .saturating_sub(cpu_at_start)
        .saturating_sub(cpu_in_puts);
    out
}

/// Worker `id`'s offset into the first interval: the `n` workers' ticks are
/// spread evenly over each interval, so the offered load is smooth instead
/// of all `n` operations due at the same instant (a burst that would measure
/// queueing behind the burst, not the store at that rate).
fn phase(interval: Duration, id: usize, n: usize) -> Duration {
    interval.mul_f64(id as f64 / n.max(1) as f64)
}

/// CPU time the calling thread has used.
pub fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

fn reader<T: Target>(shared: &Shared<'_, T>, id: usize) -> ReaderOut {
    let spec = shared.spec;
    let mut rng = Rng::new(spec.seed, (spec.writers + id) as u64);
    let mut out = ReaderOut {
        latency: Histogram::new_from(shared.empty),
        control: Histogram::new_from(shared.empty),
        slow: SlowGets::default(),
        gets: 0,
        hits: 0,
        missed: 0,
        cpu: Duration::ZERO,
    };
    if !shared.gate.wait() {
        return out;
    }
    let cpu_at_start = thread_cpu();
    let origin = Instant::now() + phase(spec.read_interval, id, spec.readers);
    let mut ticker = Ticker::new(origin, spec.read_interval);
    // Running mean of this reader's get latency: the control's window.
    let mut typical_ns = 500.0f64;
    while !shared.live.writers_done.load(Ordering::Acquire) {
        ticker.wait();
        let Some(key) = shared.keys.get(rng.below(shared.keys.len())) else {
            break;
        };
        // Outside the timed window (the syscall can move a pending
        // preemption before it, so this mode is off by default).
        let cpu_before = spec.get_cpu.then(thread_cpu);
        let started = Instant::now();
        let got = shared.store.get(key);
        let latency = started.elapsed();
        if let Some(before) = cpu_before {
            let cpu = thread_cpu().saturating_sub(before);
            out.slow.cpu_max = out.slow.cpu_max.max(cpu);
            if latency > SLOW_GET {
                out.slow.count += 1;
                out.slow.mostly_running += u64::from(cpu * 2 > latency);
            }
        }
        record_ns(&mut out.latency, nanos(latency));
        typical_ns += (nanos(latency).min(CONTROL_CLIP_NS) as f64 - typical_ns) / 64.0;
        let window = Duration::from_nanos(typical_ns as u64);
        let control_started = Instant::now();
        while control_started.elapsed() < window {
            std::hint::spin_loop();
        }
        let control = control_started.elapsed();
        record_ns(&mut out.control, nanos(control));
        if let Some(interval) = shared.interval {
            interval.record_get(id, nanos(latency));
        }
        out.gets += 1;
        out.hits += u64::from(got.is_some());
        shared.live.gets.fetch_add(1, Ordering::Relaxed);
    }
    out.missed = ticker.missed();
    out.cpu = thread_cpu().saturating_sub(cpu_at_start);
    out
}

/// Get latencies above this do not stretch the control's window (they are
/// the tail the control is there to explain).
const CONTROL_CLIP_NS: u64 = 5_000;

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
}
