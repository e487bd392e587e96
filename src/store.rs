//! The public `Store`: the facade over the shards. `open` reads as
//! recover → build shards → start executors → start background work; `put`
//! serializes on the caller's thread and hands the record to its shard;
//! `get` reads the shard's map; `compact` asks every shard for a checkpoint
//! and then retires what they superseded (`compaction`); `close` stops it
//! all in order.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use futures::channel::oneshot;

use crate::buffer_pool::BufferPool;
use crate::config::{Config, Durability, IoBackend};
use crate::error::Error;
use crate::lock::DirLock;
use crate::outcome::{BackupReport, CompactReport, PutOptions, PutOutcome};
use crate::record::{Record, Value};
use crate::record_ref::RecordRef;
use crate::recovery::{self, LatestDelete, LatestRecord, RecoveryReport};
use crate::retention::Retention;
use crate::sealed::{Notifier, SealedLog};
use crate::segment::format::MAX_KEY_BYTES;
use crate::segment::writer::{SealedSegment, WriterSpec};
use crate::shard::index::{self, LogRank, new_index};
use crate::shard::spawn::{ShardThread, allowed_cpus, spawn_shard};
use crate::shard::stats::ShardStats;
use crate::shard::submission::{QueueReceiver, queue};
use crate::shard::watchdog::Watchdog;
use crate::shard::worker::WorkerSetup;
use crate::shard::{ShardShared, shard_for};
use crate::write::{Tombstone, Write};

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
    /// Set by the first `close`: puts and compactions fail `Closed` from then.
    closed: AtomicBool,
    /// Held by `compact` for its whole run and by `close` from the shards'
    /// shutdown to the lock's release: compactions never overlap each other
    /// or a close, a second `close` waits for the first, and the data-dir
    /// lock is dropped only after every shard has been joined and no
    /// compaction can touch a file.
    lifecycle: Mutex<()>,
    report: RecoveryReport,
    /// The data-dir lock; `close` releases it.
    lock: Mutex<Option<DirLock>>,
    /// Background work, each present when configured.
    retention: Mutex<Option<Retention>>,
    watchdog: Mutex<Option<Watchdog>>,
    notifier: Mutex<Option<Notifier>>,
    /// Buffers of superseded records, reused by `put` to serialize into.
    buffers: Arc<BufferPool>,
    /// The sealed segments, as the shards publish them.
    sealed: Arc<SealedLog>,
}

/// A handle that does not keep the store open: [`WeakStore::upgrade`] gives a
/// [`Store`] while any other `Store` handle lives. For callbacks the store
/// owns (`Config::on_sealed`), which must not keep it alive themselves.
#[derive(Clone, Debug)]
pub struct WeakStore {
    inner: std::sync::Weak<Inner>,
}

impl WeakStore {
    /// The store, if some `Store` handle still holds it.
    pub fn upgrade(&self) -> Option<Store> {
        self.inner.upgrade().map(|inner| Store { inner })
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.inner.config.dir)
            .field("shards", &self.inner.shards.len())
            .finish()
    }
}

