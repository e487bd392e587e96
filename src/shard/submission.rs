//! A shard's submission queue: many producer threads, one consumer (the
//! shard's executor). Lock-free on the way in (an intrusive MPSC queue), and
//! bounded in bytes by a fair semaphore (tokio's, which needs no runtime)
//! that producers acquire before sending: a put costs its frame bytes,
//! clamped to the whole budget so an oversize record waits its turn instead
//! of starving. `Sync` puts give their cost back when the shard takes them
//! (budget `max_queued_bytes`, and each put costs at least
//! `max_queued_bytes / queue_depth`, so at most `queue_depth` wait);
//! `Async` puts give it back when the shard hands them to a write (budget
//! `max_batch_bytes`), which bounds what is acknowledged but not written.
//!
//! Closing races senders: a sender checks `closed` and pushes its message
//! inside a [`Sending`] section, and the receiver's `close` waits for every
//! such section to end before its final drain, so a message is either
//! drained or its sender learned `Closed` — never pushed unseen after the
//! drain (an `Async` put would then be acknowledged and never written).
//!
//! Waking the shard is the receiver's choice: it says how many frame bytes
//! must be queued before a put is worth a wake-up ([`QueueReceiver::poll_take`]).
//! A shard with nothing in flight wants every put at once; one whose write
//! is in flight takes the queued puts when that write completes, unless
//! enough gathered for a write of their own. Every wake-up of an executor
//! costs it a park and a wake (system calls and a cross-CPU barrier), so a
//! put that cannot be written sooner does not wake it. Other messages
//! (control, skips) always wake it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use futures::channel::{mpsc, oneshot};
use futures::task::AtomicWaker;
use tokio::sync::Semaphore;

use crate::error::Error;
use crate::outcome::PutOutcome;
use crate::segment::format::frame_footprint;
use crate::write::Write;

/// One put on its way to the shard.
pub(crate) struct Submission {
    /// The put's record or the delete's tombstone (shared with the map
    /// once published).
    pub write: Write,
    /// CRC32C of the archived bytes, computed on the caller's thread.
    pub payload_crc: u32,
    /// Where the outcome goes (taken once answered).
    pub reply: Option<oneshot::Sender<Result<PutOutcome, Error>>>,
    /// Answer once decided and handed to a write, before it is durable
    /// (`PutOptions` with `Durability::Async` in a `Sync` store); the
    /// record is still published only once durable.
    pub ack_when_staged: bool,
    /// When it was sent to the shard (for `ShardStats::put_in_store`).
    pub queued_at: Instant,
}

impl Submission {
    /// Sends `outcome` to the waiting caller, unless it was answered
    /// already (gone callers are ignored).
    pub fn answer(&mut self, outcome: Result<PutOutcome, Error>) {
        if let Some(tx) = self.reply.take() {
            let _ = tx.send(outcome);
        }
    }

    /// [`Submission::answer`], consuming the submission.
    pub fn reply(mut self, outcome: Result<PutOutcome, Error>) {
        self.answer(outcome);
    }
}

/// `Async` mode: a put already published and acknowledged by its caller,
/// on its way to a write.
pub(crate) struct Unwritten {
    pub write: Write,
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
    /// `Async` mode: an LSN whose put will never send its record (its
    /// caller unwound after taking it): the shard's order skips it.
    Skip(u64),
    /// Drain what is queued, make it durable, close the log and exit.
    Shutdown,
    /// Reply once every record sent before this message is durable (see
    /// `Store::flush`).
    Flush(oneshot::Sender<Result<(), Error>>),
    /// Write the shard's live set into a fresh segment (see
    /// `Store::compact`); replies with the first segment seq to keep.
    Checkpoint(oneshot::Sender<Result<Checkpointed, Error>>),
}

