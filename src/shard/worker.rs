//! The shard's executor loop: drain the queue into a batch, decide recency,
//! append the batch as one direct write on a fresh block, make it durable
//! (group commit), then publish and acknowledge.
//!
//! Batches are pipelined: up to `pipeline_depth` batches are in flight, so
//! the next batch is written while the previous one's flush is running; in
//! Sync mode a further batch starts only once `OVERLAP_MIN_BATCH_BYTES` have
//! gathered (each batch pays a flush), while a put reaching an idle shard is
//! written at once. Each
//! batch is acknowledged only after its own write and then its own sync have
//! completed, and batches complete strictly in order (a `FuturesOrdered`), so
//! the map is published in log order and a failure fails every later batch.
//!
//! In Async mode the callers decide and publish their puts themselves (see
//! `ShardShared::put`) and send the shard only what to write, each record
//! with the LSN its caller took. Records can arrive out of LSN order (a
//! caller can be preempted between taking its LSN and sending); they are
//! put back in order here (`Reorder`) and wait in `unwritten` for a write
//! slot. What waits (in the queue and here) is bounded by the queue's byte
//! budget, `max_batch_bytes`, given back as records are handed to a write,
//! so a disk slower than the callers pushes back on them (bounded memory)
//! instead of growing a backlog.
//!
//! A checkpoint (`Store::compact`) in Sync mode is written in chunks between
//! put batches (`CheckpointJob`), so puts keep flowing while it is written;
//! in Async mode, where puts never wait for the shard, it is written at once.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::future::Future;
use std::task::Poll;

use futures::StreamExt;
use futures::future::LocalBoxFuture;
use futures::stream::FuturesOrdered;

use crate::config::Durability;
use crate::error::Error;
use crate::io::LogFs;
use crate::outcome::PutOutcome;
use crate::record_ref::RecordRef;
use crate::segment::format::{FrameFields, frame_footprint};
use crate::segment::writer::{PendingFrame, SegmentWriter, WriteJob, WriterSpec};
use crate::shard::ShardShared;
use crate::shard::index;
use crate::shard::stats::IoTimes;
use crate::shard::submission::{Checkpointed, Msg, QueueReceiver, Submission, Unwritten};

/// Sync mode: with a batch in flight, the next one starts only once this
/// much has gathered. Every batch pays a flush; starting the second at once
/// made batches small and throughput worse (measured at depth 2: 729–1088
/// vs 1099–1276 MB/s), waiting for half a MiB made depth 2 better than
/// depth 1 (closed loop, 5 interleaved pairs: 0.63 vs 0.56 of the durable
/// ceiling). With nothing in flight a put is written at once.
const OVERLAP_MIN_BATCH_BYTES: usize = 512 << 10;

/// Bytes of live records a Sync-mode checkpoint writes per chunk: small
/// enough that a put waits for at most about one such write.
const CHECKPOINT_CHUNK_BYTES: usize = 1 << 20;

/// Async mode: the most frame bytes one write carries. Encoding a write's
/// buffer blocks the executor (no put is acknowledged meanwhile): 1 MiB
/// takes 0.2–0.3 ms here, an 8 MiB batch took 5 ms.
const ASYNC_WRITE_BYTES: usize = 1 << 20;

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

/// What the shard loop reacts to.
enum Event {
    Message(Option<Msg>),
    Completed(Result<IoTimes, Error>),
    Flushed(Result<(), Error>),
    FlushDue,
    /// The periodic queue re-check ran with nothing to do.
    Recheck,
}

// A waiting shard re-polls its queue on its own every
// `LogFs::queue_recheck` (2 ms on glommio). A put's wake-up comes from the
// caller's thread; under load, glommio 0.9 occasionally did not run the
// executor for such a wake (seen here: puts stuck for 0.2 s to minutes while
// both executors slept with puts queued, ended only by a later wake). With
// the re-check a lost wake costs at most that long;
// `ShardStats::recheck_pickups` counts the puts it found (lost wakes, or an
// executor that got no CPU for 2 ms).

/// A batch whose write (and, in Sync mode, flush) is in flight.
struct InFlight {
    /// Sync mode: the puts to acknowledge once durable. Async mode: empty
    /// (acknowledged by their callers).
    batch: Vec<Submission>,
    outcomes: Vec<PutOutcome>,
    /// LSN of the batch's first frame (Sync mode; frames are consecutive).
    first_lsn: u64,
    /// A chunk of the checkpoint in progress rather than puts.
    checkpoint_chunk: bool,
}

impl InFlight {
    /// A write with no put to acknowledge: Async records, or a checkpoint
    /// chunk.
    fn no_puts(checkpoint_chunk: bool) -> Self {
        InFlight {
            batch: Vec::new(),
            outcomes: Vec::new(),
            first_lsn: 0,
            checkpoint_chunk,
        }
    }
}

