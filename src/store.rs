//! The public `Store`: open (preflight, lock, recovery, executors), put, get,
//! close.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::channel::oneshot;
use glommio::{LocalExecutorBuilder, Placement};

use crate::buffer_pool::BufferPool;
use crate::config::{Config, Durability, IoBackend};
use crate::error::Error;
use crate::io::LogFs;
use crate::io::dma::DmaFs;
use crate::io::portable::PortableFs;
use crate::layout::{self, FileKind, retired, retired_file_name, spares};
use crate::lock::DirLock;
use crate::record::{Record, Value};
use crate::record_ref::RecordRef;
use crate::recovery::{self, RecoveryReport};
use crate::segment::format::MAX_KEY_BYTES;
use crate::segment::writer::{SealedSegment, WriterSpec};
use crate::shard::index::{self, LogRank, new_index};
use crate::shard::stats::ShardStats;
use crate::shard::submission::queue;
use crate::shard::watchdog::Watchdog;
use crate::shard::worker::{self, WorkerSetup};
use crate::shard::{ShardShared, shard_for};

/// What a put did to the in-memory map. Both outcomes are persisted: the log
/// keeps the full history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The record is now the readable one for its key.
    Applied,
    /// A record with a higher version was already stored; it stays readable.
    /// (`Async` mode: or a concurrent put of the same version, later in the
    /// log, won the tie; `current_version` then equals the put's own.)
    Stale {
        /// The version that stays readable.
        current_version: i64,
    },
}

/// What `Store::compact` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Live records rewritten into the checkpoint segments.
    pub records: usize,
    /// Segment files deleted (superseded history).
    pub segments_removed: usize,
    /// Bytes freed.
    pub bytes_removed: u64,
    /// Superseded segment files kept as spares for later segments to
    /// overwrite (`Config::spare_segments`); their bytes are not freed.
    pub segments_recycled: usize,
    /// Shard folders of earlier runs with more shards, retired.
    pub folders_removed: usize,
}

/// An open store. Cheap to clone; every clone is the same store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    shards: Vec<Arc<ShardShared>>,
    executors: scc::Bag<(usize, ShardThread)>,
    /// The backend the shards run on (`Auto` resolved).
    backend: IoBackend,
    closed: AtomicBool,
    report: RecoveryReport,
    /// The retention thread, if `compact_above_sealed_bytes` is set.
    retention: scc::Bag<std::thread::JoinHandle<()>>,
    retention_stop: Arc<AtomicBool>,
    /// The data-dir lock; `close` releases it (the bag holds at most one).
    lock: scc::Bag<DirLock>,
    /// The shard watchdog, if on (the bag holds at most one).
    watchdog: scc::Bag<Watchdog>,
    /// Buffers of superseded records, reused by `put` to serialize into.
    buffers: Arc<BufferPool>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.inner.config.dir)
            .field("shards", &self.inner.shards.len())
            .finish()
    }
}

/// The CPUs this process may run on.
fn allowed_cpus() -> Vec<usize> {
    match rustix::thread::sched_getaffinity(None) {
        Ok(set) => (0..rustix::thread::CpuSet::MAX_CPU)
            .filter(|&c| set.is_set(c))
            .collect(),
        Err(_) => Vec::new(),
    }
}

