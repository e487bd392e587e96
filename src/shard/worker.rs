//! The shard's executor loop: drain the queue into a batch, decide recency,
//! append the batch as one direct write on a fresh block, make it durable
//! (group commit), then publish and acknowledge.
//!
//! Batches are pipelined: up to `pipeline_depth` batches are in flight, so
//! the next batch is written while the previous one's flush is running. Each
//! batch is acknowledged only after its own write and then its own sync have
//! completed, and batches complete strictly in order (a `FuturesOrdered`), so
//! the map is published in log order and a failure fails every later batch.

use std::collections::{HashMap, VecDeque};
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::{Either, LocalBoxFuture, select};
use futures::stream::FuturesOrdered;

use crate::config::Durability;
use crate::error::Error;
use crate::io::LogFs;
use crate::segment::format::{FrameFields, frame_footprint};
use crate::segment::writer::{PendingFrame, SegmentWriter, WriterSpec};
use crate::shard::ShardShared;
use crate::shard::index;
use crate::shard::submission::{Msg, QueueReceiver, Submission};
use crate::store::PutOutcome;

/// Everything a shard executor needs, built on the opening thread.
pub(crate) struct WorkerSetup {
    pub shared: Arc<ShardShared>,
    pub receiver: QueueReceiver,
    pub spec: WriterSpec,
    pub first_seq: u64,
    pub durability: Durability,
    pub flush_interval: Duration,
    pub max_batch_bytes: usize,
    pub pipeline_depth: usize,
}

/// A batch whose write (and, in Sync mode, flush) is in flight.
struct InFlight {
    /// Sync mode: the puts to acknowledge once durable. Async mode: empty
    /// (acknowledged at staging).
    batch: Vec<Submission>,
    outcomes: Vec<PutOutcome>,
}

struct Worker<Fs: LogFs> {
    fs: Fs,
    shared: Arc<ShardShared>,
    receiver: QueueReceiver,
    writer: SegmentWriter<Fs>,
    durability: Durability,
    flush_interval: Duration,
    max_batch_bytes: usize,
    pipeline_depth: usize,
    /// Write (+ sync) of each batch in flight, completing in order.
    inflight: FuturesOrdered<LocalBoxFuture<'static, Result<(), Error>>>,
    /// What to do when each of those completes, in the same order.
    pending: VecDeque<InFlight>,
    /// Versions decided for batches in flight but not yet published: the
    /// recency check consults them before the map.
    decided: HashMap<Box<str>, i64>,
    /// Last log sequence number used in this generation.
    lsn: u64,
    /// Async mode: when the oldest acknowledged-but-unsynced write happened.
    dirty_since: Option<Instant>,
}

/// Runs the shard until shutdown. `ready` learns whether the first segment
/// could be created; after that, failures are reported to the puts.
pub(crate) async fn run<Fs: LogFs>(
    fs: Fs,
    setup: WorkerSetup,
    ready: std::sync::mpsc::SyncSender<Result<(), Error>>,
) {
    let WorkerSetup {
        shared,
        mut receiver,
        spec,
        first_seq,
        durability,
        flush_interval,
        max_batch_bytes,
        pipeline_depth,
    } = setup;
    let writer = match SegmentWriter::create(fs.clone(), spec, first_seq).await {
        Ok(w) => {
            let _ = ready.send(Ok(()));
            w
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            receiver.close(&shared.queue);
            return;
        }
    };
    drop(ready);
    let mut worker = Worker {
        fs,
        shared,
        receiver,
        writer,
        durability,
        flush_interval,
        max_batch_bytes,
        pipeline_depth: pipeline_depth.max(1),
        inflight: FuturesOrdered::new(),
        pending: VecDeque::new(),
        decided: HashMap::new(),
        lsn: 0,
        dirty_since: None,
    };
    worker.serve().await;
}

