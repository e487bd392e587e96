//! Sealed segments get a hint file; `open` ranks keys from hints and reads
//! only the winning frames. A missing, damaged or stale hint falls back to a
//! scan with the same result. The sealed-segment callback reports each seal.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failure here is a test failure"
)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ringstore::{SealedSegment, Store};

fn hints(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for shard in std::fs::read_dir(dir).unwrap() {
        let shard = shard.unwrap().path();
        if shard.is_dir() {
            for f in std::fs::read_dir(&shard).unwrap() {
                let f = f.unwrap().path();
                if f.extension().is_some_and(|e| e == "hint") {
                    out.push(f);
                }
            }
        }
    }
    out.sort();
    out
}

fn versions(store: &Store, keys: usize) -> BTreeMap<String, i64> {
    (0..keys)
        .filter_map(|k| {
            let key = format!("key{k}");
            store.get(&key).map(|r| (key, r.version()))
        })
        .collect()
}

#[test]
fn reopen_uses_hints_and_falls_back_to_scans() {
    let dir = common::temp_dir();
    let seen_records = Arc::new(AtomicU64::new(0));
    let seen = seen_records.clone();
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let ev = events.clone();
    let config = common::config(dir.path())
        .max_segment_records(40)
        .on_sealed(move |s: &SealedSegment| {
            seen.fetch_add(s.records, Ordering::SeqCst);
            ev.lock().unwrap().push(s.clone());
        });
    let store = Store::open(config).unwrap();
    for i in 0..300i64 {
        store
            .put_blocking(&format!("key{}", i % 23), &common::record(i, "h"))
            .unwrap();
    }
    store.close().unwrap();
    drop(store);
    assert_eq!(
        seen_records.load(Ordering::SeqCst),
        300,
        "every frame was in a reported sealed segment"
    );
    for s in events.lock().unwrap().iter() {
        assert!(s.path.exists());
        assert!(s.records <= 40);
        assert!(s.first_version <= s.last_version);
        assert_eq!(std::fs::metadata(&s.path).unwrap().len(), s.bytes);
    }
    let hint_files = hints(dir.path());
    assert!(hint_files.len() >= 8, "{hint_files:?}");

    let store = Store::open(common::config(dir.path())).unwrap();
    // The listing sees every sealed segment of the first run (the active
    // segments of this run hold nothing yet, so they are not listed).
    let listed = store.sealed_segments().unwrap();
    assert_eq!(listed.iter().map(|s| s.records).sum::<u64>(), 300);
    let mut reported: Vec<_> = events
        .lock()
        .unwrap()
        .iter()
        .map(|s| (s.shard, s.seq, s.records))
        .collect();
    let mut from_listing: Vec<_> = listed.iter().map(|s| (s.shard, s.seq, s.records)).collect();
    reported.sort();
    from_listing.sort();
    assert_eq!(reported, from_listing, "the hook and the listing agree");
    let expected = versions(&store, 23);
    let report = store.recovery_report().clone();
    assert_eq!(report.frames, 300);
    assert_eq!(
        report.hinted_segments, report.segments,
        "every sealed segment was ranked from its hint"
    );
    store.close().unwrap();
    drop(store);
    assert_eq!(expected.len(), 23);
    assert_eq!(
        expected["key0"], 299,
        "299 is the last multiple of 23 below 300"
    );

    // Damage one hint, delete another, make a third stale: same records.
    let hint_files = hints(dir.path());
    let bytes = std::fs::read(&hint_files[0]).unwrap();
    let mut bad = bytes.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xFF;
    std::fs::write(&hint_files[0], bad).unwrap();
    std::fs::remove_file(&hint_files[1]).unwrap();
    let other = std::fs::read(&hint_files[3]).unwrap();
    std::fs::write(&hint_files[2], other).unwrap();
    let store = Store::open(common::config(dir.path())).unwrap();
    assert_eq!(versions(&store, 23), expected);
    let report = store.recovery_report();
    assert_eq!(report.frames, 300);
    assert!(report.hinted_segments + 3 <= report.segments, "{report:?}");
    store.close().unwrap();
}
