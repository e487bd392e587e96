//! A shard's submission queue: many producer threads, one consumer (the
//! shard's executor). Lock-free on both sides (an intrusive MPSC queue plus an
//! atomic waker), bounded by an atomic budget that producers reserve before
//! sending: a producer that finds it used up parks its waker and is woken
//! when the shard gives some back. `Sync` puts cost 1 each (the budget is
//! `queue_depth` puts, given back when the shard takes them); `Async` puts
//! cost their frame bytes (the budget is `max_batch_bytes`, given back when
//! the shard hands them to a write), which bounds what is acknowledged but
//! not yet written.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use futures::channel::{mpsc, oneshot};

use crate::error::Error;
use crate::record_ref::RecordRef;
use crate::segment::format::frame_footprint;
use crate::store::PutOutcome;

/// One put on its way to the shard.
pub(crate) struct Submission {
    /// Key, version and archived bytes (shared with the map once published).
    pub record: RecordRef,
    /// CRC32C of the archived bytes, computed on the caller's thread.
    pub payload_crc: u32,
    /// Where the outcome goes.
    pub reply: oneshot::Sender<Result<PutOutcome, Error>>,
    /// When it was sent to the shard (for `ShardStats::put_in_store`).
    pub queued_at: Instant,
}

impl Submission {
    /// Sends `outcome` to the waiting caller (gone callers are ignored).
    pub fn reply(self, outcome: Result<PutOutcome, Error>) {
        let _ = self.reply.send(outcome);
    }
}

/// `Async` mode: a put already published and acknowledged by its caller,
/// on its way to a write.
pub(crate) struct Unwritten {
    pub record: RecordRef,
    pub payload_crc: u32,
    /// Its LSN, taken by the caller: the shard writes frames in LSN order.
    pub lsn: u64,
}

/// What a shard receives.
pub(crate) enum Msg {
    /// `Sync` mode: a put for the shard to decide, write and acknowledge.
    Put(Submission),
    /// `Async` mode: a published put to write.
    Append(Unwritten),
    /// Drain what is queued, make it durable, close the log and exit.
    Shutdown,
    /// Write the shard's live set into a fresh segment (see
    /// `Store::compact`); replies with the first segment seq to keep.
    Checkpoint(oneshot::Sender<Result<u64, Error>>),
}

/// The producer side, shared by every `Store` clone.
pub(crate) struct Queue {
    tx: mpsc::UnboundedSender<Msg>,
    waiters_tx: mpsc::UnboundedSender<Waker>,
    queued: AtomicUsize,
    capacity: usize,
    /// Whether a put costs its frame bytes (`Async`) rather than 1.
    costs_bytes: bool,
    closed: AtomicBool,
}

/// The consumer side, owned by the shard's executor.
pub(crate) struct QueueReceiver {
    pub rx: mpsc::UnboundedReceiver<Msg>,
    waiters_rx: mpsc::UnboundedReceiver<Waker>,
}

/// A queue whose budget is `capacity`: frame bytes if `costs_bytes`, else
/// puts (see the module doc).
pub(crate) fn queue(capacity: usize, costs_bytes: bool) -> (Queue, QueueReceiver) {
    let (tx, rx) = mpsc::unbounded();
    let (waiters_tx, waiters_rx) = mpsc::unbounded();
    (
        Queue {
            tx,
            waiters_tx,
            queued: AtomicUsize::new(0),
            capacity,
            costs_bytes,
            closed: AtomicBool::new(false),
        },
        QueueReceiver { rx, waiters_rx },
    )
}

impl Queue {
    /// What a put of `record` holds of the budget.
    pub fn cost(&self, record: &RecordRef) -> usize {
        if self.costs_bytes {
            frame_footprint(record.key().len(), record.as_bytes().len())
        } else {
            1
        }
    }

    /// Waits until `cost` fits the budget and takes it. A cost larger than
    /// the whole budget is let through when nothing else is queued.
    pub async fn reserve(&self, cost: usize) -> Result<(), Error> {
        Reserve { queue: self, cost }.await
    }

    /// Gives back a reservation that was not used.
    pub fn unreserve(&self, cost: usize) {
        self.queued.fetch_sub(cost, Ordering::SeqCst);
    }