impl Store {
    /// Opens (or creates) the store in `config.dir`: checks the machine
    /// (io_uring, memlock, filesystem), locks the dir, recovers every segment,
    /// starts one executor per shard and returns once all are ready.
    pub fn open(config: Config) -> Result<Store, Error> {
        config.validate()?;
        let dir = config.dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating data dir", &dir, e))?;
        // The lock first: the preflight creates a probe file in the dir.
        let lock = DirLock::acquire(&dir)?;
        let backend = resolve_backend(&config)?;
        let recovered = recovery::recover(&dir, config.recovery_mode, recovery::Repair::Allowed)?;
        let generation = recovered.report.previous_generation + 1;
        let n = config.shards;

        let mut shards = Vec::with_capacity(n);
        let mut receivers = Vec::with_capacity(n);
        for i in 0..n {
            let budget = match config.durability {
                Durability::Sync => config.queue_depth,
                Durability::Async => config.max_batch_bytes,
            };
            let (q, r) = queue(budget, config.durability == Durability::Async);
            shards.push(Arc::new(ShardShared::new(
                i,
                new_index(),
                q,
                config.durability,
                generation,
            )));
            receivers.push(r);
        }
        for latest in recovered.records {
            if let Some(shard) = shards.get(shard_for(latest.record.key(), n)) {
                let rank = LogRank {
                    generation: latest.generation,
                    lsn: latest.lsn,
                };
                let _ = index::publish(&shard.index, latest.record, || rank);
            }
        }
        for i in 0..n {
            let d = layout::shard_dir(&dir, i);
            std::fs::create_dir_all(&d).map_err(|e| Error::io("creating shard dir", &d, e))?;
        }
        recovery::sync_dir(&dir)?;

        let inner = Inner {
            config: config.clone(),
            shards,
            executors: scc::Bag::new(),
            backend,
            closed: AtomicBool::new(false),
            report: recovered.report,
            retention: scc::Bag::new(),
            retention_stop: Arc::new(AtomicBool::new(false)),
            lock: {
                let bag = scc::Bag::new();
                bag.push(lock);
                bag
            },
            watchdog: scc::Bag::new(),
            buffers: Arc::new(BufferPool::new(config.record_buffer_pool_bytes)),
        };
        let cpus = allowed_cpus();
        let mut readiness = Vec::with_capacity(n);
        for (i, receiver) in receivers.into_iter().enumerate() {
            let Some(shared) = inner.shards.get(i).cloned() else {
                continue;
            };
            let active_seq = shared.active_seq.clone();
            let setup = WorkerSetup {
                shared,
                receiver,
                spec: WriterSpec {
                    shard_dir: layout::shard_dir(&dir, i),
                    shard: i as u32,
                    shard_count: n as u32,
                    pipeline_depth: config.pipeline_depth as u32,
                    write_through: config.write_through(),
                    generation,
                    max_segment_bytes: config.max_segment_bytes,
                    max_segment_records: config.max_segment_records,
                    on_sealed: config.on_sealed.as_ref().map(|c| c.0.clone()),
                    recycle: config.spares_kept() > 0,
                    active_seq,
                },
                first_seq: recovered.next_seq.get(&i).copied().unwrap_or(1),
                durability: config.durability,
                flush_interval: config.flush_interval(),
                max_batch_bytes: config.max_batch_bytes,
                pipeline_depth: config.pipeline_depth,
            };
            let cpu = match (config.pin_cpus, cpus.is_empty()) {
                (true, false) => Some(cpus.get(i % cpus.len()).copied().unwrap_or(0)),
                _ => None,
            };
            let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
            match spawn_shard(&config, backend, i, cpu, setup, ready_tx) {
                Ok(handle) => {
                    inner.executors.push((i, handle));
                    readiness.push((i, ready_rx));
                }
                Err(e) => {
                    inner.shutdown_and_join();
                    return Err(e);
                }
            }
        }
        for (i, ready) in readiness {
            let failure = match ready.recv() {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e,
                // The executor thread ended before running the shard: glommio
                // could not build its reactor.
                Err(_) => Error::ExecutorStart {
                    shard: i,
                    reason: inner
                        .join_failure(i)
                        .unwrap_or_else(|| "the executor thread exited during start-up".to_owned()),
                },
            };
            inner.shutdown_and_join();
            return Err(failure);
        }
        if backend == IoBackend::IoUring && config.wake_stalled_shard_after_ms > 0 {
            let after = std::time::Duration::from_millis(config.wake_stalled_shard_after_ms);
            if let Some(w) = Watchdog::start(inner.shards.clone(), after) {
                inner.watchdog.push(w);
            }
        }
        let store = Store {
            inner: Arc::new(inner),
        };
        if let Some(limit) = config.compact_above_sealed_bytes {
            store.start_retention(limit)?;
        }
        Ok(store)
    }

