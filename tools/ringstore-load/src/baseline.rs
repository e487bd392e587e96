//! The raw device, measured with plain direct I/O in the run's own dir, so the
//! store's figures can be read as a fraction of what the disk gives:
//!
//! 1. `seq_write`: 1 MiB `O_DIRECT` writes, not durable — raw bandwidth;
//! 2. `durable_write`: the same with `O_DSYNC`, every write durable when it
//!    returns — the ceiling for a store that acknowledges only durable data.
//!    On a disk with a volatile write cache and no FUA every such write costs
//!    a cache flush;
//! 3. `fsync_write`: one 128 KiB direct write then `fdatasync`, one at a time
//!    — the latency floor of a single durable write;
//! 4. `durable_write` again with only as many 1 MiB writes in flight as the
//!    closed loop's writers hold bytes (writers × record size): what the
//!    disk gives to any writer with that much data in flight (Little's law:
//!    bandwidth = bytes in flight ÷ latency of one durable write);
//! 5. `durable_write` again with one file per shard and one 1 MiB write in
//!    flight on each: the store's own write pattern (each shard appends one
//!    batch at a time to its own segment), with no CPU work at all — what
//!    the disk gives to that pattern.
//!
//! Tests 1 and 2 keep `depth` writes in flight with one thread per write, each
//! appending to its own file (as each shard appends to its own segment).

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rustix::fs::OFlags;
use serde::Serialize;

use crate::error::LoadError;
use crate::payload::Rng;
use crate::report::LatencySummary;
use crate::workload::new_histogram;

/// Bytes per write of the bandwidth tests.
pub const BLOCK_BYTES: usize = 1 << 20;
/// Bytes per write of the fdatasync latency test.
pub const FSYNC_WRITE_BYTES: usize = 128 << 10;
/// Writes timed by the fdatasync latency test.
pub const FSYNC_WRITES: usize = 200;
/// Buffer and offset alignment for direct I/O: covers 512 and 4096 byte
/// logical blocks.
const ALIGN: usize = 4096;

/// How much the bandwidth tests write.
#[derive(Debug, Clone, Copy)]
pub struct BaselineSpec {
    /// Bytes written by each bandwidth test.
    pub bytes: u64,
    /// Writes in flight (threads).
    pub depth: usize,
    /// Writes in flight for test 4 (the workload's bytes in flight, in MiB).
    pub workload_depth: usize,
    /// Files (= writes in flight) for test 5: the store's shard count.
    pub shard_files: usize,
    /// Writer threads of test 6 (the workload's writers).
    pub writers: usize,
    /// Bytes of one record in test 6 (a workload record as serialized).
    pub record_bytes: usize,
}

/// One measurement of the device.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineRun {
    /// Direct-I/O write bandwidth, MB/s (10^6 bytes).
    pub seq_write_mb_per_s: f64,
    /// Durable (`O_DSYNC`) direct-I/O write bandwidth, MB/s.
    pub durable_write_mb_per_s: f64,
    /// The same with `workload_depth` writes in flight, MB/s.
    pub durable_at_workload_depth_mb_per_s: f64,
    /// The same with one write in flight per shard file, MB/s.
    pub durable_one_per_shard_mb_per_s: f64,
    /// Latency of one 128 KiB direct write plus `fdatasync`, microseconds.
    pub fsync_write_us: LatencySummary,
    /// The closed loop through a bare group-commit log (test 6), MB/s of
    /// records.
    pub group_commit_mb_per_s: f64,
}