/// Takes `m`'s value, whatever a panicking holder left.
fn take<T>(m: &Mutex<Option<T>>) -> Option<T> {
    m.lock().unwrap_or_else(PoisonError::into_inner).take()
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
        let backend = crate::preflight::resolve_backend(&config)?;

        let recovered = recovery::recover(&dir, config.recovery_mode, recovery::Repair::Allowed)?;
        let generation = recovered.report.previous_generation + 1;
        for i in 0..config.shards {
            let d = crate::layout::shard_dir(&dir, i);
            std::fs::create_dir_all(&d).map_err(|e| Error::io("creating shard dir", &d, e))?;
        }
        recovery::sync_dir(&dir)?;
        let sealed = Arc::new(SealedLog::at_open(&dir)?);

        let (shards, receivers) =
            build_shards(&config, generation, recovered.records, recovered.deletes);

        let inner = Inner {
            // The callback lives on the notifier thread only: a `Store` it
            // captured must not keep itself alive through its own config.
            config: Config {
                on_sealed: None,
                ..config.clone()
            },
            shards,
            executors: scc::Bag::new(),
            backend,
            closed: AtomicBool::new(false),
            lifecycle: Mutex::new(()),
            report: recovered.report,
            lock: Mutex::new(Some(lock)),
            retention: Mutex::new(None),
            watchdog: Mutex::new(None),
            notifier: Mutex::new(None),
            buffers: Arc::new(BufferPool::new(config.record_buffer_pool_bytes)),
            sealed,
        };
        if let Some(callback) = &config.on_sealed {
            let notifier = inner.sealed.start_notifier(callback.0.clone())?;
            *inner
                .notifier
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(notifier);
        }
        if let Err(e) = inner.start_executors(receivers, &recovered.next_seq, generation) {
            inner.shutdown_and_join();
            return Err(e);
        }
        let store = Store {
            inner: Arc::new(inner),
        };
        store.start_background()?;
        Ok(store)
    }

    /// The watchdog and the retention thread, as configured.
    fn start_background(&self) -> Result<(), Error> {
        let inner = &self.inner;
        let config = &inner.config;
        if let Some(limit) = config.compact_above_sealed_bytes {
            let retention = Retention::start(self.downgrade(), limit)
                .map_err(|e| Error::io("starting the retention thread", &config.dir, e))?;
            *inner
                .retention
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(retention);
        }
        Ok(())
    }

    /// Total bytes of sealed segments (file sizes only, no reads).
    pub(crate) fn sealed_bytes(&self) -> u64 {
        self.inner.sealed.bytes()
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
        self.put_with(
            key,
            record,
            PutOptions {
                durability: self.inner.config.durability,
            },
        )
    }

    /// `put` with its own durability, whatever the store's mode:
    ///
    /// * `Durability::Sync` in an `Async` store: resolves once the record is
    ///   durable (an `Async` put, then a flush of its shard, which
    ///   concurrent such puts share).
    /// * `Durability::Async` in a `Sync` store: resolves as soon as the
    ///   shard has decided the put and handed it to a write — before it is
    ///   durable (a crash before its write completes loses it). It stays
    ///   unreadable until durable, like every write of a `Sync` store.
    pub fn put_with(
        &self,
        key: &str,
        record: &Record,
        options: PutOptions,
    ) -> impl Future<Output = Result<PutOutcome, Error>> + Send + 'static + use<> {
        let prepared = self.prepare(key, record);
        async move {
            let (shard, record, payload_crc) = prepared?;
            shard
                .put(Write::Put(record), payload_crc, options.durability)
                .await
        }
    }

    /// Deletes `key` at `version`: a tombstone that wins or loses by
    /// version exactly like a put. It applies when `version` is at least
    /// the key's current one (a record's or an earlier delete's; ties go
    /// to the later write) and then `get` returns `None`, the record's
    /// memory is released, and the key leaves `len`, `keys` and `iter`.
    /// A delete older than the current version changes nothing and returns
    /// `Stale`; a later put with a version at least `version` brings the
    /// key back. Deleting a key the store does not hold is `Applied`: the
    /// tombstone still makes older puts `Stale`.
    ///
    /// The tombstone is written to the log like a put (same durability,
    /// same group commit) and survives restarts. A compaction copies it
    /// forward until it is older than `Config::tombstone_retention`, then
    /// forgets it; after that, the key is unknown again and a put of any
    /// version applies — even one older than the delete.
    ///
    /// Errors: `EmptyKey`, `KeyTooLong`, `Closed`, `ShardFailed`, and the
    /// write's own I/O errors, as for `put`. `Send`, runtime-agnostic.
    pub fn delete(
        &self,
        key: &str,
        version: i64,
    ) -> impl Future<Output = Result<PutOutcome, Error>> + Send + 'static + use<> {
        let prepared = self.route(key).map(|shard| {
            let tombstone = Tombstone::now(key, version);
            let write = Write::Delete(Arc::new(tombstone));
            let payload_crc = crc32c::crc32c(write.payload());
            (shard, write, payload_crc)
        });
        let durability = self.inner.config.durability;
        async move {
            let (shard, write, payload_crc) = prepared?;
            shard.put(write, payload_crc, durability).await
        }
    }

    /// `delete` for plain threads.
    pub fn delete_blocking(&self, key: &str, version: i64) -> Result<PutOutcome, Error> {
        futures::executor::block_on(self.delete(key, version))
    }

    /// `put_with` for plain threads.
    pub fn put_with_blocking(
        &self,
        key: &str,
        record: &Record,
        options: PutOptions,
    ) -> Result<PutOutcome, Error> {
        futures::executor::block_on(self.put_with(key, record, options))
    }

    /// Many puts at once: one outcome per item, in input order. Each item
    /// is validated on its own (a bad one gets its error, the others go
    /// on); the valid ones are sent to their shards back to back, so a
    /// shard writes its items in one or a few group commits (100 items of
    /// ~450 bytes to one idle shard: 1–3 commits over 20 calls; more when
    /// they exceed `max_batch_bytes` or the queue's budget).
    ///
    /// Not atomic: each item is its own put. In `Sync` mode the future
    /// resolves once every item is durable; after a crash before that, any
    /// subset of the call's items may have survived (never a torn one), and
    /// every item of a call that resolved is there.
    pub fn put_many<'a>(
        &self,
        items: impl IntoIterator<Item = (&'a str, &'a Record)>,
    ) -> futures::future::JoinAll<futures::future::BoxFuture<'static, Result<PutOutcome, Error>>>
    {
        let durability = self.inner.config.durability;
        let puts: Vec<futures::future::BoxFuture<'static, Result<PutOutcome, Error>>> = items
            .into_iter()
            .map(|(key, record)| {
                let prepared = self.prepare(key, record);
                let put: futures::future::BoxFuture<'static, _> = Box::pin(async move {
                    let (shard, record, payload_crc) = prepared?;
                    shard.put(Write::Put(record), payload_crc, durability).await
                });
                put
            })
            .collect();
        futures::future::join_all(puts)
    }

    /// `put_many` for plain threads.
    pub fn put_many_blocking<'a>(
        &self,
        items: impl IntoIterator<Item = (&'a str, &'a Record)>,
    ) -> Vec<Result<PutOutcome, Error>> {
        futures::executor::block_on(self.put_many(items))
    }

    /// Resolves once every put acknowledged before this call is durable, in
    /// every shard: the barrier an `Async` store needs before it tells
    /// anyone upstream that a write is safe. In `Sync` mode it waits for the
    /// writes in flight (a plain Sync put is durable when answered, a
    /// fire-and-forget `put_with` is not). An `Async` shard runs its `fdatasync` as soon as
    /// the records it covers are written, without waiting for
    /// `flush_interval_ms`; concurrent calls share flushes. Errors:
    /// `Closed` after `close`, `ShardFailed` if a shard's disk failed (what
    /// it had acknowledged may be lost). `Send`, runtime-agnostic.
    pub fn flush(&self) -> impl Future<Output = Result<(), Error>> + Send + 'static + use<> {
        let sent = self.send_flushes();
        async move {
            for reply in sent? {
                reply.await.unwrap_or(Err(Error::Closed))?;
            }
            Ok(())
        }
    }

    /// `flush` for plain threads: blocks until it resolves.
    pub fn flush_blocking(&self) -> Result<(), Error> {
        futures::executor::block_on(self.flush())
    }

    /// Sends every shard a flush request now (in queue order after every
    /// record already sent, so after every acknowledged put).
    fn send_flushes(&self) -> Result<Vec<oneshot::Receiver<Result<(), Error>>>, Error> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let mut replies = Vec::with_capacity(self.inner.shards.len());
        for shard in &self.inner.shards {
            let (reply, done) = oneshot::channel();
            shard
                .queue
                .control(crate::shard::submission::Msg::Flush(reply))?;
            replies.push(done);
        }
        Ok(replies)
    }

    /// `put` for plain threads: blocks until the outcome is known. Do not
    /// call it from inside an async task (it would block the task's thread).
    pub fn put_blocking(&self, key: &str, record: &Record) -> Result<PutOutcome, Error> {
        futures::executor::block_on(self.put(key, record))
    }

    /// The shard of a write to `key`, once the store is open and the key
    /// is valid.
    fn route(&self, key: &str) -> Result<Arc<ShardShared>, Error> {
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
        inner
            .shards
            .get(shard_for(key, inner.shards.len()))
            .cloned()
            .ok_or(Error::Closed)
    }

    fn prepare(
        &self,
        key: &str,
        record: &Record,
    ) -> Result<(Arc<ShardShared>, RecordRef, u32), Error> {
        let inner = &self.inner;
        let shard = self.route(key)?;
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

    /// Every stored record with its key, shard by shard, in no particular
    /// order. Lock-free and weakly consistent, and it never blocks a
    /// writer: each shard's keys are read when the iteration reaches that
    /// shard (one handle per record of the shard is held meanwhile, never a
    /// copy of a record). A key stored for the whole iteration is seen
    /// exactly once, with the record current when its shard was read; a
    /// key put or replaced during the iteration may or may not be seen, or
    /// be seen with its older record.
    pub fn iter(&self) -> impl Iterator<Item = (String, RecordRef)> + '_ {
        self.records_where(|_| true)
            .map(|r| (r.key().to_owned(), r))
    }

    /// The keys of [`Store::iter`], with the same consistency.
    pub fn keys(&self) -> impl Iterator<Item = String> + '_ {
        self.records_where(|_| true).map(|r| r.key().to_owned())
    }

    /// The records whose key starts with `prefix`, as [`Store::iter`] gives
    /// them (unordered: the maps are hashed, so this reads every key; its
    /// cost is that of `iter`, without the handles of other keys).
    pub fn scan_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (String, RecordRef)> + 'a {
        self.records_where(move |k| k.starts_with(prefix))
            .map(|r| (r.key().to_owned(), r))
    }

    fn records_where<'a>(
        &'a self,
        keep: impl Fn(&str) -> bool + Copy + 'a,
    ) -> impl Iterator<Item = RecordRef> + 'a {
        self.inner
            .shards
            .iter()
            .flat_map(move |shard| index::records(&shard.index, keep))
    }

    /// Whether no key is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A handle that does not keep the store open (see [`WeakStore`]).
    pub fn downgrade(&self) -> WeakStore {
        WeakStore {
            inner: Arc::downgrade(&self.inner),
        }
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

    /// Cargo feature `metrics`: sets every shard's statistics (the figures
    /// of [`Store::shard_stats`] and its key count) in the `metrics`
    /// facade's recorder, labelled `shard`: `ringstore_batches_total`,
    /// `ringstore_frames_total`, `ringstore_bytes_written_total`,
    /// `ringstore_fdatasyncs_total`, `ringstore_rotations_total`,
    /// `ringstore_checkpoints_total`, `ringstore_keys`,
    /// `ringstore_write_seconds_total`, `ringstore_put_in_store_p99_seconds`
    /// and more (see the module `metrics_out`). Cheap (atomic loads); call
    /// it from the exporter's scrape hook or a timer.
    #[cfg(feature = "metrics")]
    pub fn publish_metrics(&self) {
        for shard in &self.inner.shards {
            crate::metrics_out::publish(&shard.stats.snapshot(shard.id), shard.index.len());
        }
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
        self.inner.sealed.list()
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
    /// chunks, one at a time, alternating with put batches. In `Async` mode
    /// a shard writes its whole live set at once, taking no records
    /// meanwhile: once `max_batch_bytes` of records wait, `Async` puts to
    /// that shard wait until its live set is written and synced (about the
    /// live set's size divided by the disk's write bandwidth). Blocks the
    /// calling thread; a second call waits for the first, and a call during
    /// or after `close` fails `Closed`.
    pub fn compact(&self) -> Result<CompactReport, Error> {
        let inner = &self.inner;
        let _lifecycle = self.dir_work()?;
        let mut waits = Vec::with_capacity(inner.shards.len());
        for shard in &inner.shards {
            let (reply, done) = oneshot::channel();
            shard
                .queue
                .control(crate::shard::submission::Msg::Checkpoint(reply))?;
            waits.push((shard.id, done));
        }
        let mut keep_from = Vec::with_capacity(waits.len());
        let mut records = 0;
        let mut forgotten = 0;
        for (id, done) in waits {
            let done = futures::executor::block_on(done).unwrap_or(Err(Error::Closed))?;
            keep_from.push((id, done.keep_from));
            records += done.records;
            forgotten += done.tombstones_forgotten;
        }
        #[cfg(feature = "failpoints")]
        crate::hooks::reached(crate::hooks::PausePoint::CompactFileWork);
        let mut report = crate::compaction::retire_superseded(
            &inner.config,
            &inner.sealed,
            &keep_from,
            records,
        )?;
        report.tombstones_forgotten = forgotten;
        // A segment kept for the shipper may hold older frames of a key
        // whose tombstone the next checkpoint would forget.
        for shard in &inner.shards {
            shard.allow_forgetting(report.segments_kept_unshipped == 0);
        }
        Ok(report)
    }

    /// The lifecycle lock for work on the data dir's files (compaction,
    /// backup): one at a time, never during or after `close`.
    fn dir_work(&self) -> Result<std::sync::MutexGuard<'_, ()>, Error> {
        let guard = self
            .inner
            .lifecycle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(guard)
    }

    /// An online, consistent copy of the data dir into `dest` (a new or
    /// empty directory, ideally on another disk) that opens as a store
    /// (`Store::open` or `ReadOnlyStore::open`) holding every put
    /// acknowledged before this call. Puts keep flowing meanwhile;
    /// compactions wait until the copy is done. Blocks the calling thread.
    /// Errors: `Closed` after `close`; `Io` naming the file when the
    /// destination is not empty or a copy fails (the partial copy is left
    /// for the caller to remove).
    pub fn backup_to(&self, dest: impl AsRef<Path>) -> Result<BackupReport, Error> {
        let dest = dest.as_ref();
        // Everything acknowledged is in the files before the copy starts.
        self.flush_blocking()?;
        let _lifecycle = self.dir_work()?;
        crate::backup::copy_data_dir(&self.inner.config.dir, dest)
    }

    /// [`Store::close`] as a future (`Send`, runtime-agnostic), for async
    /// callers that must not block their thread: the close starts at once
    /// on a helper thread and the future resolves with its result.
    pub fn close_async(&self) -> impl Future<Output = Result<(), Error>> + Send + 'static + use<> {
        self.on_helper_thread("ringstore-close", Store::close)
    }

    /// [`Store::compact`] as a future (`Send`, runtime-agnostic): the
    /// compaction starts at once on a helper thread.
    pub fn compact_async(
        &self,
    ) -> impl Future<Output = Result<CompactReport, Error>> + Send + 'static + use<> {
        self.on_helper_thread("ringstore-compact", Store::compact)
    }

    /// Runs `work` on a new thread now; the future gives its result.
    fn on_helper_thread<T: Send + 'static>(
        &self,
        name: &str,
        work: fn(&Store) -> Result<T, Error>,
    ) -> impl Future<Output = Result<T, Error>> + Send + 'static + use<T> {
        let store = self.clone();
        let (tx, rx) = oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let _ = tx.send(work(&store));
            })
            .map_err(|e| Error::io("starting a helper thread", &self.inner.config.dir, e));
        async move {
            spawned?;
            rx.await.unwrap_or(Err(Error::Closed))
        }
    }

    /// Drains every queue, makes everything durable, closes the files and
    /// joins the executors. Puts issued afterwards fail with `Error::Closed`;
    /// gets keep working on the last state. Blocks the calling thread.
    ///
    /// Idempotent and safe from several threads at once: a later call
    /// waits for the first to finish and returns the same answer. A
    /// `compact` in progress finishes first; one that starts after
    /// `close` fails `Closed`. The data-dir lock is released only once
    /// every shard has stopped.
    pub fn close(&self) -> Result<(), Error> {
        let inner = &self.inner;
        inner.closed.store(true, Ordering::Release);
        // Before taking `lifecycle`: the retention thread may be waiting
        // for it inside `compact` (it then sees `closed` and ends).
        if let Some(retention) = take(&inner.retention) {
            retention.stop();
        }
        let lifecycle = inner
            .lifecycle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        inner.shutdown_and_join();
        // Everything is durable and every shard has exited: another store
        // may take the dir now, even while this handle lives on for gets.
        drop(take(&inner.lock));
        drop(lifecycle);
        // Outside `lifecycle`: the callback may be waiting for it in
        // `compact` (which then fails `Closed`).
        inner.finish_notifying();
        match inner
            .shards
            .iter()
            .find_map(|s| s.failure().map(|c| (s.id, c)))
        {
            Some((shard, cause)) => Err(Error::ShardFailed { shard, cause }),
            None => Ok(()),
        }
    }
}

