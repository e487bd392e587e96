//! The shard's executor: one loop per shard that takes puts off the queue,
//! writes them to the active segment and reacts to completions. Read in
//! this order:
//!
//! * this file — the event loop: wait for the next event (a message, a
//!   completed write, the end of a background flush, a timer), dispatch it
//!   to the shard's durability mode, and shut down in order;
//! * [`pipeline`] — what both modes share: the segment writer, the writes
//!   in flight ([`inflight`]: one queue of write + what its completion
//!   does, completing in order), staging a batch into its DMA buffer;
//! * [`sync_path`] — `Sync`: decide, batch, write, sync, then publish and
//!   acknowledge (group commit, pipelined up to `pipeline_depth`);
//! * [`async_path`] — `Async`: write what callers already acknowledged, in
//!   LSN order ([`reorder`]), with a background flush;
//! * [`checkpoint`] — `Store::compact`'s per-shard part in each mode.

mod async_path;
mod checkpoint;
mod inflight;
mod pipeline;
mod reorder;
mod sync_path;

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use crate::config::Durability;
use crate::error::Error;
use crate::io::LogFs;
use crate::segment::format::FrameFields;
use crate::segment::writer::{PendingFrame, SegmentWriter, WriterSpec};
use crate::shard::ShardShared;
use crate::shard::index;
use crate::shard::submission::{Msg, QueueReceiver};
use crate::write::Write;

use async_path::AsyncPath;
use inflight::Completion;
use pipeline::Pipeline;
use sync_path::SyncPath;

/// Everything a shard executor needs, built on the opening thread.
pub(crate) struct WorkerSetup {
    pub shared: Arc<ShardShared>,
    pub receiver: QueueReceiver,
    pub spec: WriterSpec,
    pub first_seq: u64,
    pub durability: Durability,
    pub flush_interval: Duration,
    pub max_batch_bytes: usize,
    pub pipeline_depth: usize,
}

/// What the shard loop reacts to.
enum Event {
    Message(Option<Msg>),
    Completed(Completion),
    Flushed(Result<(), Error>),
    FlushDue,
    /// The periodic queue re-check ran with nothing to do.
    Recheck,
}

// A shard with work under way re-polls its queue on its own every
// `LogFs::queue_recheck` (2 ms on glommio). A put's wake-up comes from the
// caller's thread; under load, glommio 0.9 occasionally did not run the
// executor for such a wake (puts stuck for 0.2 s to minutes while both
// executors slept with puts queued, ended only by a later wake). With the
// re-check a lost wake costs at most that long; `ShardStats::recheck_pickups`
// counts the puts it found. An idle shard arms no timer (it costs no CPU):
// a wake lost then leaves a put queued, which the watchdog notices.

/// The shard's state machine: one type per durability mode.
enum Mode {
    Sync(SyncPath),
    Async(AsyncPath),
}

struct Worker<Fs: LogFs> {
    pipeline: Pipeline<Fs>,
    receiver: QueueReceiver,
    mode: Mode,
}

/// Runs the shard until shutdown. `ready` learns whether the first segment
/// could be created; after that, failures are reported to the puts.
pub(crate) async fn run<Fs: LogFs>(
    fs: Fs,
    setup: WorkerSetup,
    ready: std::sync::mpsc::SyncSender<Result<(), Error>>,
) {
    let _stop_on_panic = StopOnPanic(Arc::clone(&setup.shared));
    let WorkerSetup {
        shared,
        mut receiver,
        spec,
        first_seq,
        durability,
        flush_interval,
        max_batch_bytes,
        pipeline_depth,
    } = setup;
    // Busy from now on, for the watchdog: creating the first segment waits
    // for I/O outside the loop, and a completion slept through here would
    // hold `Store::open`.
    shared.pulse.turn();
    // The shard is idle from the moment it reports ready (not from when its
    // thread gets to run again after that: `idle` would come out short).
    let (writer, ready_at) = match SegmentWriter::create(fs.clone(), spec, first_seq, true).await {
        Ok(w) => {
            let ready_at = Instant::now();
            let _ = ready.send(Ok(()));
            (w, ready_at)
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            // The store did not open: no put was acknowledged.
            drop(receiver.close(&shared.queue));
            return;
        }
    };
    drop(ready);
    // Frames carry the writer's generation, ranks in the map the shard's:
    // one value, set at open.
    debug_assert_eq!(writer.generation(), shared.rank(0).generation);
    let mode = match durability {
        Durability::Sync => Mode::Sync(SyncPath::default()),
        Durability::Async => Mode::Async(AsyncPath::new(flush_interval)),
    };
    let mut worker = Worker {
        pipeline: Pipeline::new(
            fs,
            shared,
            writer,
            pipeline_depth,
            max_batch_bytes,
            ready_at,
        ),
        receiver,
        mode,
    };
    worker.serve().await;
}