/// The baseline as reported: the mean of the runs before and after the store
/// (the disk drifts), and both runs.
#[derive(Debug, Clone, Serialize)]
pub struct Baseline {
    /// Mean raw direct-I/O bandwidth, MB/s.
    pub seq_write_mb_per_s: f64,
    /// Mean durable bandwidth, MB/s: the ceiling of a `Sync` store.
    pub durable_write_mb_per_s: f64,
    /// Mean durable bandwidth with only the workload's bytes in flight, MB/s.
    pub durable_at_workload_depth_mb_per_s: f64,
    /// Writes in flight for that figure.
    pub workload_depth: usize,
    /// Mean durable bandwidth of the store's own pattern (one file per
    /// shard, one 1 MiB write in flight on each), MB/s.
    pub durable_one_per_shard_mb_per_s: f64,
    /// Files for that figure.
    pub shard_files: usize,
    /// Mean MB/s of records of the closed loop through a bare group-commit
    /// log with one appending file per shard (test 6).
    pub group_commit_mb_per_s: f64,
    /// Writers of that figure, each with one record in flight.
    pub group_commit_writers: usize,
    /// Bytes per record of that figure.
    pub group_commit_record_bytes: usize,
    /// Mean p50 of write + fdatasync, microseconds.
    pub fsync_write_p50_us: f64,
    /// Mean p99 of write + fdatasync, microseconds.
    pub fsync_write_p99_us: f64,
    /// Bytes per write of the bandwidth tests.
    pub block_bytes: usize,
    /// Bytes written by each bandwidth test.
    pub bytes_per_test: u64,
    /// Writes in flight in the bandwidth tests.
    pub queue_depth: usize,
    /// Bytes per write of the fdatasync test.
    pub fsync_write_bytes: usize,
    /// Before the store ran.
    pub before: BaselineRun,
    /// After the store ran.
    pub after: BaselineRun,
}

impl Baseline {
    /// Combines the two runs.
    pub fn new(spec: BaselineSpec, before: BaselineRun, after: BaselineRun) -> Baseline {
        let mean = |a: f64, b: f64| (a + b) / 2.0;
        Baseline {
            seq_write_mb_per_s: mean(before.seq_write_mb_per_s, after.seq_write_mb_per_s),
            durable_write_mb_per_s: mean(
                before.durable_write_mb_per_s,
                after.durable_write_mb_per_s,
            ),
            durable_at_workload_depth_mb_per_s: mean(
                before.durable_at_workload_depth_mb_per_s,
                after.durable_at_workload_depth_mb_per_s,
            ),
            workload_depth: spec.workload_depth,
            durable_one_per_shard_mb_per_s: mean(
                before.durable_one_per_shard_mb_per_s,
                after.durable_one_per_shard_mb_per_s,
            ),
            shard_files: spec.shard_files,
            group_commit_mb_per_s: mean(before.group_commit_mb_per_s, after.group_commit_mb_per_s),
            group_commit_writers: spec.writers,
            group_commit_record_bytes: spec.record_bytes,
            fsync_write_p50_us: mean(before.fsync_write_us.p50, after.fsync_write_us.p50),
            fsync_write_p99_us: mean(before.fsync_write_us.p99, after.fsync_write_us.p99),
            block_bytes: BLOCK_BYTES,
            bytes_per_test: spec.bytes,
            queue_depth: spec.depth,
            fsync_write_bytes: FSYNC_WRITE_BYTES,
            before,
            after,
        }
    }
}

/// Runs the six tests in `dir` (created, and emptied afterwards).
pub fn measure(dir: &Path, spec: BaselineSpec) -> Result<BaselineRun, LoadError> {
    fs::create_dir_all(dir).map_err(|e| LoadError::io("creating", dir, e))?;
    let seq_write_mb_per_s = bandwidth(dir, spec, false)?;
    let durable_write_mb_per_s = bandwidth(dir, spec, true)?;
    let at_workload = BaselineSpec {
        depth: spec.workload_depth,
        ..spec
    };
    let durable_at_workload_depth_mb_per_s = bandwidth(dir, at_workload, true)?;
    let per_shard = BaselineSpec {
        depth: spec.shard_files,
        ..spec
    };
    let durable_one_per_shard_mb_per_s = bandwidth(dir, per_shard, true)?;
    let fsync_write_us = fsync_latency(dir)?;
    let group_commit_mb_per_s = group_commit(dir, spec)?;
    Ok(BaselineRun {
        seq_write_mb_per_s,
        durable_write_mb_per_s,
        durable_at_workload_depth_mb_per_s,
        durable_one_per_shard_mb_per_s,
        fsync_write_us,
        group_commit_mb_per_s,
    })
}

