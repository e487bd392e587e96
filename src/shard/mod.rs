//! A shard: one glommio executor owning a partition of the keys, its map and
//! its log. This module holds what other threads share with the shard (its
//! submission queue and its map); `worker` is the executor side.

pub(crate) mod index;
pub(crate) mod stats;
pub(crate) mod submission;
pub(crate) mod worker;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use futures::channel::oneshot;

use crate::error::Error;
use crate::record_ref::RecordRef;
use crate::segment::format::frame_footprint;
use crate::store::PutOutcome;
use index::Index;
use stats::ShardCounters;
use submission::{Ack, Queue, Submission};

/// Which shard owns `key` among `shards`: xxh3-64 of the key bytes (a fixed,
/// portable algorithm, so routing is stable across versions, platforms and
/// restarts), reduced modulo the shard count.
pub fn shard_for(key: &str, shards: usize) -> usize {
    let h = xxhash_rust::xxh3::xxh3_64(key.as_bytes());
    (h % shards.max(1) as u64) as usize
}

/// The state of one shard that callers' threads share with its executor.
pub(crate) struct ShardShared {
    pub id: usize,
    pub index: Index,
    pub queue: Queue,
    /// Seq of the segment the shard is writing (0 before the first).
    pub active_seq: Arc<AtomicU64>,
    /// What the executor has done, for `Store::shard_stats`.
    pub stats: ShardCounters,
    /// Set once a write or fsync failed: the shard refuses writes until the
    /// store is reopened.
    failure: OnceLock<String>,
    /// Last log sequence number handed out in this generation: by the
    /// executor for `Sync` batches and checkpoints, by callers for `Async`
    /// puts.
    lsn: AtomicU64,
    /// `Async` mode: held while a caller takes an LSN, publishes and sends
    /// its put (and by a checkpoint while it snapshots the map), so LSN
    /// order = map order = queue order = log order. Why a lock: without it
    /// a caller could take an LSN, be preempted, and send after a later
    /// one — frames out of LSN order in the log (recovery's torn-tail rule
    /// relies on log order) and version ties decided differently in memory
    /// and by recovery. Held for an atomic add, a map update and a queue
    /// push (well under a microsecond); never across an await.
    async_order: Mutex<()>,
}

impl ShardShared {
    pub fn new(id: usize, index: Index, queue: Queue) -> Self {
        ShardShared {
            id,
            index,
            queue,
            failure: OnceLock::new(),
            active_seq: Arc::new(AtomicU64::new(0)),
            stats: ShardCounters::default(),
            lsn: AtomicU64::new(0),
            async_order: Mutex::new(()),
        }
    }

    /// Runs `f` holding the `Async` ordering lock (see `async_order`).
    pub fn in_async_order<T>(&self, f: impl FnOnce() -> T) -> T {
        // Nothing panics while it is held; a poisoned lock guards no data.
        let _held = self
            .async_order
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f()
    }

    /// Takes `n` consecutive LSNs and returns the first.
    pub fn take_lsns(&self, n: u64) -> u64 {
        self.lsn.fetch_add(n, Ordering::Relaxed) + 1
    }

    /// `Sync` put: the shard decides, writes, syncs and replies.
    pub async fn put_sync(&self, record: RecordRef, payload_crc: u32) -> Result<PutOutcome, Error> {
        self.refuse_if_failed()?;
        let (reply, outcome) = oneshot::channel();
        self.queue.reserve(1).await?;
        let ack = Ack::Awaiting(reply);
        self.queue.send(
            Submission {
                record,
                payload_crc,
                ack,
            },
            1,
        )?;
        // No reply: the shard ended without answering (closed, or stopped).
        match outcome.await {
            Ok(result) => result,
            Err(_) => self.refuse_if_failed().and(Err(Error::Closed)),
        }
    }

    /// `Async` put, decided and published on the caller's thread: no trip
    /// to the executor and back, only a wait for budget when the disk falls
    /// behind (back-pressure).
    pub async fn put_async(
        &self,
        record: RecordRef,
        payload_crc: u32,
    ) -> Result<PutOutcome, Error> {
        self.refuse_if_failed()?;
        let cost = frame_footprint(record.key().len(), record.as_bytes().len());
        self.queue.reserve(cost).await?;
        self.in_async_order(|| {
            let lsn = self.take_lsns(1);
            // Test builds widen the window this lock closes (another thread
            // may run between taking the LSN and sending), so that
            // tests/async_puts.rs sees the log out of LSN order should the
            // lock ever go.
            #[cfg(feature = "failpoints")]
            std::thread::sleep(std::time::Duration::from_micros(20));
            // Published before it is sent, so a checkpoint the executor
            // takes after receiving this put finds it (or a newer one).
            let outcome = index::publish_if_newest(&self.index, record.clone());
            let ack = Ack::Given { lsn };
            // Fails only when the store is closing; the record may then be
            // visible in memory without being in the log.
            self.queue.send(
                Submission {
                    record,
                    payload_crc,
                    ack,
                },
                cost,
            )?;
            Ok(outcome)
        })
    }

    fn refuse_if_failed(&self) -> Result<(), Error> {
        match self.failure() {
            Some(cause) => Err(Error::ShardFailed {
                shard: self.id,
                cause,
            }),
            None => Ok(()),
        }
    }

    /// Records the first disk fault of the shard.
    pub fn mark_failed(&self, cause: String) {
        let _ = self.failure.set(cause);
    }

    /// The fault that stopped the shard, if any.
    pub fn failure(&self) -> Option<String> {
        self.failure.get().cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::shard_for;

    #[test]
    fn routing_is_pinned() {
        // These values are part of the on-disk contract: changing the hash
        // would re-route every key of every existing data dir.
        // XXH3-64 (seed 0) of the empty input, from the reference test vectors.
        assert_eq!(xxhash_rust::xxh3::xxh3_64(b""), 0x2D06_8005_38D3_94C2);
        let got: Vec<usize> = ["sensor0", "sensor1", "sensor2", "a"]
            .iter()
            .map(|k| shard_for(k, 7))
            .collect();
        assert_eq!(got, PINNED);
    }

    const PINNED: [usize; 4] = [4, 3, 0, 1];
}