    /// Starts the thread that compacts when sealed segments exceed `limit`
    /// bytes. It holds only a weak reference: dropping the last `Store`
    /// ends it.
    fn start_retention(&self, limit: u64) -> Result<(), Error> {
        let weak = Arc::downgrade(&self.inner);
        let stop = self.inner.retention_stop.clone();
        let handle = std::thread::Builder::new()
            .name("ringstore-retention".into())
            .spawn(move || {
                let mut left_by_last = 0u64;
                loop {
                    for _ in 0..10 {
                        if stop.load(Ordering::Acquire) {
                            return;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                    let Some(inner) = weak.upgrade() else {
                        return;
                    };
                    let store = Store { inner };
                    match store.sealed_bytes() {
                        Ok(bytes) if bytes > limit && bytes > 2 * left_by_last => {
                            match store.compact() {
                                Ok(report) => {
                                    log::info!("retention: compacted, {report:?}");
                                    left_by_last = store.sealed_bytes().unwrap_or(0);
                                }
                                Err(e) => log::warn!("retention: compaction failed: {e}"),
                            }
                        }
                        Ok(_) => {}
                        Err(e) => log::warn!("retention: listing sealed segments failed: {e}"),
                    }
                }
            })
            .map_err(|e| Error::io("starting the retention thread", &self.inner.config.dir, e))?;
        self.inner.retention.push(handle);
        Ok(())
    }

    /// Total bytes of sealed segments (file sizes only, no reads).
    fn sealed_bytes(&self) -> Result<u64, Error> {
        Ok(self
            .sealed_paths()?
            .iter()
            .map(|(_, _, seg)| std::fs::metadata(seg).map_or(0, |m| m.len()))
            .sum())
    }

    /// (shard folder, seq, path) of every segment no shard is writing.
    fn sealed_paths(&self) -> Result<Vec<(usize, u64, std::path::PathBuf)>, Error> {
        let mut out = Vec::new();
        for (shard, path) in layout::shard_dirs(&self.inner.config.dir)? {
            let active = self
                .inner
                .shards
                .get(shard)
                .map(|s| s.active_seq.load(Ordering::Acquire));
            for (seq, seg) in layout::segments(&path)? {
                if Some(seq) != active {
                    out.push((shard, seq, seg));
                }
            }
        }
        Ok(out)
    }

    /// Stores `record` under `key`. The record is validated and serialized on
    /// the calling thread; the returned future (`Send`, runtime-agnostic)
    /// resolves once the owning shard has persisted it as the durability
    /// mode requires. Dropping the future does not cancel a submitted put.
    pub fn put(
        &self,
        key: &str,
        record: &Record,
    ) -> impl Future<Output = Result<PutOutcome, Error>> + Send + 'static + use<> {
        let prepared = self.prepare(key, record);
        async move {
            let (shard, record, payload_crc) = prepared?;
            shard.put(record, payload_crc).await
        }
    }

    /// `put` for plain threads: blocks until the outcome is known. Do not
    /// call it from inside an async task (it would block the task's thread).
    pub fn put_blocking(&self, key: &str, record: &Record) -> Result<PutOutcome, Error> {
        futures::executor::block_on(self.put(key, record))
    }

    fn prepare(
        &self,
        key: &str,
        record: &Record,
    ) -> Result<(Arc<ShardShared>, RecordRef, u32), Error> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if key.is_empty() {
            return Err(Error::EmptyKey {
                max_bytes: MAX_KEY_BYTES,
            });
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(Error::KeyTooLong {
                len_bytes: key.len(),
                max_bytes: MAX_KEY_BYTES,
            });
        }
        let field = &inner.config.version_field;
        let version = match record.get(field) {
            Some(Value::Int(v)) => *v,
            Some(other) => {
                return Err(Error::InvalidVersion {
                    key: key.to_owned(),
                    field: field.clone(),
                    found: other.type_name(),
                });
            }
            None => {
                return Err(Error::MissingVersion {
                    key: key.to_owned(),
                    field: field.clone(),
                });
            }
        };
        if record.too_deep() {
            return Err(Error::TooDeep {
                key: key.to_owned(),
                max_depth: crate::record::MAX_VALUE_DEPTH,
            });
        }
        let buffer = inner.buffers.take(record.archived_size_hint());
        let bytes = rkyv::api::high::to_bytes_in::<_, rkyv::rancor::Error>(record, buffer)
            .map_err(|e| Error::Serialize {
                key: key.to_owned(),
                reason: e.to_string(),
            })?;
        if bytes.len() > inner.config.max_record_bytes {
            return Err(Error::RecordTooLarge {
                key: key.to_owned(),
                len_bytes: bytes.len(),
                max_bytes: inner.config.max_record_bytes,
                hard_max_bytes: crate::segment::format::MAX_RECORD_BYTES_LIMIT,
            });
        }
        let payload_crc = crc32c::crc32c(&bytes);
        let shard = inner
            .shards
            .get(shard_for(key, inner.shards.len()))
            .cloned()
            .ok_or(Error::Closed)?;
        Ok((
            shard,
            RecordRef::from_serialized(key.into(), version, bytes, &inner.buffers),
            payload_crc,
        ))
    }