/// A heap buffer whose usable part starts on an `ALIGN` boundary, as direct
/// I/O requires: over-allocate and skip to the boundary, no unsafe needed.
struct AlignedBuf {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    /// `len` bytes of pseudo-random data (incompressible, so a virtual disk
    /// cannot shortcut zeros).
    fn random(len: usize, seed: u64) -> AlignedBuf {
        let mut rng = Rng::new(seed, 0);
        let mut buf = AlignedBuf::zeroed(len);
        for byte in buf.bytes_mut() {
            *byte = rng.next_u64() as u8;
        }
        buf
    }

    /// `len` zero bytes (a staging buffer, overwritten before each use).
    fn zeroed(len: usize) -> AlignedBuf {
        let storage = vec![0u8; len + ALIGN];
        let start = storage.as_ptr().align_offset(ALIGN).min(ALIGN);
        AlignedBuf {
            storage,
            start,
            len,
        }
    }

    fn bytes(&self) -> &[u8] {
        self.storage
            .get(self.start..self.start + self.len)
            .unwrap_or(&[])
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        self.storage
            .get_mut(self.start..self.start + self.len)
            .unwrap_or(&mut [])
    }
}

fn open_direct(path: &Path, dsync: bool) -> Result<File, LoadError> {
    let mut flags = OFlags::DIRECT;
    if dsync {
        flags |= OFlags::DSYNC;
    }
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
        .map_err(|e| LoadError::io("opening with O_DIRECT", path, e))
}

