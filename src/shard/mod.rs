//! A shard: one glommio executor owning a partition of the keys, its map and
//! its log. This module holds what other threads share with the shard (its
//! submission queue and its map); `worker` is the executor side.

pub(crate) mod index;
pub(crate) mod spawn;
pub(crate) mod stats;
pub(crate) mod submission;
pub(crate) mod watchdog;
pub(crate) mod worker;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::channel::oneshot;

use crate::config::Durability;
use crate::error::Error;
use crate::outcome::PutOutcome;
use crate::write::Write;
use index::{Index, LogRank};
use stats::ShardCounters;
use submission::{Queue, Submission, Unwritten};
use watchdog::Pulse;

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
    /// What the executor has done, for `Store::shard_stats`.
    pub stats: ShardCounters,
    /// Whether the executor turns, for the watchdog.
    pub pulse: Arc<Pulse>,
    durability: Durability,
    /// Store generation of this run: the first part of every new frame's
    /// rank.
    generation: u64,
    /// Last log sequence number taken in this generation. `Sync` mode:
    /// taken by the executor only. `Async` mode: taken by callers as they
    /// publish and by the executor's checkpoints; the executor writes
    /// frames in LSN order whatever order they arrive in.
    lsn: AtomicU64,
    /// Set once a write or fsync failed: the shard refuses writes until the
    /// store is reopened.
    failure: OnceLock<String>,
    /// How long a checkpoint remembers a tombstone
    /// (`Config::tombstone_retention`).
    tombstone_retention: Duration,
    /// Whether a checkpoint may forget tombstones: only once the previous
    /// compaction retired every segment before its checkpoint (none kept
    /// for the shipper), so no older frame of a forgotten key survives.
    forget_allowed: AtomicBool,
}

impl ShardShared {
    pub fn new(
        id: usize,
        index: Index,
        queue: Queue,
        durability: Durability,
        generation: u64,
        tombstone_retention: Duration,
        retain_until_shipped: bool,
    ) -> Self {
        ShardShared {
            id,
            index,
            queue,
            failure: OnceLock::new(),
            stats: ShardCounters::default(),
            pulse: Arc::new(Pulse::default()),
            durability,
            generation,
            lsn: AtomicU64::new(0),
            tombstone_retention,
            forget_allowed: AtomicBool::new(!retain_until_shipped),
        }
    }

    /// Records whether the last compaction retired every superseded
    /// segment (see `forget_allowed`).
    pub fn allow_forgetting(&self, allowed: bool) {
        self.forget_allowed.store(allowed, Ordering::Release);
    }

    /// What a checkpoint starting now may forget.
    pub fn forget_now(&self) -> index::Forget {
        if !self.forget_allowed.load(Ordering::Acquire) {
            return index::Forget::NEVER;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        index::Forget {
            now_unix_ns: now,
            retention_ns: u64::try_from(self.tombstone_retention.as_nanos()).unwrap_or(u64::MAX),
        }
    }

    /// Takes `n` consecutive LSNs and returns the first (LSNs start at 1).
    pub fn take_lsns(&self, n: u64) -> u64 {
        self.lsn.fetch_add(n, Ordering::Relaxed) + 1
    }

    /// The rank of a new frame with `lsn`.
    pub fn rank(&self, lsn: u64) -> LogRank {
        LogRank {
            generation: self.generation,
            lsn,
        }
    }

    /// A put acknowledged as `durability` asks (the store's mode for
    /// plain puts; `PutOptions` for `put_with`).
    pub async fn put(
        &self,
        write: Write,
        payload_crc: u32,
        durability: Durability,
    ) -> Result<PutOutcome, Error> {
        match (self.durability, durability) {
            (Durability::Sync, Durability::Sync) => {
                self.put_durable(write, payload_crc, false).await
            }
            // Decided and written like any Sync put (and readable only once
            // durable), but answered as soon as it is handed to a write.
            (Durability::Sync, Durability::Async) => {
                self.put_durable(write, payload_crc, true).await
            }
            (Durability::Async, Durability::Async) => self.put_async(write, payload_crc).await,
            // An Async put, then a flush of this shard: the record went
            // into the queue before the flush request, so the flush covers it.
            (Durability::Async, Durability::Sync) => {
                let outcome = self.put_async(write, payload_crc).await?;
                self.flush().await?;
                Ok(outcome)
            }
        }
    }

    /// Resolves once every record this shard was sent before the call is
    /// durable (see `Store::flush`).
    pub async fn flush(&self) -> Result<(), Error> {
        let (reply, done) = oneshot::channel();
        self.queue.control(submission::Msg::Flush(reply))?;
        done.await.unwrap_or(Err(Error::Closed))
    }

    /// `Sync` mode: the shard decides recency and replies once the record
    /// is durable. The put holds 1 of the queue's budget until the shard
    /// takes it. Lock-free: a reservation, a queue push, and a wait for
    /// the reply.
    async fn put_durable(
        &self,
        write: Write,
        payload_crc: u32,
        ack_when_staged: bool,
    ) -> Result<PutOutcome, Error> {
        self.refuse_if_failed()?;
        let cost = self.queue.cost(&write);
        let (reply, outcome) = oneshot::channel();
        self.queue.reserve(cost).await?;
        let sending = match self.queue.enter() {
            Ok(sending) => sending,
            Err(e) => {
                self.queue.unreserve(cost);
                return Err(e);
            }
        };
        sending.send(
            Submission {
                write,
                payload_crc,
                reply: Some(reply),
                ack_when_staged,
                queued_at: Instant::now(),
            },
            cost,
        )?;
        drop(sending);
        // No reply: the shard ended without answering (closed, or stopped).
        match outcome.await {
            Ok(result) => result,
            Err(_) => self.refuse_if_failed().and(Err(Error::Closed)),
        }
    }

    /// `Async` mode, on the caller's thread: waits for room in the byte
    /// budget (back-pressure from the disk), then takes an LSN, publishes
    /// by compare-and-swap (newest wins by version, then LSN, as in
    /// recovery) and hands the frame to the shard for writing. Lock-free;
    /// the only wait is for budget.
    async fn put_async(&self, write: Write, payload_crc: u32) -> Result<PutOutcome, Error> {
        self.refuse_if_failed()?;
        let cost = self.queue.cost(&write);
        self.queue.reserve(cost).await?;
        // From here to the push, the shard's close waits for us: a put that
        // is published and acknowledged is also drained and written, and
        // one that finds the queue closed publishes nothing.
        let sending = match self.queue.enter() {
            Ok(sending) => sending,
            Err(e) => {
                self.queue.unreserve(cost);
                return Err(e);
            }
        };
        #[cfg(feature = "failpoints")]
        crate::hooks::reached(crate::hooks::PausePoint::AsyncPutEntered);
        // Nothing below awaits, and nothing between taking the LSN and
        // sending the frame waits (`index::publish` creates a new key's slot
        // before it calls us for the rank): the shard, which writes frames
        // in LSN order, never waits long for an LSN, and a put future
        // dropped by its caller either took no LSN or has sent it.
        let (outcome, rank) = index::publish(&self.index, write.clone(), || {
            let lsn = self.take_lsns(1);
            sending.took_lsn(lsn);
            self.rank(lsn)
        });
        sending.append(
            Unwritten {
                write,
                payload_crc,
                lsn: rank.lsn,
            },
            cost,
        )?;
        drop(sending);
        Ok(outcome)
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
