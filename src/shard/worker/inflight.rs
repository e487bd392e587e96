//! The writes a shard has in flight, as one queue: each entry is the write
//! (and, if asked, its sync) together with what its completion must do, so
//! the two can never fall out of step. Entries complete strictly in the
//! order they were launched (`FuturesOrdered`): the map is published in log
//! order, and a failure fails every later batch.

use std::task::{Context, Poll};

use futures::StreamExt;
use futures::future::LocalBoxFuture;
use futures::stream::FuturesOrdered;

use crate::error::Error;
use crate::io::LogFile;
use crate::outcome::PutOutcome;
use crate::segment::writer::WriteJob;
use crate::shard::stats::IoTimes;
use crate::shard::submission::Submission;

/// What a completed write does next.
pub(super) enum Then {
    /// `Sync` mode: publish and acknowledge these puts once durable.
    Batch(SyncBatch),
    /// `Async` mode: records already acknowledged by their callers, the
    /// last with this LSN.
    AsyncRecords { last_lsn: u64 },
    /// `Sync` mode: a chunk of the checkpoint in progress.
    CheckpointChunk,
}

/// A `Sync` batch: its puts, the outcome decided for each, and the LSN of
/// its first frame (its frames are consecutive).
pub(super) struct SyncBatch {
    pub batch: Vec<Submission>,
    pub outcomes: Vec<PutOutcome>,
    pub first_lsn: u64,
}

/// A write that finished, with what it was for.
pub(super) struct Completion {
    pub then: Then,
    pub result: Result<IoTimes, Error>,
}

/// The writes in flight, oldest first.
#[derive(Default)]
pub(super) struct InFlight {
    writes: FuturesOrdered<LocalBoxFuture<'static, Completion>>,
}

impl InFlight {
    /// Starts `job` (with `sync`, made durable too) after the ones in
    /// flight.
    pub fn push<F: LogFile + 'static>(&mut self, job: WriteJob<F>, sync: bool, then: Then) {
        self.writes.push_back(Box::pin(async move {
            Completion {
                then,
                result: job.run_timed(sync).await,
            }
        }));
    }

    pub fn len(&self) -> usize {
        self.writes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The oldest write, if it has completed.
    pub fn poll_oldest(&mut self, cx: &mut Context<'_>) -> Poll<Option<Completion>> {
        self.writes.poll_next_unpin(cx)
    }

    /// Waits for the oldest write (`None`: nothing in flight).
    pub async fn oldest(&mut self) -> Option<Completion> {
        self.writes.next().await
    }
}
