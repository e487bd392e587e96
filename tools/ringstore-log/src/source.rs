//! What a path argument names: a data dir (`shard-<i>/<seq>.seg` below it),
//! one shard folder, or one segment file. Listing only: nothing is opened for
//! writing, ever.

use std::fs;
use std::path::{Path, PathBuf};

use ringstore::inspect::format::SegmentHeader;
use ringstore::inspect::layout::{self, parse_segment_name, parse_shard_dir};

use crate::error::ToolError;

/// One segment file to read, with what its place in the dir says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFile {
    /// The file.
    pub path: PathBuf,
    /// Index of the `shard-<i>` folder holding it, if it is in one.
    pub shard_folder: Option<usize>,
    /// Seq from the file name, if it is a `<seq:020>.seg` name.
    pub seq: Option<u64>,
    /// Whether it is the highest-seq segment of its folder: the one a running
    /// store appends to, so damage at its end with no valid frame after it is
    /// a torn tail (a write in progress or cut by a crash), as recovery rules.
    pub newest_in_folder: bool,
}

/// Whether a path named a whole data dir or less.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A data dir with `shard-<i>` folders.
    DataDir,
    /// One `shard-<i>` folder.
    ShardFolder,
    /// One segment file.
    SegmentFile,
}

/// The segments a path names, in log order: by shard folder, then seq.
#[derive(Debug, Clone)]
pub struct Source {
    /// What the path was.
    pub kind: SourceKind,
    /// The segments.
    pub segments: Vec<SegmentFile>,
}

impl Source {
    /// Bytes of all its segment files (for progress and throughput; a file
    /// that vanished counts 0).
    pub fn total_bytes(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| fs::metadata(&s.path).map_or(0, |m| m.len()))
            .sum()
    }
}

/// Shard of a segment for reports: its folder, else its header.
pub fn shard_of(src: &SegmentFile, header: Option<&SegmentHeader>) -> Option<u64> {
    src.shard_folder
        .map(|i| i as u64)
        .or_else(|| header.map(|h| u64::from(h.shard)))
}

/// Seq of a segment for reports: its file name, else its header.
pub fn seq_of(src: &SegmentFile, header: Option<&SegmentHeader>) -> Option<u64> {
    src.seq.or_else(|| header.map(|h| h.seq))
}

/// The folder holding `path`; `.` for a bare file name.
pub(crate) fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Resolves `path` into its segments.
pub fn discover(path: &Path) -> Result<Source, ToolError> {
    let meta = fs::metadata(path).map_err(|e| ToolError::io("reading", path, e))?;
    if meta.is_file() {
        return Ok(Source {
            kind: SourceKind::SegmentFile,
            segments: vec![single_file(path)?],
        });
    }
    if !meta.is_dir() {
        return Err(ToolError::Usage(format!(
            "{} is neither a data dir nor a segment file",
            path.display()
        )));
    }
    let shards = shard_folders(path)?;
    if shards.is_empty() {
        let own_index = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(parse_shard_dir);
        let segs = segments_of(path, own_index)?;
        if !segs.is_empty() || own_index.is_some() {
            return Ok(Source {
                kind: SourceKind::ShardFolder,
                segments: segs,
            });
        }
        if !path.join("LOCK").exists() {
            // A `ringstore-load --keep` run dir holds the store in `store/`.
            let inner = path.join("store");
            let hint = if inner.join("LOCK").exists() {
                format!("; the data dir is {}", inner.display())
            } else {
                String::new()
            };
            return Err(ToolError::Usage(format!(
                "{} is not a ringstore data dir: no shard-<i> folders, segment files or LOCK file in it{hint}",
                path.display()
            )));
        }
    }
    let mut segments = Vec::new();
    for (index, folder) in shards {
        segments.extend(segments_of(&folder, Some(index))?);
    }
    Ok(Source {
        kind: SourceKind::DataDir,
        segments,
    })
}

/// The `shard-<i>` folders of a data dir, sorted by index (the library's
/// layout listing, as recovery reads them).
fn shard_folders(dir: &Path) -> Result<Vec<(usize, PathBuf)>, ToolError> {
    layout::shard_dirs(dir).map_err(ToolError::Store)
}

/// The segment files of one folder, sorted by seq (names that are not
/// `<seq:020>.seg` are not segments and are ignored, as recovery does).
fn segments_of(folder: &Path, shard_folder: Option<usize>) -> Result<Vec<SegmentFile>, ToolError> {
    let found = layout::segments(folder).map_err(ToolError::Store)?;
    let last = found.len().saturating_sub(1);
    Ok(found
        .into_iter()
        .enumerate()
        .map(|(i, (seq, path))| SegmentFile {
            path,
            shard_folder,
            seq: Some(seq),
            newest_in_folder: i == last,
        })
        .collect())
}

/// One file named on the command line. It counts as its folder's newest when
/// its name is a segment name and no sibling has a higher seq; a file with
/// another name (a copy, a download) is held to the sealed-segment standard.
fn single_file(path: &Path) -> Result<SegmentFile, ToolError> {
    let seq = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(parse_segment_name);
    let parent = parent_dir(path);
    let shard_folder = parent
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(parse_shard_dir);
    let newest_in_folder = match seq {
        Some(seq) => segments_of(parent, shard_folder)?
            .iter()
            .all(|s| s.seq.is_none_or(|other| other <= seq)),
        None => false,
    };
    Ok(SegmentFile {
        path: path.to_path_buf(),
        shard_folder,
        seq,
        newest_in_folder,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_highest_seq_is_newest() {
        let dir = tempfile::tempdir().unwrap();
        let shard = dir.path().join("shard-3");
        fs::create_dir(&shard).unwrap();
        for name in [
            "00000000000000000001.seg",
            "00000000000000000002.seg",
            "notes.txt",
        ] {
            fs::write(shard.join(name), b"").unwrap();
        }
        let src = discover(dir.path()).unwrap();
        assert_eq!(src.kind, SourceKind::DataDir);
        let flags: Vec<(Option<usize>, Option<u64>, bool)> = src
            .segments
            .iter()
            .map(|s| (s.shard_folder, s.seq, s.newest_in_folder))
            .collect();
        assert_eq!(flags, [(Some(3), Some(1), false), (Some(3), Some(2), true)]);

        let one = discover(&shard.join("00000000000000000001.seg")).unwrap();
        assert!(!one.segments[0].newest_in_folder);
        let two = discover(&shard.join("00000000000000000002.seg")).unwrap();
        assert!(two.segments[0].newest_in_folder);
        assert_eq!(discover(&shard).unwrap().kind, SourceKind::ShardFolder);
        let copy = dir.path().join("copy.seg");
        fs::write(&copy, b"").unwrap();
        assert!(
            !discover(&copy).unwrap().segments[0].newest_in_folder,
            "unknown names are held to the sealed standard"
        );
    }
}
