//! A second reader of a data dir: `ReadOnlyStore` opens a dir that a writer
//! (another process, or a `Store` of this one) may hold open, without the
//! lock and without changing a byte, and serves a point-in-time view of
//! what was durable when it was opened or last refreshed.
//!
//! It reads the dir through recovery in its read-only form (the same
//! decoder and damage classifier as `Store::open`, torn tails reported,
//! never truncated): a batch the writer has not finished is simply not
//! visible yet. A file the writer's compaction deletes under the scan makes
//! the scan start over (a few times, then the error is returned).

use std::path::{Path, PathBuf};

use crate::config::RecoveryMode;
use crate::error::Error;
use crate::record_ref::RecordRef;
use crate::recovery::{self, RecoveryReport};
use crate::shard::index::{self, Index, LogRank, new_index};
use crate::write::Write;

/// Scans started over because the writer deleted or renamed a file under
/// them, before the error is returned.
const SCAN_ATTEMPTS: usize = 5;

/// A read-only, lock-free view of a data dir (see the module doc).
pub struct ReadOnlyStore {
    dir: PathBuf,
    mode: RecoveryMode,
    index: Index,
    report: RecoveryReport,
}

impl std::fmt::Debug for ReadOnlyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOnlyStore")
            .field("dir", &self.dir)
            .field("keys", &self.index.len())
            .finish()
    }
}

impl ReadOnlyStore {
    /// Opens `dir` read-only in the default recovery mode. Errors: `Io`
    /// when the dir cannot be read, `Corrupt` for damage that
    /// `Store::open` would refuse too.
    pub fn open(dir: impl AsRef<Path>) -> Result<ReadOnlyStore, Error> {
        Self::open_with(dir, RecoveryMode::default())
    }

    /// Opens `dir` read-only, judging damage by `mode` as `Store::open`
    /// would.
    pub fn open_with(dir: impl AsRef<Path>, mode: RecoveryMode) -> Result<ReadOnlyStore, Error> {
        let dir = dir.as_ref().to_path_buf();
        if !dir.is_dir() {
            return Err(Error::io(
                "opening a data dir read-only",
                &dir,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
            ));
        }
        let (index, report) = load(&dir, mode)?;
        Ok(ReadOnlyStore {
            dir,
            mode,
            index,
            report,
        })
    }

    /// Reads the dir again: the view moves forward to what is durable now.
    /// On error the previous view stays.
    pub fn refresh(&mut self) -> Result<(), Error> {
        let (index, report) = load(&self.dir, self.mode)?;
        self.index = index;
        self.report = report;
        Ok(())
    }

    /// The newest record of `key` in this view.
    pub fn get(&self, key: &str) -> Option<RecordRef> {
        index::get(&self.index, key)
    }

    /// Number of keys in this view.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the view holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every record of the view with its key, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (String, RecordRef)> + '_ {
        index::records(&self.index, |_| true)
            .into_iter()
            .map(|r| (r.key().to_owned(), r))
    }

    /// The keys of the view.
    pub fn keys(&self) -> impl Iterator<Item = String> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// What the last read of the dir found (torn tails are the writer's
    /// batches in progress, or a crash's).
    pub fn report(&self) -> &RecoveryReport {
        &self.report
    }

    /// The data dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// One read of the dir into a fresh map, started over when the writer
/// removed a file under it.
fn load(dir: &Path, mode: RecoveryMode) -> Result<(Index, RecoveryReport), Error> {
    let mut attempt = 1;
    let recovered = loop {
        match recovery::recover(dir, mode, recovery::Repair::ReadOnly) {
            Ok(r) => break r,
            Err(Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound && attempt < SCAN_ATTEMPTS =>
            {
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    };
    let index = new_index();
    for latest in recovered.records {
        let rank = LogRank {
            generation: latest.generation,
            lsn: latest.lsn,
        };
        let _ = index::publish(&index, Write::Put(latest.record), || rank);
    }
    Ok((index, recovered.report))
}
