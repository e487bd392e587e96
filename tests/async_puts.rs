//! `Durability::Async` puts are acknowledged once published, and bounded by
//! a byte budget. These tests guard what that must keep: a put is readable
//! when it returns, concurrent puts of one version break the tie the same
//! way in memory and after recovery (also while compaction copies records),
//! the log stays in LSN order, a compaction racing the puts loses nothing,
//! and the budget neither deadlocks on a large record nor hangs a put at
//! close, which writes every put it acknowledged.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ringstore::{Durability, PutOutcome, Store};

const THREADS: usize = 8;

fn async_config(dir: &std::path::Path) -> ringstore::Config {
    // A small byte budget, so callers also wait for the disk now and then.
    common::config(dir)
        .durability(Durability::Async)
        .max_batch_bytes(64 << 10)
        .flush_interval_ms(5)
}

#[test]
fn an_async_put_is_readable_when_it_returns_and_after_reopen() {
    let dir = common::temp_dir();
    let store = Store::open(async_config(dir.path())).unwrap();
    for v in 1..=300i64 {
        let key = format!("k{}", v % 7);
        let outcome = store.put_blocking(&key, &common::record(v, "x")).unwrap();
        assert_eq!(outcome, PutOutcome::Applied);
        let got = store.get(&key).expect("visible on return");
        assert_eq!(got.version(), v);
    }
    // Older than what is stored: Stale, and the newer record stays.
    let outcome = store.put_blocking("k0", &common::record(5, "old")).unwrap();
    assert_eq!(
        outcome,
        PutOutcome::Stale {
            current_version: 294
        }
    );
    assert_eq!(store.get("k0").unwrap().version(), 294);
    store.close().unwrap();
    let store = Store::open(async_config(dir.path())).unwrap();
    for k in 0..7 {
        let key = format!("k{k}");
        let newest = (1..=300i64).filter(|v| v % 7 == k).max().unwrap();
        assert_eq!(store.get(&key).unwrap().version(), newest, "{key}");
    }
    store.close().unwrap();
}

#[test]
fn version_ties_resolve_the_same_in_memory_and_after_recovery() {
    let dir = common::temp_dir();
    let store = Store::open(async_config(dir.path())).unwrap();
    // Every thread writes every key with the same version: which put wins
    // is a race, but memory and the log must agree on it. A deadline
    // instead of joins: a stalled shard fails the test rather than hanging
    // it.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    for t in 0..THREADS {
        let (store, done_tx) = (store.clone(), done_tx.clone());
        std::thread::spawn(move || {
            for i in 0..200 {
                let key = format!("tie{}", i % 5);
                let note = format!("t{t}-{i}");
                let outcome = store.put_blocking(&key, &common::record(7, &note)).unwrap();
                // A tie goes to the put later in the log: one that took its
                // place in the log before a concurrent put of the same
                // version, but reached the map after it, is Stale.
                assert!(
                    matches!(
                        outcome,
                        PutOutcome::Applied | PutOutcome::Stale { current_version: 7 }
                    ),
                    "{outcome:?}"
                );
            }
            let _ = done_tx.send(());
        });
    }
    for _ in 0..THREADS {
        let finished = done_rx.recv_timeout(std::time::Duration::from_secs(60));
        assert!(finished.is_ok(), "Async puts stopped making progress");
    }
    let in_memory: BTreeMap<String, String> = (0..5)
        .map(|k| {
            let key = format!("tie{k}");
            let note = common::race::note_of(&store.get(&key).unwrap().to_record());
            (key, note)
        })
        .collect();
    store.close().unwrap();

    // The log holds every put, in LSN order within each segment.
    let frames = common::read_all_frames(dir.path());
    assert_eq!(frames.len(), THREADS * 200);
    common::assert_frames_in_lsn_order(&frames, "ties");
    common::race::assert_recovery_agrees(dir.path(), async_config, &in_memory);
}