/// Stops the shard if its executor unwinds (a bug in ringstore): new puts
/// then fail with `ShardFailed` instead of queueing for a shard that is
/// gone; puts already waiting fail when the queue's receiver is dropped.
struct StopOnPanic(Arc<ShardShared>);

impl Drop for StopOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0
                .mark_failed("the shard's executor panicked (a bug in ringstore)".to_owned());
            self.0.queue.shutdown();
        }
    }
}

impl<Fs: LogFs> Worker<Fs> {
    async fn serve(&mut self) {
        loop {
            index::reclaim();
            if let Mode::Sync(s) = &mut self.mode {
                s.advance_checkpoint(&mut self.pipeline).await;
            }
            let (first, start_now) = match self.next_event().await {
                Event::Message(Some(msg)) => (msg, false),
                Event::Message(None) => break,
                Event::Completed(done) => {
                    let (then, result) = self.pipeline.completed(done);
                    let p = &mut self.pipeline;
                    match &mut self.mode {
                        Mode::Sync(s) => {
                            s.completed(p, then, result);
                            s.after_completion(p).await;
                            // The freed slot takes the puts that queued
                            // for it, however few (they did not wake the
                            // shard: they waited for this completion).
                            if !s.has_room(p) {
                                continue;
                            }
                            match self.receiver.try_take() {
                                Some(msg) => (msg, true),
                                None => continue,
                            }
                        }
                        Mode::Async(a) => {
                            a.completed(p, then, result);
                            a.write_unwritten(p, &self.receiver).await;
                            continue;
                        }
                    }
                }
                Event::Flushed(result) => {
                    if let Mode::Async(a) = &mut self.mode {
                        a.flushed(&self.pipeline, result);
                    }
                    continue;
                }
                Event::FlushDue => {
                    if let Mode::Async(a) = &mut self.mode {
                        a.start_flush(&self.pipeline);
                    }
                    continue;
                }
                Event::Recheck => continue,
            };
            match self.take_messages(first, start_now).await {
                Some(Msg::Shutdown) => break,
                Some(Msg::Checkpoint(reply)) => {
                    let p = &mut self.pipeline;
                    match &mut self.mode {
                        Mode::Sync(s) => s.begin_checkpoint(p, reply).await,
                        Mode::Async(a) => a.checkpoint(p, &self.receiver, reply).await,
                    }
                }
                Some(Msg::Flush(reply)) => match &mut self.mode {
                    Mode::Sync(s) => {
                        s.flush(&mut self.pipeline).await;
                        let _ = reply.send(self.pipeline.failed().map_or(Ok(()), Err));
                    }
                    Mode::Async(a) => a.flush_requested(&self.pipeline, reply),
                },
                Some(Msg::Put(_) | Msg::Append(_) | Msg::Skip(_)) | None => {}
            }
        }
        // Refuse further puts; what the queue still holds is failed
        // `Closed` (Sync) or, already acknowledged, written (Async).
        let left = self.receiver.close(&self.pipeline.shared.queue);
        let p = &mut self.pipeline;
        match &mut self.mode {
            Mode::Sync(s) => {
                debug_assert!(left.is_empty(), "Async records in a Sync queue");
                s.shut_down(p).await;
            }
            Mode::Async(a) => a.shut_down(p, &self.receiver, left).await,
        }
        p.close().await;
    }