    /// The newest readable record of `key`: synchronous, lock-free, from any
    /// thread. In `Sync` mode it is always durable.
    pub fn get(&self, key: &str) -> Option<RecordRef> {
        let shards = &self.inner.shards;
        let shard = shards.get(shard_for(key, shards.len()))?;
        index::get(&shard.index, key)
    }

    /// Number of keys stored.
    pub fn len(&self) -> usize {
        self.inner.shards.iter().map(|s| s.index.len()).sum()
    }

    /// Whether no key is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.inner.shards.len()
    }

    /// The data dir.
    pub fn dir(&self) -> &Path {
        &self.inner.config.dir
    }

    /// The I/O backend the shards run on: `IoUring` or `Portable` (what
    /// `IoBackend::Auto` resolved to at `open`).
    pub fn io_backend(&self) -> IoBackend {
        self.inner.backend
    }

    /// The durability mode.
    pub fn durability(&self) -> Durability {
        self.inner.config.durability
    }

    /// Per shard: batches, frames and bytes written since `open`, and the
    /// time spent staging, writing and flushing them (cheap: a few atomic
    /// loads per shard).
    pub fn shard_stats(&self) -> Vec<ShardStats> {
        self.inner
            .shards
            .iter()
            .map(|s| s.stats.snapshot(s.id))
            .collect()
    }

    /// What recovery found and did when this store was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.inner.report
    }

    /// Every sealed segment of the data dir (complete, durable, never written
    /// again), by shard folder and seq: the files a service may copy to an
    /// analytics store while the store runs. Figures come from each segment's
    /// hint (or a scan when it has none). Do not delete sealed segments by
    /// hand — a key's only newest copy may live in one; [`Store::compact`]
    /// deletes every superseded segment safely.
    pub fn sealed_segments(&self) -> Result<Vec<SealedSegment>, Error> {
        self.sealed_paths()?
            .into_iter()
            .map(|(shard, seq, seg)| recovery::describe_sealed(shard, seq, &seg))
            .collect()
    }

    /// Checkpoint and retention: every shard rewrites its live set (the
    /// newest record of each of its keys) into a fresh sealed segment; once
    /// **all** shards have made theirs durable, every older segment of the
    /// current shard folders and every folder left by a run with more shards
    /// is deleted — except up to `Config::spare_segments` per shard, the
    /// largest, which are kept as spare files that later segments overwrite.
    /// So a retired segment must no longer be read or copied (unlike a
    /// deleted file, a spare's contents change under an open handle). A
    /// crash at any point loses nothing: deletion starts only after every
    /// checkpoint is durable, and recovery ranks the copies by version. Puts
    /// keep flowing: in `Sync` mode a shard's puts wait only for its batches
    /// in flight and a new segment, then the copies are written in 1 MiB
    /// chunks, one at a time, alternating with put batches; `Async` puts
    /// never wait for the shard. Blocks the calling thread.
    pub fn compact(&self) -> Result<CompactReport, Error> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let mut waits = Vec::with_capacity(inner.shards.len());
        for shard in &inner.shards {
            let (reply, done) = oneshot::channel();
            shard
                .queue
                .control(crate::shard::submission::Msg::Checkpoint(reply))?;
            waits.push((shard.id, done));
        }
        let mut keep_from = Vec::with_capacity(waits.len());
        for (id, done) in waits {
            let seq = futures::executor::block_on(done).unwrap_or(Err(Error::Closed))?;
            keep_from.push((id, seq));
        }
        let mut report = CompactReport {
            records: self.len(),
            ..CompactReport::default()
        };
        let dir = &inner.config.dir;
        let changes = DirChanges(&inner.config);
        for (shard, path) in layout::shard_dirs(dir)? {
            let first_kept = keep_from.iter().find(|(i, _)| *i == shard).map(|(_, s)| *s);
            // Spares are taken only by this folder's shard, and only when
            // spares are kept: a retired folder's, or any when none are kept,
            // go now. Otherwise this only adds spares, never removes one a
            // shard may be opening.
            let spares_kept = match first_kept {
                Some(_) => inner.config.spares_kept(),
                None => 0,
            };
            let existing = spares(&path).map_err(|e| Error::io("listing spares", &path, e))?;
            let left_over = retired(&path).map_err(|e| Error::io("listing spares", &path, e))?;
            // Retired files become spares only below, after the folder
            // sync that makes their retirement durable.
            let mut to_spares = Vec::new();
            if spares_kept == 0 {
                for spare in existing.iter().chain(&left_over) {
                    report.bytes_removed += std::fs::metadata(spare).map_or(0, |m| m.len());
                    changes.remove_if_exists(spare)?;
                }
            } else {
                to_spares = left_over;
            }
            let mut spare_count = existing.len() + to_spares.len();
            // The largest retired files make the best spares (a checkpoint's
            // is small: a segment reusing it soon extends the file again).
            let mut retired: Vec<(u64, u64, PathBuf)> = layout::segments(&path)?
                .into_iter()
                .filter(|(seq, _)| first_kept.is_none_or(|keep| *seq < keep))
                .map(|(seq, seg)| (std::fs::metadata(&seg).map_or(0, |m| m.len()), seq, seg))
                .collect();
            retired.sort_by_key(|(len, seq, _)| (std::cmp::Reverse(*len), *seq));
            for (len, seq, seg) in retired {
                changes.remove_if_exists(&layout::hint_path(&seg))?;
                if spare_count < spares_kept {
                    let retiring = path.join(retired_file_name(seq));
                    changes.rename(&seg, &retiring).map_err(|e| {
                        Error::io("keeping a superseded segment as a spare", &seg, e)
                    })?;
                    to_spares.push(retiring);
                    spare_count += 1;
                    report.segments_recycled += 1;
                    continue;
                }
                report.bytes_removed += len;
                changes.remove_if_exists(&seg)?;
                report.segments_removed += 1;
            }
            changes.sync_dir(&path)?;
            // Only now may the shard take them: had it written a new header
            // into one still named `.seg` and durably so, a crash could
            // leave that name on it, and recovery would read a segment
            // whose frames all fail under the new header's seq.
            for retiring in to_spares {
                let spare = layout::as_kind(&retiring, FileKind::Spare);
                changes.rename(&retiring, &spare).map_err(|e| {
                    Error::io("keeping a superseded segment as a spare", &retiring, e)
                })?;
            }
            if first_kept.is_none() {
                std::fs::remove_dir(&path)
                    .map_err(|e| Error::io("removing retired shard dir", &path, e))?;
                report.folders_removed += 1;
            }
        }
        changes.sync_dir(dir)?;
        Ok(report)
    }

    /// Drains every queue, makes everything durable, closes the files and
    /// joins the executors. Puts issued afterwards fail with `Error::Closed`;
    /// gets keep working on the last state. Blocks the calling thread.
    pub fn close(&self) -> Result<(), Error> {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.retention_stop.store(true, Ordering::Release);
        while let Some(handle) = self.inner.retention.pop() {
            let _ = handle.join();
        }
        self.inner.shutdown_and_join();
        // Everything is durable and every shard has exited: another store
        // may take the dir now, even while this handle lives on for gets.
        while let Some(lock) = self.inner.lock.pop() {
            drop(lock);
        }
        match self
            .inner
            .shards
            .iter()
            .find_map(|s| s.failure().map(|c| (s.id, c)))
        {
            Some((shard, cause)) => Err(Error::ShardFailed { shard, cause }),
            None => Ok(()),
        }
    }
}