/// What the producers and the consumer of one queue share.
struct Gate {
    /// The byte budget (see the module doc).
    budget: Semaphore,
    /// Permits of `budget` when nothing is queued.
    capacity: usize,
    /// The least a put costs.
    min_cost: usize,
    closed: AtomicBool,
    /// Senders inside a [`Sending`] section.
    senders: AtomicUsize,
    /// Frame bytes of the puts pushed and not yet taken. Counted after the
    /// push and uncounted after the take, so it may dip below zero for a
    /// moment.
    queued_bytes: AtomicI64,
    /// Messages other than puts pushed and not yet taken.
    queued_other: AtomicI64,
    /// The receiver wants a wake-up once `queued_bytes` reaches this
    /// (`i64::MAX`: only for other messages).
    wake_at_bytes: AtomicI64,
    /// The receiver's task.
    waker: AtomicWaker,
}

impl Gate {
    /// Whether the receiver should take a message now, for a threshold of
    /// `wake_at` queued bytes.
    fn worth_taking(&self, wake_at: i64) -> bool {
        self.queued_other.load(Ordering::SeqCst) > 0
            || self.queued_bytes.load(Ordering::SeqCst) >= wake_at
    }

    /// Counts a pushed message of `bytes` (0: not a put) and wakes the
    /// receiver if it asked for it.
    fn pushed(&self, bytes: i64) {
        if bytes == 0 {
            self.queued_other.fetch_add(1, Ordering::SeqCst);
            self.waker.wake();
            return;
        }
        let queued = self.queued_bytes.fetch_add(bytes, Ordering::SeqCst) + bytes;
        // SeqCst on both sides (here: count, then read the threshold; the
        // receiver: store the threshold, then read the count): either this
        // sender sees the receiver's threshold or the receiver sees this
        // put, so no put is left without a wake-up it asked for.
        if queued >= self.wake_at_bytes.load(Ordering::SeqCst) {
            self.waker.wake();
        }
    }
}

impl Msg {
    /// What the message counts for in [`Gate::queued_bytes`]: a put's frame
    /// bytes (at least 1); 0 for other messages.
    fn queued_bytes(&self) -> i64 {
        let write = match self {
            Msg::Put(s) => &s.write,
            Msg::Append(u) => &u.write,
            _ => return 0,
        };
        i64::try_from(frame_footprint(write.key().len(), write.payload().len()))
            .unwrap_or(i64::MAX)
            .max(1)
    }
}

/// What a shard's checkpoint did (see `Store::compact`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checkpointed {
    /// Seq of the first segment to keep: every older one of the shard's
    /// folder holds only superseded frames.
    pub keep_from: u64,
    /// Live records and remembered tombstones copied into the checkpoint.
    pub records: usize,
    /// Tombstones forgotten (older than `Config::tombstone_retention`).
    pub tombstones_forgotten: usize,
}

/// The producer side, shared by every `Store` clone.
pub(crate) struct Queue {
    tx: mpsc::UnboundedSender<Msg>,
    gate: Arc<Gate>,
}

/// The consumer side, owned by the shard's executor.
pub(crate) struct QueueReceiver {
    rx: mpsc::UnboundedReceiver<Msg>,
    gate: Arc<Gate>,
}

/// A queue whose budget is `capacity_bytes` of frames, each put costing at
/// least `min_cost_bytes` (see the module doc).
pub(crate) fn queue(capacity_bytes: usize, min_cost_bytes: usize) -> (Queue, QueueReceiver) {
    let (tx, rx) = mpsc::unbounded();
    // The semaphore counts at most `Semaphore::MAX_PERMITS` and acquires at
    // most `u32::MAX` at once; `Config::validate` keeps budgets far below.
    let capacity = capacity_bytes.clamp(1, u32::MAX as usize);
    let gate = Arc::new(Gate {
        budget: Semaphore::new(capacity),
        capacity,
        min_cost: min_cost_bytes.min(capacity),
        closed: AtomicBool::new(false),
        senders: AtomicUsize::new(0),
        queued_bytes: AtomicI64::new(0),
        queued_other: AtomicI64::new(0),
        wake_at_bytes: AtomicI64::new(1),
        waker: AtomicWaker::new(),
    });
    (
        Queue {
            tx,
            gate: Arc::clone(&gate),
        },
        QueueReceiver { rx, gate },
    )
}

