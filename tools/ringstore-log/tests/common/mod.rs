//! Helpers for the `ringstore-log` process tests: data dirs written by a real
//! store, and running the binary.
#![allow(dead_code, reason = "each test file uses a different subset")]
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failure here is a test failure"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ringstore::inspect::format::SegmentHeader;
use ringstore::inspect::{SegmentReader, parse_segment_name, parse_shard_dir};
use ringstore::{Config, Record, Store, Value};

/// A temporary dir on a real filesystem (tmpfs has no O_DIRECT).
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ringstore-log-test-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

/// Two shards, unpinned, small segments so every shard has several.
pub fn config(dir: &Path) -> Config {
    Config::new(dir)
        .shards(2)
        .pin_cpus(false)
        .max_segment_records(8)
}

/// A record exercising every kind of value.
pub fn record(key_no: usize, version: i64) -> Record {
    Record::new()
        .with("collection_time", version)
        .with("x", version as f64 * 0.5)
        .with("name", format!("sensor-{key_no} \"v{version}\"\n"))
        .with("ok", version % 2 == 0)
        .with("raw", vec![key_no as u8, 0xff])
        .with("tags", vec![Value::Int(version), Value::Str("t".into())])
}

/// What `populate` wrote, in put order.
#[derive(Debug, Clone)]
pub struct Written {
    pub puts: Vec<(String, i64)>,
}

/// Writes `keys` keys, `versions` versions each (plus one stale put per key),
/// with a store opened twice so there are two generations.
pub fn populate(dir: &Path, keys: usize, versions: i64) -> Written {
    let mut puts = Vec::new();
    for round in 0..2 {
        let store = Store::open(config(dir)).unwrap();
        for v in 0..versions {
            for k in 0..keys {
                let version = 100 * round + v * 3 + 1;
                let key = format!("key-{k}");
                store.put_blocking(&key, &record(k, version)).unwrap();
                puts.push((key, version));
            }
        }
        // A stale put: appended to the log, never the newest.
        store.put_blocking("key-0", &record(0, -5)).unwrap();
        puts.push(("key-0".to_owned(), -5));
        store.close().unwrap();
    }
    Written { puts }
}

/// Runs the tool.
pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringstore-log"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs the tool on a path.
/// Runs `ringstore-log export DIR --format FORMAT --out OUT EXTRA...`.
pub fn export(dir: &Path, format: &str, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "export",
        dir.to_str().unwrap(),
        "--format",
        format,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

pub fn run_on(sub: &str, path: &Path, extra: &[&str]) -> Output {
    let mut args = vec![sub, path.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&args)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// One frame on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskFrame {
    pub path: PathBuf,
    pub shard: usize,
    pub seq: u64,
    pub offset: u64,
    pub len: u32,
    pub key: String,
    pub version: i64,
    /// `put` or `delete`.
    pub op: &'static str,
    /// A delete's deletion time.
    pub deleted_at_unix_ns: Option<u64>,
}

/// Segments of every shard folder, sorted (shard, seq).
pub fn segments(dir: &Path) -> Vec<(usize, u64, PathBuf)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let Some(shard) = entry.file_name().to_str().and_then(parse_shard_dir) else {
            continue;
        };
        for e in std::fs::read_dir(entry.path()).unwrap() {
            let e = e.unwrap();
            if let Some(seq) = e.file_name().to_str().and_then(parse_segment_name) {
                out.push((shard, seq, e.path()));
            }
        }
    }
    out.sort();
    out
}

/// Every frame of the dir, through the library's decoder.
pub fn frames(dir: &Path) -> Vec<DiskFrame> {
    let mut out = Vec::new();
    for (shard, seq, path) in segments(dir) {
        let mut reader = SegmentReader::open(&path).unwrap();
        while let Some((offset, f)) = reader.next_frame().unwrap() {
            out.push(DiskFrame {
                path: path.clone(),
                shard,
                seq,
                offset,
                len: f.len,
                key: f.key.to_owned(),
                version: f.version,
                op: f.kind.name(),
                deleted_at_unix_ns: f.deleted_at_unix_ns(),
            });
        }
    }
    out
}

/// Parses JSON Lines output.
pub fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// A `block`-byte header block of segment 1 of shard 0 (of 1), generation 1,
/// for hand-built segments.
pub fn header_block(block: u32) -> Vec<u8> {
    let mut b = vec![0u8; block as usize];
    SegmentHeader {
        block_size: block,
        shard: 0,
        shard_count: 1,
        pipeline_depth: 1,
        seq: 1,
        generation: 1,
        created_unix_ns: 0,
        format_version: ringstore::inspect::format::FORMAT_VERSION,
        reused: false,
    }
    .encode(&mut b)
    .unwrap();
    b
}

/// CRC32C (Castagnoli), bitwise: the tests' own, so they need no dependency
/// and do not trust the code they check.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
        }
    }
    !c
}
