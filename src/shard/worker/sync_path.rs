//! `Sync` mode on the executor: puts are decided here (newest wins),
//! gathered into batches, written on a fresh block, made durable, and only
//! then published into the map and acknowledged, in log order.
//!
//! With nothing in flight a put is written at once; with a batch in flight
//! the next starts when a write completes and frees its slot, or before
//! that once `OVERLAP_MIN_BATCH_BYTES` are queued (each batch pays a
//! flush). Puts below that wait in the queue, where they do not wake the
//! executor (`SyncPath::take_at_bytes`).

use std::collections::HashMap;
use std::time::Instant;

use crate::error::Error;
use crate::io::LogFs;
use crate::outcome::PutOutcome;
use crate::segment::format::frame_footprint;
use crate::shard::index;
use crate::shard::submission::Submission;

use super::checkpoint::CheckpointJob;
use super::frames_of;
use super::inflight::{SyncBatch, Then};
use super::pipeline::Pipeline;

/// With a batch in flight, the next one starts only once this much has
/// gathered. Every batch pays a flush; starting the second at once made
/// batches small and throughput worse (measured at depth 2: 729–1088 vs
/// 1099–1276 MB/s), waiting for half a MiB made depth 2 better than depth 1
/// (closed loop, 5 interleaved pairs: 0.63 vs 0.56 of the durable
/// ceiling). With nothing in flight a put is written at once.
const OVERLAP_MIN_BATCH_BYTES: usize = 512 << 10;

/// The `Sync` state of a shard.
#[derive(Default)]
pub(super) struct SyncPath {
    /// Puts taken off the queue for the next batch, held while a batch is
    /// in flight until they are worth a write of their own.
    pub gathering: Vec<Submission>,
    gathering_bytes: usize,
    /// Versions decided for batches in flight but not yet published: the
    /// recency check consults them before the map.
    pub decided: HashMap<Box<str>, i64>,
    /// Stale writes in flight, per key: a checkpoint does not forget a
    /// key's tombstone meanwhile (their frames follow it in the log).
    pub stale_in_flight: HashMap<Box<str>, usize>,
    /// The checkpoint being written, if any.
    pub checkpoint: Option<CheckpointJob>,
}

impl SyncPath {
    /// Whether the loop may take more puts: the pipeline has room and the
    /// gathered batch is not full.
    pub fn has_room<Fs: LogFs>(&self, p: &Pipeline<Fs>) -> bool {
        p.has_room() && self.gathering_bytes < p.max_batch_bytes
    }

    /// How many frame bytes must be queued before the loop takes puts
    /// (`None`: none now). With nothing in flight, or a checkpoint in
    /// progress (puts alternate with its chunks), any put; with a batch in
    /// flight, enough for a batch of its own: fewer wait in the queue for
    /// the completion, which starts the next batch, instead of waking the
    /// executor one by one to gather.
    pub fn take_at_bytes<Fs: LogFs>(&self, p: &Pipeline<Fs>) -> Option<usize> {
        if !self.has_room(p) {
            None
        } else if p.inflight.is_empty() || self.checkpoint.is_some() {
            Some(1)
        } else {
            Some(OVERLAP_MIN_BATCH_BYTES.saturating_sub(self.gathering_bytes))
        }
    }

    /// Takes puts off the queue (`bytes` of records). Writes them at once
    /// when nothing is in flight, enough has gathered, or `now` (a
    /// completion freed a slot, or a control message such as `flush`
    /// follows).
    pub async fn take<Fs: LogFs>(
        &mut self,
        p: &mut Pipeline<Fs>,
        mut batch: Vec<Submission>,
        bytes: usize,
        now: bool,
    ) {
        if !batch.is_empty() {
            self.gathering_bytes += bytes;
            self.gathering.append(&mut batch);
            if p.inflight.is_empty() || self.gathering_bytes >= OVERLAP_MIN_BATCH_BYTES {
                self.start_gathered(p).await;
            }
        }
        if now && !self.gathering.is_empty() {
            self.start_gathered(p).await;
        }
    }

