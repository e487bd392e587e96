//! A shard's checkpoint (`Store::compact`): every live record, and every
//! tombstone still remembered, copied into a fresh segment with a new LSN,
//! after which every older segment of the shard's folder holds only
//! superseded frames. A tombstone older than `Config::tombstone_retention`
//! that no older write hit lately is forgotten instead (`index::Carry`).
//!
//! `Sync` mode writes it in chunks between put batches (`CheckpointJob`),
//! one chunk in flight at a time, so puts keep flowing. `Async` mode writes
//! it at once (after writing out what callers acknowledged): the executor
//! takes no records meanwhile, so once the queue's byte budget is full,
//! `Async` puts wait until the live set is written.

use std::time::Instant;

use futures::channel::oneshot;

use crate::error::Error;
use crate::io::LogFs;
use crate::segment::format::frame_footprint;
use crate::shard::index;
use crate::shard::submission::{Checkpointed, QueueReceiver};
use crate::write::Write;

use super::async_path::AsyncPath;
use super::frames_of;
use super::inflight::Then;
use super::pipeline::Pipeline;
use super::sync_path::SyncPath;

/// Bytes of live records a Sync-mode checkpoint writes per chunk: small
/// enough that a put waits for at most about one such write.
const CHECKPOINT_CHUNK_BYTES: usize = 1 << 20;

pub(super) type CheckpointReply = oneshot::Sender<Result<Checkpointed, Error>>;

/// `Sync` mode: a checkpoint written in chunks between put batches. Every
/// put from its start on goes to its first segment (`keep_from`) or a
/// later one, so each live record either gets a copy there or is replaced
/// by such a put.
pub(super) struct CheckpointJob {
    /// Every key with the rank of its record when the checkpoint began.
    pub live: Vec<(Box<str>, index::LogRank)>,
    /// Next entry of `live` to copy.
    pub next: usize,
    /// Chunks written but not completed yet.
    pub chunks_in_flight: usize,
    /// Seq of the segment the checkpoint began in.
    keep_from: u64,
    /// Records and tombstones copied so far.
    copied: usize,
    /// Tombstones forgotten so far.
    forgotten: usize,
    /// Every `Store::compact` waiting for this checkpoint.
    replies: Vec<CheckpointReply>,
}

impl SyncPath {
    /// A `Store::compact` request: waits for the batches in flight, starts
    /// a new segment and notes the live set; the chunks follow between put
    /// batches (`advance_checkpoint`), and `reply` gets the answer when the
    /// last is durable. A request during a checkpoint joins it: every put
    /// from its start on is in its first segment or later, so it covers the
    /// request.
    pub async fn begin_checkpoint<Fs: LogFs>(
        &mut self,
        p: &mut Pipeline<Fs>,
        reply: CheckpointReply,
    ) {
        let started = Instant::now();
        if let Some(job) = self.checkpoint.as_mut() {
            job.replies.push(reply);
            return;
        }
        if let Some(e) = p.failed() {
            let _ = reply.send(Err(e));
            return;
        }
        self.complete_all(p).await;
        if let Err(e) = p.writer.rotate().await {
            p.fail(&e);
            let _ = reply.send(Err(e));
            return;
        }
        self.checkpoint = Some(CheckpointJob {
            live: index::live_ranks(&p.shared.index),
            next: 0,
            chunks_in_flight: 0,
            keep_from: p.writer.seq(),
            copied: 0,
            forgotten: 0,
            replies: vec![reply],
        });
        // Puts waited only for this much.
        p.shared.stats.checkpointed(started.elapsed());
    }