/// A sender between its check of `closed` and the end of its push: the
/// receiver's final drain waits for it (see the module doc).
pub(crate) struct Sending<'a> {
    queue: &'a Queue,
    /// `Async`: the LSN taken and not yet sent, if any.
    unsent_lsn: std::cell::Cell<Option<u64>>,
}

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        // A caller that unwound between taking its LSN and sending its
        // record would leave the shard waiting for that LSN forever (every
        // later Async record of the shard queued behind it): tell the shard
        // to skip it. The receiver is still open (its close waits for us).
        if let Some(lsn) = self.unsent_lsn.take() {
            self.queue.send_counted(Msg::Skip(lsn));
        }
        self.queue.gate.senders.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Sending<'_> {
    /// Sends `sub`, which holds a reservation of `cost`.
    pub fn send(&self, sub: Submission, cost: usize) -> Result<(), Error> {
        self.push(Msg::Put(sub), cost)
    }

    /// `Async`: `lsn` was taken for this put; until [`Sending::append`]
    /// sends it, dropping this section tells the shard to skip it.
    pub fn took_lsn(&self, lsn: u64) {
        self.unsent_lsn.set(Some(lsn));
    }

    /// Sends `record`, which holds a reservation of `cost`.
    pub fn append(&self, record: Unwritten, cost: usize) -> Result<(), Error> {
        self.unsent_lsn.set(None);
        self.push(Msg::Append(record), cost)
    }

    fn push(&self, msg: Msg, cost: usize) -> Result<(), Error> {
        // The receiver is open while any `Sending` lives (its `close` waits
        // for us), so this fails only if the shard's executor is gone.
        if !self.queue.send_counted(msg) {
            self.queue.unreserve(cost);
            return Err(Error::Closed);
        }
        Ok(())
    }
}

impl Queue {
    /// Pushes `msg` and counts it for the receiver's wake-up; false if the
    /// receiver is gone.
    fn send_counted(&self, msg: Msg) -> bool {
        let bytes = msg.queued_bytes();
        if self.tx.unbounded_send(msg).is_err() {
            return false;
        }
        self.gate.pushed(bytes);
        true
    }

    /// What a put of `record` holds of the budget: its frame bytes, at
    /// least the minimum cost, at most the whole budget.
    pub fn cost(&self, write: &Write) -> usize {
        frame_footprint(write.key().len(), write.payload().len())
            .clamp(self.gate.min_cost, self.gate.capacity)
    }

    /// Waits (first come, first served) until `cost` fits the budget and
    /// takes it.
    pub async fn reserve(&self, cost: usize) -> Result<(), Error> {
        let permits = u32::try_from(cost.min(self.gate.capacity)).unwrap_or(u32::MAX);
        let permit = self
            .gate
            .budget
            .acquire_many(permits)
            .await
            .map_err(|_| Error::Closed)?;
        // Given back by the shard (`QueueReceiver::release`), not on drop.
        permit.forget();
        Ok(())
    }

    /// Gives back a reservation that was not used.
    pub fn unreserve(&self, cost: usize) {
        self.gate.budget.add_permits(cost.min(self.gate.capacity));
    }

    /// Starts a send: `Closed` once the queue is closed; otherwise the
    /// returned section must push its message before it drops.
    pub fn enter(&self) -> Result<Sending<'_>, Error> {
        self.gate.senders.fetch_add(1, Ordering::SeqCst);
        let sending = Sending {
            queue: self,
            unsent_lsn: std::cell::Cell::new(None),
        };
        if self.is_closed() {
            return Err(Error::Closed);
        }
        Ok(sending)
    }

    /// Sends a control message, outside the put bound.
    pub fn control(&self, msg: Msg) -> Result<(), Error> {
        let sending = self.enter()?;
        sending.push(msg, 0)
    }

    /// Asks the shard to stop after draining; later submits fail `Closed`.
    pub fn shutdown(&self) {
        self.gate.closed.store(true, Ordering::SeqCst);
        self.send_counted(Msg::Shutdown);
    }

    /// Whether some put holds budget: queued for the shard or (`Async`)
    /// not yet handed to a write.
    pub fn has_queued(&self) -> bool {
        self.gate.budget.available_permits() < self.gate.capacity
    }

    /// Whether `shutdown` was called.
    pub fn is_closed(&self) -> bool {
        self.gate.closed.load(Ordering::SeqCst)
    }
}