/// MB/s of `spec.bytes` written as 1 MiB direct writes by `spec.depth`
/// threads, each appending to its own file.
fn bandwidth(dir: &Path, spec: BaselineSpec, durable: bool) -> Result<f64, LoadError> {
    let depth = spec.depth.max(1);
    let blocks_per_thread = (spec.bytes / BLOCK_BYTES as u64 / depth as u64).max(1);
    let buf = AlignedBuf::random(BLOCK_BYTES, 0xB10C);
    let name = if durable { "durable" } else { "seq" };
    let mut files: Vec<(PathBuf, File)> = Vec::with_capacity(depth);
    for i in 0..depth {
        let path = dir.join(format!("{name}-{i}.bin"));
        let file = open_direct(&path, durable)?;
        files.push((path, file));
    }
    let started = Instant::now();
    let results: Vec<Result<(), LoadError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .iter()
            .map(|(path, file)| {
                let buf = &buf;
                scope.spawn(move || -> Result<(), LoadError> {
                    for block in 0..blocks_per_thread {
                        file.write_all_at(buf.bytes(), block * BLOCK_BYTES as u64)
                            .map_err(|e| LoadError::io("direct write to", path, e))?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or(Err(LoadError::Panicked { role: "baseline" }))
            })
            .collect()
    });
    let elapsed = started.elapsed();
    for (path, _) in &files {
        let _ = fs::remove_file(path);
    }
    results.into_iter().collect::<Result<(), _>>()?;
    let bytes = blocks_per_thread * depth as u64 * BLOCK_BYTES as u64;
    Ok(bytes as f64 / 1e6 / elapsed.as_secs_f64().max(1e-9))
}

/// One log of the bare group-commit test: the records queued for its next
/// write, and how many of its writes are durable.
#[derive(Default)]
struct GroupLog {
    state: std::sync::Mutex<GroupState>,
    /// Signalled when a record is queued, or at the end.
    queued: std::sync::Condvar,
    /// Signalled when a write completes.
    written: std::sync::Condvar,
}

#[derive(Default)]
struct GroupState {
    /// Records queued so far: a put's ticket is the count before it.
    queued: u64,
    /// Records taken into writes so far (in ticket order).
    taken: u64,
    /// Records whose write is durable (in ticket order: one thread writes).
    durable: u64,
    /// A write failed: the writers stop (the log thread returns the error).
    failed: bool,
    /// The writers are done: the log thread stops once nothing is queued.
    done: bool,
}

impl GroupLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, GroupState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues one record and waits until a write made it durable; false if
    /// a write failed.
    fn put(&self) -> bool {
        let mut state = self.lock();
        let ticket = state.queued;
        state.queued += 1;
        self.queued.notify_one();
        while state.durable <= ticket && !state.failed {
            state = self
                .written
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        !state.failed
    }

    fn finish(&self) {
        self.lock().done = true;
        self.queued.notify_all();
    }

    /// Opens the log's file and sizes its staging buffer for `max_records`
    /// records: done before the test's clock starts.
    fn prepare(
        path: &Path,
        record_len: usize,
        max_records: usize,
    ) -> Result<(File, AlignedBuf), LoadError> {
        let file = open_direct(path, true)?;
        let buf = AlignedBuf::zeroed(align_up(max_records.max(1) * record_len));
        Ok((file, buf))
    }

    /// The log thread, with what [`GroupLog::prepare`] made: takes what is
    /// queued (at most what the buffer holds), copies it into the buffer,
    /// appends it with one durable write, and acknowledges it; until the
    /// writers are done. If it fails, waiting and later writers stop
    /// instead of waiting for a write that will not come.
    fn serve(
        &self,
        path: &Path,
        prepared: Result<(File, AlignedBuf), LoadError>,
        record: &[u8],
    ) -> Result<(), LoadError> {
        let outcome =
            prepared.and_then(|(file, mut buf)| self.write_groups(path, &file, &mut buf, record));
        if outcome.is_err() {
            self.lock().failed = true;
            self.written.notify_all();
        }
        outcome
    }

    fn write_groups(
        &self,
        path: &Path,
        file: &File,
        buf: &mut AlignedBuf,
        record: &[u8],
    ) -> Result<(), LoadError> {
        let max_records = (buf.len / record.len().max(1)).max(1);
        let mut offset = 0u64;
        loop {
            let (records, through) = {
                let mut state = self.lock();
                while state.queued == state.taken && !state.done {
                    state = self
                        .queued
                        .wait(state)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                let waiting = state.queued - state.taken;
                if waiting == 0 {
                    return Ok(());
                }
                let records = usize::try_from(waiting).map_or(max_records, |n| n.min(max_records));
                state.taken += records as u64;
                (records, state.taken)
            };
            let len = align_up(records * record.len());
            let written = match buf.bytes_mut().get_mut(..len) {
                Some(out) => {
                    let (data, filler) = out.split_at_mut(records * record.len());
                    for chunk in data.chunks_mut(record.len()) {
                        chunk.copy_from_slice(record.get(..chunk.len()).unwrap_or(&[]));
                    }
                    filler.fill(0);
                    file.write_all_at(out, offset)
                        .map_err(|e| LoadError::io("direct write to", path, e))
                }
                None => Err(LoadError::io(
                    "staging a write to",
                    path,
                    std::io::Error::other(format!(
                        "{records} records do not fit the {max_records}-record buffer"
                    )),
                )),
            };
            written?;
            offset += len as u64;
            self.lock().durable = through;
            self.written.notify_all();
        }
    }
}

/// `n` rounded up to the direct-I/O alignment.
fn align_up(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// Test 6: MB/s of records through a bare group-commit log, `spec.writers`
/// writers with one record in flight each, one log thread and file per
/// shard, for [`group_commit_puts`] puts.
fn group_commit(dir: &Path, spec: BaselineSpec) -> Result<f64, LoadError> {
    let (acknowledged, mb_per_s) = group_commit_run(dir, spec)?;
    let expected = group_commit_puts(spec);
    if acknowledged != expected {
        return Err(LoadError::io(
            "the group-commit test in",
            dir,
            std::io::Error::other(format!("{acknowledged} of {expected} puts acknowledged")),
        ));
    }
    Ok(mb_per_s)
}

/// Most bytes one write of test 6 carries (the store's default
/// `max_batch_bytes`).
const GROUP_MAX_BYTES: usize = 8 << 20;

/// Most puts test 6 makes: small records are bound by the writes' latency,
/// not their bytes, so `spec.bytes` of them would take minutes on a slow
/// disk (the seed workload's 256 MiB are 2520 puts, under the cap).
const GROUP_COMMIT_MAX_PUTS: u64 = 4096;

/// Puts test 6 makes: about `spec.bytes` of records (at most
/// [`GROUP_COMMIT_MAX_PUTS`]), the same number per writer.
fn group_commit_puts(spec: BaselineSpec) -> u64 {
    let writers = spec.writers.max(1) as u64;
    let puts = (spec.bytes / spec.record_bytes.max(1) as u64).min(GROUP_COMMIT_MAX_PUTS);
    (puts / writers).max(1) * writers
}

/// Runs test 6: the puts acknowledged, and MB/s of their records.
fn group_commit_run(dir: &Path, spec: BaselineSpec) -> Result<(u64, f64), LoadError> {
    let writers = spec.writers.max(1);
    let record = AlignedBuf::random(spec.record_bytes.max(1), 0x6C06);
    let puts_per_writer = group_commit_puts(spec) / writers as u64;
    let acknowledged = std::sync::atomic::AtomicU64::new(0);
    let logs: Vec<(PathBuf, GroupLog)> = (0..spec.shard_files.max(1))
        .map(|i| (dir.join(format!("group-{i}.bin")), GroupLog::default()))
        .collect();
    let mut elapsed = std::time::Duration::ZERO;
    // The log threads open their files and size their buffers, then the
    // clock starts.
    let ready = std::sync::Barrier::new(logs.len() + 1);
    let results: Vec<Result<(), LoadError>> = std::thread::scope(|scope| {
        let log_threads: Vec<_> = logs
            .iter()
            .map(|(path, log)| {
                let record = record.bytes();
                let ready = &ready;
                // As many records as there are writers, within the store's
                // default largest batch.
                let max_records = writers.min(GROUP_MAX_BYTES / record.len().max(1));
                scope.spawn(move || {
                    let prepared = GroupLog::prepare(path, record.len(), max_records);
                    ready.wait();
                    log.serve(path, prepared, record)
                })
            })
            .collect();
        ready.wait();
        let started = Instant::now();
        let writer_threads: Vec<_> = (0..writers)
            .map(|w| {
                let logs = &logs;
                let acknowledged = &acknowledged;
                scope.spawn(move || {
                    let mut rng = Rng::new(0x6C06, w as u64);
                    for _ in 0..puts_per_writer {
                        let Some((_, log)) = logs.get(rng.below(logs.len())) else {
                            return;
                        };
                        if !log.put() {
                            return;
                        }
                        acknowledged.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                })
            })
            .collect();
        let mut outcomes: Vec<Result<(), LoadError>> = writer_threads
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| LoadError::Panicked { role: "baseline" })
            })
            .collect();
        elapsed = started.elapsed();
        for (_, log) in &logs {
            log.finish();
        }
        outcomes.extend(log_threads.into_iter().map(|h| {
            h.join()
                .unwrap_or(Err(LoadError::Panicked { role: "baseline" }))
        }));
        outcomes
    });
    for (path, _) in &logs {
        let _ = fs::remove_file(path);
    }
    results.into_iter().collect::<Result<(), _>>()?;
    let acknowledged = acknowledged.into_inner();
    let bytes = acknowledged * record.len as u64;
    Ok((
        acknowledged,
        bytes as f64 / 1e6 / elapsed.as_secs_f64().max(1e-9),
    ))
}

/// Latency of a 128 KiB direct write followed by `fdatasync`, one at a time.
fn fsync_latency(dir: &Path) -> Result<LatencySummary, LoadError> {
    let path = dir.join("fsync.bin");
    let file = open_direct(&path, false)?;
    let buf = AlignedBuf::random(FSYNC_WRITE_BYTES, 0xF5);
    let mut hist = new_histogram()?;
    let mut outcome = Ok(());
    for i in 0..FSYNC_WRITES {
        let started = Instant::now();
        let done = file
            .write_all_at(buf.bytes(), (i * FSYNC_WRITE_BYTES) as u64)
            .map_err(|e| LoadError::io("direct write to", &path, e))
            .and_then(|()| {
                file.sync_data()
                    .map_err(|e| LoadError::io("fdatasync of", &path, e))
            });
        if let Err(e) = done {
            outcome = Err(e);
            break;
        }
        crate::workload::record_ns(
            &mut hist,
            u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX),
        );
    }
    drop(file);
    let _ = fs::remove_file(&path);
    outcome?;
    Ok(LatencySummary::from_ns(&hist))
}

