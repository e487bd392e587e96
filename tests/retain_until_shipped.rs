//! `Config::retain_until_shipped`: compaction never retires a segment that
//! the shipper's watermark (`<dir>/SHIPPED`, written by `ringstore-ship`)
//! does not cover. The watermark is written here by hand in its documented
//! format; `ringstore-ship`'s own tests write it for real.

mod common;

use std::path::Path;

use ringstore::{Error, Store};

fn segments_of(dir: &Path, shard: usize) -> Vec<u64> {
    let mut seqs: Vec<u64> = ringstore::inspect::segments(&dir.join(format!("shard-{shard}")))
        .unwrap_or_default()
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    seqs.sort();
    seqs
}

#[expect(clippy::unwrap_used, reason = "test helper")]
fn write_watermark(dir: &Path, lines: &[(usize, u64)]) {
    let mut text = String::from("ringstore-shipped 1\ninstance test\ntable ns.history\n");
    for (shard, seq) in lines {
        text.push_str(&format!("shard-{shard} {seq} 1 0\n"));
    }
    text.push_str("end\n");
    std::fs::write(dir.join("SHIPPED"), text).unwrap();
}

#[expect(clippy::unwrap_used, reason = "test helper")]
fn filled_store(dir: &Path, retain: bool) -> Store {
    let store = Store::open(
        common::config(dir)
            .shards(1)
            .max_segment_records(10)
            .spare_segments(0)
            .retain_until_shipped(retain),
    )
    .unwrap();
    for i in 0..60i64 {
        store
            .put_blocking(&format!("k{}", i % 5), &common::record(i, "v"))
            .unwrap();
    }
    store
}

#[test]
fn nothing_unshipped_is_retired_and_shipped_segments_go() {
    let dir = common::temp_dir();
    let store = filled_store(dir.path(), true);
    let before = segments_of(dir.path(), 0);
    assert!(before.len() >= 6, "{before:?}");

    // No watermark: nothing is shipped, so nothing is retired.
    let report = store.compact().unwrap();
    assert_eq!(report.segments_removed, 0, "{report:?}");
    assert_eq!(report.segments_kept_unshipped, before.len(), "{report:?}");
    for seq in &before {
        assert!(segments_of(dir.path(), 0).contains(seq), "{seq} kept");
    }

    // The shipper committed the first three: only those may go.
    write_watermark(dir.path(), &[(0, before[2])]);
    let report = store.compact().unwrap();
    assert_eq!(report.segments_removed, 3, "{report:?}");
    let after = segments_of(dir.path(), 0);
    for seq in &before[..3] {
        assert!(!after.contains(seq), "{seq} retired once shipped");
    }
    for seq in &before[3..] {
        assert!(after.contains(seq), "{seq} not shipped yet: kept");
    }
    store.close().unwrap();
    let reopened = Store::open(common::config(dir.path()).shards(1)).unwrap();
    for k in 0..5 {
        assert!(reopened.get(&format!("k{k}")).is_some());
    }
    reopened.close().unwrap();
}

#[test]
fn without_the_option_the_watermark_is_ignored() {
    let dir = common::temp_dir();
    let store = filled_store(dir.path(), false);
    let before = segments_of(dir.path(), 0);
    write_watermark(dir.path(), &[(0, before[0])]);
    let report = store.compact().unwrap();
    assert_eq!(report.segments_kept_unshipped, 0);
    assert_eq!(report.segments_removed, before.len(), "{report:?}");
    store.close().unwrap();
}

#[test]
fn a_damaged_watermark_retires_nothing_and_says_where() {
    let dir = common::temp_dir();
    let store = filled_store(dir.path(), true);
    let before = segments_of(dir.path(), 0);
    std::fs::write(
        dir.path().join("SHIPPED"),
        "ringstore-shipped 1\ninstance t\ntable a.b\nshard-0 x\nend\n",
    )
    .unwrap();
    let err = store.compact().unwrap_err();
    match &err {
        Error::Corrupt { path, .. } => assert!(path.ends_with("SHIPPED"), "{err}"),
        other => panic!("expected Corrupt, got {other}"),
    }
    for seq in &before {
        assert!(segments_of(dir.path(), 0).contains(seq));
    }
    store.close().unwrap();
}
