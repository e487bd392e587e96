//! `Async` mode on the executor: callers have already decided, published
//! and acknowledged their puts (`ShardShared::put`); the shard only writes
//! them, in LSN order (`Reorder`), up to `pipeline_depth` writes at once,
//! and makes them durable with a background `fdatasync` at most
//! `flush_interval_ms` after the oldest unsynced write completed.
//!
//! What waits (in the queue and here) is bounded by the queue's byte
//! budget, `max_batch_bytes`, given back as records are handed to a write,
//! so a disk slower than the callers pushes back on them (bounded memory)
//! instead of growing a backlog.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures::future::LocalBoxFuture;

use crate::error::Error;
use crate::io::LogFs;
use crate::segment::format::frame_footprint;
use crate::shard::submission::{QueueReceiver, Unwritten};

use super::frames_of;
use super::inflight::Then;
use super::pipeline::Pipeline;
use super::reorder::Reorder;

/// The most frame bytes one write carries. Encoding a write's buffer blocks
/// the executor (no put is acknowledged meanwhile): 1 MiB takes 0.2–0.3 ms
/// here, an 8 MiB batch took 5 ms.
const ASYNC_WRITE_BYTES: usize = 1 << 20;

/// The `Async` state of a shard.
pub(super) struct AsyncPath {
    flush_interval: Duration,
    /// Records that arrived ahead of an LSN still on its way.
    pub reorder: Reorder,
    /// Records acknowledged but not yet handed to a write, in LSN order.
    pub unwritten: VecDeque<Unwritten>,
    /// Budget held in the queue by `unwritten` and `reorder`.
    unwritten_cost: usize,
    /// When the oldest acknowledged-but-unsynced write completed.
    dirty_since: Option<Instant>,
    /// The background fdatasync in flight, if any.
    pub flushing: Option<LocalBoxFuture<'static, Result<(), Error>>>,
    /// Highest LSN of a record that arrived from a caller.
    arrived_lsn: u64,
    /// Every record with an LSN up to this one is written (writes are
    /// handed out in LSN order and complete in order).
    written_lsn: u64,
    /// `written_lsn` when the running flush started: what it makes durable.
    flushing_lsn: u64,
    /// Every record with an LSN up to this one is durable.
    synced_lsn: u64,
    /// `Store::flush` calls waiting: each for every record up to its LSN.
    flush_waiters: Vec<(u64, FlushReply)>,
}

type FlushReply = oneshot::Sender<Result<(), Error>>;

impl AsyncPath {
    pub fn new(flush_interval: Duration) -> Self {
        AsyncPath {
            flush_interval,
            reorder: Reorder::default(),
            unwritten: VecDeque::new(),
            unwritten_cost: 0,
            dirty_since: None,
            flushing: None,
            arrived_lsn: 0,
            written_lsn: 0,
            flushing_lsn: 0,
            synced_lsn: 0,
            flush_waiters: Vec::new(),
        }
    }

    /// A `Store::flush`: every record that arrived before it (every put
    /// acknowledged before the call) must be durable before `reply`. Runs
    /// the flush as soon as those records are written, without waiting
    /// for `flush_interval_ms`.
    pub fn flush_requested<Fs: LogFs>(&mut self, p: &Pipeline<Fs>, reply: FlushReply) {
        if let Some(e) = p.failed() {
            let _ = reply.send(Err(e));
            return;
        }
        let target = self.arrived_lsn;
        if target <= self.synced_lsn {
            let _ = reply.send(Ok(()));
            return;
        }
        self.flush_waiters.push((target, reply));
        self.flush_if_waited_for(p);
    }

    /// Starts a flush now if a waiting `Store::flush` needs one that the
    /// running flush (if any) does not cover.
    fn flush_if_waited_for<Fs: LogFs>(&mut self, p: &Pipeline<Fs>) {
        let wanted = self.flush_waiters.iter().any(|(target, _)| {
            *target <= self.written_lsn && *target > self.flushing_lsn.max(self.synced_lsn)
        });
        if wanted && self.flushing.is_none() && self.written_lsn > self.synced_lsn {
            self.start_flush(p);
        }
    }

