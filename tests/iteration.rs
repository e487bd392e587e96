//! `Store::iter`, `keys` and `scan_prefix`: every stored key once, across
//! shards, never blocking writers, weakly consistent under concurrent puts.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ringstore::Store;

#[test]
fn iter_keys_and_scan_prefix_see_every_key_once() {
    let dir = common::temp_dir();
    let store = Store::open(common::config(dir.path()).shards(3)).unwrap();
    for i in 0..300i64 {
        let key = if i % 3 == 0 {
            format!("user/{i}")
        } else {
            format!("item/{i}")
        };
        store.put_blocking(&key, &common::record(i, "v")).unwrap();
        // A replaced record: the iteration shows the newest only.
        store
            .put_blocking(&key, &common::record(i + 1000, "w"))
            .unwrap();
    }
    let all: Vec<(String, i64)> = store.iter().map(|(k, r)| (k, r.version())).collect();
    assert_eq!(all.len(), 300, "each key once");
    let by_key: HashMap<String, i64> = all.into_iter().collect();
    assert_eq!(by_key.len(), 300);
    for (k, v) in &by_key {
        let i: i64 = k.rsplit('/').next().unwrap().parse().unwrap();
        assert_eq!(*v, i + 1000, "{k}");
    }
    let mut keys: Vec<String> = store.keys().collect();
    keys.sort();
    let mut expected: Vec<String> = by_key.keys().cloned().collect();
    expected.sort();
    assert_eq!(keys, expected);
    let users: Vec<String> = store.scan_prefix("user/").map(|(k, _)| k).collect();
    assert_eq!(users.len(), 100);
    assert!(users.iter().all(|k| k.starts_with("user/")));
    assert_eq!(store.scan_prefix("nothing/").count(), 0);
    assert_eq!(store.len(), 300);
    store.close().unwrap();
}

/// Writers keep putting new keys and replacing old ones while readers
/// iterate: every key stored before the iteration began is seen exactly
/// once, and no writer waits for the iteration.
#[test]
fn iteration_during_writes_sees_each_old_key_once() {
    let dir = common::temp_dir();
    let store = Store::open(common::config(dir.path())).unwrap();
    for i in 0..500i64 {
        store
            .put_blocking(&format!("old{i}"), &common::record(i, "v"))
            .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0i64;
            while !stop.load(Ordering::Relaxed) {
                store
                    .put_blocking(&format!("new{n}"), &common::record(n, "n"))
                    .unwrap();
                store
                    .put_blocking(&format!("old{}", n % 500), &common::record(10_000 + n, "r"))
                    .unwrap();
                n += 1;
            }
            n
        })
    };
    for _ in 0..20 {
        let mut old = 0;
        let mut seen = std::collections::HashSet::new();
        for (k, r) in store.iter() {
            assert!(seen.insert(k.clone()), "{k} seen twice");
            assert_eq!(r.key(), k);
            if k.starts_with("old") {
                old += 1;
            }
        }
        assert_eq!(old, 500, "every old key, once");
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(written > 0);
    store.close().unwrap();
}
