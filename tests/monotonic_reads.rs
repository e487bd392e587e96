//! Gets in tight loops on other threads, during heavy puts, never see a key's
//! version go backwards.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use ringstore::Store;

#[test]
fn versions_never_go_backwards_for_readers() {
    let dir = common::temp_dir();
    let store = Store::open(common::config(dir.path())).unwrap();
    let keys: Vec<String> = (0..8).map(|i| format!("key{i}")).collect();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let store = store.clone();
                let keys = &keys;
                let done = &done;
                s.spawn(move || {
                    let mut seen: HashMap<&str, i64> = HashMap::new();
                    let mut reads = 0u64;
                    while !done.load(Ordering::Relaxed) {
                        for k in keys {
                            if let Some(r) = store.get(k) {
                                let last = seen.entry(k.as_str()).or_insert(i64::MIN);
                                assert!(
                                    r.version() >= *last,
                                    "{k}: saw {} after {}",
                                    r.version(),
                                    *last
                                );
                                // The handle's bytes agree with its version.
                                assert_eq!(
                                    common::int_field(&r.to_record(), "collection_time"),
                                    Some(r.version())
                                );
                                *last = r.version();
                                reads += 1;
                            }
                        }
                    }
                    reads
                })
            })
            .collect();
        let writers: Vec<_> = (0..4i64)
            .map(|w| {
                let store = store.clone();
                let keys = &keys;
                s.spawn(move || {
                    // Versions interleave across writers so many puts are stale.
                    for i in 0..150i64 {
                        let k = &keys[(i as usize + w as usize) % keys.len()];
                        let version = i * 4 + ((w * 3) % 4) - (i % 7) * 5;
                        store
                            .put_blocking(k, &common::record(version, "m"))
                            .unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
        let total: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
        assert!(total > 0, "readers observed no records at all");
    });
    store.close().unwrap();
}