impl<Fs: LogFs> Worker<Fs> {
    async fn serve(&mut self) {
        let mut batch: Vec<Submission> = Vec::new();
        loop {
            let first = match self.next_event().await {
                Either::Left(Some(msg)) => msg,
                Either::Left(None) => break,
                Either::Right(done) => {
                    self.complete_oldest(done);
                    continue;
                }
            };
            // Gather puts until the batch is full, the queue is empty, or a
            // control message arrives (handled after the batch, in order).
            let mut control = None;
            let mut bytes = 0usize;
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Put(s) => {
                        bytes += s.record.as_bytes().len();
                        batch.push(s);
                    }
                    other => {
                        control = Some(other);
                        break;
                    }
                }
                if bytes < self.max_batch_bytes {
                    next = self.receiver.rx.try_recv().ok();
                }
            }
            self.receiver.release(&self.shared.queue, batch.len());
            if !batch.is_empty() {
                self.start_batch(std::mem::take(&mut batch)).await;
            }
            if self
                .dirty_since
                .is_some_and(|t| t.elapsed() >= self.flush_interval)
            {
                self.flush().await;
            }
            match control {
                Some(Msg::Shutdown) => break,
                Some(Msg::Checkpoint(reply)) => {
                    self.drain_inflight().await;
                    let result = self.checkpoint().await;
                    let _ = reply.send(result);
                }
                Some(Msg::Put(_)) | None => {}
            }
        }
        self.drain_inflight().await;
        self.receiver.close(&self.shared.queue);
        if self.dirty_since.is_some() {
            self.flush().await;
        }
        // A close failure after a successful flush loses nothing; the next
        // open recovers whatever is on disk.
        if let Err(e) = self.writer.close().await {
            log::warn!(
                "shard {}: closing the active segment failed: {e}",
                self.shared.id
            );
        }
    }

    /// A new message (`Left`, `None` when every sender is gone) or the
    /// completion of the oldest batch in flight (`Right`). New messages are
    /// taken only while the pipeline has room.
    async fn next_event(&mut self) -> Either<Option<Msg>, Result<(), Error>> {
        if self.inflight.is_empty() {
            return Either::Left(self.wait_message().await);
        }
        if self.inflight.len() >= self.pipeline_depth {
            return Either::Right(self.next_completion().await);
        }
        let next = pin!(self.receiver.rx.next());
        let done = pin!(self.inflight.next());
        match select(next, done).await {
            Either::Left((msg, _)) => Either::Left(msg),
            Either::Right((done, _)) => Either::Right(done.unwrap_or(Ok(()))),
        }
    }

    async fn next_completion(&mut self) -> Result<(), Error> {
        self.inflight.next().await.unwrap_or(Ok(()))
    }

    /// Completes every batch in flight, in order.
    async fn drain_inflight(&mut self) {
        while !self.inflight.is_empty() {
            let done = self.next_completion().await;
            self.complete_oldest(done);
        }
    }

    /// The oldest batch in flight finished its write (and sync): publish and
    /// acknowledge it, or fail it.
    fn complete_oldest(&mut self, done: Result<(), Error>) {
        let Some(InFlight {
            mut batch,
            outcomes,
        }) = self.pending.pop_front()
        else {
            debug_assert!(false, "a completion without a pending batch");
            return;
        };
        if let Err(e) = &done {
            if self.durability == Durability::Async {
                log::error!(
                    "shard {}: background write failed, acknowledged Async puts may be lost: {e}",
                    self.shared.id
                );
            }
            self.shared.mark_failed(e.to_string());
        } else if self.durability == Durability::Async {
            self.dirty_since.get_or_insert_with(Instant::now);
        }
        match (done, self.shared.failure()) {
            (Ok(()), None) => self.publish_and_reply(&mut batch, &outcomes),
            (Err(e), _) => {
                for sub in batch.drain(..) {
                    let _ = sub.reply.send(Err(e.clone()));
                }
            }
            // An earlier batch failed: this one is never acknowledged, even
            // if its own write and sync went through.
            (Ok(()), Some(cause)) => {
                for sub in batch.drain(..) {
                    let _ = sub.reply.send(Err(Error::ShardFailed {
                        shard: self.shared.id,
                        cause: cause.clone(),
                    }));
                }
            }
        }
    }

    /// The next message; in Async mode, flushes when the interval runs out
    /// while waiting. `None` when every sender is gone.
    async fn wait_message(&mut self) -> Option<Msg> {
        loop {
            let Some(since) = self.dirty_since else {
                return self.receiver.rx.next().await;
            };
            let left = self.flush_interval.saturating_sub(since.elapsed());
            if left.is_zero() {
                self.flush().await;
                continue;
            }
            let fs = self.fs.clone();
            let timed_out = {
                let next = pin!(self.receiver.rx.next());
                let timer = pin!(fs.sleep(left));
                match select(next, timer).await {
                    Either::Left((msg, _)) => return msg,
                    Either::Right(_) => true,
                }
            };
            if timed_out {
                self.flush().await;
            }
        }
    }

    /// Async mode: makes everything written so far durable.
    async fn flush(&mut self) {
        self.dirty_since = None;
        if self.shared.failure().is_some() {
            return;
        }
        if let Err(e) = self.writer.sync().await {
            log::error!(
                "shard {}: background fdatasync failed, acknowledged Async puts may be lost: {e}",
                self.shared.id
            );
            self.shared.mark_failed(e.to_string());
        }
    }

    /// Writes every live record of the shard into a fresh segment and seals
    /// it; returns the seq of the first segment that must be kept (every
    /// older segment of this folder then holds only superseded frames).
    async fn checkpoint(&mut self) -> Result<u64, Error> {
        if let Some(cause) = self.shared.failure() {
            return Err(Error::ShardFailed {
                shard: self.shared.id,
                cause,
            });
        }
        let result = self.write_checkpoint().await;
        if let Err(e) = &result {
            self.shared.mark_failed(e.to_string());
        }
        result
    }

    async fn write_checkpoint(&mut self) -> Result<u64, Error> {
        self.writer.rotate().await?;
        let keep_from = self.writer.seq();
        let mut live = Vec::with_capacity(self.shared.index.len());
        self.shared.index.iter_sync(|_, r| {
            live.push(r.clone());
            true
        });
        let generation = self.writer.generation();
        let mut start = 0;
        while start < live.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < live.len() && (end == start || bytes < self.max_batch_bytes) {
                bytes += live.get(end).map_or(0, |r| r.as_bytes().len());
                end += 1;
            }
            let crcs: Vec<u32> = live
                .get(start..end)
                .unwrap_or_default()
                .iter()
                .map(|r| crc32c::crc32c(r.as_bytes()))
                .collect();
            let frames: Vec<PendingFrame<'_>> = live
                .get(start..end)
                .unwrap_or_default()
                .iter()
                .zip(crcs)
                .map(|(r, payload_crc)| {
                    self.lsn += 1;
                    PendingFrame {
                        fields: FrameFields {
                            version: r.version(),
                            lsn: self.lsn,
                            generation,
                            key: r.key(),
                            payload: r.as_bytes(),
                            payload_crc,
                        },
                    }
                })
                .collect();
            self.writer.append(&frames).await?;
            start = end;
        }
        self.writer.sync().await?;
        self.dirty_since = None;
        // Seal the checkpoint so it gets its hint; puts go to the next one.
        self.writer.rotate().await?;
        Ok(keep_from)
    }

    /// Decides one batch and starts its write (and, in Sync mode, its
    /// sync); it completes through `complete_oldest`. In Async mode the puts
    /// are published and acknowledged here.
    async fn start_batch(&mut self, mut batch: Vec<Submission>) {
        if let Some(cause) = self.shared.failure() {
            for sub in batch.drain(..) {
                let _ = sub.reply.send(Err(Error::ShardFailed {
                    shard: self.shared.id,
                    cause: cause.clone(),
                }));
            }
            return;
        }
        let footprint: usize = batch
            .iter()
            .map(|s| frame_footprint(s.record.key().len(), s.record.as_bytes().len()))
            .sum();
        if self.writer.needs_rotation(footprint, batch.len()) {
            // Sealing needs the segment quiet: finish what is in flight.
            self.drain_inflight().await;
            let rotated = match self.shared.failure() {
                Some(cause) => Err(Error::ShardFailed {
                    shard: self.shared.id,
                    cause,
                }),
                None => self.writer.rotate().await,
            };
            if let Err(e) = rotated {
                self.shared.mark_failed(e.to_string());
                for sub in batch.drain(..) {
                    let _ = sub.reply.send(Err(e.clone()));
                }
                return;
            }
        }
        let outcomes = self.decide(&batch);
        let first_lsn = self.lsn + 1;
        self.lsn += batch.len() as u64;
        let generation = self.writer.generation();
        let frames: Vec<PendingFrame<'_>> = batch
            .iter()
            .zip(first_lsn..)
            .map(|(s, lsn)| PendingFrame {
                fields: FrameFields {
                    version: s.record.version(),
                    lsn,
                    generation,
                    key: s.record.key(),
                    payload: s.record.as_bytes(),
                    payload_crc: s.payload_crc,
                },
            })
            .collect();
        let staged = self.writer.stage(&frames);
        drop(frames);
        let job = match staged {
            Ok(job) => job,
            Err(e) => {
                self.shared.mark_failed(e.to_string());
                for sub in batch.drain(..) {
                    let _ = sub.reply.send(Err(e.clone()));
                }
                return;
            }
        };
        match self.durability {
            Durability::Sync => {
                self.inflight.push_back(Box::pin(job.run(true)));
                self.pending.push_back(InFlight { batch, outcomes });
            }
            Durability::Async => {
                self.publish_and_reply(&mut batch, &outcomes);
                self.inflight.push_back(Box::pin(job.run(false)));
                self.pending.push_back(InFlight {
                    batch: Vec::new(),
                    outcomes: Vec::new(),
                });
            }
        }
    }

    /// Newest wins: a put applies when its version is at least the newest
    /// known for its key (ties go to the later write), counting puts of this
    /// batch and of batches still in flight.
    fn decide(&mut self, batch: &[Submission]) -> Vec<PutOutcome> {
        let mut outcomes = Vec::with_capacity(batch.len());
        for s in batch {
            let key = s.record.key();
            let version = s.record.version();
            let current = self
                .decided
                .get(key)
                .copied()
                .or_else(|| index::version_of(&self.shared.index, key));
            match current {
                Some(current_version) if version < current_version => {
                    outcomes.push(PutOutcome::Stale { current_version });
                }
                _ => {
                    self.decided.insert(key.into(), version);
                    outcomes.push(PutOutcome::Applied);
                }
            }
        }
        outcomes
    }

    fn publish_and_reply(&mut self, batch: &mut Vec<Submission>, outcomes: &[PutOutcome]) {
        debug_assert_eq!(batch.len(), outcomes.len());
        for (sub, outcome) in batch.iter().zip(outcomes) {
            if *outcome == PutOutcome::Applied {
                index::publish(&self.shared.index, sub.record.clone());
                // Once the map holds the decided version, forget it here.
                let key = sub.record.key();
                if self.decided.get(key) == Some(&sub.record.version()) {
                    self.decided.remove(key);
                }
            }
        }
        for (sub, outcome) in batch.drain(..).zip(outcomes) {
            let _ = sub.reply.send(Ok(*outcome));
        }
    }
}
