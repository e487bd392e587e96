//! Online backup (`Store::backup_to`): a copy of the data dir, taken while
//! the store runs, that opens as a store holding every put acknowledged
//! before the backup began.
//!
//! How it stays consistent: the store first makes everything acknowledged
//! durable (`Store::flush`) and holds its lifecycle lock, so no compaction
//! deletes or recycles a segment during the copy. Sealed segments (and their
//! hints) never change and are copied whole; a shard's active segment is
//! copied as it is at that moment — every acknowledged frame is already in
//! it, and a batch the shard is still writing ends the copy as a torn tail,
//! which the copy's first `open` truncates like a crash's. Every copied file
//! and folder is synced before the backup returns.

use std::path::Path;

use crate::error::Error;
use crate::layout::{self, hint_path};
use crate::outcome::BackupReport;
use crate::recovery;

/// Copies every segment (and hint) of every shard folder of `dir` into
/// `dest`, which must not exist or be an empty directory.
pub(crate) fn copy_data_dir(dir: &Path, dest: &Path) -> Result<BackupReport, Error> {
    if dest.exists() {
        let mut entries =
            std::fs::read_dir(dest).map_err(|e| Error::io("listing backup dir", dest, e))?;
        if entries.next().is_some() {
            return Err(Error::io(
                "backing up into a non-empty dir",
                dest,
                std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "the backup destination must be new or empty",
                ),
            ));
        }
    }
    std::fs::create_dir_all(dest).map_err(|e| Error::io("creating backup dir", dest, e))?;
    let mut report = BackupReport::default();
    for (_, shard_dir) in layout::shard_dirs(dir)? {
        let Some(name) = shard_dir.file_name() else {
            continue;
        };
        let to_dir = dest.join(name);
        std::fs::create_dir_all(&to_dir)
            .map_err(|e| Error::io("creating backup shard dir", &to_dir, e))?;
        for (_, segment) in layout::segments(&shard_dir)? {
            let hint = hint_path(&segment);
            for from in [segment, hint] {
                let Some(file_name) = from.file_name() else {
                    continue;
                };
                let to = to_dir.join(file_name);
                match std::fs::copy(&from, &to) {
                    Ok(bytes) => {
                        std::fs::File::open(&to)
                            .and_then(|f| f.sync_all())
                            .map_err(|e| Error::io("syncing backup file", &to, e))?;
                        if to.extension().is_some_and(|x| x == "seg") {
                            report.segments += 1;
                        }
                        report.bytes += bytes;
                    }
                    // A segment without a hint (the active one, or one
                    // sealed without): recovery scans it.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io("copying into the backup", &from, e)),
                }
            }
        }
        recovery::sync_dir(&to_dir)?;
    }
    recovery::sync_dir(dest)?;
    if let Some(parent) = dest.parent() {
        recovery::sync_dir(parent)?;
    }
    Ok(report)
}