impl QueueReceiver {
    /// The next message, if one is worth taking now: any message that is
    /// not a put, or a put once at least `wake_at_bytes` of puts' frames
    /// are queued (1: any put). Otherwise the task is woken when that
    /// holds. `None` once every sender is gone.
    pub fn poll_take(&mut self, cx: &mut Context<'_>, wake_at_bytes: usize) -> Poll<Option<Msg>> {
        let wake_at = i64::try_from(wake_at_bytes).unwrap_or(i64::MAX).max(1);
        self.gate.waker.register(cx.waker());
        self.gate.wake_at_bytes.store(wake_at, Ordering::SeqCst);
        if !self.gate.worth_taking(wake_at) {
            return Poll::Pending;
        }
        match self.rx.try_recv() {
            Ok(msg) => Poll::Ready(Some(self.taken(msg))),
            Err(mpsc::TryRecvError::Closed) => Poll::Ready(None),
            // Counted but already taken (the count lags the push): the
            // sender's count and its wake-up are still to come.
            Err(mpsc::TryRecvError::Empty) => Poll::Pending,
        }
    }

    /// Asks for no wake-up by puts (while the shard cannot take any);
    /// other messages still wake it.
    pub fn mute(&self) {
        self.gate.wake_at_bytes.store(i64::MAX, Ordering::SeqCst);
    }

    /// The next queued message, if any, without waiting.
    pub fn try_take(&mut self) -> Option<Msg> {
        self.rx.try_recv().ok().map(|msg| self.taken(msg))
    }

    /// Uncounts a message taken off the queue.
    fn taken(&self, msg: Msg) -> Msg {
        match msg.queued_bytes() {
            0 => self.gate.queued_other.fetch_sub(1, Ordering::SeqCst),
            bytes => self.gate.queued_bytes.fetch_sub(bytes, Ordering::SeqCst),
        };
        msg
    }

    /// Gives back `cost` of the budget; the semaphore wakes the waiters
    /// that now fit, in arrival order.
    pub fn release(&self, cost: usize) {
        if cost > 0 {
            self.gate.budget.add_permits(cost.min(self.gate.capacity));
        }
    }

    /// The shard is exiting: refuse new puts (waiting producers fail
    /// `Closed`), wait for every sender already past its check to push,
    /// then fail what is still queued with `Closed` — except `Async` puts,
    /// already acknowledged: they are returned (still holding their
    /// budget) for the shard to write.
    #[must_use = "acknowledged Async puts must be written"]
    pub fn close(&mut self, queue: &Queue) -> Vec<Unwritten> {
        self.gate.closed.store(true, Ordering::SeqCst);
        self.gate.budget.close();
        // A section lasts one push (no await inside), so this wait is as
        // short as the sender's time slice.
        while self.gate.senders.load(Ordering::SeqCst) > 0 {
            std::thread::yield_now();
        }
        self.rx.close();
        let mut appends = Vec::new();
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                Msg::Put(sub) => {
                    self.release(queue.cost(&sub.write));
                    sub.reply(Err(Error::Closed));
                }
                Msg::Append(u) => appends.push(u),
                // Nothing follows a skipped LSN that is not drained here.
                Msg::Skip(_) => {}
                Msg::Checkpoint(reply) => {
                    let _ = reply.send(Err(Error::Closed));
                }
                // Everything before it is written and synced by the
                // shard's shutdown, which the store's close waits for.
                Msg::Flush(reply) => {
                    let _ = reply.send(Err(Error::Closed));
                }
                Msg::Shutdown => {}
            }
        }
        appends
    }
}