    /// Takes `first` and what else is queued, until the batch is full, the
    /// queue is empty, or a control message arrives (returned, to be handled
    /// after the batch, in order), and hands the puts to the mode
    /// (`start_now`: a Sync batch starts even with another in flight).
    async fn take_messages(&mut self, first: Msg, start_now: bool) -> Option<Msg> {
        let p = &mut self.pipeline;
        let mut control = None;
        let mut bytes = 0usize;
        let mut taken_cost = 0usize;
        let mut batch = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match (msg, &mut self.mode) {
                (Msg::Put(s), Mode::Sync(_)) => {
                    bytes += s.write.payload().len();
                    taken_cost += p.shared.queue.cost(&s.write);
                    batch.push(s);
                }
                (Msg::Append(u), Mode::Async(a)) => {
                    bytes += u.write.payload().len();
                    a.arrive(p, u);
                }
                (Msg::Skip(lsn), Mode::Async(a)) => a.skip(p, lsn),
                (Msg::Put(s), Mode::Async(_)) => {
                    debug_assert!(false, "a Sync put in an Async shard");
                    s.reply(Err(Error::Closed));
                }
                (Msg::Append(_) | Msg::Skip(_), Mode::Sync(_)) => {
                    debug_assert!(false, "an Async record in a Sync shard");
                }
                (other, _) => {
                    control = Some(other);
                    break;
                }
            }
            if bytes < p.max_batch_bytes {
                next = self.receiver.try_take();
            }
        }
        // Sync puts give their budget back once taken; Async records keep
        // theirs until handed to a write.
        self.receiver.release(taken_cost);
        match &mut self.mode {
            Mode::Sync(s) => {
                s.take(p, batch, bytes, start_now || control.is_some())
                    .await
            }
            Mode::Async(a) => a.write_unwritten(p, &self.receiver).await,
        }
        control
    }

    /// What happens next: a new message (taken only while the pipeline has
    /// room, and puts only once they are worth a wake-up: see
    /// `SyncPath::take_at_bytes`), the completion of the oldest write in
    /// flight, the end of a background flush, or (Async mode) the flush
    /// interval running out.
    async fn next_event(&mut self) -> Event {
        let Worker {
            pipeline: p,
            receiver,
            mode,
        } = self;
        // The queued frame bytes worth taking puts for; `None`: none now.
        let (take_at, due, gathered, mut flushing) = match mode {
            Mode::Sync(s) => (
                s.take_at_bytes(p),
                None,
                !s.gathering.is_empty() || s.checkpoint.is_some(),
                None,
            ),
            // Async: what waits is bounded by the queue's byte budget.
            Mode::Async(a) => (
                a.take_at_bytes(p),
                a.flush_due(),
                !a.unwritten.is_empty() || a.flushing.is_some(),
                Some(&mut a.flushing),
            ),
        };
        if due.is_some_and(|d| d.is_zero()) {
            return Event::FlushDue;
        }
        let fs = p.fs.clone();
        let mut timer = due.map(|d| Box::pin(fs.sleep(d)));
        // The re-check is armed only while the shard has work under way.
        let busy = !p.inflight.is_empty() || gathered || p.shared.queue.has_queued();
        let mut recheck = fs
            .queue_recheck()
            .filter(|_| busy)
            .map(|d| Box::pin(fs.sleep(d)));
        let flush_running = flushing.as_ref().is_some_and(|f| f.is_some());
        if take_at.is_none() {
            receiver.mute();
        }
        let room = take_at.is_some();
        p.shared
            .pulse
            .waiting(!p.inflight.is_empty() || flush_running, due);
        let event = std::future::poll_fn(|cx| {
            // Polled first, so what the re-check finds is counted. It runs
            // while writes are in flight too, against a completion whose
            // wake-up the runtime lost.
            let rechecked = (room || !p.inflight.is_empty())
                && recheck
                    .as_mut()
                    .is_some_and(|r| r.as_mut().poll(cx).is_ready());
            if !p.inflight.is_empty() {
                if let Poll::Ready(Some(done)) = p.inflight.poll_oldest(cx) {
                    if rechecked {
                        p.shared.stats.recheck_completion();
                    }
                    return Poll::Ready(Event::Completed(done));
                }
            }
            if let Some(slot) = flushing.as_mut() {
                if let Some(flush) = slot.as_mut() {
                    if let Poll::Ready(result) = flush.as_mut().poll(cx) {
                        **slot = None;
                        return Poll::Ready(Event::Flushed(result));
                    }
                }
            }
            if let Some(bytes) = take_at {
                if let Poll::Ready(msg) = receiver.poll_take(cx, bytes) {
                    if rechecked {
                        p.shared.stats.recheck_pickup();
                    }
                    return Poll::Ready(Event::Message(msg));
                }
            }
            if let Some(t) = timer.as_mut() {
                if t.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Event::FlushDue);
                }
            }
            if rechecked {
                return Poll::Ready(Event::Recheck);
            }
            Poll::Pending
        })
        .await;
        // Busy from here until the next wait says what it waits for.
        p.shared.pulse.turn();
        event
    }
}

/// The frames of `writes` (with their payload CRCs and LSNs).
fn frames_of<'a>(
    writes: impl Iterator<Item = (&'a Write, u32, u64)>,
    generation: u64,
) -> Vec<PendingFrame<'a>> {
    writes
        .map(|(w, payload_crc, lsn)| PendingFrame {
            fields: FrameFields {
                kind: w.kind(),
                version: w.version(),
                lsn,
                generation,
                key: w.key(),
                payload: w.payload(),
                payload_crc,
            },
        })
        .collect()
}