    /// A write completed: the next checkpoint chunk, then the gathered puts,
    /// take the freed slot (under a steady load they alternate).
    pub async fn after_completion<Fs: LogFs>(&mut self, p: &mut Pipeline<Fs>) {
        self.advance_checkpoint(p).await;
        if !self.gathering.is_empty() {
            self.start_gathered(p).await;
        }
    }

    /// Starts the gathered puts as a batch.
    pub async fn start_gathered<Fs: LogFs>(&mut self, p: &mut Pipeline<Fs>) {
        self.gathering_bytes = 0;
        let batch = std::mem::take(&mut self.gathering);
        self.start_batch(p, batch).await;
    }

    /// Decides one batch and starts its write and sync; it completes
    /// through [`SyncPath::completed`].
    async fn start_batch<Fs: LogFs>(&mut self, p: &mut Pipeline<Fs>, mut batch: Vec<Submission>) {
        if let Some(e) = p.failed() {
            fail_all(&mut batch, &e);
            return;
        }
        let footprint: usize = batch
            .iter()
            .map(|s| frame_footprint(s.write.key().len(), s.write.payload().len()))
            .sum();
        if p.writer.needs_rotation(footprint, batch.len()) {
            if let Err(e) = self.quiesce_and_rotate(p).await {
                p.fail(&e);
                fail_all(&mut batch, &e);
                return;
            }
        }
        let outcomes = self.decide(p, &batch);
        let first_lsn = p.shared.take_lsns(batch.len() as u64);
        let frames = frames_of(
            batch
                .iter()
                .zip(first_lsn..)
                .map(|(s, lsn)| (&s.write, s.payload_crc, lsn)),
            p.writer.generation(),
        );
        let staged = p.stage(&frames, footprint);
        drop(frames);
        match staged {
            Ok(job) => {
                let now = Instant::now();
                for (sub, outcome) in batch.iter_mut().zip(&outcomes) {
                    p.shared
                        .stats
                        .put_written(now.saturating_duration_since(sub.queued_at));
                    if sub.ack_when_staged {
                        sub.answer(Ok(*outcome));
                    }
                }
                let then = Then::Batch(SyncBatch {
                    batch,
                    outcomes,
                    first_lsn,
                });
                p.launch(job, true, then);
            }
            Err(e) => {
                p.fail(&e);
                fail_all(&mut batch, &e);
            }
        }
    }