/// One shard per `config.shards`, each with its queue, its map filled with
/// the recovered records it owns.
fn build_shards(
    config: &Config,
    generation: u64,
    recovered: Vec<LatestRecord>,
    deletes: Vec<LatestDelete>,
) -> (Vec<Arc<ShardShared>>, Vec<QueueReceiver>) {
    let n = config.shards;
    let mut shards = Vec::with_capacity(n);
    let mut receivers = Vec::with_capacity(n);
    for i in 0..n {
        let (q, r) = match config.durability {
            Durability::Sync => queue(
                config.max_queued_bytes,
                config.max_queued_bytes / config.queue_depth.max(1),
            ),
            Durability::Async => queue(config.max_batch_bytes, 0),
        };
        shards.push(Arc::new(ShardShared::new(
            i,
            new_index(),
            q,
            config.durability,
            generation,
            config.tombstone_retention,
            config.retain_until_shipped,
        )));
        receivers.push(r);
    }
    let writes = recovered
        .into_iter()
        .map(|r| (Write::Put(r.record), r.generation, r.lsn))
        .chain(deletes.into_iter().map(|d| {
            let t = Tombstone::at(&d.key, d.version, d.deleted_at_unix_ns);
            (Write::Delete(Arc::new(t)), d.generation, d.lsn)
        }));
    for (write, generation, lsn) in writes {
        if let Some(shard) = shards.get(shard_for(write.key(), n)) {
            let rank = LogRank { generation, lsn };
            let _ = index::publish(&shard.index, write, || rank);
        }
    }
    (shards, receivers)
}

