//! Sealed-segment events (`Config::on_sealed`) run off the shard executors,
//! and `Store::sealed_segments` lists what the writers sealed.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ringstore::{SealedSegment, Store, WeakStore};

/// Runs `f` on a thread and fails the test if it takes longer than a
/// minute (a deadlock), instead of hanging the suite.
fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(value) => value,
        Err(e) => panic!("deadlocked: no answer within a minute ({e})"),
    }
}

/// Regression: the callback ran on the shard's executor, so a callback
/// that put to its own shard waited for the executor it was blocking.
#[test]
fn a_callback_may_put_to_its_own_shard_list_and_compact() {
    let dir = common::temp_dir();
    let path = dir.path().to_path_buf();
    within_a_minute(move || {
        let handle: Arc<OnceLock<WeakStore>> = Arc::new(OnceLock::new());
        let in_callback = Arc::clone(&handle);
        let calls = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&calls);
        let config = common::config(&path)
            .shards(1)
            .max_segment_records(5)
            .on_sealed(move |s: &SealedSegment| {
                let n = counted.fetch_add(1, Ordering::SeqCst);
                let Some(store) = in_callback.get().and_then(WeakStore::upgrade) else {
                    return;
                };
                if n < 3 {
                    // One shard: this key's shard is the one that sealed.
                    let put =
                        store.put_blocking(&format!("from-callback-{n}"), &common::record(1, "c"));
                    assert!(
                        put.is_ok() || matches!(put, Err(ringstore::Error::Closed)),
                        "{put:?}"
                    );
                    let listed = store.sealed_segments().unwrap_or_default();
                    assert!(
                        listed.iter().any(|l| l.seq == s.seq),
                        "the segment is listed first"
                    );
                }
                if n == 1 {
                    let _ = store.compact();
                }
            });
        let store = Store::open(config).unwrap();
        let _ = handle.set(store.downgrade());
        for i in 0..30 {
            store
                .put_blocking(&format!("k{}", i % 4), &common::record(i, "v"))
                .unwrap();
        }
        store.close().unwrap();
        assert!(calls.load(Ordering::SeqCst) >= 3);
        let reopened = Store::open(common::config(&path).shards(1)).unwrap();
        for n in 0..3 {
            assert!(reopened.get(&format!("from-callback-{n}")).is_some(), "{n}");
        }
        reopened.close().unwrap();
    });
}

/// Regression: a panicking callback unwound the shard executor, which then
/// refused every write until reopen.
#[test]
fn a_panicking_callback_stops_nothing() {
    let dir = common::temp_dir();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let config =
        common::config(dir.path())
            .max_segment_records(3)
            .on_sealed(move |s: &SealedSegment| {
                log.lock().unwrap().push(s.records);
                panic!("a callback bug");
            });
    let store = Store::open(config).unwrap();
    for i in 0..40 {
        store
            .put_blocking(&format!("k{i}"), &common::record(i, "v"))
            .unwrap();
    }
    store.close().unwrap();
    let delivered: u64 = seen.lock().unwrap().iter().sum();
    assert_eq!(delivered, 40, "every segment was still delivered");
}

/// Regression: `sealed_segments` inferred "sealed" from "not the active
/// seq", so after `close` the last sealed segment of each shard was
/// missing (and during a rotation the new active one could be listed).
#[test]
fn sealed_segments_lists_what_was_sealed_close_included() {
    let dir = common::temp_dir();
    let delivered = Arc::new(AtomicU64::new(0));
    let d = Arc::clone(&delivered);
    let config =
        common::config(dir.path())
            .max_segment_records(7)
            .on_sealed(move |s: &SealedSegment| {
                d.fetch_add(s.records, Ordering::SeqCst);
            });
    let store = Store::open(config).unwrap();
    for i in 0..50 {
        store
            .put_blocking(&format!("k{i}"), &common::record(i, "v"))
            .unwrap();
    }
    let listed: u64 = store
        .sealed_segments()
        .unwrap()
        .iter()
        .map(|s| s.records)
        .sum();
    assert!(listed < 50, "the active segments are not listed while open");
    store.close().unwrap();
    let listed: u64 = store
        .sealed_segments()
        .unwrap()
        .iter()
        .map(|s| s.records)
        .sum();
    assert_eq!(listed, 50, "after close every frame is in a listed segment");
    assert_eq!(
        delivered.load(Ordering::SeqCst),
        50,
        "close returns after the callback saw every seal"
    );
}

/// A callback holding only a `WeakStore` does not keep the store open:
/// dropping the last `Store` stops it and frees the data dir.
#[test]
fn a_weak_store_in_the_callback_keeps_nothing_alive() {
    let dir = common::temp_dir();
    let handle: Arc<OnceLock<WeakStore>> = Arc::new(OnceLock::new());
    let in_callback = Arc::clone(&handle);
    let config =
        common::config(dir.path())
            .max_segment_records(2)
            .on_sealed(move |_: &SealedSegment| {
                let _ = in_callback.get().and_then(WeakStore::upgrade);
            });
    let store = Store::open(config).unwrap();
    let _ = handle.set(store.downgrade());
    for i in 0..10 {
        store
            .put_blocking(&format!("k{i}"), &common::record(i, "v"))
            .unwrap();
    }
    drop(store);
    assert!(handle.get().unwrap().upgrade().is_none());
    let reopened = Store::open(common::config(dir.path())).expect("the dir was released");
    assert_eq!(reopened.len(), 10);
    reopened.close().unwrap();
}
