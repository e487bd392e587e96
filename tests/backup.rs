//! `Store::backup_to`: an online copy, taken while writers run, that opens
//! as a store holding every put acknowledged before the backup began.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ringstore::{Durability, Error, ReadOnlyStore, Store};

#[expect(clippy::unwrap_used, reason = "test body shared by two tests")]
fn backup_while_writing(durability: Durability) {
    let dir = common::temp_dir();
    let store = Store::open(
        common::config(dir.path())
            .durability(durability)
            .max_segment_records(25),
    )
    .unwrap();
    for i in 0..200i64 {
        store
            .put_blocking(&format!("k{i}"), &common::record(i, "before"))
            .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0i64;
            while !stop.load(Ordering::Relaxed) {
                store
                    .put_blocking(&format!("during{i}"), &common::record(i, "d"))
                    .unwrap();
                i += 1;
            }
            i
        })
    };
    let backups = common::temp_dir();
    let dest = backups.path().join("copy");
    let report = store.backup_to(&dest).unwrap();
    // At least each shard's active segment (Async writes many records per
    // batch, so its segments hold more than `max_segment_records`).
    assert!(report.segments >= store.shard_count(), "{report:?}");
    stop.store(true, Ordering::Relaxed);
    assert!(writer.join().unwrap() > 0);
    // The copy opens read-only and as a store, with every put made before.
    let reader = ReadOnlyStore::open(&dest).unwrap();
    for i in 0..200i64 {
        assert_eq!(reader.get(&format!("k{i}")).unwrap().version(), i);
    }
    let copy = Store::open(common::config(&dest)).unwrap();
    assert!(copy.len() >= 200);
    copy.put_blocking("after", &common::record(1, "a")).unwrap();
    copy.close().unwrap();
    // The original goes on, untouched.
    store.put_blocking("k0", &common::record(999, "x")).unwrap();
    store.close().unwrap();
    let copy = Store::open(common::config(&dest)).unwrap();
    assert_eq!(
        copy.get("k0").unwrap().version(),
        0,
        "independent of the original"
    );
    copy.close().unwrap();
}

#[test]
fn a_sync_store_backs_up_while_writers_run() {
    backup_while_writing(Durability::Sync);
}

/// Async: the backup flushes first, so every acknowledged put is in it.
#[test]
fn an_async_store_backs_up_every_acknowledged_put() {
    backup_while_writing(Durability::Async);
}

#[test]
fn a_non_empty_destination_is_refused_and_left_alone() {
    let dir = common::temp_dir();
    let store = Store::open(common::config(dir.path())).unwrap();
    store.put_blocking("k", &common::record(1, "v")).unwrap();
    let dest = common::temp_dir();
    std::fs::write(dest.path().join("precious"), b"mine").unwrap();
    let err = store.backup_to(dest.path()).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert_eq!(
        std::fs::read(dest.path().join("precious")).unwrap(),
        b"mine"
    );
    assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 1);
    store.close().unwrap();
    assert!(matches!(
        store.backup_to(dest.path().join("x")),
        Err(Error::Closed)
    ));
}
