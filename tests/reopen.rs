//! Write, close, reopen: every key's newest record comes back byte for byte,
//! stale history does not win, and the shard count may change between runs.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failure here is a test failure"
)]

mod common;

use std::collections::BTreeMap;

use ringstore::{Durability, Record, Store};

fn write_history(store: &Store, keys: usize, rounds: i64) -> BTreeMap<String, Record> {
    let mut newest = BTreeMap::new();
    for round in 0..rounds {
        for k in 0..keys {
            let key = format!("sensor{k}");
            // Each key gets an out-of-order (stale) put after its newest.
            let version = round * 10 + (k as i64 % 3);
            let record = common::record(version, &format!("{key}-{round}"));
            store.put_blocking(&key, &record).unwrap();
            let stale = common::record(version - 5, "stale");
            store.put_blocking(&key, &stale).unwrap();
            newest.insert(key, record);
        }
    }
    newest
}

fn assert_all_back(store: &Store, newest: &BTreeMap<String, Record>) {
    assert_eq!(store.len(), newest.len());
    for (key, record) in newest {
        let got = store.get(key).unwrap_or_else(|| panic!("{key} lost"));
        assert_eq!(&got.to_record(), record, "{key}");
    }
}

#[test]
fn close_and_reopen_restores_the_newest_records() {
    let dir = common::temp_dir();
    let store = Store::open(common::config(dir.path())).unwrap();
    let newest = write_history(&store, 30, 4);
    let bytes: BTreeMap<String, Vec<u8>> = newest
        .keys()
        .map(|k| (k.clone(), store.get(k).unwrap().as_bytes().to_vec()))
        .collect();
    store.close().unwrap();
    drop(store);

    let store = Store::open(common::config(dir.path())).unwrap();
    assert_all_back(&store, &newest);
    for (k, b) in &bytes {
        assert_eq!(
            store.get(k).unwrap().as_bytes(),
            &b[..],
            "{k}: archived bytes differ"
        );
    }
    let report = store.recovery_report();
    assert_eq!(report.frames, 30 * 4 * 2);
    assert_eq!(report.keys, 30);
    assert!(report.torn_tails.is_empty());
    // New writes after reopen win over the recovered ones, and survive again.
    store
        .put_blocking("sensor0", &common::record(1_000, "after"))
        .unwrap();
    store.close().unwrap();
    drop(store);
    let store = Store::open(common::config(dir.path())).unwrap();
    assert_eq!(store.get("sensor0").unwrap().version(), 1_000);
    store.close().unwrap();
}

#[test]
fn reopen_with_other_shard_counts_keeps_everything() {
    let dir = common::temp_dir();
    let mut newest = BTreeMap::new();
    for (run, shards) in [2usize, 3, 1, 2].into_iter().enumerate() {
        let store = Store::open(common::config(dir.path()).shards(shards)).unwrap();
        assert_all_back(&store, &newest);
        // Overwrite some keys, add others.
        for k in (run * 10)..(run * 10 + 25) {
            let key = format!("sensor{k}");
            let record = common::record(100 + run as i64, &format!("run{run}"));
            store.put_blocking(&key, &record).unwrap();
            newest.insert(key, record);
        }
        // Same version as an existing record: the later write wins the tie.
        if let Some((key, _)) = newest.iter().next().map(|(k, r)| (k.clone(), r.clone())) {
            let version = newest[&key].get("collection_time").cloned();
            let mut tie = Record::new().with("note", format!("tie{run}"));
            if let Some(v) = version {
                tie.insert("collection_time", v);
            }
            store.put_blocking(&key, &tie).unwrap();
            newest.insert(key, tie);
        }
        assert_all_back(&store, &newest);
        store.close().unwrap();
    }
    let store = Store::open(common::config(dir.path()).shards(3)).unwrap();
    assert_all_back(&store, &newest);
    store.close().unwrap();
}

#[test]
fn async_mode_flushes_on_close() {
    let dir = common::temp_dir();
    let store = Store::open(common::config(dir.path()).durability(Durability::Async)).unwrap();
    let newest = write_history(&store, 10, 3);
    assert_all_back(&store, &newest);
    store.close().unwrap();
    drop(store);
    let store = Store::open(common::config(dir.path())).unwrap();
    assert_all_back(&store, &newest);
    store.close().unwrap();
}