impl Drop for QueueReceiver {
    /// However the shard ends (closed, or its executor unwound), no producer
    /// is left waiting for budget that nobody will release: each fails
    /// `Closed`.
    fn drop(&mut self) {
        self.gate.closed.store(true, Ordering::SeqCst);
        self.gate.budget.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record_ref::RecordRef;
    use futures::FutureExt;
    use std::pin::pin;
    use std::task::{Context, Poll};

    fn record(payload_len: usize) -> RecordRef {
        let r = crate::Record::new()
            .with("collection_time", 1i64)
            .with("pad", "x".repeat(payload_len));
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&r).expect("serialize");
        RecordRef::from_untrusted("k", 1, &bytes).expect("a valid record")
    }

    fn poll_once<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        let waker = futures::task::noop_waker();
        f.poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn costs_are_frame_bytes_between_the_minimum_and_the_budget() {
        let (q, _r) = queue(64 << 10, 1000);
        assert_eq!(
            q.cost(&Write::Put(record(10))),
            1000,
            "small puts cost the minimum"
        );
        let mid = record(20 << 10);
        assert_eq!(
            q.cost(&Write::Put(mid.clone())),
            frame_footprint(mid.key().len(), mid.as_bytes().len())
        );
        assert_eq!(
            q.cost(&Write::Put(record(1 << 20))),
            64 << 10,
            "clamped to the budget"
        );
    }

    /// Regression: the hand-written budget let an oversize record wait
    /// forever behind a stream of small ones, and queued a new waker on
    /// every poll. The semaphore serves waiters in arrival order.
    #[test]
    fn an_oversize_put_is_served_in_turn_not_starved() {
        let (q, r) = queue(1000, 0);
        q.reserve(600).now_or_never().expect("room").expect("open");
        let mut big = pin!(q.reserve(5000));
        let mut small = pin!(q.reserve(100));
        for _ in 0..1000 {
            assert!(poll_once(big.as_mut()).is_pending(), "600 of 1000 held");
        }
        assert!(
            poll_once(small.as_mut()).is_pending(),
            "fits, but queues behind the big one"
        );
        r.release(600);
        assert!(matches!(poll_once(big.as_mut()), Poll::Ready(Ok(()))));
        assert!(
            poll_once(small.as_mut()).is_pending(),
            "the big one holds it all"
        );
        r.release(1000);
        assert!(matches!(poll_once(small.as_mut()), Poll::Ready(Ok(()))));
    }

    #[test]
    fn close_fails_waiters_and_later_sends() {
        let (q, mut r) = queue(100, 0);
        q.reserve(100).now_or_never().expect("room").expect("open");
        let mut waiting = pin!(q.reserve(10));
        assert!(poll_once(waiting.as_mut()).is_pending());
        let appends = r.close(&q);
        assert!(appends.is_empty());
        assert!(matches!(
            poll_once(waiting.as_mut()),
            Poll::Ready(Err(Error::Closed))
        ));
        assert!(matches!(q.enter(), Err(Error::Closed)));
    }

