//! Sealed segments: the list the shard writers publish as they seal (what
//! `Store::sealed_segments` returns and retention sizes), and the notifier
//! thread that hands each newly sealed segment to `Config::on_sealed` off
//! the shard executors.
//!
//! Why a list rather than a directory listing: a listing cannot tell a
//! sealed segment from the one a shard is creating or rotating into (its
//! header may not even be written yet). Only the writer knows when a
//! segment is sealed, so it says so here.
//!
//! Why a thread: a callback run on a shard executor could not `put` to
//! that shard, `compact` or `close` without deadlocking, and a panic in it
//! would stop the shard. The notifier runs the callback with panics caught;
//! the shard only pushes onto a channel.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::error::Error;
use crate::recovery;
use crate::segment::writer::{SealedCallback, SealedSegment};

/// A sealed segment as known: described by its writer, or found on disk at
/// open (described from its hint when first listed).
#[derive(Debug, Clone)]
enum Known {
    Described(SealedSegment),
    OnDisk(PathBuf),
}

/// The sealed segments of a data dir, by (shard folder, seq).
#[derive(Debug)]
pub(crate) struct SealedLog {
    segments: Mutex<BTreeMap<(usize, u64), Known>>,
    /// The notifier's channel while it runs.
    notify: Mutex<Option<Sender<SealedSegment>>>,
}

impl SealedLog {
    /// The list of `dir` at open: every segment present is sealed (the
    /// shards start new ones).
    pub(crate) fn at_open(dir: &Path) -> Result<SealedLog, Error> {
        let mut segments = BTreeMap::new();
        for (shard, path) in crate::layout::shard_dirs(dir)? {
            for (seq, seg) in crate::layout::segments(&path)? {
                segments.insert((shard, seq), Known::OnDisk(seg));
            }
        }
        Ok(SealedLog {
            segments: Mutex::new(segments),
            notify: Mutex::new(None),
        })
    }

    /// A writer sealed `segment`: list it and tell the notifier, if any.
    pub(crate) fn sealed(&self, segment: SealedSegment) {
        // Listed first: a callback that lists the sealed segments sees it.
        self.segments
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                (segment.shard, segment.seq),
                Known::Described(segment.clone()),
            );
        if let Some(tx) = self
            .notify
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            let _ = tx.send(segment);
        }
    }

    /// Compaction retired these segments of `shard`.
    pub(crate) fn retired(&self, shard: usize, seqs: &[u64]) {
        let mut segments = self.segments.lock().unwrap_or_else(PoisonError::into_inner);
        for seq in seqs {
            segments.remove(&(shard, *seq));
        }
    }

    /// Every sealed segment, by shard folder and seq.
    pub(crate) fn list(&self) -> Result<Vec<SealedSegment>, Error> {
        let known: Vec<((usize, u64), Known)> = self
            .segments
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        let mut out = Vec::with_capacity(known.len());
        for ((shard, seq), k) in known {
            let described = match k {
                Known::Described(s) => s,
                Known::OnDisk(path) => {
                    let s = recovery::describe_sealed(shard, seq, &path)?;
                    // Described once; a retirement meanwhile wins.
                    if let Some(entry) = self
                        .segments
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get_mut(&(shard, seq))
                    {
                        *entry = Known::Described(s.clone());
                    }
                    s
                }
            };
            out.push(described);
        }
        Ok(out)
    }

    /// Total size of the sealed segments, bytes (file sizes, no reads).
    pub(crate) fn bytes(&self) -> u64 {
        self.segments
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|k| match k {
                Known::Described(s) => s.bytes,
                Known::OnDisk(p) => std::fs::metadata(p).map_or(0, |m| m.len()),
            })
            .sum()
    }

    /// Starts the thread that calls `callback` with each segment sealed
    /// from now on.
    pub(crate) fn start_notifier(&self, callback: SealedCallback) -> Result<Notifier, Error> {
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("ringstore-sealed".into())
            .spawn(move || deliver(&rx, &callback))
            .map_err(|e| Error::io("starting the sealed-segment notifier", Path::new(""), e))?;
        *self.notify.lock().unwrap_or_else(PoisonError::into_inner) = Some(tx);
        Ok(Notifier { handle })
    }

    /// No more events: the notifier delivers what it has and ends.
    pub(crate) fn stop_notifying(&self) {
        self.notify
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

/// Calls `callback` with each event until the channel closes. A panic in
/// the callback is logged and the next event is delivered.
fn deliver(rx: &Receiver<SealedSegment>, callback: &SealedCallback) {
    while let Ok(segment) = rx.recv() {
        if std::panic::catch_unwind(AssertUnwindSafe(|| callback(&segment))).is_err() {
            log::error!(
                "on_sealed callback panicked for {}; later segments are still delivered",
                segment.path.display()
            );
        }
    }
}

/// The running notifier thread.
#[derive(Debug)]
pub(crate) struct Notifier {
    handle: JoinHandle<()>,
}

impl Notifier {
    /// Waits until every event sent before `SealedLog::stop_notifying` was
    /// delivered. Called on the notifier thread itself (a callback that
    /// closed the store), it returns at once.
    pub(crate) fn join(self) {
        if self.handle.thread().id() == std::thread::current().id() {
            return;
        }
        let _ = self.handle.join();
    }
}