    /// Newest wins: a write (put or delete) applies when its version is at
    /// least the newest known for its key, record or tombstone (ties go to
    /// the later write), counting writes of this batch and of batches still
    /// in flight.
    fn decide<Fs: LogFs>(&mut self, p: &Pipeline<Fs>, batch: &[Submission]) -> Vec<PutOutcome> {
        let mut outcomes = Vec::with_capacity(batch.len());
        for s in batch {
            let key = s.write.key();
            let version = s.write.version();
            let current = self
                .decided
                .get(key)
                .copied()
                .or_else(|| index::version_of(&p.shared.index, key));
            match current {
                Some(current_version) if version < current_version => {
                    *self.stale_in_flight.entry(key.into()).or_default() += 1;
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

    /// The oldest write in flight completed (`result`, after the
    /// pipeline's bookkeeping): publish and acknowledge its puts, or fail
    /// them.
    pub fn completed<Fs: LogFs>(
        &mut self,
        p: &Pipeline<Fs>,
        then: Then,
        result: Result<(), Error>,
    ) {
        match then {
            Then::Batch(b) => self.batch_completed(p, b, result),
            Then::CheckpointChunk => self.chunk_completed(p, result),
            Then::AsyncRecords { .. } => debug_assert!(false, "an Async write in Sync mode"),
        }
    }

    fn batch_completed<Fs: LogFs>(
        &mut self,
        p: &Pipeline<Fs>,
        b: SyncBatch,
        result: Result<(), Error>,
    ) {
        let SyncBatch {
            mut batch,
            outcomes,
            first_lsn,
        } = b;
        match (result, p.failed()) {
            (Ok(()), None) => {
                debug_assert_eq!(batch.len(), outcomes.len());
                for ((sub, outcome), lsn) in batch.into_iter().zip(outcomes).zip(first_lsn..) {
                    self.publish_and_reply(p, sub, outcome, lsn);
                }
            }
            (Err(e), _) => fail_all(&mut batch, &e),
            // An earlier batch failed: this one is never acknowledged, even
            // if its own write and sync went through.
            (Ok(()), Some(e)) => fail_all(&mut batch, &e),
        }
    }

    /// Publishes an applied write of a durable batch (written with `lsn`)
    /// and acknowledges it; a stale one is noted against the key's
    /// tombstone, if that is what it lost to.
    fn publish_and_reply<Fs: LogFs>(
        &mut self,
        p: &Pipeline<Fs>,
        sub: Submission,
        outcome: PutOutcome,
        lsn: u64,
    ) {
        let key = sub.write.key();
        if outcome == PutOutcome::Applied {
            let (published, _) =
                index::publish(&p.shared.index, sub.write.clone(), || p.shared.rank(lsn));
            // Only the executor publishes in Sync mode, in log order.
            debug_assert_eq!(published, PutOutcome::Applied);
            // Once the map holds the decided version, forget it here.
            if self.decided.get(key) == Some(&sub.write.version()) {
                self.decided.remove(key);
            }
        } else {
            index::note_stale(&p.shared.index, key);
            self.stale_landed(key);
        }
        p.shared.stats.put_answered(sub.queued_at.elapsed());
        sub.reply(Ok(outcome));
    }

    /// A `Store::flush`: writes what was gathered and completes every write
    /// in flight. A plain Sync put is durable when answered, but one
    /// answered once staged (`PutOptions` with `Durability::Async`) is not
    /// until its write completes.
    pub async fn flush<Fs: LogFs>(&mut self, p: &mut Pipeline<Fs>) {
        if !self.gathering.is_empty() {
            self.start_gathered(p).await;
        }
        self.complete_all(p).await;
    }

    /// Completes every write in flight, in order.
    pub async fn complete_all<Fs: LogFs>(&mut self, p: &mut Pipeline<Fs>) {
        while let Some((then, result)) = p.next_completion().await {
            self.completed(p, then, result);
        }
    }

    /// Seals the active segment and starts the next one, once every write
    /// in flight has completed.
    pub async fn quiesce_and_rotate<Fs: LogFs>(
        &mut self,
        p: &mut Pipeline<Fs>,
    ) -> Result<(), Error> {
        let started = Instant::now();
        self.complete_all(p).await;
        p.rotate(started).await
    }

    /// Shutdown: writes what was gathered, completes every write, and ends
    /// the checkpoint in progress (done only if every chunk is durable).
    pub async fn shut_down<Fs: LogFs>(&mut self, p: &mut Pipeline<Fs>) {
        if !self.gathering.is_empty() {
            self.start_gathered(p).await;
        }
        self.complete_all(p).await;
        let done = self
            .checkpoint
            .as_ref()
            .is_some_and(|j| j.next == j.live.len() && j.chunks_in_flight == 0);
        self.finish_checkpoint(if done { None } else { Some(Error::Closed) });
    }
}

impl SyncPath {
    /// A stale write of `key` is no longer in flight.
    fn stale_landed(&mut self, key: &str) {
        if let Some(n) = self.stale_in_flight.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                self.stale_in_flight.remove(key);
            }
        }
    }
}

/// Fails every put of `batch` with `e`.
fn fail_all(batch: &mut Vec<Submission>, e: &Error) {
    for sub in batch.drain(..) {
        sub.reply(Err(e.clone()));
    }
}
