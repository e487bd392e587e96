//! `Store::flush`: once it resolves, every put acknowledged before it is
//! durable — in `Async` mode, written and covered by a completed
//! `fdatasync`, without waiting for the flush interval.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ringstore::failpoints::{FaultPlan, IoEvent};
use ringstore::{Durability, Error, Store};

/// For each write (by id): whether an `fdatasync` of its file started
/// after it completed and then succeeded, in `events`.
fn unsynced_writes(events: &[IoEvent]) -> Vec<u64> {
    let mut write_path: HashMap<u64, std::path::PathBuf> = HashMap::new();
    let mut sync_path: HashMap<u64, std::path::PathBuf> = HashMap::new();
    // Writes completed and not yet covered, per file.
    let mut pending: HashMap<std::path::PathBuf, Vec<u64>> = HashMap::new();
    // Per sync id: the writes it covers (completed before it started).
    let mut covering: HashMap<u64, Vec<u64>> = HashMap::new();
    for e in events {
        match e {
            IoEvent::WriteStart { id, path, .. } => {
                write_path.insert(*id, path.clone());
            }
            IoEvent::WriteEnd { id, result: Ok(_) } => {
                if let Some(p) = write_path.get(id) {
                    pending.entry(p.clone()).or_default().push(*id);
                }
            }
            IoEvent::SyncStart { id, path } => {
                sync_path.insert(*id, path.clone());
                covering.insert(*id, pending.get(path).cloned().unwrap_or_default());
            }
            IoEvent::SyncEnd { id, ok: true } => {
                let covered = covering.remove(id).unwrap_or_default();
                if let Some(p) = sync_path.get(id) {
                    if let Some(list) = pending.get_mut(p) {
                        list.retain(|w| !covered.contains(w));
                    }
                }
            }
            _ => {}
        }
    }
    pending.into_values().flatten().collect()
}

#[test]
fn an_async_flush_makes_every_acknowledged_put_durable_at_once() {
    let dir = common::temp_dir();
    let plan = FaultPlan::new();
    // A flush interval far longer than the test: only `flush` syncs.
    let store = Store::open(
        common::config(dir.path())
            .durability(Durability::Async)
            .flush_interval_ms(60_000)
            .fault_plan(plan.clone()),
    )
    .unwrap();
    plan.record(true);
    for round in 0..5i64 {
        for i in 0..200i64 {
            store
                .put_blocking(&format!("k{i}"), &common::record(round * 1000 + i, "v"))
                .unwrap();
        }
        let started = Instant::now();
        store.flush_blocking().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "flush waited for the interval"
        );
        let events = plan.events();
        let writes = events
            .iter()
            .filter(|e| matches!(e, IoEvent::WriteEnd { .. }))
            .count();
        assert!(writes > 0, "the puts were written");
        let unsynced = unsynced_writes(&events);
        assert!(
            unsynced.is_empty(),
            "round {round}: writes {unsynced:?} completed but not synced when flush returned"
        );
    }
    store.close().unwrap();
    assert!(matches!(store.flush_blocking(), Err(Error::Closed)));
}

#[test]
fn a_sync_flush_resolves_and_a_concurrent_flush_is_shared() {
    let dir = common::temp_dir();
    let store = Store::open(common::config(dir.path())).unwrap();
    store.put_blocking("a", &common::record(1, "v")).unwrap();
    store.flush_blocking().unwrap();
    store.close().unwrap();

    let dir = common::temp_dir();
    let store = Store::open(
        common::config(dir.path())
            .durability(Durability::Async)
            .flush_interval_ms(60_000),
    )
    .unwrap();
    let flushers: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..50i64 {
                    store
                        .put_blocking(&format!("t{t}-{i}"), &common::record(i, "v"))
                        .unwrap();
                    if i % 10 == 0 {
                        store.flush_blocking().unwrap();
                    }
                }
                store.flush_blocking()
            })
        })
        .collect();
    for f in flushers {
        f.join().unwrap().unwrap();
    }
    store.close().unwrap();
    let reopened = Store::open(common::config(dir.path())).unwrap();
    assert_eq!(reopened.len(), 200);
    reopened.close().unwrap();
}

/// Regression: a flush that ended while a shard was rotating could start
/// the next one for a waiting `flush` call, so the segment was sealed with
/// an `fdatasync` still holding it (the shard stopped: "sealed with writes
/// in flight"). Flushes racing rotations every few records now wait.
#[test]
fn flushes_racing_rotations_never_stop_a_shard() {
    let dir = common::temp_dir();
    let store = Store::open(
        common::config(dir.path())
            .durability(Durability::Async)
            .max_segment_records(3)
            .flush_interval_ms(60_000),
    )
    .unwrap();
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || -> Result<(), Error> {
                for i in 0..150i64 {
                    store.put_blocking(&format!("t{t}-{}", i % 20), &common::record(i, "v"))?;
                    store.flush_blocking()?;
                }
                Ok(())
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap().unwrap();
    }
    store.close().unwrap();
    let reopened = Store::open(common::config(dir.path())).unwrap();
    assert_eq!(reopened.len(), 80);
    assert_eq!(reopened.get("t3-9").unwrap().version(), 149);
    reopened.close().unwrap();
}