/// Sync mode: a checkpoint written in chunks between put batches. Every
/// put from its start on goes to its first segment (`keep_from`) or a
/// later one, so each live record either gets a copy there or is replaced
/// by such a put.
struct CheckpointJob {
    /// Every key with the rank of its record when the checkpoint began.
    live: Vec<(Box<str>, index::LogRank)>,
    /// Next entry of `live` to copy.
    next: usize,
    /// Chunks written but not completed yet.
    chunks_in_flight: usize,
    /// Seq of the segment the checkpoint began in: every older one holds
    /// only superseded frames once the checkpoint is durable.
    keep_from: u64,
    /// Records copied so far.
    copied: usize,
    /// Every `Store::compact` waiting for this checkpoint.
    replies: Vec<CheckpointReply>,
}

type CheckpointReply = futures::channel::oneshot::Sender<Result<Checkpointed, Error>>;

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
    inflight: FuturesOrdered<LocalBoxFuture<'static, Result<IoTimes, Error>>>,
    /// What to do when each of those completes, in the same order.
    pending: VecDeque<InFlight>,
    /// Async mode: the background fdatasync in flight, if any.
    flushing: Option<LocalBoxFuture<'static, Result<(), Error>>>,
    /// Versions decided for batches in flight but not yet published: the
    /// recency check consults them before the map.
    decided: HashMap<Box<str>, i64>,
    /// Async mode: records that arrived ahead of an LSN still on its way.
    reorder: Reorder,
    /// Async mode: records acknowledged but not yet handed to a write, in
    /// LSN order.
    unwritten: VecDeque<Unwritten>,
    /// Budget held in the queue by `unwritten` and `reorder`.
    unwritten_cost: usize,
    /// Sync mode: puts taken off the queue for the next batch, held while
    /// a batch is in flight until they are worth a write of their own.
    gathering: Vec<Submission>,
    gathering_bytes: usize,
    /// Async mode: when the oldest acknowledged-but-unsynced write happened.
    dirty_since: Option<Instant>,
    /// Since when no write has been in flight (`ShardStats::idle`).
    idle_since: Option<Instant>,
    /// Sync mode: the checkpoint being written, if any.
    checkpoint: Option<CheckpointJob>,
}

/// Runs the shard until shutdown. `ready` learns whether the first segment
/// could be created; after that, failures are reported to the puts.
pub(crate) async fn run<Fs: LogFs>(
    fs: Fs,
    setup: WorkerSetup,
    ready: std::sync::mpsc::SyncSender<Result<(), Error>>,
) {
    let _stop_on_panic = StopOnPanic(Arc::clone(&setup.shared));
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
    // The shard is idle from the moment it reports ready (not from when its
    // thread gets to run again after that: `idle` would come out short).
    let (writer, ready_at) = match SegmentWriter::create(fs.clone(), spec, first_seq, true).await {
        Ok(w) => {
            let ready_at = Instant::now();
            let _ = ready.send(Ok(()));
            (w, ready_at)
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            // The store did not open: no put was acknowledged.
            drop(receiver.close(&shared.queue));
            return;
        }
    };
    drop(ready);
    // Frames carry the writer's generation, ranks in the map the shard's:
    // one value, set at open.
    debug_assert_eq!(writer.generation(), shared.rank(0).generation);
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
        flushing: None,
        decided: HashMap::new(),
        reorder: Reorder::default(),
        unwritten: VecDeque::new(),
        unwritten_cost: 0,
        gathering: Vec::new(),
        gathering_bytes: 0,
        dirty_since: None,
        idle_since: Some(ready_at),
        checkpoint: None,
    };
    worker.serve().await;
}

/// Stops the shard if its executor unwinds (a bug in ringstore): new puts
/// then fail with `ShardFailed` instead of queueing for a shard that is
/// gone; puts already waiting fail when the queue's receiver is dropped.
struct StopOnPanic(Arc<ShardShared>);

impl Drop for StopOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0
                .mark_failed("the shard's executor panicked (a bug in ringstore)".to_owned());
            self.0.queue.shutdown();
        }
    }
}