impl Inner {
    /// Starts one executor per shard and waits until each has created its
    /// first segment. On error the caller shuts down what started.
    fn start_executors(
        &self,
        receivers: Vec<QueueReceiver>,
        next_seq: &std::collections::HashMap<usize, u64>,
        generation: u64,
    ) -> Result<(), Error> {
        let config = &self.config;
        let n = config.shards;
        let cpus = allowed_cpus();
        let mut readiness = BTreeMap::new();
        for (i, receiver) in receivers.into_iter().enumerate() {
            let Some(shared) = self.shards.get(i).cloned() else {
                continue;
            };
            let setup = WorkerSetup {
                shared,
                receiver,
                spec: WriterSpec {
                    shard_dir: crate::layout::shard_dir(&config.dir, i),
                    shard: i as u32,
                    shard_count: n as u32,
                    pipeline_depth: config.pipeline_depth as u32,
                    write_through: config.write_through(),
                    generation,
                    max_segment_bytes: config.max_segment_bytes,
                    max_segment_records: config.max_segment_records,
                    sealed: Arc::clone(&self.sealed),
                    recycle: config.spares_kept() > 0,
                },
                first_seq: next_seq.get(&i).copied().unwrap_or(1),
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
            let handle = spawn_shard(config, self.backend, i, cpu, setup, ready_tx)?;
            self.executors.push((i, handle));
            readiness.insert(i, ready_rx);
        }
        // Before waiting: an executor can sleep through a completion while
        // it creates its first segment too, and would hold `open` until a
        // signal reached its thread.
        self.start_watchdog();
        for (i, ready) in readiness {
            match ready.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                // The executor thread ended before running the shard: glommio
                // could not build its reactor.
                Err(_) => {
                    return Err(Error::ExecutorStart {
                        shard: i,
                        reason: self.join_failure(i).unwrap_or_else(|| {
                            "the executor thread exited during start-up".to_owned()
                        }),
                    });
                }
            }
        }
        Ok(())
    }

    /// The shard watchdog, if the backend and the config want one.
    fn start_watchdog(&self) {
        let after_ms = self.config.wake_stalled_shard_after_ms;
        if self.backend == IoBackend::IoUring && after_ms > 0 {
            let after = std::time::Duration::from_millis(after_ms);
            *self.watchdog.lock().unwrap_or_else(PoisonError::into_inner) =
                Watchdog::start(self.shards.clone(), after);
        }
    }

    /// Delivers the sealed-segment events still queued (the last seals of
    /// `close` among them) and ends the notifier thread.
    fn finish_notifying(&self) {
        self.sealed.stop_notifying();
        if let Some(n) = take(&self.notifier) {
            n.join();
        }
    }

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
        if let Some(w) = take(&self.watchdog) {
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
        // lets a later `open` of the same dir start from quiet files. This
        // drop may run on the retention thread (which then only stops).
        if let Some(retention) = take(&self.retention) {
            retention.stop();
        }
        self.shutdown_and_join();
        self.finish_notifying();
    }
}
