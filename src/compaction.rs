//! Compaction's file work: once every shard's checkpoint is durable
//! (`Store::compact`), the segments older than each checkpoint hold only
//! superseded frames. They are deleted, or kept as spares for later
//! segments to overwrite (`Config::spare_segments`), and the folders of a
//! run with more shards are removed. Every rename and removal is followed
//! by a sync of its folder before the next step relies on it.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::error::Error;
use crate::layout::{self, FileKind, retired, retired_file_name, spares};
use crate::outcome::CompactReport;
use crate::recovery;
use crate::sealed::SealedLog;

/// Retires every segment older than its shard's checkpoint (`keep_from`:
/// shard → first seq to keep; a folder without an entry belongs to a run
/// with more shards and goes whole). `records`: what the checkpoints
/// copied, for the report.
pub(crate) fn retire_superseded(
    config: &Config,
    sealed: &SealedLog,
    keep_from: &[(usize, u64)],
    records: usize,
) -> Result<CompactReport, Error> {
    let dir = &config.dir;
    let changes = DirChanges(config);
    let mut report = CompactReport {
        records,
        ..CompactReport::default()
    };
    // With `retain_until_shipped`, a segment the shipper's table does not
    // hold yet is kept, superseded or not.
    let shipped = match config.retain_until_shipped {
        true => Some(crate::shipped::shipped_through(dir)?),
        false => None,
    };
    for (shard, path) in layout::shard_dirs(dir)? {
        let first_kept = keep_from.iter().find(|(i, _)| *i == shard).map(|(_, s)| *s);
        let may_retire = |seq: u64| match &shipped {
            None => true,
            Some(through) => through.get(&shard).is_some_and(|s| seq <= *s),
        };
        // Spares are taken only by this folder's shard, and only when
        // spares are kept: a retired folder's, or any when none are kept,
        // go now. Otherwise this only adds spares, never removes one a
        // shard may be opening.
        let spares_kept = match first_kept {
            Some(_) => config.spares_kept(),
            None => 0,
        };
        let existing = spares(&path).map_err(|e| Error::io("listing spares", &path, e))?;
        let left_over = retired(&path).map_err(|e| Error::io("listing spares", &path, e))?;
        // Retired files become spares only below, after the folder
        // sync that makes their retirement durable.
        let mut to_spares = Vec::new();
        if spares_kept == 0 {
            for spare in existing.iter().chain(&left_over) {
                report.bytes_removed += std::fs::metadata(spare).map_or(0, |m| m.len());
                changes.remove_if_exists(spare)?;
            }
        } else {
            to_spares = left_over;
        }
        let mut spare_count = existing.len() + to_spares.len();
        // The largest retired files make the best spares (a checkpoint's
        // is small: a segment reusing it soon extends the file again).
        let superseded: Vec<(u64, PathBuf)> = layout::segments(&path)?
            .into_iter()
            .filter(|(seq, _)| first_kept.is_none_or(|keep| *seq < keep))
            .collect();
        let kept_unshipped = superseded
            .iter()
            .filter(|(seq, _)| !may_retire(*seq))
            .count();
        report.segments_kept_unshipped += kept_unshipped;
        let mut retired: Vec<(u64, u64, PathBuf)> = superseded
            .into_iter()
            .filter(|(seq, _)| may_retire(*seq))
            .map(|(seq, seg)| (std::fs::metadata(&seg).map_or(0, |m| m.len()), seq, seg))
            .collect();
        let retired_seqs: Vec<u64> = retired.iter().map(|(_, seq, _)| *seq).collect();
        retired.sort_by_key(|(len, seq, _)| (std::cmp::Reverse(*len), *seq));
        for (len, seq, seg) in retired {
            changes.remove_if_exists(&layout::hint_path(&seg))?;
            if spare_count < spares_kept {
                let retiring = path.join(retired_file_name(seq));
                changes
                    .rename(&seg, &retiring)
                    .map_err(|e| Error::io("keeping a superseded segment as a spare", &seg, e))?;
                to_spares.push(retiring);
                spare_count += 1;
                report.segments_recycled += 1;
                continue;
            }
            report.bytes_removed += len;
            changes.remove_if_exists(&seg)?;
            report.segments_removed += 1;
        }
        changes.sync_dir(&path)?;
        sealed.retired(shard, &retired_seqs);
        // Only now may the shard take them: had it written a new header
        // into one still named `.seg` and durably so, a crash could
        // leave that name on it, and recovery would read a segment
        // whose frames all fail under the new header's seq.
        for retiring in to_spares {
            let spare = layout::as_kind(&retiring, FileKind::Spare);
            changes
                .rename(&retiring, &spare)
                .map_err(|e| Error::io("keeping a superseded segment as a spare", &retiring, e))?;
        }
        if first_kept.is_none() && kept_unshipped == 0 {
            std::fs::remove_dir(&path)
                .map_err(|e| Error::io("removing retired shard dir", &path, e))?;
            report.folders_removed += 1;
        }
    }
    changes.sync_dir(dir)?;
    Ok(report)
}

/// The changes `compact` makes to the data dir itself (outside the shards'
/// I/O seam). In `failpoints` builds a recording fault plan logs them like
/// the shards' own, so crash tests see every rename and removal.
struct DirChanges<'a>(
    #[cfg_attr(
        not(feature = "failpoints"),
        expect(dead_code, reason = "only failpoints builds have a fault plan")
    )]
    &'a Config,
);

impl DirChanges<'_> {
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.logged(
            || std::fs::rename(from, to),
            |ok| DirChange::Rename {
                from: from.to_path_buf(),
                to: to.to_path_buf(),
                ok,
            },
        )
    }

    fn remove_if_exists(&self, path: &Path) -> Result<(), Error> {
        let removed = self.logged(
            || match std::fs::remove_file(path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(e),
            },
            |ok| DirChange::Remove {
                path: path.to_path_buf(),
                ok,
            },
        );
        removed
            .map(|_| ())
            .map_err(|e| Error::io("removing superseded segment", path, e))
    }

    fn sync_dir(&self, dir: &Path) -> Result<(), Error> {
        self.logged(
            || recovery::sync_dir(dir),
            |ok| DirChange::SyncDir {
                dir: dir.to_path_buf(),
                ok,
            },
        )
    }

    #[cfg(feature = "failpoints")]
    fn logged<T, E>(
        &self,
        op: impl FnOnce() -> Result<T, E>,
        change: impl FnOnce(bool) -> DirChange,
    ) -> Result<T, E> {
        use crate::io::faulty::IoEvent;
        match &self.0.fault_plan {
            Some(plan) => plan.logged(op, |ok| match change(ok) {
                DirChange::Rename { from, to, ok } => IoEvent::Rename { from, to, ok },
                DirChange::Remove { path, ok } => IoEvent::Remove { path, ok },
                DirChange::SyncDir { dir, ok } => IoEvent::SyncDir { dir, ok },
            }),
            None => op(),
        }
    }

    #[cfg(not(feature = "failpoints"))]
    fn logged<T, E>(
        &self,
        op: impl FnOnce() -> Result<T, E>,
        _change: impl FnOnce(bool) -> DirChange,
    ) -> Result<T, E> {
        op()
    }
}

/// One change made by [`DirChanges`], for the fault plan's log.
#[cfg_attr(
    not(feature = "failpoints"),
    expect(dead_code, reason = "read only by failpoints builds")
)]
enum DirChange {
    Rename {
        from: PathBuf,
        to: PathBuf,
        ok: bool,
    },
    Remove {
        path: PathBuf,
        ok: bool,
    },
    SyncDir {
        dir: PathBuf,
        ok: bool,
    },
}