/// A running shard: a glommio executor or a portable std thread.
enum ShardThread {
    Glommio(glommio::ExecutorJoinHandle<()>),
    Portable(std::thread::JoinHandle<()>),
}

impl ShardThread {
    fn join(self) -> Result<(), String> {
        match self {
            ShardThread::Glommio(h) => h.join().map_err(|e| e.to_string()),
            ShardThread::Portable(h) => {
                h.join().map_err(|_| "the shard thread panicked".to_owned())
            }
        }
    }
}

/// Checks the data dir and picks the backend: the preflight's typed error
/// when io_uring is required and refused; the portable backend (with a
/// warning) when `Auto` finds io_uring refused.
fn resolve_backend(config: &Config) -> Result<IoBackend, Error> {
    crate::preflight::check_filesystem(&config.dir, config.allow_non_durable_dir)?;
    match config.io_backend {
        IoBackend::Portable => Ok(IoBackend::Portable),
        IoBackend::IoUring => {
            crate::preflight::check_io_uring_usable()?;
            Ok(IoBackend::IoUring)
        }
        IoBackend::Auto => match crate::preflight::check_io_uring_usable() {
            Ok(()) => Ok(IoBackend::IoUring),
            Err(e) => {
                log::warn!(
                    "{e}; falling back to the portable backend (one thread per shard, blocking \
                     O_DIRECT writes): same files and guarantees, lower throughput"
                );
                Ok(IoBackend::Portable)
            }
        },
    }
}