    /// Answers the `Store::flush` calls now covered (or all of them with
    /// the shard's fault).
    fn answer_flushes<Fs: LogFs>(&mut self, p: &Pipeline<Fs>) {
        if self.flush_waiters.is_empty() {
            return;
        }
        let failed = p.failed();
        let synced = self.synced_lsn;
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.flush_waiters)
            .into_iter()
            .partition(|(target, _)| failed.is_some() || *target <= synced);
        self.flush_waiters = waiting;
        for (_, reply) in done {
            let _ = reply.send(failed.clone().map_or(Ok(()), Err));
        }
    }

    /// How long until the background flush is due (`None`: nothing to
    /// flush, or a flush is running).
    pub fn flush_due(&self) -> Option<Duration> {
        match (self.dirty_since, &self.flushing) {
            (Some(since), None) => Some(self.flush_interval.saturating_sub(since.elapsed())),
            _ => None,
        }
    }

    /// Takes in a record sent by its caller; it waits for a write once
    /// every LSN before it has arrived.
    pub fn arrive<Fs: LogFs>(&mut self, p: &Pipeline<Fs>, u: Unwritten) {
        self.unwritten_cost += p.shared.queue.cost(&u.write);
        self.arrived_lsn = self.arrived_lsn.max(u.lsn);
        if let Some(waited) = self.reorder.arrive(u.lsn, Some(u), &mut self.unwritten) {
            p.shared.stats.lsn_waited(waited);
        }
    }

    /// An LSN whose record will never come (its caller unwound): records
    /// waiting for it go on.
    pub fn skip<Fs: LogFs>(&mut self, p: &Pipeline<Fs>, lsn: u64) {
        log::warn!(
            "shard {}: a put unwound after taking LSN {lsn}; its record is not written",
            p.shared.id
        );
        if let Some(waited) = self.reorder.arrive(lsn, None, &mut self.unwritten) {
            p.shared.stats.lsn_waited(waited);
        }
    }

    /// How many frame bytes must be queued before the loop takes records
    /// (`None`: none now): any record with nothing in flight, a full write
    /// with a write in flight (the rest is taken at its completion).
    pub fn take_at_bytes<Fs: LogFs>(&self, p: &Pipeline<Fs>) -> Option<usize> {
        if !p.has_room() {
            None
        } else if p.inflight.is_empty() {
            Some(1)
        } else {
            Some(p.max_batch_bytes.min(ASYNC_WRITE_BYTES))
        }
    }

    /// Hands acknowledged records to writes (up to `max_batch_bytes`, and
    /// at most [`ASYNC_WRITE_BYTES`], each) while the pipeline has room:
    /// with nothing in flight whatever waits, with a write in flight only
    /// full writes.
    pub async fn write_unwritten<Fs: LogFs>(
        &mut self,
        p: &mut Pipeline<Fs>,
        receiver: &QueueReceiver,
    ) {
        let write_limit = p.max_batch_bytes.min(ASYNC_WRITE_BYTES);
        while p.has_room() && !self.unwritten.is_empty() {
            if p.failed().is_some() {
                // Already logged as a loss of acknowledged Async puts.
                self.reorder.drain_all(&mut self.unwritten);
                let held = std::mem::take(&mut self.unwritten_cost);
                self.unwritten.clear();
                receiver.release(held);
                return;
            }
            let mut count = 0usize;
            let mut footprint = 0usize;
            for Unwritten { write, .. } in &self.unwritten {
                let bytes = frame_footprint(write.key().len(), write.payload().len());
                if count > 0 && footprint + bytes > write_limit {
                    break;
                }
                footprint += bytes;
                count += 1;
            }
            // With a write in flight, only a full write goes now; the rest
            // waits for that completion (one write instead of many small
            // ones, each costing the executor a submission and a wake-up).
            if !p.inflight.is_empty() && count == self.unwritten.len() && footprint < write_limit {
                break;
            }
            if p.writer.needs_rotation(footprint, count) {
                if let Err(e) = self.quiesce_and_rotate(p).await {
                    log::error!(
                        "shard {}: rotating failed, acknowledged Async puts may be lost: {e}",
                        p.shared.id
                    );
                    p.fail(&e);
                    continue;
                }
            }
            let chunk: Vec<Unwritten> = self.unwritten.drain(..count).collect();
            let last_lsn = chunk.last().map_or(0, |u| u.lsn);
            let cost: usize = chunk.iter().map(|u| p.shared.queue.cost(&u.write)).sum();
            self.unwritten_cost = self.unwritten_cost.saturating_sub(cost);
            let frames = frames_of(
                chunk.iter().map(|u| (&u.write, u.payload_crc, u.lsn)),
                p.writer.generation(),
            );
            let staged = p.stage(&frames, footprint);
            drop(frames);
            // Handed to a write (or lost with the shard): room for callers.
            receiver.release(cost);
            match staged {
                Ok(job) => p.launch(job, false, Then::AsyncRecords { last_lsn }),
                Err(e) => {
                    log::error!(
                        "shard {}: staging a write failed, acknowledged Async puts may be lost: {e}",
                        p.shared.id
                    );
                    p.fail(&e);
                }
            }
        }
    }

    /// A write of acknowledged records completed (`result`, after the
    /// pipeline's bookkeeping): it now waits for the background flush.
    pub fn completed<Fs: LogFs>(
        &mut self,
        p: &Pipeline<Fs>,
        then: Then,
        result: Result<(), Error>,
    ) {
        let Then::AsyncRecords { last_lsn } = then else {
            debug_assert!(false, "a Sync write in Async mode");
            return;
        };
        match result {
            Ok(()) => {
                self.dirty_since.get_or_insert_with(Instant::now);
                self.written_lsn = self.written_lsn.max(last_lsn);
                self.flush_if_waited_for(p);
            }
            Err(e) => {
                log::error!(
                    "shard {}: background write failed, acknowledged Async puts may be lost: {e}",
                    p.shared.id
                );
                self.answer_flushes(p);
            }
        }
    }

    /// Starts a background fdatasync covering every write completed so far
    /// (writes completing later mark the shard dirty again).
    pub fn start_flush<Fs: LogFs>(&mut self, p: &Pipeline<Fs>) {
        self.dirty_since = None;
        if p.shared.failure().is_some() || self.flushing.is_some() {
            return;
        }
        self.flushing_lsn = self.written_lsn;
        match p.writer.sync_job() {
            Ok(job) => {
                let shared = std::sync::Arc::clone(&p.shared);
                self.flushing = Some(Box::pin(async move {
                    let started = Instant::now();
                    let result = job.await;
                    if result.is_ok() {
                        shared.stats.synced(started.elapsed());
                    }
                    result
                }));
            }
            Err(e) => self.flushed(p, Err(e)),
        }
    }

    /// The background flush ended.
    pub fn flushed<Fs: LogFs>(&mut self, p: &Pipeline<Fs>, result: Result<(), Error>) {
        match result {
            Ok(()) => self.synced_lsn = self.synced_lsn.max(self.flushing_lsn),
            Err(e) => {
                log::error!(
                    "shard {}: background fdatasync failed, acknowledged Async puts may be lost: {e}",
                    p.shared.id
                );
                p.fail(&e);
            }
        }
        self.answer_flushes(p);
        self.flush_if_waited_for(p);
    }

    /// Waits for the background flush in progress, if any, and for the one
    /// its end may start for a waiting `Store::flush` (no write completes
    /// meanwhile, so that one covers every waiter and no third follows):
    /// afterwards no sync holds the segment file.
    async fn finish_flush<Fs: LogFs>(&mut self, p: &Pipeline<Fs>) {
        while let Some(flush) = self.flushing.take() {
            let result = flush.await;
            self.flushed(p, result);
        }
    }

    /// Completes every write in flight, in order.
    async fn complete_all<Fs: LogFs>(&mut self, p: &mut Pipeline<Fs>) {
        while let Some((then, result)) = p.next_completion().await {
            self.completed(p, then, result);
        }
    }

    /// Seals the active segment and starts the next one, once every write
    /// in flight and the background flush have completed.
    async fn quiesce_and_rotate<Fs: LogFs>(&mut self, p: &mut Pipeline<Fs>) -> Result<(), Error> {
        let started = Instant::now();
        self.complete_all(p).await;
        self.finish_flush(p).await;
        p.rotate(started).await
    }

    /// Writes out everything acknowledged and completes every write and the
    /// background flush: afterwards nothing holds the segment file.
    pub async fn drain<Fs: LogFs>(&mut self, p: &mut Pipeline<Fs>, receiver: &QueueReceiver) {
        // `write_unwritten` empties the list after a fault, so this ends.
        while !self.unwritten.is_empty() {
            self.write_unwritten(p, receiver).await;
            if !self.unwritten.is_empty() {
                if let Some((then, result)) = p.next_completion().await {
                    self.completed(p, then, result);
                }
            }
        }
        self.complete_all(p).await;
        self.finish_flush(p).await;
    }

    /// Shutdown: the puts the closed queue still held (already
    /// acknowledged) are written in LSN order, past any LSN whose put failed
    /// `Closed` (never acknowledged, so never coming), then made durable.
    pub async fn shut_down<Fs: LogFs>(
        &mut self,
        p: &mut Pipeline<Fs>,
        receiver: &QueueReceiver,
        left_in_queue: Vec<Unwritten>,
    ) {
        for u in left_in_queue {
            self.arrive(p, u);
        }
        self.reorder.drain_all(&mut self.unwritten);
        self.drain(p, receiver).await;
        if self.dirty_since.is_some() {
            self.start_flush(p);
            self.finish_flush(p).await;
        }
        // Covered by the last flush, or failed with the shard's fault.
        self.answer_flushes(p);
        for (_, reply) in self.flush_waiters.drain(..) {
            let _ = reply.send(Err(p.failed().unwrap_or(Error::Closed)));
        }
    }

    /// A checkpoint drained the shard and synced it itself: everything
    /// written so far is durable.
    pub fn synced_by_checkpoint<Fs: LogFs>(&mut self, p: &Pipeline<Fs>) {
        self.dirty_since = None;
        self.synced_lsn = self.synced_lsn.max(self.written_lsn);
        self.answer_flushes(p);
    }
}