    /// Sends `sub`, which holds a reservation of `cost`.
    pub fn send(&self, sub: Submission, cost: usize) -> Result<(), Error> {
        if self.tx.unbounded_send(Msg::Put(sub)).is_err() {
            self.unreserve(cost);
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Sends `record`, which holds a reservation of `cost`.
    pub fn append(&self, record: Unwritten, cost: usize) -> Result<(), Error> {
        if self.tx.unbounded_send(Msg::Append(record)).is_err() {
            self.unreserve(cost);
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Sends a control message, outside the put bound.
    pub fn control(&self, msg: Msg) -> Result<(), Error> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        self.tx.unbounded_send(msg).map_err(|_| Error::Closed)
    }

    /// Asks the shard to stop after draining; later submits fail `Closed`.
    pub fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let _ = self.tx.unbounded_send(Msg::Shutdown);
    }

    /// Whether some put holds budget: queued for the shard or (`Async`)
    /// not yet handed to a write.
    pub fn has_queued(&self) -> bool {
        self.queued.load(Ordering::Relaxed) > 0
    }

    /// Whether `shutdown` was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

impl QueueReceiver {
    /// Gives back `cost` of the budget and wakes producers waiting for it.
    /// Gives back `cost` of the budget, held by `puts` puts, and wakes as
    /// many waiting producers (waking every waiter on each release made
    /// the executor spend most of its time in futex wakes once the `Async`
    /// byte budget was full: a thundering herd). When the budget is back
    /// to zero every waiter is woken, so none sleeps with room free.
    pub fn release(&mut self, queue: &Queue, cost: usize, puts: usize) {
        let left = if cost > 0 {
            queue.queued.fetch_sub(cost, Ordering::SeqCst) - cost
        } else {
            queue.queued.load(Ordering::SeqCst)
        };
        fence(Ordering::SeqCst);
        let mut woken = 0;
        while left == 0 || woken < puts {
            let Ok(w) = self.waiters_rx.try_recv() else {
                break;
            };
            w.wake();
            woken += 1;
        }
    }

    /// The shard is exiting: refuse new puts, wake every waiting producer
    /// (they see `closed`), and fail what is still queued with `Closed` —
    /// except `Async` puts, already acknowledged: they are returned (still
    /// holding their budget) for the shard to write.
    #[must_use = "acknowledged Async puts must be written"]
    pub fn close(&mut self, queue: &Queue) -> Vec<Unwritten> {
        queue.closed.store(true, Ordering::SeqCst);
        self.rx.close();
        let mut failed = 0;
        let mut cost = 0;
        let mut appends = Vec::new();
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                Msg::Put(sub) => {
                    failed += 1;
                    cost += queue.cost(&sub.record);
                    sub.reply(Err(Error::Closed));
                }
                Msg::Append(u) => appends.push(u),
                Msg::Checkpoint(reply) => {
                    let _ = reply.send(Err(Error::Closed));
                }
                Msg::Shutdown => {}
            }
        }
        self.release(queue, cost, failed);
        // Every producer still waiting for budget must learn about the
        // close (they see `closed` when polled); a waker left in the
        // channel would be dropped unwoken and its put would hang.
        while let Ok(w) = self.waiters_rx.try_recv() {
            w.wake();
        }
        self.waiters_rx.close();
        appends
    }
}

impl Drop for QueueReceiver {
    /// However the shard ends (closed, or its executor unwound), no producer
    /// is left waiting for budget that nobody will release: each is woken
    /// and, finding the receiver gone, fails `Closed`.
    fn drop(&mut self) {
        while let Ok(w) = self.waiters_rx.try_recv() {
            w.wake();
        }
    }
}

/// Waits for room in the budget and takes it.
struct Reserve<'a> {
    queue: &'a Queue,
    cost: usize,
}

impl Future for Reserve<'_> {
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let q = self.queue;
        let mut registered = false;
        loop {
            if q.is_closed() {
                return Poll::Ready(Err(Error::Closed));
            }
            let n = q.queued.load(Ordering::SeqCst);
            let cost = self.cost;
            if n == 0 || n.saturating_add(cost) <= q.capacity {
                if q.queued
                    .compare_exchange_weak(n, n + cost, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            if registered {
                return Poll::Pending;
            }
            // Register, then re-check: a slot freed between the check and the
            // registration is seen by the re-check; one freed after it wakes us.
            if q.waiters_tx.unbounded_send(cx.waker().clone()).is_err() {
                return Poll::Ready(Err(Error::Closed));
            }
            fence(Ordering::SeqCst);
            registered = true;
        }
    }
}