    /// Writes the next chunk of the checkpoint in progress into a free
    /// pipeline slot, one chunk in flight at a time (so puts wait for at
    /// most one chunk), or finishes the checkpoint once every chunk is
    /// durable.
    pub async fn advance_checkpoint<Fs: LogFs>(&mut self, p: &mut Pipeline<Fs>) {
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
        if !p.has_room() {
            return;
        }
        if let Some(e) = p.failed() {
            self.finish_checkpoint(Some(e));
            return;
        }
        // Copy the next records, each with a fresh LSN taken now: later
        // than every frame staged before, earlier than every put after.
        let forget = p.shared.forget_now();
        let mut records: Vec<(Write, u64)> = Vec::new();
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
            // A stale write in flight may follow the key's tombstone: keep it.
            let forget = if self.stale_in_flight.contains_key(key) {
                index::Forget::NEVER
            } else {
                forget
            };
            let carried = index::carry_key(&p.shared.index, key, *seen, &forget, || {
                p.shared.rank(p.shared.take_lsns(1))
            });
            match carried {
                index::Carry::Copy(w, rank) => {
                    bytes += w.payload().len();
                    records.push((w, rank.lsn));
                }
                index::Carry::Forgot => job.forgotten += 1,
                index::Carry::Moved => {}
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
            .map(|(w, _)| frame_footprint(w.key().len(), w.payload().len()))
            .sum();
        if p.writer.needs_rotation(footprint, records.len()) {
            if let Err(e) = self.quiesce_and_rotate(p).await {
                p.fail(&e);
                self.finish_checkpoint(Some(e));
                return;
            }
        }
        let frames = frames_of(
            records
                .iter()
                .map(|(w, lsn)| (w, crc32c::crc32c(w.payload()), *lsn)),
            p.writer.generation(),
        );
        let staged = p.stage(&frames, footprint);
        drop(frames);
        match staged {
            Ok(job) => {
                p.launch(job, true, Then::CheckpointChunk);
                if let Some(job) = self.checkpoint.as_mut() {
                    job.chunks_in_flight += 1;
                }
            }
            Err(e) => {
                p.fail(&e);
                self.finish_checkpoint(Some(e));
            }
        }
    }

    /// A chunk's write completed (`result`, after the pipeline's
    /// bookkeeping).
    pub fn chunk_completed<Fs: LogFs>(&mut self, p: &Pipeline<Fs>, result: Result<(), Error>) {
        if let Some(job) = self.checkpoint.as_mut() {
            job.chunks_in_flight -= 1;
        }
        match (result, p.failed()) {
            (Ok(()), None) => {}
            (Err(e), _) | (Ok(()), Some(e)) => self.finish_checkpoint(Some(e)),
        }
    }

    /// Ends the checkpoint in progress: `None` = every chunk is durable.
    pub fn finish_checkpoint(&mut self, failed: Option<Error>) {
        let Some(job) = self.checkpoint.take() else {
            return;
        };
        for reply in job.replies {
            let _ = reply.send(match &failed {
                None => Ok(Checkpointed {
                    keep_from: job.keep_from,
                    records: job.copied,
                    tombstones_forgotten: job.forgotten,
                }),
                Some(e) => Err(e.clone()),
            });
        }
    }
}

impl AsyncPath {
    /// A `Store::compact` request: writes out what callers acknowledged,
    /// then every live record into a fresh segment, and seals it.
    pub async fn checkpoint<Fs: LogFs>(
        &mut self,
        p: &mut Pipeline<Fs>,
        receiver: &QueueReceiver,
        reply: CheckpointReply,
    ) {
        let started = Instant::now();
        self.drain(p, receiver).await;
        let result = match p.failed() {
            Some(e) => Err(e),
            None => self.write_checkpoint(p).await,
        };
        if let Err(e) = &result {
            p.fail(e);
        }
        p.shared.stats.checkpointed(started.elapsed());
        let _ = reply.send(result);
    }

    async fn write_checkpoint<Fs: LogFs>(
        &mut self,
        p: &mut Pipeline<Fs>,
    ) -> Result<Checkpointed, Error> {
        // The live set is usually far smaller than a segment: a new file,
        // so the checkpoint's size is its data (see `rotate_into_new_file`).
        p.writer.rotate_into_new_file().await?;
        let keep_from = p.writer.seq();
        let generation = p.writer.generation();
        // Each live record is copied into a fresh frame with a new LSN, and
        // its entry in the map takes that rank, so memory and recovery keep
        // agreeing on version ties with Async puts published meanwhile.
        // Those LSNs never come through the queue: the order skips them.
        let (shared, reorder, unwritten) = (&p.shared, &mut self.reorder, &mut self.unwritten);
        let forget = shared.forget_now();
        let (live, forgotten) = index::carry_all(&shared.index, &forget, || {
            let lsn = shared.take_lsns(1);
            // A wait this ends was for a put's LSN, counted when it came.
            let _ = reorder.arrive(lsn, None, unwritten);
            shared.rank(lsn)
        });
        let mut start = 0;
        while start < live.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < live.len() && (end == start || bytes < p.max_batch_bytes) {
                bytes += live.get(end).map_or(0, |(w, _)| w.payload().len());
                end += 1;
            }
            let chunk = live.get(start..end).unwrap_or_default();
            let frames = frames_of(
                chunk
                    .iter()
                    .map(|(w, lsn)| (w, crc32c::crc32c(w.payload()), *lsn)),
                generation,
            );
            p.writer.append(&frames).await?;
            start = end;
        }
        p.writer.sync().await?;
        self.synced_by_checkpoint(p);
        // Seal the checkpoint so it gets its hint; puts go to the next one.
        p.writer.rotate().await?;
        Ok(Checkpointed {
            keep_from,
            records: live.len(),
            tombstones_forgotten: forgotten,
        })
    }
}
