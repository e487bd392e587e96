//! A shard's submission queue: many producer threads, one consumer (the
//! shard's executor). Lock-free on both sides (an intrusive MPSC queue plus an
//! atomic waker), bounded by an atomic count of queued puts: a producer that
//! finds the queue full parks its waker and is woken when the shard drains.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use std::task::{Context, Poll, Waker};

use futures::channel::{mpsc, oneshot};

use crate::error::Error;
use crate::record_ref::RecordRef;
use crate::store::PutOutcome;

/// One put on its way to the shard.
pub(crate) struct Submission {
    /// Key, version and archived bytes (shared with the map once published).
    pub record: RecordRef,
    /// CRC32C of the archived bytes, computed on the caller's thread.
    pub payload_crc: u32,
    /// Where the outcome goes.
    pub reply: oneshot::Sender<Result<PutOutcome, Error>>,
}

/// What a shard receives.
pub(crate) enum Msg {
    Put(Submission),
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
    closed: AtomicBool,
}

/// The consumer side, owned by the shard's executor.
pub(crate) struct QueueReceiver {
    pub rx: mpsc::UnboundedReceiver<Msg>,
    waiters_rx: mpsc::UnboundedReceiver<Waker>,
}

/// A queue of `capacity` puts.
pub(crate) fn queue(capacity: usize) -> (Queue, QueueReceiver) {
    let (tx, rx) = mpsc::unbounded();
    let (waiters_tx, waiters_rx) = mpsc::unbounded();
    (
        Queue {
            tx,
            waiters_tx,
            queued: AtomicUsize::new(0),
            capacity,
            closed: AtomicBool::new(false),
        },
        QueueReceiver { rx, waiters_rx },
    )
}

impl Queue {
    /// Sends `sub`, waiting while the queue is full.
    pub async fn submit(&self, sub: Submission) -> Result<(), Error> {
        Reserve { queue: self }.await?;
        if self.tx.unbounded_send(Msg::Put(sub)).is_err() {
            self.queued.fetch_sub(1, Ordering::SeqCst);
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

    /// Whether `shutdown` was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

impl QueueReceiver {
    /// Gives back `n` queue slots and wakes producers waiting for space.
    pub fn release(&mut self, queue: &Queue, n: usize) {
        if n > 0 {
            queue.queued.fetch_sub(n, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        while let Ok(w) = self.waiters_rx.try_recv() {
            w.wake();
        }
    }

    /// The shard is exiting: refuse new puts, wake every waiting producer
    /// (they see `closed`), and fail what is still queued with `Closed`.
    pub fn close(&mut self, queue: &Queue) {
        queue.closed.store(true, Ordering::SeqCst);
        self.rx.close();
        let mut n = 0;
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                Msg::Put(sub) => {
                    n += 1;
                    let _ = sub.reply.send(Err(Error::Closed));
                }
                Msg::Checkpoint(reply) => {
                    let _ = reply.send(Err(Error::Closed));
                }
                Msg::Shutdown => {}
            }
        }
        self.release(queue, n);
        self.waiters_rx.close();
    }
}

/// Waits for a free queue slot and takes it.
struct Reserve<'a> {
    queue: &'a Queue,
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
            if n < q.capacity {
                if q.queued
                    .compare_exchange_weak(n, n + 1, Ordering::SeqCst, Ordering::SeqCst)
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