impl<Fs: LogFs> Worker<Fs> {
    async fn serve(&mut self) {
        let mut batch: Vec<Submission> = Vec::new();
        loop {
            index::reclaim();
            self.advance_checkpoint().await;
            let first = match self.next_event().await {
                Event::Message(Some(msg)) => msg,
                Event::Message(None) => break,
                Event::Completed(done) => {
                    self.complete_oldest(done);
                    // Before the gathered puts take the freed slot: under a
                    // steady load, chunks and put batches then alternate.
                    self.advance_checkpoint().await;
                    self.write_unwritten().await;
                    if !self.gathering.is_empty() {
                        self.start_gathered().await;
                    }
                    continue;
                }
                Event::Flushed(result) => {
                    self.flushed(result);
                    continue;
                }
                Event::FlushDue => {
                    self.start_flush();
                    continue;
                }
                Event::Recheck => continue,
            };
            // Gather puts until the batch is full, the queue is empty, or a
            // control message arrives (handled after the batch, in order).
            let mut control = None;
            let mut bytes = 0usize;
            let mut taken_cost = 0usize;
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Put(s) => {
                        bytes += s.record.as_bytes().len();
                        taken_cost += self.shared.queue.cost(&s.record);
                        batch.push(s);
                    }
                    Msg::Append(u) => {
                        bytes += u.record.as_bytes().len();
                        self.arrive(u);
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
            // Sync puts give their budget back once taken; Async puts keep
            // theirs until handed to a write.
            self.receiver.release(taken_cost);
            if !batch.is_empty() {
                self.gathering_bytes += bytes;
                self.gathering.append(&mut batch);
                // With nothing in flight, write at once (a lone put does not
                // wait for companions); with a batch in flight, only once
                // enough has gathered to be worth a flush of its own.
                if self.inflight.is_empty() || self.gathering_bytes >= OVERLAP_MIN_BATCH_BYTES {
                    self.start_gathered().await;
                }
            }
            if self.durability == Durability::Async {
                self.write_unwritten().await;
            }
            if control.is_some() && !self.gathering.is_empty() {
                self.start_gathered().await;
            }
            match control {
                Some(Msg::Shutdown) => break,
                Some(Msg::Checkpoint(reply)) => self.begin_checkpoint(reply).await,
                Some(Msg::Put(_) | Msg::Append(_)) | None => {}
            }
        }
        if !self.gathering.is_empty() {
            self.start_gathered().await;
        }
        // Refuse further puts. Async puts already sent were acknowledged:
        // write them, in LSN order, past any LSN whose put failed `Closed`
        // (never acknowledged, so never coming).
        for u in self.receiver.close(&self.shared.queue) {
            self.arrive(u);
        }
        self.reorder.drain_all(&mut self.unwritten);
        self.drain_inflight().await;
        // A checkpoint whose every chunk is durable is done; one cut short
        // by the close is not (its compaction deletes nothing).
        let done = self
            .checkpoint
            .as_ref()
            .is_some_and(|j| j.next == j.live.len() && j.chunks_in_flight == 0);
        self.finish_checkpoint(if done { None } else { Some(Error::Closed) });
        if self.dirty_since.is_some() {
            self.start_flush();
            if let Some(flush) = self.flushing.take() {
                let result = flush.await;
                self.flushed(result);
            }
        }
        // After a disk fault the segment is left unsealed (no retried sync,
        // no hint, no announcement). A close failure after a successful
        // flush loses nothing; the next open recovers whatever is on disk.
        if self.shared.failure().is_some() {
            self.writer.abandon().await;
        } else if let Err(e) = self.writer.close().await {
            log::warn!(
                "shard {}: closing the active segment failed: {e}",
                self.shared.id
            );
        }
    }

    /// What happens next: a new message (taken only while the pipeline has
    /// room), the completion of the oldest batch in flight, the end of a
    /// background flush, or (Async mode) the flush interval running out.
    async fn next_event(&mut self) -> Event {
        let due = match (self.dirty_since, &self.flushing) {
            (Some(since), None) => Some(self.flush_interval.saturating_sub(since.elapsed())),
            _ => None,
        };
        if due.is_some_and(|d| d.is_zero()) {
            return Event::FlushDue;
        }
        let fs = self.fs.clone();
        let mut timer = due.map(|d| Box::pin(fs.sleep(d)));
        // The re-check is armed only while the shard has work under way: an
        // idle shard sleeps until a put wakes it, and costs no CPU. A wake
        // lost while idle leaves a put queued, which the watchdog notices.
        let busy = !self.inflight.is_empty()
            || self.flushing.is_some()
            || !self.gathering.is_empty()
            || !self.unwritten.is_empty()
            || self.checkpoint.is_some()
            || self.shared.queue.has_queued();
        let mut recheck = fs
            .queue_recheck()
            .filter(|_| busy)
            .map(|d| Box::pin(fs.sleep(d)));
        let room = match self.durability {
            Durability::Sync => {
                self.inflight.len() < self.pipeline_depth
                    && self.gathering_bytes < self.max_batch_bytes
            }
            // Async: the queue's byte budget bounds what waits.
            Durability::Async => true,
        };
        self.shared
            .pulse
            .waiting(!self.inflight.is_empty() || self.flushing.is_some(), due);
        let event = std::future::poll_fn(|cx| {
            // Polled first, so what the re-check finds is counted. It runs
            // while writes are in flight too, against a completion whose
            // wake-up the runtime lost.
            let rechecked = (room || !self.inflight.is_empty())
                && recheck
                    .as_mut()
                    .is_some_and(|r| r.as_mut().poll(cx).is_ready());
            if !self.inflight.is_empty() {
                if let Poll::Ready(Some(done)) = self.inflight.poll_next_unpin(cx) {
                    if rechecked {
                        self.shared.stats.recheck_completion();
                    }
                    return Poll::Ready(Event::Completed(done));
                }
            }
            if let Some(flush) = self.flushing.as_mut() {
                if let Poll::Ready(result) = flush.as_mut().poll(cx) {
                    self.flushing = None;
                    return Poll::Ready(Event::Flushed(result));
                }
            }
            if room {
                if let Poll::Ready(msg) = self.receiver.rx.poll_next_unpin(cx) {
                    if rechecked {
                        self.shared.stats.recheck_pickup();
                    }
                    return Poll::Ready(Event::Message(msg));
                }
            }
            if let Some(t) = timer.as_mut() {
                if t.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Event::FlushDue);
                }
            }
            if rechecked {
                return Poll::Ready(Event::Recheck);
            }
            Poll::Pending
        })
        .await;
        // Busy from here until the next wait says what it waits for.
        self.shared.pulse.turn();
        event
    }

    async fn next_completion(&mut self) -> Result<IoTimes, Error> {
        self.inflight.next().await.unwrap_or(Ok(IoTimes::default()))
    }

    /// Completes every batch in flight, in order, and waits for a
    /// background flush: afterwards nothing holds the segment file.
    async fn drain_inflight(&mut self) {
        // Async: write out everything acknowledged (write_unwritten empties
        // the list after a fault, so this ends).
        while !self.unwritten.is_empty() {
            self.write_unwritten().await;
            if !self.unwritten.is_empty() {
                let done = self.next_completion().await;
                self.complete_oldest(done);
            }
        }
        self.complete_inflight().await;
        if let Some(flush) = self.flushing.take() {
            let result = flush.await;
            self.flushed(result);
        }
    }

    /// Sync mode: starts the gathered puts as a batch.
    async fn start_gathered(&mut self) {
        self.gathering_bytes = 0;
        let batch = std::mem::take(&mut self.gathering);
        self.start_batch(batch).await;
    }

    /// Completes every batch in flight, in order.
    async fn complete_inflight(&mut self) {
        while !self.inflight.is_empty() {
            let done = self.next_completion().await;
            self.complete_oldest(done);
        }
    }

    /// After a disk fault: fails every put of `batch` with `ShardFailed`
    /// and says so.
    fn refuse_if_failed(&self, batch: &mut Vec<Submission>) -> bool {
        let Some(cause) = self.shared.failure() else {
            return false;
        };
        for sub in batch.drain(..) {
            sub.reply(Err(Error::ShardFailed {
                shard: self.shared.id,
                cause: cause.clone(),
            }));
        }
        true
    }

    /// Seals the active segment and starts the next one. Sealing needs the
    /// segment quiet: every write in flight completed and no background
    /// flush holding the file.
    async fn quiesce_and_rotate(&mut self) -> Result<(), Error> {
        let started = Instant::now();
        self.complete_inflight().await;
        if let Some(flush) = self.flushing.take() {
            let result = flush.await;
            self.flushed(result);
        }
        if let Some(cause) = self.shared.failure() {
            return Err(Error::ShardFailed {
                shard: self.shared.id,
                cause,
            });
        }
        self.writer.rotate().await?;
        self.shared
            .stats
            .rotated(started.elapsed(), self.writer.in_spare());
        Ok(())
    }

    /// Async mode: takes in a record sent by its caller; it waits for a
    /// write once every LSN before it has arrived.
    fn arrive(&mut self, u: Unwritten) {
        self.unwritten_cost += self.shared.queue.cost(&u.record);
        if let Some(waited) = self.reorder.arrive(u.lsn, Some(u), &mut self.unwritten) {
            self.shared.stats.lsn_waited(waited);
        }
    }

    /// Async mode: hands acknowledged records to writes (up to
    /// `max_batch_bytes` each) while the pipeline has room.
    async fn write_unwritten(&mut self) {
        while self.inflight.len() < self.pipeline_depth && !self.unwritten.is_empty() {
            if self.shared.failure().is_some() {
                // Already logged as a loss of acknowledged Async puts.
                self.reorder.drain_all(&mut self.unwritten);
                let held = std::mem::take(&mut self.unwritten_cost);
                self.unwritten.clear();
                self.receiver.release(held);
                return;
            }
            let mut count = 0usize;
            let mut footprint = 0usize;
            for Unwritten { record, .. } in &self.unwritten {
                let bytes = frame_footprint(record.key().len(), record.as_bytes().len());
                if count > 0 && footprint + bytes > self.max_batch_bytes.min(ASYNC_WRITE_BYTES) {
                    break;
                }
                footprint += bytes;
                count += 1;
            }
            if self.writer.needs_rotation(footprint, count) {
                if let Err(e) = self.quiesce_and_rotate().await {
                    log::error!(
                        "shard {}: rotating failed, acknowledged Async puts may be lost: {e}",
                        self.shared.id
                    );
                    self.shared.mark_failed(e.to_string());
                    continue;
                }
            }
            let chunk: Vec<Unwritten> = self.unwritten.drain(..count).collect();
            let cost: usize = chunk
                .iter()
                .map(|u| self.shared.queue.cost(&u.record))
                .sum();
            self.unwritten_cost = self.unwritten_cost.saturating_sub(cost);
            let generation = self.writer.generation();
            let frames = frames_of(
                chunk.iter().map(|u| (&u.record, u.payload_crc, u.lsn)),
                generation,
            );
            let staged = self.stage(&frames, footprint);
            drop(frames);
            // Handed to a write (or lost with the shard): room for callers.
            self.receiver.release(cost);
            match staged {
                Ok(job) => self.launch(job, false, InFlight::no_puts(false)),
                Err(e) => {
                    log::error!(
                        "shard {}: staging a write failed, acknowledged Async puts may be lost: {e}",
                        self.shared.id
                    );
                    self.shared.mark_failed(e.to_string());
                }
            }
        }
    }

    /// The oldest batch in flight finished its write (and sync): publish and
    /// acknowledge it, or fail it.
    fn complete_oldest(&mut self, done: Result<IoTimes, Error>) {
        let Some(InFlight {
            mut batch,
            outcomes,
            first_lsn,
            checkpoint_chunk,
        }) = self.pending.pop_front()
        else {
            debug_assert!(false, "a completion without a pending batch");
            return;
        };
        if self.pending.is_empty() {
            self.idle_since = Some(Instant::now());
        }
        let done = done.map(|times| self.shared.stats.io_done(times));
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
        if checkpoint_chunk {
            if let Some(job) = self.checkpoint.as_mut() {
                job.chunks_in_flight -= 1;
            }
            match (done, self.shared.failure()) {
                (Ok(()), None) => {}
                (Err(e), _) => self.finish_checkpoint(Some(e)),
                (Ok(()), Some(cause)) => self.finish_checkpoint(Some(Error::ShardFailed {
                    shard: self.shared.id,
                    cause,
                })),
            }
            return;
        }
        match (done, self.shared.failure()) {
            (Ok(()), None) => {
                debug_assert_eq!(batch.len(), outcomes.len());
                for ((sub, outcome), lsn) in batch.into_iter().zip(outcomes).zip(first_lsn..) {
                    self.publish_and_reply(sub, outcome, lsn);
                }
            }
            (Err(e), _) => {
                for sub in batch.drain(..) {
                    sub.reply(Err(e.clone()));
                }
            }
            // An earlier batch failed: this one is never acknowledged, even
            // if its own write and sync went through.
            (Ok(()), Some(cause)) => {
                for sub in batch.drain(..) {
                    sub.reply(Err(Error::ShardFailed {
                        shard: self.shared.id,
                        cause: cause.clone(),
                    }));
                }
            }
        }
    }

    /// Async mode: starts a background fdatasync covering every write
    /// completed so far (writes completing later mark the shard dirty again).
    fn start_flush(&mut self) {
        self.dirty_since = None;
        if self.shared.failure().is_some() || self.flushing.is_some() {
            return;
        }
        match self.writer.sync_job() {
            Ok(job) => {
                let shared = Arc::clone(&self.shared);
                self.flushing = Some(Box::pin(async move {
                    let started = Instant::now();
                    let result = job.await;
                    if result.is_ok() {
                        shared.stats.synced(started.elapsed());
                    }
                    result
                }));
            }
            Err(e) => self.flushed(Err(e)),
        }
    }

    fn flushed(&mut self, result: Result<(), Error>) {
        if let Err(e) = result {
            log::error!(
                "shard {}: background fdatasync failed, acknowledged Async puts may be lost: {e}",
                self.shared.id
            );
            self.shared.mark_failed(e.to_string());
        }
    }

    /// A `Store::compact` request. Async mode: the whole checkpoint now.
    /// Sync mode: waits for the batches in flight, starts a new segment and
    /// notes the live set; the chunks follow between put batches
    /// (`advance_checkpoint`), and `reply` gets the answer when the last is
    /// durable. A request during a checkpoint joins it: every put from its
    /// start on is in its first segment or later, so it covers the request.
    async fn begin_checkpoint(&mut self, reply: CheckpointReply) {
        let started = Instant::now();
        if self.durability == Durability::Async {
            self.drain_inflight().await;
            let result = self.checkpoint().await;
            self.shared.stats.checkpointed(started.elapsed());
            let _ = reply.send(result);
            return;
        }
        if let Some(job) = self.checkpoint.as_mut() {
            job.replies.push(reply);
            return;
        }
        if let Some(cause) = self.shared.failure() {
            let _ = reply.send(Err(Error::ShardFailed {
                shard: self.shared.id,
                cause,
            }));
            return;
        }
        self.drain_inflight().await;
        if let Err(e) = self.writer.rotate().await {
            self.shared.mark_failed(e.to_string());
            let _ = reply.send(Err(e));
            return;
        }
        self.checkpoint = Some(CheckpointJob {
            live: index::live_ranks(&self.shared.index),
            next: 0,
            chunks_in_flight: 0,
            keep_from: self.writer.seq(),
            copied: 0,
            replies: vec![reply],
        });
        // Puts waited only for this much.
        self.shared.stats.checkpointed(started.elapsed());
    }

    /// Sync mode: writes the next chunk of the checkpoint in progress into a
    /// free pipeline slot, one chunk in flight at a time (so puts wait for
    /// at most one chunk), or finishes the checkpoint once every chunk is
    /// durable.
    async fn advance_checkpoint(&mut self) {
        let Some(job) = self.checkpoint.as_mut() else {
            return;
        };
        if job.chunks_in_flight > 0 {
            return;
        }
        if job.next == job.live.len() {
            self.finish_checkpoint(None);
            return;
        }
        if self.inflight.len() >= self.pipeline_depth {
            return;
        }
        if let Some(cause) = self.shared.failure() {
            self.finish_checkpoint(Some(Error::ShardFailed {
                shard: self.shared.id,
                cause,
            }));
            return;
        }
        // Copy the next records, each with a fresh LSN taken now: later
        // than every frame staged before, earlier than every put after.
        let mut records: Vec<(RecordRef, u64)> = Vec::new();
        let mut bytes = 0;
        while bytes < CHECKPOINT_CHUNK_BYTES {
            let Some((key, seen)) = job.live.get(job.next) else {
                break;
            };
            job.next += 1;
            // A put of this key is in flight: its frame, in this segment or
            // a later one, replaces the record.
            if self.decided.contains_key(key) {
                continue;
            }
            let lsn = self.shared.take_lsns(1);
            if let Some(r) =
                index::rerank_key(&self.shared.index, key, *seen, self.shared.rank(lsn))
            {
                bytes += r.as_bytes().len();
                records.push((r, lsn));
            }
        }
        job.copied += records.len();
        if records.is_empty() {
            // Every remaining record was replaced meanwhile: done.
            self.finish_checkpoint(None);
            return;
        }
        let footprint: usize = records
            .iter()
            .map(|(r, _)| frame_footprint(r.key().len(), r.as_bytes().len()))
            .sum();
        if self.writer.needs_rotation(footprint, records.len()) {
            if let Err(e) = self.quiesce_and_rotate().await {
                self.shared.mark_failed(e.to_string());
                self.finish_checkpoint(Some(e));
                return;
            }
        }
        let frames = frames_of(
            records
                .iter()
                .map(|(r, lsn)| (r, crc32c::crc32c(r.as_bytes()), *lsn)),
            self.writer.generation(),
        );
        let staged = self.stage(&frames, footprint);
        drop(frames);
        match staged {
            Ok(job) => {
                self.launch(job, true, InFlight::no_puts(true));
                if let Some(job) = self.checkpoint.as_mut() {
                    job.chunks_in_flight += 1;
                }
            }
            Err(e) => {
                self.shared.mark_failed(e.to_string());
                self.finish_checkpoint(Some(e));
            }
        }
    }

    /// Ends the checkpoint in progress: `None` = every chunk is durable.
    fn finish_checkpoint(&mut self, failed: Option<Error>) {
        let Some(job) = self.checkpoint.take() else {
            return;
        };
        for reply in job.replies {
            let _ = reply.send(match &failed {
                None => Ok(Checkpointed {
                    keep_from: job.keep_from,
                    records: job.copied,
                }),
                Some(e) => Err(e.clone()),
            });
        }
    }

    /// Async mode: writes every live record of the shard into a fresh
    /// segment and seals it; returns the seq of the first segment that must
    /// be kept (every older segment of this folder then holds only
    /// superseded frames).
    async fn checkpoint(&mut self) -> Result<Checkpointed, Error> {
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

    async fn write_checkpoint(&mut self) -> Result<Checkpointed, Error> {
        // The live set is usually far smaller than a segment: a new file,
        // so the checkpoint's size is its data (see `rotate_into_new_file`).
        self.writer.rotate_into_new_file().await?;
        let keep_from = self.writer.seq();
        let generation = self.writer.generation();
        // Each live record is copied into a fresh frame with a new LSN, and
        // its entry in the map takes that rank, so memory and recovery keep
        // agreeing on version ties with Async puts published meanwhile.
        // Those LSNs never come through the queue: the Async order skips
        // them.
        let skip_in_order = self.durability == Durability::Async;
        let (shared, reorder, unwritten) = (&self.shared, &mut self.reorder, &mut self.unwritten);
        let live = index::rerank_all(&shared.index, || {
            let lsn = shared.take_lsns(1);
            if skip_in_order {
                // A wait this ends was for a put's LSN, counted when it came.
                let _ = reorder.arrive(lsn, None, unwritten);
            }
            shared.rank(lsn)
        });
        let mut start = 0;
        while start < live.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < live.len() && (end == start || bytes < self.max_batch_bytes) {
                bytes += live.get(end).map_or(0, |(r, _)| r.as_bytes().len());
                end += 1;
            }
            let chunk = live.get(start..end).unwrap_or_default();
            let frames = frames_of(
                chunk
                    .iter()
                    .map(|(r, lsn)| (r, crc32c::crc32c(r.as_bytes()), *lsn)),
                generation,
            );
            self.writer.append(&frames).await?;
            start = end;
        }
        self.writer.sync().await?;
        self.dirty_since = None;
        // Seal the checkpoint so it gets its hint; puts go to the next one.
        self.writer.rotate().await?;
        Ok(Checkpointed {
            keep_from,
            records: live.len(),
        })
    }

    /// Decides one batch and starts its write (and, in Sync mode, its
    /// sync); it completes through `complete_oldest`. Sync mode only (Async
    /// puts go through `accept_async`).
    async fn start_batch(&mut self, mut batch: Vec<Submission>) {
        if self.refuse_if_failed(&mut batch) {
            return;
        }
        let footprint: usize = batch
            .iter()
            .map(|s| frame_footprint(s.record.key().len(), s.record.as_bytes().len()))
            .sum();
        if self.writer.needs_rotation(footprint, batch.len()) {
            if let Err(e) = self.quiesce_and_rotate().await {
                self.shared.mark_failed(e.to_string());
                for sub in batch.drain(..) {
                    sub.reply(Err(e.clone()));
                }
                return;
            }
        }
        let outcomes = self.decide(&batch);
        let first_lsn = self.shared.take_lsns(batch.len() as u64);
        let generation = self.writer.generation();
        debug_assert_eq!(self.durability, Durability::Sync);
        let frames = frames_of(
            batch
                .iter()
                .zip(first_lsn..)
                .map(|(s, lsn)| (&s.record, s.payload_crc, lsn)),
            generation,
        );
        let staged = self.stage(&frames, footprint);
        drop(frames);
        match staged {
            Ok(job) => {
                let now = Instant::now();
                for sub in &batch {
                    self.shared
                        .stats
                        .put_written(now.saturating_duration_since(sub.queued_at));
                }
                self.launch(
                    job,
                    true,
                    InFlight {
                        batch,
                        outcomes,
                        first_lsn,
                        checkpoint_chunk: false,
                    },
                )
            }
            Err(e) => {
                self.shared.mark_failed(e.to_string());
                for sub in batch.drain(..) {
                    sub.reply(Err(e.clone()));
                }
            }
        }
    }

    /// Starts `job` as the next write in flight (with `sync`, made durable
    /// too); `then` says what its completion does.
    fn launch(&mut self, job: WriteJob<Fs::File>, sync: bool, then: InFlight) {
        self.inflight.push_back(Box::pin(job.run_timed(sync)));
        self.write_started();
        self.pending.push_back(then);
    }

    /// A write was just submitted: ends an idle gap, if one was open.
    fn write_started(&mut self) {
        if let Some(since) = self.idle_since.take() {
            self.shared.stats.idled(since.elapsed());
        }
    }

    /// Encodes a batch into its DMA buffer, counting the time it took.
    fn stage(
        &mut self,
        frames: &[PendingFrame<'_>],
        footprint: usize,
    ) -> Result<WriteJob<Fs::File>, Error> {
        let started = Instant::now();
        let job = self.writer.stage(frames)?;
        self.shared
            .stats
            .staged(frames.len(), footprint, started.elapsed());
        Ok(job)
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

    /// Sync mode: publishes an applied put of a durable batch (written
    /// with `lsn`) and acknowledges it.
    fn publish_and_reply(&mut self, sub: Submission, outcome: PutOutcome, lsn: u64) {
        if outcome == PutOutcome::Applied {
            let (published, _) = index::publish(&self.shared.index, sub.record.clone(), || {
                self.shared.rank(lsn)
            });
            // Only the executor publishes in Sync mode, in log order.
            debug_assert_eq!(published, PutOutcome::Applied);
            // Once the map holds the decided version, forget it here.
            let key = sub.record.key();
            if self.decided.get(key) == Some(&sub.record.version()) {
                self.decided.remove(key);
            }
        }
        self.shared.stats.put_answered(sub.queued_at.elapsed());
        sub.reply(Ok(outcome));
    }
}

/// Async mode: puts back in LSN order the records that callers took LSNs
/// for and sent concurrently (frames of a segment are written in log order:
/// recovery tells a crash's torn batches from corruption by it). LSNs a
/// checkpoint spent never arrive and are skipped.
struct Reorder {
    /// The next LSN to hand on.
    next: u64,
    /// LSNs beyond `next` that arrived (`Some`) or are to be skipped
    /// (`None`).
    early: BTreeMap<u64, Option<Unwritten>>,
    /// Since when `early` is not empty.
    waiting_since: Option<Instant>,
}

impl Default for Reorder {
    fn default() -> Self {
        // LSNs start at 1 in every generation.
        Reorder {
            next: 1,
            early: BTreeMap::new(),
            waiting_since: None,
        }
    }
}

impl Reorder {
    /// `lsn` arrived with `record` (or is to be skipped, `None`): moves
    /// every record now in order to `ready`. Returns how long records had
    /// waited for it, if this ended a wait.
    fn arrive(
        &mut self,
        lsn: u64,
        record: Option<Unwritten>,
        ready: &mut VecDeque<Unwritten>,
    ) -> Option<Duration> {
        debug_assert!(!self.early.contains_key(&lsn), "LSN {lsn} twice");
        // Behind `next` only after a disk fault's `drain_all` went past it
        // (its put took the LSN before the fault): nothing is written any
        // more, so nothing to wait for.
        if lsn < self.next || (lsn == self.next && self.early.is_empty()) {
            self.next = self.next.max(lsn + 1);
            ready.extend(record);
            return None;
        }
        self.early.insert(lsn, record);
        self.waiting_since.get_or_insert_with(Instant::now);
        while let Some(entry) = self.early.first_entry() {
            if *entry.key() != self.next {
                break;
            }
            self.next += 1;
            ready.extend(entry.remove());
        }
        self.wait_ended()
    }

    fn wait_ended(&mut self) -> Option<Duration> {
        if self.early.is_empty() {
            self.waiting_since.take().map(|since| since.elapsed())
        } else {
            None
        }
    }

    /// Moves everything that arrived to `ready` in LSN order, past any LSN
    /// still missing (at shutdown: a put that failed `Closed` after taking
    /// its LSN; after a disk fault: to drop them all).
    fn drain_all(&mut self, ready: &mut VecDeque<Unwritten>) {
        if let Some((&last, _)) = self.early.last_key_value() {
            self.next = last + 1;
        }
        ready.extend(std::mem::take(&mut self.early).into_values().flatten());
        self.waiting_since = None;
    }
}

/// The frames of `records` (with their payload CRCs and LSNs).
fn frames_of<'a>(
    records: impl Iterator<Item = (&'a RecordRef, u32, u64)>,
    generation: u64,
) -> Vec<PendingFrame<'a>> {
    records
        .map(|(r, payload_crc, lsn)| PendingFrame {
            fields: FrameFields {
                version: r.version(),
                lsn,
                generation,
                key: r.key(),
                payload: r.as_bytes(),
                payload_crc,
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unwritten(lsn: u64) -> Unwritten {
        let r = crate::Record::new().with("collection_time", 1i64);
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&r).expect("serialize");
        Unwritten {
            record: RecordRef::from_untrusted("k", 1, &bytes).expect("a valid record"),
            payload_crc: 0,
            lsn,
        }
    }

    fn lsns(ready: &VecDeque<Unwritten>) -> Vec<u64> {
        ready.iter().map(|u| u.lsn).collect()
    }

    #[test]
    fn records_are_handed_on_in_lsn_order_whatever_their_arrival() {
        let (mut order, mut ready) = (Reorder::default(), VecDeque::new());
        let _ = order.arrive(2, Some(unwritten(2)), &mut ready);
        let _ = order.arrive(4, Some(unwritten(4)), &mut ready);
        assert!(ready.is_empty(), "1 has not arrived");
        let waited = order.arrive(1, Some(unwritten(1)), &mut ready);
        assert_eq!(lsns(&ready), [1, 2]);
        assert!(waited.is_none(), "4 still waits for 3");
        // 3 was spent by a checkpoint: skipped, and 4 follows.
        let waited = order.arrive(3, None, &mut ready);
        assert_eq!(lsns(&ready), [1, 2, 4]);
        assert!(
            waited.is_some(),
            "nothing waits any more: the wait is measured"
        );
        let waited = order.arrive(5, Some(unwritten(5)), &mut ready);
        assert_eq!(lsns(&ready), [1, 2, 4, 5]);
        assert!(waited.is_none(), "in order: no wait");
    }

    #[test]
    fn at_shutdown_what_arrived_goes_out_past_a_missing_lsn() {
        let (mut order, mut ready) = (Reorder::default(), VecDeque::new());
        let _ = order.arrive(1, Some(unwritten(1)), &mut ready);
        let _ = order.arrive(4, Some(unwritten(4)), &mut ready);
        let _ = order.arrive(3, Some(unwritten(3)), &mut ready);
        order.drain_all(&mut ready);
        assert_eq!(lsns(&ready), [1, 3, 4]);
        let _ = order.arrive(5, Some(unwritten(5)), &mut ready);
        assert_eq!(lsns(&ready), [1, 3, 4, 5]);
        // The missing one, late (sent before a fault): handed on at once.
        let _ = order.arrive(2, Some(unwritten(2)), &mut ready);
        assert_eq!(lsns(&ready), [1, 3, 4, 5, 2]);
        let _ = order.arrive(6, Some(unwritten(6)), &mut ready);
        assert_eq!(lsns(&ready), [1, 3, 4, 5, 2, 6]);
    }
}
