//! The data-dir layout, in one place: the shard folder names, every file name
//! inside them, the listings, and the next segment number of a folder.
//!
//! ```text
//! <dir>/LOCK                          advisory lock held while open
//! <dir>/shard-<i>/<seq:020>.seg       segments, append-only, seq increasing
//! <dir>/shard-<i>/<seq:020>.hint      newest frame per key of a sealed segment
//! <dir>/shard-<i>/<seq:020>.tmp       a hint being written (temporary)
//! <dir>/shard-<i>/<seq:020>.spare     a retired segment kept for reuse
//! <dir>/shard-<i>/<seq:020>.retired   retired, not yet durable as a spare
//! ```
//!
//! A segment number is never used twice in a folder: [`next_seq`] is one past
//! the highest number any of these names carries. A spare keeps the name of
//! the segment it was, so a new segment written over it always has another
//! number than every frame left in the file (frames are salted with their
//! segment's number, see `segment::format::FrameSalt`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Name of the lock file inside the data dir.
pub const LOCK_FILE: &str = "LOCK";

/// Name of the file `open` creates for a moment to check that the data dir's
/// filesystem accepts `O_DIRECT` (after the lock is taken).
pub const ODIRECT_PROBE_FILE: &str = ".ringstore-odirect-probe";

/// Prefix of a shard folder name (`shard-<i>`).
const SHARD_PREFIX: &str = "shard-";

/// Digits of the seq in every file name of a shard folder.
const SEQ_DIGITS: usize = 20;

/// What a file of a shard folder is, by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileKind {
    /// `<seq>.seg`: a segment (sealed or active).
    Segment,
    /// `<seq>.hint`: the hint of sealed segment `seq`.
    Hint,
    /// `<seq>.tmp`: a hint being written; left only by a crash.
    HintTemp,
    /// `<seq>.spare`: a retired segment file kept for a new segment to
    /// overwrite. Never read.
    Spare,
    /// `<seq>.retired`: a retired segment file on its way to the spares (it
    /// becomes one only once its retirement is durable). Never read.
    Retired,
}

impl FileKind {
    /// Every kind.
    pub const ALL: [FileKind; 5] = [
        FileKind::Segment,
        FileKind::Hint,
        FileKind::HintTemp,
        FileKind::Spare,
        FileKind::Retired,
    ];

    /// The file name extension of this kind (without the dot).
    pub const fn extension(self) -> &'static str {
        match self {
            FileKind::Segment => "seg",
            FileKind::Hint => "hint",
            FileKind::HintTemp => "tmp",
            FileKind::Spare => "spare",
            FileKind::Retired => "retired",
        }
    }

    fn from_extension(ext: &str) -> Option<FileKind> {
        FileKind::ALL.into_iter().find(|k| k.extension() == ext)
    }
}

/// One recognised file of a shard folder.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ShardFile {
    /// The seq its name carries.
    pub seq: u64,
    /// What it is.
    pub kind: FileKind,
    /// Its path.
    pub path: PathBuf,
}

/// Name of shard folder `i`.
pub fn shard_dir_name(i: usize) -> String {
    format!("{SHARD_PREFIX}{i}")
}

/// Path of shard folder `i` of data dir `dir`.
pub fn shard_dir(dir: &Path, i: usize) -> PathBuf {
    dir.join(shard_dir_name(i))
}

/// A `shard-<i>` folder name → `i`.
pub fn parse_shard_dir(name: &str) -> Option<usize> {
    let digits = name.strip_prefix(SHARD_PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// File name of `seq` as `kind`: 20 zero-padded digits, so names sort by seq.
pub fn file_name(seq: u64, kind: FileKind) -> String {
    format!("{seq:020}.{}", kind.extension())
}

/// A shard folder file name → its seq and kind (`None` for any other name).
pub fn parse_file_name(name: &str) -> Option<(u64, FileKind)> {
    let (digits, ext) = name.split_once('.')?;
    let kind = FileKind::from_extension(ext)?;
    if digits.len() != SEQ_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, kind))
}

/// File name of segment `seq`.
pub fn segment_file_name(seq: u64) -> String {
    file_name(seq, FileKind::Segment)
}

/// A `<seq:020>.seg` file name → `seq`.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    match parse_file_name(name)? {
        (seq, FileKind::Segment) => Some(seq),
        _ => None,
    }
}

/// File name under which retired segment `seq` waits to become a spare.
pub fn retired_file_name(seq: u64) -> String {
    file_name(seq, FileKind::Retired)
}

/// The same file name as another kind (`<seq>.seg` → `<seq>.hint`, …), in
/// the same folder.
pub fn as_kind(path: &Path, kind: FileKind) -> PathBuf {
    path.with_extension(kind.extension())
}

/// The hint path of a segment path.
pub fn hint_path(segment: &Path) -> PathBuf {
    as_kind(segment, FileKind::Hint)
}

/// The temporary a hint is written to before its rename to `hint`.
pub fn hint_temp_path(hint: &Path) -> PathBuf {
    as_kind(hint, FileKind::HintTemp)
}

/// Every recognised file of a shard folder, sorted by (seq, kind). Names
/// this module does not define are ignored.
pub fn files(shard_dir: &Path) -> io::Result<Vec<ShardFile>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(shard_dir)? {
        let entry = entry?;
        if let Some((seq, kind)) = entry.file_name().to_str().and_then(parse_file_name) {
            out.push(ShardFile {
                seq,
                kind,
                path: entry.path(),
            });
        }
    }
    out.sort();
    Ok(out)
}

