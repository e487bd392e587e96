//! After the run: read every frame back through the store's shared decoder
//! and check that each acknowledged put — its key and version — is on disk.
//! With retention on, compaction deletes superseded frames by design, so a
//! put then counts as found when its key is on disk at that version or a
//! newer one.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ringstore::inspect::{SegmentReader, parse_segment_name, parse_shard_dir};
use serde::Serialize;

use crate::acklog::AckLog;
use crate::error::LoadError;
use crate::workload::Acked;

/// What counts as an acknowledged put being on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// A frame with the put's key and version (no compaction ran).
    ExactFrame,
    /// A frame with the put's key and the same or a newer version
    /// (compaction deletes superseded frames).
    SameOrNewerVersion,
}

/// What the log holds, compared with what was acknowledged.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// Segment files read.
    pub segments: u64,
    /// Bytes of the segment files (what the device stores, padding included).
    pub disk_bytes: u64,
    /// Frames found.
    pub frames: u64,
    /// Bytes of those frames (header, key and record).
    pub frame_bytes: u64,
    /// How each acknowledged put was looked for.
    pub check: Check,
    /// Acknowledged puts checked.
    pub acked: u64,
    /// Acknowledged puts not found on disk (see `check`).
    pub lost: u64,
    /// Keys whose newest version on disk is older than the newest
    /// acknowledged one.
    pub stale_keys: u64,
    /// Time the scan took, in milliseconds.
    pub scan_ms: f64,
}

/// Scans the store dir `dir` (closed) and checks `acked` against it.
pub fn verify(
    dir: &Path,
    keys: &[String],
    acked: &AckLog,
    check: Check,
) -> Result<Verification, LoadError> {
    let started = Instant::now();
    let index: HashMap<&str, u32> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i as u32))
        .collect();
    let mut on_disk: HashSet<Acked> = HashSet::new();
    let mut newest_on_disk: HashMap<u32, i64> = HashMap::new();
    let mut v = Verification {
        segments: 0,
        disk_bytes: 0,
        frames: 0,
        frame_bytes: 0,
        check,
        acked: acked.len(),
        lost: 0,
        stale_keys: 0,
        scan_ms: 0.0,
    };
    for path in segment_paths(dir)? {
        let mut reader = SegmentReader::open(&path).map_err(|e| LoadError::Segment {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        v.segments += 1;
        v.disk_bytes += reader.file_len();
        loop {
            match reader.next_frame() {
                Ok(Some((_, frame))) => {
                    v.frames += 1;
                    v.frame_bytes += u64::from(frame.len);
                    if let Some(&k) = index.get(frame.key) {
                        if check == Check::ExactFrame {
                            on_disk.insert((k, frame.version));
                        }
                        let newest = newest_on_disk.entry(k).or_insert(frame.version);
                        *newest = (*newest).max(frame.version);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(LoadError::Segment {
                        path,
                        reason: e.to_string(),
                    });
                }
            }
        }
    }
    let mut newest_acked: HashMap<u32, i64> = HashMap::new();
    acked.for_each(|(k, version)| {
        let found = match check {
            Check::ExactFrame => on_disk.contains(&(k, version)),
            Check::SameOrNewerVersion => newest_on_disk.get(&k).is_some_and(|&d| d >= version),
        };
        if !found {
            v.lost += 1;
        }
        let newest = newest_acked.entry(k).or_insert(version);
        *newest = (*newest).max(version);
    })?;
    v.stale_keys = newest_acked
        .iter()
        .filter(|(k, version)| newest_on_disk.get(k).is_none_or(|d| d < version))
        .count() as u64;
    v.scan_ms = ms(started.elapsed());
    Ok(v)
}

/// Every `shard-*/<seq>.seg` file of `dir`, in shard then seq order.
fn segment_paths(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let mut shards = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| LoadError::io("listing", dir, e))? {
        let entry = entry.map_err(|e| LoadError::io("listing", dir, e))?;
        if let Some(shard) = entry.file_name().to_str().and_then(parse_shard_dir) {
            shards.push((shard, entry.path()));
        }
    }
    shards.sort();
    let mut paths = Vec::new();
    for (_, shard_dir) in shards {
        let mut segs = Vec::new();
        let listing =
            fs::read_dir(&shard_dir).map_err(|e| LoadError::io("listing", &shard_dir, e))?;
        for entry in listing {
            let entry = entry.map_err(|e| LoadError::io("listing", &shard_dir, e))?;
            if let Some(seq) = entry.file_name().to_str().and_then(parse_segment_name) {
                segs.push((seq, entry.path()));
            }
        }
        segs.sort();
        paths.extend(segs.into_iter().map(|(_, p)| p));
    }
    Ok(paths)
}

/// A duration in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
