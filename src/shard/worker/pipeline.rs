//! What both durability modes share on the executor: the active segment's
//! writer, the writes in flight (`pipeline_depth` at most), encoding a
//! batch into its DMA buffer, and the bookkeeping every completed write
//! needs (statistics, the idle clock, stopping the shard on a disk fault).

use std::sync::Arc;
use std::time::Instant;

use crate::error::Error;
use crate::io::LogFs;
use crate::segment::writer::{PendingFrame, SegmentWriter, WriteJob};
use crate::shard::ShardShared;
use crate::shard::stats::IoTimes;

use super::inflight::{Completion, InFlight, Then};

pub(super) struct Pipeline<Fs: LogFs> {
    pub fs: Fs,
    pub shared: Arc<ShardShared>,
    pub writer: SegmentWriter<Fs>,
    pub inflight: InFlight,
    /// Most writes in flight at once.
    pub depth: usize,
    /// Most bytes of records one batch gathers.
    pub max_batch_bytes: usize,
    /// Since when no write has been in flight (`ShardStats::idle`).
    idle_since: Option<Instant>,
}

impl<Fs: LogFs> Pipeline<Fs> {
    pub fn new(
        fs: Fs,
        shared: Arc<ShardShared>,
        writer: SegmentWriter<Fs>,
        depth: usize,
        max_batch_bytes: usize,
        idle_since: Instant,
    ) -> Self {
        Pipeline {
            fs,
            shared,
            writer,
            inflight: InFlight::default(),
            depth: depth.max(1),
            max_batch_bytes,
            idle_since: Some(idle_since),
        }
    }

    /// Whether another write may start.
    pub fn has_room(&self) -> bool {
        self.inflight.len() < self.depth
    }

    /// The shard's disk fault as an error, once there was one.
    pub fn failed(&self) -> Option<Error> {
        self.shared.failure().map(|cause| Error::ShardFailed {
            shard: self.shared.id,
            cause,
        })
    }

    /// Records a disk fault: the shard refuses writes until reopened.
    pub fn fail(&self, e: &Error) {
        self.shared.mark_failed(e.to_string());
    }

    /// Encodes a batch into its DMA buffer, counting the time it took.
    pub fn stage(
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

    /// Starts `job` as the next write in flight (with `sync`, made durable
    /// too); `then` says what its completion does.
    pub fn launch(&mut self, job: WriteJob<Fs::File>, sync: bool, then: Then) {
        self.inflight.push(job, sync, then);
        if let Some(since) = self.idle_since.take() {
            self.shared.stats.idled(since.elapsed());
        }
    }

    /// Waits for the oldest write in flight and does the bookkeeping of
    /// [`Pipeline::completed`].
    pub async fn next_completion(&mut self) -> Option<(Then, Result<(), Error>)> {
        let done = self.inflight.oldest().await?;
        Some(self.completed(done))
    }

    /// The bookkeeping of a completed write: statistics, the idle clock,
    /// and a failed write stops the shard.
    pub fn completed(&mut self, done: Completion) -> (Then, Result<(), Error>) {
        if self.inflight.is_empty() {
            self.idle_since = Some(Instant::now());
        }
        let result = done
            .result
            .map(|times: IoTimes| self.shared.stats.io_done(times));
        if let Err(e) = &result {
            self.fail(e);
        }
        (done.then, result)
    }

    /// Seals the active segment and starts the next one. The caller has
    /// completed every write in flight and any background flush.
    pub async fn rotate(&mut self, started: Instant) -> Result<(), Error> {
        debug_assert!(self.inflight.is_empty(), "rotating with writes in flight");
        if let Some(e) = self.failed() {
            return Err(e);
        }
        self.writer.rotate().await?;
        self.shared
            .stats
            .rotated(started.elapsed(), self.writer.in_spare());
        Ok(())
    }

    /// Closes the active segment at shutdown: sealed if the shard is
    /// healthy, left as it is after a disk fault (no retried sync, no hint,
    /// no announcement; the next open recovers whatever is on disk).
    pub async fn close(&mut self) {
        if self.shared.failure().is_some() {
            self.writer.abandon().await;
        } else if let Err(e) = self.writer.close().await {
            log::warn!(
                "shard {}: closing the active segment failed: {e}",
                self.shared.id
            );
        }
    }
}
