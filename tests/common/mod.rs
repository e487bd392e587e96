//! Helpers shared by the integration tests (public API only).
#![allow(dead_code, reason = "each test file uses a different subset")]
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failure here is a test failure"
)]

use std::path::{Path, PathBuf};

use ringstore::inspect::{SegmentReader, parse_segment_name, parse_shard_dir};
use ringstore::{Config, Record, Value};

/// A temporary data dir on a real filesystem. `RINGSTORE_TEST_DIR` picks the
/// parent (tmpfs has no O_DIRECT, so the default is the target dir's disk).
pub fn temp_dir() -> tempfile::TempDir {
    let parent = std::env::var_os("RINGSTORE_TEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&parent).unwrap();
    tempfile::Builder::new()
        .prefix("ringstore-test-")
        .tempdir_in(parent)
        .unwrap()
}

/// A config for tests: two shards, unpinned (tests run in parallel).
pub fn config(dir: &Path) -> Config {
    Config::new(dir).shards(2).pin_cpus(false)
}

/// A small record with the given version.
pub fn record(version: i64, note: &str) -> Record {
    Record::new()
        .with("collection_time", version)
        .with("note", note)
        .with("value", version as f64 * 0.5)
}

/// One frame found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskFrame {
    pub shard_dir: usize,
    pub seq: u64,
    pub offset: u64,
    pub len: u32,
    pub key: String,
    pub version: i64,
    pub lsn: u64,
    pub generation: u64,
}

/// Every frame of every segment under `dir`, decoded with the store's decoder.
pub fn read_all_frames(dir: &Path) -> Vec<DiskFrame> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let Some(shard) = entry.file_name().to_str().and_then(parse_shard_dir) else {
            continue;
        };
        let mut segs: Vec<_> = std::fs::read_dir(entry.path())
            .unwrap()
            .filter_map(|e| {
                let e = e.unwrap();
                e.file_name()
                    .to_str()
                    .and_then(parse_segment_name)
                    .map(|s| (s, e.path()))
            })
            .collect();
        segs.sort();
        for (seq, path) in segs {
            let mut reader = SegmentReader::open(&path).unwrap();
            while let Some((offset, f)) = reader.next_frame().unwrap() {
                out.push(DiskFrame {
                    shard_dir: shard,
                    seq,
                    offset,
                    len: f.len,
                    key: f.key.to_owned(),
                    version: f.version,
                    lsn: f.lsn,
                    generation: f.generation,
                });
            }
        }
    }
    out
}

/// The value of an Int field of a record.
pub fn int_field(r: &Record, field: &str) -> Option<i64> {
    match r.get(field) {
        Some(Value::Int(v)) => Some(*v),
        _ => None,
    }
}
