//! `ReadOnlyStore`: a second reader of a data dir a writer holds open —
//! no lock, no byte changed, a point-in-time view of what was durable.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use ringstore::{Error, ReadOnlyStore, Store};

/// Every file under `dir` with its length and a checksum of its bytes.
#[expect(clippy::unwrap_used, reason = "test helper: a failure fails the test")]
fn snapshot(dir: &Path) -> BTreeMap<String, (u64, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                let name = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(name, (bytes.len() as u64, crc32c::crc32c(&bytes)));
            }
        }
    }
    out
}

#[test]
fn a_reader_beside_a_running_writer_sees_what_was_durable_and_refreshes() {
    let dir = common::temp_dir();
    let store = Store::open(common::config(dir.path()).max_segment_records(20)).unwrap();
    for i in 0..100i64 {
        store
            .put_blocking(&format!("k{i}"), &common::record(i, "v"))
            .unwrap();
    }
    let mut reader = ReadOnlyStore::open(dir.path()).unwrap();
    assert_eq!(reader.len(), 100, "every acknowledged Sync put is durable");
    assert_eq!(reader.get("k42").unwrap().version(), 42);
    store
        .put_blocking("k42", &common::record(1000, "w"))
        .unwrap();
    store.put_blocking("new", &common::record(1, "n")).unwrap();
    assert_eq!(
        reader.get("k42").unwrap().version(),
        42,
        "a point-in-time view"
    );
    assert!(reader.get("new").is_none());
    reader.refresh().unwrap();
    assert_eq!(reader.get("k42").unwrap().version(), 1000);
    assert_eq!(reader.keys().count(), 101);
    assert_eq!(reader.iter().count(), 101);
    store.close().unwrap();
}

/// With a writer rotating and compacting all the time, refreshes never
/// fail and never lose a key put before them.
#[test]
fn refreshes_never_fail_while_the_writer_rotates_and_compacts() {
    let dir = common::temp_dir();
    let store = Store::open(
        common::config(dir.path())
            .max_segment_records(8)
            .spare_segments(2),
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicI64::new(-1));
    let writer = {
        let (store, stop, acked) = (store.clone(), stop.clone(), acked.clone());
        std::thread::spawn(move || {
            let mut i = 0i64;
            while !stop.load(Ordering::Relaxed) {
                store
                    .put_blocking(&format!("k{}", i % 40), &common::record(i, "v"))
                    .unwrap();
                acked.store(i, Ordering::SeqCst);
                if i % 50 == 0 {
                    store.compact().unwrap();
                }
                i += 1;
            }
        })
    };
    let mut reader = ReadOnlyStore::open(dir.path()).unwrap();
    let mut refreshes = 0;
    // At least 60 refreshes, over at least 8 of the writer's compactions.
    while refreshes < 60 || acked.load(Ordering::SeqCst) < 400 {
        refreshes += 1;
        let before = acked.load(Ordering::SeqCst);
        reader.refresh().unwrap();
        if before >= 39 {
            assert_eq!(reader.len(), 40, "every key put before the refresh");
        }
        if before >= 0 {
            let key = format!("k{}", before % 40);
            assert!(reader.get(&key).unwrap().version() >= before);
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    store.close().unwrap();
}

/// A torn tail (a crash mid-write) is not visible and not repaired: the
/// reader changes no byte of the dir; `Store::open` repairs it later.
#[test]
fn a_reader_changes_nothing_even_with_a_torn_tail() {
    let dir = common::temp_dir();
    let store = Store::open(common::config(dir.path()).shards(1)).unwrap();
    for i in 0..10i64 {
        store
            .put_blocking(&format!("k{i}"), &common::record(i, "v"))
            .unwrap();
    }
    drop(store); // as a crash would leave it: no close
    let seg = std::fs::read_dir(dir.path().join("shard-0"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .max()
        .unwrap();
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&[0xA5; 700]).unwrap();
    drop(f);
    let before = snapshot(dir.path());
    let mut reader = ReadOnlyStore::open(dir.path()).unwrap();
    reader.refresh().unwrap();
    assert_eq!(reader.len(), 10);
    assert_eq!(snapshot(dir.path()), before, "not a byte changed");
    let store = Store::open(common::config(dir.path()).shards(1)).unwrap();
    assert_eq!(store.len(), 10);
    store.close().unwrap();
}

#[test]
fn a_missing_dir_is_a_clear_error() {
    let dir = common::temp_dir();
    let missing = dir.path().join("nothing-here");
    let err = ReadOnlyStore::open(&missing).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(!missing.exists(), "nothing created");
}
