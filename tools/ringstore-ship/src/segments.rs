//! Which segments of a data dir are sealed, and their identities.
//!
//! A segment is sealed when the store will never write it again:
//! every segment that is not the highest seq of its shard folder, and the
//! highest one too when no store holds the data dir's `LOCK` (a store's next
//! `open` always starts a new segment; it never appends to an existing one).
//! Whether a store holds the lock is read from `/proc/locks`, never by taking
//! the lock: taking it, even shared, could make a store's `open` fail.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ringstore::inspect::SegmentReader;
use ringstore_log::source::{SegmentFile, discover};

use crate::error::ShipError;

/// Name of the data dir's lock file (`<dir>/LOCK`, see docs/FORMAT.md).
const LOCK_FILE: &str = "LOCK";

/// What identifies one segment for ever: its place (shard folder, seq) and
/// its header's generation and creation time (a recreated data dir reuses
/// places, never both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentId {
    /// Index of its `shard-<i>` folder.
    pub shard: u64,
    /// Its seq (file name).
    pub seq: u64,
    /// Store generation in its header.
    pub generation: u64,
    /// Creation time in its header.
    pub created_unix_ns: u64,
}

impl SegmentId {
    /// `shard:seq:generation:created_unix_ns`, as in the snapshot summary.
    pub fn to_token(self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.shard, self.seq, self.generation, self.created_unix_ns
        )
    }

    /// Parses [`SegmentId::to_token`].
    pub fn from_token(s: &str) -> Option<SegmentId> {
        let mut it = s.split(':').map(|p| p.parse::<u64>().ok());
        let id = SegmentId {
            shard: it.next()??,
            seq: it.next()??,
            generation: it.next()??,
            created_unix_ns: it.next()??,
        };
        it.next().is_none().then_some(id)
    }
}

/// A sealed segment ready to ship.
#[derive(Debug, Clone)]
pub struct Sealed {
    /// Its identity.
    pub id: SegmentId,
    /// Its file and place, as the log tool's walker wants it.
    pub file: SegmentFile,
    /// Its size in bytes.
    pub bytes: u64,
}

impl Sealed {
    /// The file.
    pub fn path(&self) -> &Path {
        &self.file.path
    }
}

/// The sealed segments of `dir`, by shard folder then seq, and the highest
/// seq of each shard folder (sealed or not). A segment whose header cannot be
/// read is returned too (generation and creation time 0): converting it
/// reports the damage.
pub fn sealed_segments(dir: &Path) -> Result<(Vec<Sealed>, BTreeMap<u64, u64>), ShipError> {
    let source = discover(dir)?;
    if source.kind != ringstore_log::source::SourceKind::DataDir {
        return Err(ShipError::Usage(format!(
            "{} is not a ringstore data dir (it holds no shard-<i> folders); pass the dir given to Config::dir",
            dir.display()
        )));
    }
    let running = store_running(dir)?;
    let mut out = Vec::new();
    let mut newest = BTreeMap::new();
    for file in source.segments {
        if let (Some(shard), Some(seq)) = (file.shard_folder, file.seq) {
            let n = newest.entry(shard as u64).or_insert(seq);
            *n = (*n).max(seq);
        }
        if file.newest_in_folder && running {
            continue;
        }
        let Some(shard) = file.shard_folder else {
            continue;
        };
        let Some(seq) = file.seq else {
            continue;
        };
        let (generation, created_unix_ns) = match SegmentReader::open(&file.path) {
            Ok(r) => (r.header().generation, r.header().created_unix_ns),
            // A segment that vanished since the listing (compaction retired
            // it) is not shipped; one with a bad header is damage, reported
            // when it is converted.
            Err(ringstore::inspect::ReadError::Io(e))
                if e.kind() == std::io::ErrorKind::NotFound =>
            {
                continue;
            }
            Err(_) => (0, 0),
        };
        let bytes = match fs::metadata(&file.path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(ShipError::Io {
                    op: "reading",
                    path: file.path.clone(),
                    source: e,
                });
            }
        };
        out.push(Sealed {
            id: SegmentId {
                shard: shard as u64,
                seq,
                generation,
                created_unix_ns,
            },
            file,
            bytes,
        });
    }
    Ok((out, newest))
}

/// Whether a process holds the data dir's lock (a store is open on it).
/// Unknown counts as running: then only segments that a newer one follows
/// are shipped.
pub fn store_running(dir: &Path) -> Result<bool, ShipError> {
    let lock = dir.join(LOCK_FILE);
    let meta = match fs::metadata(&lock) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(ShipError::Io {
                op: "reading",
                path: lock,
                source: e,
            });
        }
    };
    let Ok(locks) = fs::read_to_string("/proc/locks") else {
        return Ok(true);
    };
    Ok(lock_held(&locks, meta.dev(), meta.ino()))
}

/// Whether `/proc/locks` text lists a lock on the file (`dev`, `ino`).
/// Lines read `1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF`, the device
/// as hexadecimal major:minor.
fn lock_held(locks: &str, dev: u64, ino: u64) -> bool {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let want = format!("{major:02x}:{minor:02x}:{ino}");
    locks
        .lines()
        .filter(|l| !l.contains("->")) // waiters, not holders
        .any(|l| l.split_whitespace().any(|f| f == want))
}

/// The data dir as given, canonical when possible (for messages).
pub fn display_dir(dir: &Path) -> PathBuf {
    fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let id = SegmentId {
            shard: 3,
            seq: 17,
            generation: 2,
            created_unix_ns: 1_700_000_000_000_000_000,
        };
        assert_eq!(SegmentId::from_token(&id.to_token()), Some(id));
        assert_eq!(SegmentId::from_token("1:2:3"), None);
        assert_eq!(SegmentId::from_token("1:2:3:4:5"), None);
        assert_eq!(SegmentId::from_token("a:2:3:4"), None);
    }

    #[test]
    fn proc_locks_lines_are_matched_by_device_and_inode() {
        let dev = (0xfd << 8) | 0x01;
        let text = "1: FLOCK  ADVISORY  WRITE 4242 fd:01:5678 0 EOF\n\
                    2: POSIX  ADVISORY  WRITE 99 08:02:5678 0 EOF\n";
        assert!(lock_held(text, dev, 5678));
        assert!(!lock_held(text, dev, 5679));
        assert!(!lock_held("", dev, 5678));
    }

    #[test]
    fn a_lock_file_held_by_this_process_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        let file = fs::File::create(&path).unwrap();
        assert!(!store_running(dir.path()).unwrap());
        file.lock().unwrap();
        assert!(store_running(dir.path()).unwrap());
        file.unlock().unwrap();
        assert!(!store_running(dir.path()).unwrap());
    }
}
