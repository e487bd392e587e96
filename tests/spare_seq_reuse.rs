//! Regression: a spare reused under a recycled segment number revived the
//! frames of its earlier use, and the next `open` refused the dir.
//!
//! The steps (issue 17, defect 1): run A, with one shard, writes several
//! segments into `shard-0`; run B opens with two shards, so every key of run
//! A now belongs to shard 1, and `compact` retires `shard-0`'s segments into
//! spares (its empty active segment is removed at `close`), leaving
//! `shard-0` with spare files only; run C puts a record that belongs to shard
//! 0 and is killed (SIGKILL) before its segment is sealed. The new segment's
//! number used to be computed from `.seg` names alone, so it restarted at 1
//! and took the spare that had been segment 1: the file's old frames carried
//! the same seq in their CRC and read as frames of the new segment, and run
//! D's `open` failed with `Corrupt … valid frames follow`. Now the next
//! number is one past every name in the folder, and a frame of another
//! generation than its segment header's is refused.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failure here is a test failure"
)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use ringstore::inspect::layout::{self, FileKind};
use ringstore::inspect::shard_for;
use ringstore::{Config, Store};

const CHILD_DIR: &str = "RINGSTORE_SPARE_SEQ_CHILD_DIR";
const TEST_NAME: &str = "a_crash_on_a_spare_whose_seq_was_recycled_still_opens";

/// The record run C puts into shard 0, killed before its segment is sealed.
const C_KEY_VERSION: i64 = 5_000;

fn config(dir: &Path, shards: usize) -> Config {
    common::config(dir).shards(shards).max_segment_records(2)
}

/// The first `n` keys `key<i>` that belong to `shard` of `shards`.
fn keys_of(shard: usize, shards: usize, n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("key{i}"))
        .filter(|k| shard_for(k, shards) == shard)
        .take(n)
        .collect()
}

/// Run C, in the child process: one acknowledged put into shard 0, then wait
/// for the kill.
fn run_c(dir: &Path) {
    let store = Store::open(config(dir, 2)).unwrap();
    let key = keys_of(0, 2, 1).remove(0);
    store
        .put_blocking(&key, &common::record(C_KEY_VERSION, "run C"))
        .unwrap();
    println!("ACKED");
    loop {
        std::thread::park();
    }
}

#[test]
fn a_crash_on_a_spare_whose_seq_was_recycled_still_opens() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        run_c(Path::new(&dir));
        return;
    }
    let dir = common::temp_dir();
    // Run A: records larger than a block, so a frame's bytes continue past
    // the block a later, smaller batch overwrites.
    let a_keys = keys_of(1, 2, 8);
    let big = "x".repeat(6_000);
    let store = Store::open(config(dir.path(), 1)).unwrap();
    for (i, key) in a_keys.iter().enumerate() {
        store
            .put_blocking(key, &common::record(100 + i as i64, &big))
            .unwrap();
    }
    store.close().unwrap();

    // Run B: two shards; compaction retires shard-0's segments into spares.
    let store = Store::open(config(dir.path(), 2)).unwrap();
    let report = store.compact().unwrap();
    assert!(report.segments_recycled > 0, "{report:?}");
    store.close().unwrap();
    let shard0 = layout::shard_dir(dir.path(), 0);
    let kinds: Vec<FileKind> = layout::files(&shard0)
        .unwrap()
        .into_iter()
        .map(|f| f.kind)
        .collect();
    assert!(
        !kinds.is_empty() && kinds.iter().all(|k| *k == FileKind::Spare),
        "shard-0 should hold only spares: {kinds:?}"
    );

    // Run C: a put into shard 0, acknowledged, then SIGKILL.
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST_NAME, "--nocapture"])
        .env(CHILD_DIR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let acked = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .any(|line| line == "ACKED");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(acked, "the child acknowledged nothing");
    let reused = layout::segments(&shard0).unwrap();
    assert_eq!(reused.len(), 1, "run C's segment: {reused:?}");

    // Run D: opens in the default mode and has everything acknowledged.
    let store = Store::open(config(dir.path(), 2))
        .unwrap_or_else(|e| panic!("open after the crash on a reused spare: {e}"));
    for (i, key) in a_keys.iter().enumerate() {
        let got = store.get(key).unwrap_or_else(|| panic!("{key} lost"));
        assert_eq!(got.version(), 100 + i as i64, "{key}");
    }
    let c_key = keys_of(0, 2, 1).remove(0);
    assert_eq!(
        store.get(&c_key).map(|r| r.version()),
        Some(C_KEY_VERSION),
        "run C's acknowledged put"
    );
    store.close().unwrap();
}