/// Starts shard `i` on `backend` (pinned to `cpu` if given), through the
/// fault plan when the config carries one.
fn spawn_shard(
    config: &Config,
    backend: IoBackend,
    i: usize,
    cpu: Option<usize>,
    setup: WorkerSetup,
    ready: std::sync::mpsc::SyncSender<Result<(), Error>>,
) -> Result<ShardThread, Error> {
    let allow_buffered = config.allow_non_durable_dir;
    #[cfg(feature = "failpoints")]
    if let Some(plan) = config.fault_plan.clone() {
        use crate::io::faulty::FaultyFs;
        return match backend {
            IoBackend::Portable => spawn_portable(i, cpu, allow_buffered, setup, ready, |fs| {
                FaultyFs::new(fs, plan)
            }),
            IoBackend::IoUring | IoBackend::Auto => {
                spawn_glommio(i, cpu, FaultyFs::new(DmaFs, plan), setup, ready)
            }
        };
    }
    match backend {
        IoBackend::Portable => spawn_portable(i, cpu, allow_buffered, setup, ready, |fs| fs),
        IoBackend::IoUring | IoBackend::Auto => spawn_glommio(i, cpu, DmaFs, setup, ready),
    }
}

fn spawn_glommio<Fs: LogFs + Send + 'static>(
    i: usize,
    cpu: Option<usize>,
    fs: Fs,
    setup: WorkerSetup,
    ready: std::sync::mpsc::SyncSender<Result<(), Error>>,
) -> Result<ShardThread, Error> {
    let placement = cpu.map_or(Placement::Unbound, Placement::Fixed);
    LocalExecutorBuilder::new(placement)
        .name(&format!("ringstore-{i}"))
        .io_memory(io_memory_bytes(setup.max_batch_bytes, setup.pipeline_depth))
        .spawn(move || async move {
            let _attached = setup.shared.pulse.attach_current_thread();
            worker::run(fs, setup, ready).await;
        })
        .map(ShardThread::Glommio)
        .map_err(|e| Error::ExecutorStart {
            shard: i,
            reason: e.to_string(),
        })
}

/// glommio's preallocated DMA memory per executor: room for the batches in
/// flight, up to [`IO_MEMORY_PER_BATCH_BYTES`] each (a larger batch takes its
/// buffer from the heap), plus the segment header blocks. glommio's default,
/// 10 MiB per executor, was a fifth of the seed workload's peak RSS.
fn io_memory_bytes(max_batch_bytes: usize, pipeline_depth: usize) -> usize {
    max_batch_bytes
        .min(IO_MEMORY_PER_BATCH_BYTES)
        .saturating_mul(pipeline_depth.max(1))
        .saturating_add(64 << 10)
}

/// The part of a batch's buffer that comes from the executor's
/// preallocated DMA memory: 4 MiB (the closed-loop seed workload's batches
/// are 1–1.5 MB).
const IO_MEMORY_PER_BATCH_BYTES: usize = 4 << 20;

/// One std thread running the shard's worker future with a simple local
/// executor (the portable backend).
fn spawn_portable<Fs: LogFs>(
    i: usize,
    cpu: Option<usize>,
    allow_buffered: bool,
    setup: WorkerSetup,
    ready: std::sync::mpsc::SyncSender<Result<(), Error>>,
    wrap: impl FnOnce(PortableFs) -> Fs + Send + 'static,
) -> Result<ShardThread, Error> {
    std::thread::Builder::new()
        .name(format!("ringstore-{i}"))
        .spawn(move || {
            if let Some(cpu) = cpu {
                let mut set = rustix::thread::CpuSet::new();
                set.set(cpu);
                if let Err(e) = rustix::thread::sched_setaffinity(None, &set) {
                    log::warn!("shard {i}: could not pin to CPU {cpu}: {e}");
                }
            }
            match PortableFs::new(i, allow_buffered) {
                Ok(fs) => futures::executor::block_on(worker::run(wrap(fs), setup, ready)),
                Err(e) => {
                    // The store did not open: no put was acknowledged.
                    let mut receiver = setup.receiver;
                    drop(receiver.close(&setup.shared.queue));
                    let _ = ready.send(Err(Error::ExecutorStart {
                        shard: i,
                        reason: format!("could not start the shard's timer thread: {e}"),
                    }));
                }
            }
        })
        .map(ShardThread::Portable)
        .map_err(|e| Error::ExecutorStart {
            shard: i,
            reason: format!("could not start the shard thread: {e}"),
        })
}