#[cfg(test)]
mod tests {
    use super::*;

    impl GroupLog {
        /// [`GroupLog::prepare`] then [`GroupLog::serve`] on this thread.
        fn run(&self, path: &Path, record: &[u8], max_records: usize) -> Result<(), LoadError> {
            let prepared = GroupLog::prepare(path, record.len(), max_records);
            self.serve(path, prepared, record)
        }
    }

    /// A temporary dir where `O_DIRECT` works (`/tmp` may be tmpfs):
    /// under `RINGSTORE_TEST_DIR`, else in this crate's source tree.
    fn direct_io_dir() -> tempfile::TempDir {
        let parent = std::env::var_os("RINGSTORE_TEST_DIR")
            .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
        tempfile::Builder::new()
            .prefix("baseline-test-")
            .tempdir_in(parent)
            .unwrap()
    }

    #[test]
    fn the_group_commit_test_writes_every_record_of_every_writer() {
        let dir = direct_io_dir();
        let spec = BaselineSpec {
            bytes: 300 * 5000,
            depth: 1,
            workload_depth: 1,
            shard_files: 2,
            writers: 3,
            record_bytes: 5000,
        };
        let (acknowledged, mb_per_s) = group_commit_run(dir.path(), spec).unwrap();
        assert_eq!(acknowledged, 300);
        assert!(mb_per_s > 0.0, "{mb_per_s}");
        // The public entry checks the count itself.
        assert!(group_commit(dir.path(), spec).is_ok());
        // The log files are removed after the test.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// Runs one log with `writers` threads of `puts` puts each (every one
    /// acknowledged) until they are done; the log's file and its counts
    /// (durable, taken, queued).
    fn drive_log(
        writers: usize,
        puts: usize,
        record: &[u8],
        max_records: usize,
    ) -> (Vec<u8>, (u64, u64, u64)) {
        let dir = direct_io_dir();
        let path = dir.path().join("log.bin");
        let log = GroupLog::default();
        std::thread::scope(|scope| {
            let threads: Vec<_> = (0..writers)
                .map(|_| scope.spawn(|| (0..puts).all(|_| log.put())))
                .collect();
            let runner = scope.spawn(|| log.run(&path, record, max_records));
            for t in threads {
                assert!(t.join().unwrap());
            }
            log.finish();
            runner.join().unwrap().unwrap();
        });
        let state = log.lock();
        (
            fs::read(&path).unwrap(),
            (state.durable, state.taken, state.queued),
        )
    }

    #[test]
    fn a_group_log_writes_what_was_queued_padded_to_a_block_and_acknowledges_it() {
        let (bytes, counts) = drive_log(1, 5, &[7u8; 6000], 1);
        assert_eq!(counts, (5, 5, 5));
        // Five writes of one record each, each padded to the next block.
        assert_eq!(bytes.len(), 5 * align_up(6000));
        assert!(bytes[..6000].iter().all(|&b| b == 7));
        assert!(bytes[6000..align_up(6000)].iter().all(|&b| b == 0));
    }

    #[test]
    fn a_group_log_splits_what_is_queued_into_writes_of_at_most_max_records() {
        let (bytes, counts) = drive_log(3, 4, &[9u8; 6000], 2);
        assert_eq!(counts, (12, 12, 12));
        // Each write is its records then zero padding to the next block:
        // the runs of record bytes are the writes.
        let writes: Vec<usize> = bytes
            .split(|&b| b == 0)
            .map(<[u8]>::len)
            .filter(|&n| n > 0)
            .collect();
        assert_eq!(writes.iter().sum::<usize>(), 12 * 6000, "{writes:?}");
        assert!(
            writes.iter().all(|&n| n == 6000 || n == 12000),
            "{writes:?}"
        );
    }

    #[test]
    fn a_log_that_cannot_open_its_file_stops_its_writers() {
        let dir = direct_io_dir();
        // A directory where the log's file should be: opening it fails.
        let path = dir.path().join("taken");
        fs::create_dir(&path).unwrap();
        let log = GroupLog::default();
        std::thread::scope(|scope| {
            let runner = scope.spawn(|| log.run(&path, &[1u8; 100], 4));
            assert!(runner.join().unwrap().is_err());
            // A writer that comes later is refused, not left waiting.
            assert!(!log.put());
        });
    }

    #[test]
    fn buffers_are_aligned_for_direct_io() {
        for len in [4096, 128 << 10] {
            let buf = AlignedBuf::random(len, 1);
            assert_eq!(buf.bytes().len(), len);
            assert_eq!(buf.bytes().as_ptr() as usize % ALIGN, 0);
        }
    }
}
