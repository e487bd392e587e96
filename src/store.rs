//! The public `Store`: open (preflight, lock, recovery, executors), put, get,
//! close.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::channel::oneshot;
use glommio::{LocalExecutorBuilder, Placement};

use crate::config::{Config, Durability};
use crate::error::Error;
use crate::io::dma::DmaFs;
use crate::lock::DirLock;
use crate::record::{Record, Value};
use crate::record_ref::RecordRef;
use crate::recovery::{self, RecoveryReport};
use crate::segment::format::MAX_KEY_BYTES;
use crate::segment::writer::WriterSpec;
use crate::shard::index::{self, new_index};
use crate::shard::submission::{Submission, queue};
use crate::shard::worker::{self, WorkerSetup};
use crate::shard::{ShardShared, shard_for};

/// What a put did to the in-memory map. Both outcomes are persisted: the log
/// keeps the full history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The record is now the readable one for its key.
    Applied,
    /// A record with a higher version was already stored; it stays readable.
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
    executors: scc::Bag<(usize, glommio::ExecutorJoinHandle<()>)>,
    closed: AtomicBool,
    report: RecoveryReport,
    _lock: DirLock,
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
        crate::preflight::check(&dir, config.allow_non_durable_dir)?;
        let lock = DirLock::acquire(&dir)?;
        let recovered = recovery::recover(&dir, config.recovery_mode, recovery::Repair::Allowed)?;
        let generation = recovered.report.previous_generation + 1;
        let n = config.shards;

        let mut shards = Vec::with_capacity(n);
        let mut receivers = Vec::with_capacity(n);
        for i in 0..n {
            let (q, r) = queue(config.queue_depth);
            shards.push(Arc::new(ShardShared::new(i, new_index(), q)));
            receivers.push(r);
        }
        for latest in recovered.records {
            if let Some(shard) = shards.get(shard_for(latest.record.key(), n)) {
                index::publish(&shard.index, latest.record);
            }
        }
        for i in 0..n {
            let d = dir.join(format!("shard-{i}"));
            std::fs::create_dir_all(&d).map_err(|e| Error::io("creating shard dir", &d, e))?;
        }
        recovery::sync_dir(&dir)?;

        let inner = Inner {
            config: config.clone(),
            shards,
            executors: scc::Bag::new(),
            closed: AtomicBool::new(false),
            report: recovered.report,
            _lock: lock,
        };
        let cpus = allowed_cpus();
        let mut readiness = Vec::with_capacity(n);
        for (i, receiver) in receivers.into_iter().enumerate() {
            let Some(shared) = inner.shards.get(i).cloned() else {
                continue;
            };
            let setup = WorkerSetup {
                shared,
                receiver,
                spec: WriterSpec {
                    shard_dir: dir.join(format!("shard-{i}")),
                    shard: i as u32,
                    shard_count: n as u32,
                    generation,
                    max_segment_bytes: config.max_segment_bytes,
                    max_segment_records: config.max_segment_records,
                    on_sealed: config.on_sealed.as_ref().map(|c| c.0.clone()),
                },
                first_seq: recovered.max_seq.get(&i).map_or(1, |s| s + 1),
                durability: config.durability,
                flush_interval: config.flush_interval(),
                max_batch_bytes: config.max_batch_bytes,
                pipeline_depth: config.pipeline_depth,
            };
            let placement = match (config.pin_cpus, cpus.is_empty()) {
                (true, false) => Placement::Fixed(cpus.get(i % cpus.len()).copied().unwrap_or(0)),
                _ => Placement::Unbound,
            };
            let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
            let spawned = LocalExecutorBuilder::new(placement)
                .name(&format!("ringstore-{i}"))
                .spawn(move || worker::run(DmaFs, setup, ready_tx));
            match spawned {
                Ok(handle) => {
                    inner.executors.push((i, handle));
                    readiness.push((i, ready_rx));
                }
                Err(e) => {
                    inner.shutdown_and_join();
                    return Err(Error::ExecutorStart {
                        shard: i,
                        reason: e.to_string(),
                    });
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
        Ok(Store {
            inner: Arc::new(inner),
        })
    }

    /// Stores `record` under `key`. The record is validated and serialized on
    /// the calling thread; the returned future (`Send`, runtime-agnostic)
    /// resolves once the owning shard has persisted it as the durability
    /// mode requires. Dropping the future does not cancel a submitted put.
    pub fn put(
        &self,
        key: &str,
        record: &Record,
    ) -> impl Future<Output = Result<PutOutcome, Error>> + Send + 'static {
        let prepared = self.prepare(key, record);
        async move {
            let (shard, record, payload_crc) = prepared?;
            if let Some(cause) = shard.failure() {
                return Err(Error::ShardFailed {
                    shard: shard.id,
                    cause,
                });
            }
            let (reply, outcome) = oneshot::channel();
            shard
                .queue
                .submit(Submission {
                    record,
                    payload_crc,
                    reply,
                })
                .await?;
            outcome.await.unwrap_or(Err(Error::Closed))
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
        let bytes =
            rkyv::to_bytes::<rkyv::rancor::Error>(record).map_err(|e| Error::Serialize {
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
            RecordRef::from_serialized(key.into(), version, bytes),
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

    /// The durability mode.
    pub fn durability(&self) -> Durability {
        self.inner.config.durability
    }

    /// What recovery found and did when this store was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.inner.report
    }

    /// Checkpoint and retention: every shard rewrites its live set (the
    /// newest record of each of its keys) into a fresh sealed segment; once
    /// **all** shards have made theirs durable, every older segment of the
    /// current shard folders and every folder left by a run with more shards
    /// is deleted. A crash at any point loses nothing: deletion starts only
    /// after every checkpoint is durable, and recovery ranks the copies by
    /// version. Puts keep flowing (they wait while their shard writes its
    /// checkpoint). Blocks the calling thread.
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
        for (shard, path) in recovery::shard_dirs(dir)? {
            let first_kept = keep_from.iter().find(|(i, _)| *i == shard).map(|(_, s)| *s);
            for (seq, seg) in recovery::segments(&path)? {
                if first_kept.is_some_and(|keep| seq >= keep) {
                    continue;
                }
                report.bytes_removed += std::fs::metadata(&seg).map_or(0, |m| m.len());
                remove_if_exists(&crate::segment::hint::hint_path(&seg))?;
                remove_if_exists(&seg)?;
                report.segments_removed += 1;
            }
            recovery::sync_dir(&path)?;
            if first_kept.is_none() {
                std::fs::remove_dir(&path)
                    .map_err(|e| Error::io("removing retired shard dir", &path, e))?;
                report.folders_removed += 1;
            }
        }
        recovery::sync_dir(dir)?;
        Ok(report)
    }

    /// Drains every queue, makes everything durable, closes the files and
    /// joins the executors. Puts issued afterwards fail with `Error::Closed`;
    /// gets keep working on the last state. Blocks the calling thread.
    pub fn close(&self) -> Result<(), Error> {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.shutdown_and_join();
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

fn remove_if_exists(path: &Path) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("removing superseded segment", path, e)),
    }
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
    }

    /// Joins executor `i` (already exited) and returns its error text.
    fn join_failure(&self, i: usize) -> Option<String> {
        let mut others = Vec::new();
        let mut found = None;
        while let Some((j, handle)) = self.executors.pop() {
            if j == i {
                found = Some(match handle.join() {
                    Ok(()) => "the executor exited during start-up".to_owned(),
                    Err(e) => e.to_string(),
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
        // lets a later `open` of the same dir start from quiet files.
        self.shutdown_and_join();
    }
}