/// The changes `compact` makes to the data dir itself (outside the shards'
/// I/O seam). In `failpoints` builds a recording fault plan logs them like
/// the shards' own, so crash tests see every rename and removal.
struct DirChanges<'a>(
    #[cfg_attr(
        not(feature = "failpoints"),
        expect(dead_code, reason = "only failpoints builds have a fault plan")
    )]
    &'a Config,
);

impl DirChanges<'_> {
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.logged(
            || std::fs::rename(from, to),
            |ok| DirChange::Rename {
                from: from.to_path_buf(),
                to: to.to_path_buf(),
                ok,
            },
        )
    }

    fn remove_if_exists(&self, path: &Path) -> Result<(), Error> {
        let removed = self.logged(
            || match std::fs::remove_file(path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(e),
            },
            |ok| DirChange::Remove {
                path: path.to_path_buf(),
                ok,
            },
        );
        removed
            .map(|_| ())
            .map_err(|e| Error::io("removing superseded segment", path, e))
    }

    fn sync_dir(&self, dir: &Path) -> Result<(), Error> {
        self.logged(
            || recovery::sync_dir(dir),
            |ok| DirChange::SyncDir {
                dir: dir.to_path_buf(),
                ok,
            },
        )
    }

    #[cfg(feature = "failpoints")]
    fn logged<T, E>(
        &self,
        op: impl FnOnce() -> Result<T, E>,
        change: impl FnOnce(bool) -> DirChange,
    ) -> Result<T, E> {
        use crate::io::faulty::IoEvent;
        match &self.0.fault_plan {
            Some(plan) => plan.logged(op, |ok| match change(ok) {
                DirChange::Rename { from, to, ok } => IoEvent::Rename { from, to, ok },
                DirChange::Remove { path, ok } => IoEvent::Remove { path, ok },
                DirChange::SyncDir { dir, ok } => IoEvent::SyncDir { dir, ok },
            }),
            None => op(),
        }
    }

    #[cfg(not(feature = "failpoints"))]
    fn logged<T, E>(
        &self,
        op: impl FnOnce() -> Result<T, E>,
        _change: impl FnOnce(bool) -> DirChange,
    ) -> Result<T, E> {
        op()
    }
}

/// One change made by [`DirChanges`], for the fault plan's log.
#[cfg_attr(
    not(feature = "failpoints"),
    expect(dead_code, reason = "read only by failpoints builds")
)]
enum DirChange {
    Rename {
        from: PathBuf,
        to: PathBuf,
        ok: bool,
    },
    Remove {
        path: PathBuf,
        ok: bool,
    },
    SyncDir {
        dir: PathBuf,
        ok: bool,
    },
}

impl Inner {
    fn shutdown_and_join(&self) {
        for shard in &self.shards {
            shard.queue.shutdown();
        }
        while let Some((i, handle)) = self.executors.pop() {
            if let Err(e) = handle.join() {
                log::error!("shard {i} executor ended with an error: {e}");
            }
        }
        // Only now: a shard draining its last writes may need a wake too.
        while let Some(w) = self.watchdog.pop() {
            w.stop();
        }
    }

    /// Joins executor `i` (already exited) and returns its error text.
    fn join_failure(&self, i: usize) -> Option<String> {
        let mut others = Vec::new();
        let mut found = None;
        while let Some((j, handle)) = self.executors.pop() {
            if j == i {
                found = Some(match handle.join() {
                    Ok(()) => "the executor exited during start-up".to_owned(),
                    Err(e) => e,
                });
                break;
            }
            others.push((j, handle));
        }
        for entry in others {
            self.executors.push(entry);
        }
        found
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropping without `close` is as safe as a crash, but joining here
        // lets a later `open` of the same dir start from quiet files. The
        // retention thread is only told to stop: this drop may run on it.
        self.retention_stop.store(true, Ordering::Release);
        self.shutdown_and_join();
    }
}