/// The files of one kind in a shard folder, by seq.
fn files_of(shard_dir: &Path, kind: FileKind) -> io::Result<Vec<(u64, PathBuf)>> {
    Ok(files(shard_dir)?
        .into_iter()
        .filter(|f| f.kind == kind)
        .map(|f| (f.seq, f.path))
        .collect())
}

/// The shard folders of `dir`, sorted by index.
pub fn shard_dirs(dir: &Path) -> Result<Vec<(usize, PathBuf)>, Error> {
    let mut out = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| Error::io("listing data dir", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("listing data dir", dir, e))?;
        if let Some(i) = entry.file_name().to_str().and_then(parse_shard_dir) {
            if entry.path().is_dir() {
                out.push((i, entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The segments of a shard folder, sorted by seq.
pub fn segments(shard_dir: &Path) -> Result<Vec<(u64, PathBuf)>, Error> {
    files_of(shard_dir, FileKind::Segment).map_err(|e| Error::io("listing shard dir", shard_dir, e))
}

/// The spare files of a shard folder, oldest first.
pub fn spares(shard_dir: &Path) -> io::Result<Vec<PathBuf>> {
    Ok(files_of(shard_dir, FileKind::Spare)?
        .into_iter()
        .map(|(_, p)| p)
        .collect())
}

/// The retired files of a shard folder not yet spares (left by a
/// compaction cut short), oldest first.
pub fn retired(shard_dir: &Path) -> io::Result<Vec<PathBuf>> {
    Ok(files_of(shard_dir, FileKind::Retired)?
        .into_iter()
        .map(|(_, p)| p)
        .collect())
}

/// The seq the next segment of a shard folder takes: one past the highest
/// seq of every name in it (segments, hints, temporaries, spares, retired
/// files), 1 for an empty or missing folder. A seq is never reused while any
/// file carries it, so no frame left in a reused file can be taken for a
/// frame of the segment written over it.
pub fn next_seq(shard_dir: &Path) -> Result<u64, Error> {
    let files = match files(shard_dir) {
        Ok(files) => files,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(1),
        Err(e) => return Err(Error::io("listing shard dir", shard_dir, e)),
    };
    let highest = files.iter().map(|f| f.seq).max().unwrap_or(0);
    highest.checked_add(1).ok_or_else(|| Error::Corrupt {
        path: shard_dir.to_path_buf(),
        offset: 0,
        reason: format!(
            "a file name carries seq {highest}, the largest possible: no next segment number \
             (move that file out of the folder)"
        ),
    })
}

/// The files a crash can leave that nothing will ever read or finish: hint
/// temporaries, and hints whose segment is gone (a compaction removed the
/// segment and was cut before the hint). `open` removes them.
pub fn orphans(shard_dir: &Path) -> io::Result<Vec<PathBuf>> {
    let files = files(shard_dir)?;
    let has_segment = |seq: u64| {
        files
            .iter()
            .any(|f| f.seq == seq && f.kind == FileKind::Segment)
    };
    Ok(files
        .iter()
        .filter(|f| match f.kind {
            FileKind::HintTemp => true,
            FileKind::Hint => !has_segment(f.seq),
            _ => false,
        })
        .map(|f| f.path.clone())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in FileKind::ALL {
            let name = file_name(42, kind);
            assert_eq!(name.len(), SEQ_DIGITS + 1 + kind.extension().len());
            assert_eq!(parse_file_name(&name), Some((42, kind)));
        }
        assert_eq!(parse_segment_name("00000000000000000007.seg"), Some(7));
        assert_eq!(parse_segment_name("00000000000000000007.spare"), None);
        assert_eq!(parse_file_name("7.seg"), None);
        assert_eq!(parse_file_name("0000000000000000000x.seg"), None);
        assert_eq!(parse_file_name("00000000000000000007.seg.bak"), None);
        assert_eq!(parse_shard_dir("shard-3"), Some(3));
        assert_eq!(parse_shard_dir("shard-"), None);
        assert_eq!(parse_shard_dir("shard-+3"), None);
        assert_eq!(shard_dir_name(3), "shard-3");
    }

    #[test]
    fn next_seq_counts_every_name() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(next_seq(&dir.path().join("missing")).unwrap(), 1);
        assert_eq!(next_seq(dir.path()).unwrap(), 1);
        for (seq, kind) in [
            (3, FileKind::Segment),
            (9, FileKind::Spare),
            (5, FileKind::Retired),
        ] {
            fs::write(dir.path().join(file_name(seq, kind)), b"").unwrap();
        }
        assert_eq!(next_seq(dir.path()).unwrap(), 10);
        fs::write(dir.path().join(file_name(11, FileKind::HintTemp)), b"").unwrap();
        assert_eq!(next_seq(dir.path()).unwrap(), 12);
        fs::write(dir.path().join(file_name(12, FileKind::Hint)), b"").unwrap();
        assert_eq!(next_seq(dir.path()).unwrap(), 13);
        fs::write(dir.path().join("99999999999999999999.other"), b"").unwrap();
        assert_eq!(next_seq(dir.path()).unwrap(), 13);
        let mut orphans = orphans(dir.path()).unwrap();
        orphans.sort();
        assert_eq!(
            orphans,
            vec![
                dir.path().join(file_name(11, FileKind::HintTemp)),
                dir.path().join(file_name(12, FileKind::Hint)),
            ]
        );
    }
}
