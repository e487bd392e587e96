//! The seed's performance test at small scale: writers on threads and async
//! tasks over a 200-key space with readers running alongside. Every put is on
//! disk exactly once, and each key lives in exactly one shard's files.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};

use ringstore::{PutOutcome, Store};

const KEYS: u64 = 200;

fn key_of(n: u64) -> String {
    format!("sensor{}", n % KEYS)
}

#[test]
fn every_put_lands_once_and_each_key_in_one_shard() {
    let dir = common::temp_dir();
    let store = Store::open(common::config(dir.path()).shards(3)).unwrap();
    let done = AtomicBool::new(false);
    let thread_writers = 4u64;
    let task_threads = 2u64;
    let tasks_per_thread = 8u64;
    let puts_each = 25u64;
    let mut acked: Vec<(String, i64)> = Vec::new();
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..2)
            .map(|r| {
                let store = store.clone();
                let done = &done;
                s.spawn(move || {
                    let mut hits = 0u64;
                    let mut i = r;
                    while !done.load(Ordering::Relaxed) {
                        if store.get(&key_of(i)).is_some() {
                            hits += 1;
                        }
                        i = i.wrapping_mul(31).wrapping_add(7);
                    }
                    hits
                })
            })
            .collect();
        let mut writers = Vec::new();
        for w in 0..thread_writers {
            let store = store.clone();
            writers.push(s.spawn(move || {
                (0..puts_each)
                    .map(|i| {
                        let n = w * 1000 + i;
                        let key = key_of(n * 7);
                        let version = n as i64;
                        store
                            .put_blocking(&key, &common::record(version, "thread"))
                            .unwrap();
                        (key, version)
                    })
                    .collect::<Vec<_>>()
            }));
        }
        for t in 0..task_threads {
            let store = store.clone();
            writers.push(s.spawn(move || {
                let tasks = (0..tasks_per_thread).map(|task| {
                    let store = store.clone();
                    async move {
                        let mut out = Vec::new();
                        for i in 0..puts_each {
                            let n = 100_000 + t * 10_000 + task * 100 + i;
                            let key = key_of(n * 13);
                            let version = n as i64;
                            let outcome = store
                                .put(&key, &common::record(version, "task"))
                                .await
                                .unwrap();
                            assert!(matches!(
                                outcome,
                                PutOutcome::Applied | PutOutcome::Stale { .. }
                            ));
                            out.push((key, version));
                        }
                        out
                    }
                });
                futures::executor::block_on(futures::future::join_all(tasks))
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
            }));
        }
        for w in writers {
            acked.extend(w.join().unwrap());
        }
        done.store(true, Ordering::Relaxed);
        for r in readers {
            r.join().unwrap();
        }
    });
    let total = thread_writers * puts_each + task_threads * tasks_per_thread * puts_each;
    assert_eq!(acked.len() as u64, total);

    // The readable record of each key is its highest acknowledged version.
    let mut newest: BTreeMap<&str, i64> = BTreeMap::new();
    for (k, v) in &acked {
        let e = newest.entry(k.as_str()).or_insert(*v);
        *e = (*e).max(*v);
    }
    for (k, v) in &newest {
        assert_eq!(store.get(k).unwrap().version(), *v, "{k}");
    }
    store.close().unwrap();

    let frames = common::read_all_frames(dir.path());
    let mut on_disk: Vec<(String, i64)> =
        frames.iter().map(|f| (f.key.clone(), f.version)).collect();
    on_disk.sort();
    acked.sort();
    assert_eq!(
        on_disk, acked,
        "the log holds every acknowledged put exactly once"
    );
    let mut shard_of: BTreeMap<&str, BTreeSet<usize>> = BTreeMap::new();
    for f in &frames {
        shard_of
            .entry(f.key.as_str())
            .or_default()
            .insert(f.shard_dir);
    }
    for (k, shards) in shard_of {
        assert_eq!(shards.len(), 1, "{k} is in shards {shards:?}");
        assert_eq!(
            shards.first().copied(),
            Some(ringstore::inspect::shard_for(k, 3))
        );
    }
    // (shard, generation, lsn) is unique: the log order is total per shard.
    let mut lsns: Vec<_> = frames
        .iter()
        .map(|f| (f.shard_dir, f.generation, f.lsn))
        .collect();
    lsns.sort();
    lsns.dedup();
    assert_eq!(lsns.len(), frames.len());
}

#[test]
fn put_works_from_inside_a_glommio_task() {
    let dir = common::temp_dir();
    let store = Store::open(common::config(dir.path())).unwrap();
    let s2 = store.clone();
    let outcome = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .spawn(move || async move { s2.put("from-glommio", &common::record(9, "g")).await })
        .unwrap()
        .join()
        .unwrap()
        .unwrap();
    assert_eq!(outcome, PutOutcome::Applied);
    assert_eq!(store.get("from-glommio").unwrap().version(), 9);
    store.close().unwrap();
}

#[test]
fn put_futures_run_on_a_tokio_runtime() {
    let dir = common::temp_dir();
    let store = Store::open(common::config(dir.path())).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let outcomes = rt.block_on(async {
        // `put` futures are Send + 'static: spawn them onto the runtime.
        let tasks: Vec<_> = (0..32i64)
            .map(|i| {
                tokio::spawn(store.put(&format!("tokio{}", i % 8), &common::record(i, "tokio")))
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap().unwrap());
        }
        out
    });
    assert_eq!(outcomes.len(), 32);
    for k in 0..8i64 {
        // Each key's newest version is readable (puts of one key may race).
        let newest = (0..32i64).filter(|i| i % 8 == k).max().unwrap();
        assert_eq!(store.get(&format!("tokio{k}")).unwrap().version(), newest);
    }
    store.close().unwrap();
}