    /// Regression: an `Async` caller that unwound between taking its LSN
    /// and sending its record left the shard waiting for that LSN forever,
    /// and every later record of the shard behind it. Its section now tells
    /// the shard to skip the LSN.
    #[test]
    fn a_sender_that_unwinds_after_taking_its_lsn_has_it_skipped() {
        let (q, mut r) = queue(1 << 20, 0);
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let sending = q.enter().expect("open");
            sending.took_lsn(7);
            panic!("a bug between taking the LSN and sending");
        }));
        assert!(unwound.is_err());
        match r.try_take() {
            Some(Msg::Skip(7)) => {}
            Some(_) => panic!("expected Skip(7), got another message"),
            None => panic!("expected Skip(7), got nothing"),
        }
        // A sender that sent its record leaves nothing to skip.
        let sending = q.enter().expect("open");
        sending.took_lsn(8);
        let u = Unwritten {
            write: Write::Put(record(10)),
            payload_crc: 0,
            lsn: 8,
        };
        sending.append(u, 0).expect("open");
        drop(sending);
        assert!(matches!(r.try_take(), Some(Msg::Append(_))));
        assert!(r.try_take().is_none(), "no Skip after a sent record");
        drop(r.close(&q));
    }

    /// A waker that counts its wake-ups.
    struct CountingWaker(AtomicUsize);

    impl futures::task::ArcWake for CountingWaker {
        fn wake_by_ref(arc_self: &Arc<Self>) {
            arc_self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn put_of(payload_len: usize) -> Submission {
        Submission {
            write: Write::Put(record(payload_len)),
            payload_crc: 0,
            reply: None,
            ack_when_staged: false,
            queued_at: Instant::now(),
        }
    }

    /// Every wake-up costs the executor a park and a wake: puts wake the
    /// receiver only once the bytes it asked for are queued, other
    /// messages always, and a muted receiver not for puts at all.
    #[test]
    fn puts_wake_the_receiver_only_at_its_threshold() {
        let (q, mut r) = queue(1 << 20, 0);
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = futures::task::waker(Arc::clone(&counter));
        let mut cx = Context::from_waker(&waker);
        let wakes = || counter.0.load(Ordering::SeqCst);
        let one = {
            let w = Write::Put(record(100));
            frame_footprint(w.key().len(), w.payload().len())
        };

        // Asks for three puts' worth: the first two stay queued, unseen.
        assert!(r.poll_take(&mut cx, 3 * one).is_pending());
        for _ in 0..2 {
            q.enter().expect("open").send(put_of(100), 0).expect("open");
        }
        assert_eq!(wakes(), 0, "two puts are below the threshold");
        assert!(r.poll_take(&mut cx, 3 * one).is_pending());
        q.enter().expect("open").send(put_of(100), 0).expect("open");
        assert_eq!(wakes(), 1, "the third reaches it");
        for _ in 0..3 {
            assert!(matches!(
                r.poll_take(&mut cx, 1),
                Poll::Ready(Some(Msg::Put(_)))
            ));
        }
        assert!(r.poll_take(&mut cx, 1).is_pending(), "all taken");

        // Any put, at a threshold of 1.
        q.enter().expect("open").send(put_of(100), 0).expect("open");
        assert_eq!(wakes(), 2);
        assert!(r.try_take().is_some());

        // Muted: puts never wake it; a control message does.
        assert!(r.poll_take(&mut cx, 1).is_pending());
        r.mute();
        q.enter().expect("open").send(put_of(100), 0).expect("open");
        assert_eq!(wakes(), 2, "a muted receiver is not woken by puts");
        let (reply, _done) = oneshot::channel();
        q.control(Msg::Flush(reply)).expect("open");
        assert_eq!(wakes(), 3, "control messages always wake");
        assert!(matches!(
            r.poll_take(&mut cx, usize::MAX),
            Poll::Ready(Some(Msg::Put(_)))
        ));
        assert!(matches!(
            r.poll_take(&mut cx, usize::MAX),
            Poll::Ready(Some(Msg::Flush(_)))
        ));
        assert!(
            r.poll_take(&mut cx, 1).is_pending(),
            "counts are back to zero"
        );
        drop(r.close(&q));
    }

    /// Regression: `close` drained with `try_recv` while a sender was
    /// between its check and its push; the message landed after the drain
    /// and its `Async` put was acknowledged but never written. A sender in
    /// its section now holds `close` until it has pushed.
    #[test]
    fn close_waits_for_a_sender_in_its_section() {
        let (q, mut r) = queue(1 << 20, 0);
        let q = Arc::new(q);
        let (entered_tx, entered_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let sender = {
            let q = Arc::clone(&q);
            std::thread::spawn(move || {
                let sending = q.enter().expect("open");
                entered_tx.send(()).expect("test alive");
                go_rx.recv().expect("test alive");
                let u = Unwritten {
                    write: Write::Put(record(10)),
                    payload_crc: 0,
                    lsn: 1,
                };
                sending.append(u, 0)
            })
        };
        entered_rx.recv().expect("sender alive");
        let closer = std::thread::spawn(move || {
            let appends = r.close(&q);
            appends.len()
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        go_tx.send(()).expect("sender alive");
        sender
            .join()
            .expect("no panic")
            .expect("pushed before the drain");
        assert_eq!(
            closer.join().expect("no panic"),
            1,
            "drained, to be written"
        );
    }
}
