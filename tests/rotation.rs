//! Segments rotate by record count and by size; a sealed segment is never
//! written again, and every record comes back after reopening.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failure here is a test failure"
)]

mod common;

use std::collections::BTreeMap;

use ringstore::Store;

fn segment_sizes(dir: &std::path::Path) -> BTreeMap<std::path::PathBuf, u64> {
    let mut out = BTreeMap::new();
    for shard in std::fs::read_dir(dir).unwrap() {
        let shard = shard.unwrap().path();
        if !shard.is_dir() {
            continue;
        }
        for seg in std::fs::read_dir(&shard).unwrap() {
            let seg = seg.unwrap().path();
            out.insert(seg.clone(), std::fs::metadata(&seg).unwrap().len());
        }
    }
    out
}

#[test]
fn rotation_by_records_and_bytes_seals_segments_for_good() {
    let dir = common::temp_dir();
    let config = common::config(dir.path())
        .shards(1)
        .max_segment_records(10)
        .max_segment_bytes(1 << 20)
        .max_record_bytes(128 << 10);
    let store = Store::open(config.clone()).unwrap();
    let big = "x".repeat(60 << 10);
    for i in 0..25i64 {
        store
            .put_blocking(&format!("k{i}"), &common::record(i, "small"))
            .unwrap();
    }
    let after_small = segment_sizes(dir.path());
    assert!(
        after_small.len() >= 3,
        "25 puts at 10 per segment: {after_small:?}"
    );
    for i in 0..40i64 {
        store
            .put_blocking(&format!("big{}", i % 8), &common::record(i, &big))
            .unwrap();
    }
    let after_big = segment_sizes(dir.path());
    assert!(after_big.len() > after_small.len() + 2, "{after_big:?}");
    // Every segment but the newest was sealed: its size never changed again.
    let newest = after_small.keys().last().unwrap();
    for (path, size) in &after_small {
        if path != newest {
            assert_eq!(
                after_big.get(path),
                Some(size),
                "{path:?} was written after sealing"
            );
        }
    }
    for (path, size) in &after_big {
        if after_big.keys().last() != Some(path) {
            assert!(
                *size <= (1 << 20) + (8 << 20),
                "{path:?} far over the size limit: {size}"
            );
        }
    }
    // Frames per segment respect the record limit.
    let frames = common::read_all_frames(dir.path());
    let mut per_seq: BTreeMap<u64, usize> = BTreeMap::new();
    for f in &frames {
        *per_seq.entry(f.seq).or_default() += 1;
    }
    assert!(per_seq.values().all(|&n| n <= 10), "{per_seq:?}");
    assert_eq!(frames.len(), 65);
    // The stats count every rotation (segments before the newest) and the
    // time they held up writes.
    let stats = &store.shard_stats()[0];
    assert_eq!(stats.rotations, per_seq.len() as u64 - 1, "{stats:?}");
    assert!(!stats.rotation.is_zero(), "{stats:?}");
    store.close().unwrap();
    drop(store);

    let store = Store::open(config).unwrap();
    assert_eq!(store.len(), 25 + 8);
    assert_eq!(store.get("big3").unwrap().version(), 35);
    assert_eq!(store.get("k24").unwrap().version(), 24);
    store.close().unwrap();
}