#[test]
fn compaction_racing_async_puts_loses_nothing() {
    let dir = common::temp_dir();
    let store = Store::open(async_config(dir.path()).max_segment_records(100)).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let deadline = std::time::Duration::from_secs(60);
    let runs_rx = common::race::compact_in_a_loop(&store, &done);
    let (last_tx, last_rx) = std::sync::mpsc::channel();
    for t in 0..THREADS {
        let (store, last_tx) = (store.clone(), last_tx.clone());
        std::thread::spawn(move || {
            // Each thread owns its keys, so its last put per key is the
            // newest.
            let mut last = BTreeMap::new();
            for v in 1..=400i64 {
                let key = format!("w{t}-{}", v % 13);
                store.put_blocking(&key, &common::record(v, "c")).unwrap();
                last.insert(key, v);
            }
            let _ = last_tx.send(last);
        });
    }
    // Deadlines rather than joins: a stalled shard fails the test instead
    // of hanging it.
    let last_acknowledged: Vec<BTreeMap<String, i64>> = (0..THREADS)
        .map(|_| last_rx.recv_timeout(deadline).expect("a writer stalled"))
        .collect();
    done.store(true, Ordering::Release);
    assert!(runs_rx.recv_timeout(deadline).expect("compaction stalled") >= 3);
    store.close().unwrap();
    let store = Store::open(async_config(dir.path())).unwrap();
    for last in &last_acknowledged {
        for (key, version) in last {
            let got = store.get(key).map(|r| r.version());
            assert_eq!(got, Some(*version), "{key}");
        }
    }
    store.close().unwrap();
}

/// A record larger than the whole byte budget is let through alone (no
/// deadlock), written, and recovered.
#[test]
fn a_record_larger_than_the_budget_goes_alone() {
    let dir = common::temp_dir();
    let config = async_config(dir.path()).shards(1);
    let store = Store::open(config.clone()).unwrap();
    let big = common::record(1, &"x".repeat(1 << 20));
    std::thread::scope(|s| {
        for t in 0..4 {
            let (store, big) = (&store, &big);
            s.spawn(move || {
                for i in 0..5 {
                    let key = format!("big{t}-{i}");
                    assert_eq!(store.put_blocking(&key, big).unwrap(), PutOutcome::Applied);
                }
            });
        }
    });
    store.close().unwrap();
    let store = Store::open(config).unwrap();
    assert_eq!(store.len(), 20);
    store.close().unwrap();
}

/// Closing while callers wait for budget (each 100 KB put is larger than
/// the 64 KiB budget, so they go one at a time): every put must end, `Ok`
/// or `Closed`, none may hang on a waker nobody wakes.
#[test]
fn closing_while_puts_wait_for_budget_never_hangs() {
    let dir = common::temp_dir();
    let store = Store::open(async_config(dir.path()).shards(1)).unwrap();
    let record = common::record(1, &"y".repeat(100_000));
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let threads = 16;
    for t in 0..threads {
        let (store, record, done_tx) = (store.clone(), record.clone(), done_tx.clone());
        std::thread::spawn(move || {
            let mut acknowledged = Vec::new();
            for i in 0..200 {
                let key = format!("w{t}-{i}");
                match store.put_blocking(&key, &record) {
                    Ok(_) => acknowledged.push(key),
                    Err(ringstore::Error::Closed) => break,
                    Err(e) => panic!("{e:?}"),
                }
            }
            let _ = done_tx.send(acknowledged);
        });
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    store.close().unwrap();
    let mut acknowledged = Vec::new();
    for _ in 0..threads {
        let ended = done_rx.recv_timeout(std::time::Duration::from_secs(30));
        acknowledged.extend(ended.expect("a put waiting for budget never returned"));
    }
    // `close` writes every put it acknowledged, also those sent while it
    // was closing.
    let store = Store::open(async_config(dir.path()).shards(1)).unwrap();
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|k| store.get(k).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged, then lost by close: {missing:?}"
    );
    store.close().unwrap();
}

/// Version ties while compaction copies the live records into new frames:
/// the copy must not outrank a put of the same version published after the
/// copy was taken, nor lose to one published before. Memory and recovery
/// agree on every winner.
#[test]
fn version_ties_racing_compaction_resolve_the_same_after_recovery() {
    common::race::ties_racing_compaction_agree_after_recovery(async_config, THREADS);
}
