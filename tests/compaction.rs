//! `Store::compact` rewrites the live set and deletes superseded segments and
//! retired shard folders; nothing live is lost, and reopening (with any shard
//! count) finds every newest record. (Spare files, kept for reuse, are the
//! story of `spare_segments.rs`.)

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failure here is a test failure"
)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use ringstore::{Record, Store};

/// Bytes of every file in the shard folders but spares, and the largest
/// number of spares in one folder.
fn dir_bytes_and_spares(dir: &Path) -> (u64, usize) {
    let (mut total, mut most_spares) = (0, 0);
    for shard in std::fs::read_dir(dir).unwrap() {
        let shard = shard.unwrap().path();
        if shard.is_dir() {
            let mut spares = 0;
            for f in std::fs::read_dir(&shard).unwrap() {
                let f = f.unwrap();
                if f.path().extension().is_some_and(|x| x == "spare") {
                    spares += 1;
                } else {
                    total += f.metadata().unwrap().len();
                }
            }
            most_spares = most_spares.max(spares);
        }
    }
    (total, most_spares)
}

fn dir_bytes(dir: &Path) -> u64 {
    dir_bytes_and_spares(dir).0
}

fn shard_folders(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count()
}

#[test]
fn compaction_keeps_the_live_set_and_frees_history() {
    let dir = common::temp_dir();
    let mut newest: BTreeMap<String, Record> = BTreeMap::new();
    // A first run with three shards leaves folders a two-shard run retires.
    let config = |shards| {
        common::config(dir.path())
            .shards(shards)
            .max_segment_records(50)
            .spare_segments(0)
    };
    let store = Store::open(config(3)).unwrap();
    let pad = "p".repeat(2000);
    for i in 0..400i64 {
        let key = format!("key{}", i % 40);
        let r = common::record(i, &pad);
        store.put_blocking(&key, &r).unwrap();
        newest.insert(key, r);
    }
    store.close().unwrap();
    drop(store);

    let store = Store::open(config(2)).unwrap();
    assert_eq!(shard_folders(dir.path()), 3);
    let before = dir_bytes(dir.path());
    let report = store.compact().unwrap();
    assert_eq!(report.records, 40);
    assert_eq!(report.folders_removed, 1, "{report:?}");
    assert!(report.segments_removed >= 8, "{report:?}");
    assert_eq!(report.segments_recycled, 0, "{report:?}");
    let after = dir_bytes(dir.path());
    assert!(
        after * 5 < before,
        "compaction freed too little: {before} -> {after}"
    );
    assert_eq!(shard_folders(dir.path()), 2);
    for (k, r) in &newest {
        assert_eq!(&store.get(k).unwrap().to_record(), r);
    }
    // Puts keep working after a checkpoint and win over it.
    let r = common::record(10_000, "after");
    store.put_blocking("key1", &r).unwrap();
    newest.insert("key1".into(), r);
    store.close().unwrap();
    drop(store);

    for shards in [2, 1] {
        let store = Store::open(common::config(dir.path()).shards(shards)).unwrap();
        assert_eq!(store.len(), newest.len());
        for (k, r) in &newest {
            assert_eq!(
                &store.get(k).unwrap().to_record(),
                r,
                "{k} with {shards} shards"
            );
        }
        store.close().unwrap();
    }
}

#[test]
fn retention_compacts_by_itself_and_keeps_the_live_set() {
    let dir = common::temp_dir();
    let config = common::config(dir.path())
        .max_segment_records(20)
        .compact_above_sealed_bytes(Some(1 << 20));
    let store = Store::open(config.clone()).unwrap();
    let pad = "r".repeat(20_000);
    let mut newest = BTreeMap::new();
    for i in 0..300i64 {
        let key = format!("key{}", i % 10);
        let r = common::record(i, &pad);
        store.put_blocking(&key, &r).unwrap();
        newest.insert(key, r);
    }
    // ~6 MB of history over 10 live keys: retention must bring it down.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        // Spares (4 per shard by default) keep their bytes for reuse.
        let (bytes, spares) = dir_bytes_and_spares(dir.path());
        assert!(spares <= 4, "{spares} spares in one shard folder");
        if bytes < (1 << 20) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "retention did not run: {bytes} bytes on disk"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    for (k, r) in &newest {
        assert_eq!(&store.get(k).unwrap().to_record(), r);
    }
    store.close().unwrap();
    drop(store);
    let store = Store::open(config).unwrap();
    assert_eq!(store.len(), 10);
    for (k, r) in &newest {
        assert_eq!(&store.get(k).unwrap().to_record(), r, "{k} after reopen");
    }
    store.close().unwrap();
}

/// Sync mode: puts of one version racing compaction (which copies records
/// between put batches) break the tie the same way in memory and after
/// recovery, and the log stays in LSN order.
#[test]
fn sync_version_ties_racing_compaction_resolve_the_same_after_recovery() {
    common::race::ties_racing_compaction_agree_after_recovery(common::config, 8);
}

/// Regression: a Sync checkpoint used to hold every put of its shard until
/// the whole live set was written (28–66 ms measured). It is now written in
/// chunks between put batches: puts acknowledged during `compact` sit
/// between the checkpoint's copies in the log.
#[test]
fn puts_keep_flowing_while_a_sync_checkpoint_is_written() {
    let dir = common::temp_dir();
    let store = Store::open(common::config(dir.path()).shards(1)).unwrap();
    let pad = "c".repeat(50_000);
    for i in 0..200i64 {
        store
            .put_blocking(&format!("k{i:03}"), &common::record(1, &pad))
            .unwrap();
    }
    let compacting = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writers: Vec<_> = (0..2)
        .map(|t| {
            let (store, compacting) = (store.clone(), compacting.clone());
            std::thread::spawn(move || {
                let mut v = 0i64;
                while compacting.load(std::sync::atomic::Ordering::Acquire) {
                    v += 1;
                    store
                        .put_blocking(&format!("hot{t}"), &common::record(v, "hot"))
                        .unwrap();
                }
            })
        })
        .collect();
    // Let the writers get going, then compact while they put.
    std::thread::sleep(std::time::Duration::from_millis(20));
    store.compact().unwrap();
    compacting.store(false, std::sync::atomic::Ordering::Release);
    for w in writers {
        w.join().unwrap();
    }
    store.close().unwrap();
    drop(store);
    // Compaction deleted the originals: every `k` frame left is a copy.
    let frames = common::read_all_frames(dir.path());
    let copies: Vec<usize> = (0..frames.len())
        .filter(|&i| frames[i].key.starts_with('k'))
        .collect();
    assert_eq!(copies.len(), 200, "one copy per live key");
    let (first, last) = (copies[0], copies[copies.len() - 1]);
    // The checkpoint also copies the 2 hot keys; any more hot frames among
    // the copies are puts written while it was.
    let between = frames[first..last]
        .iter()
        .filter(|f| f.key.starts_with("hot"))
        .count();
    eprintln!("{between} hot frames among the checkpoint's copies");
    assert!(
        between > 2,
        "no put was written while the checkpoint was (copies at {first}..={last})"
    );
    common::assert_frames_in_lsn_order(&frames, "puts during a checkpoint");
}
