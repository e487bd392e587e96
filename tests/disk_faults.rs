//! Disk faults never fake success (DESIGN.md guarantee 6), on both I/O
//! backends: an injected EIO or ENOSPC on a write or an fdatasync fails
//! exactly the puts of the batch it hit with a typed error; the shard then
//! refuses writes with `Error::ShardFailed` while gets keep working; a failed
//! fdatasync is never retried nor followed by an acknowledgement; every
//! acknowledged put survives a reopen. Needs `--features failpoints`.

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failure here is a test failure"
)]

mod common;
mod fault_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fault_support::{Outcome, frames_in_write, outcome, write_bytes};
use ringstore::failpoints::{EIO, ENOSPC, FaultOp, FaultPlan, IoEvent};
use ringstore::{Config, Durability, Error, IoBackend, PutOutcome, Store, SyncMethod};

const BACKENDS: [IoBackend; 2] = [IoBackend::IoUring, IoBackend::Portable];

fn config(dir: &Path, backend: IoBackend, plan: &Arc<FaultPlan>) -> Config {
    common::config(dir)
        .shards(1)
        .io_backend(backend)
        .fault_plan(plan.clone())
}

/// `n` puts submitted together (so the shard groups them into batches).
fn burst(store: &Store, prefix: &str, n: usize, version: i64) -> Vec<(String, Outcome)> {
    let keys: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    let futs: Vec<_> = keys
        .iter()
        .map(|k| store.put(k, &common::record(version, "burst")))
        .collect();
    let results = futures::executor::block_on(futures::future::join_all(futs));
    keys.into_iter().zip(results.iter().map(outcome)).collect()
}

/// Ten acknowledged puts `k0..k9` at version 1.
fn put_baseline(store: &Store) {
    for i in 0..10 {
        assert_eq!(
            store
                .put_blocking(&format!("k{i}"), &common::record(1, "base"))
                .unwrap(),
            PutOutcome::Applied
        );
    }
}

/// The baseline is intact after a reopen without faults, and the reopened
/// store takes writes again.
fn reopen_and_check(dir: &Path, backend: IoBackend, never_on_disk: &BTreeSet<String>) {
    let store = Store::open(common::config(dir).shards(1).io_backend(backend)).unwrap();
    for i in 0..10 {
        assert_eq!(
            store.get(&format!("k{i}")).unwrap().version(),
            1,
            "k{i} lost"
        );
    }
    for key in never_on_disk {
        assert!(
            store.get(key).is_none(),
            "{key} was never written yet appeared"
        );
    }
    store
        .put_blocking("after-reopen", &common::record(2, "ok"))
        .unwrap();
    store.close().unwrap();
}

/// After a fault: gets still answer, new puts are refused, close reports it.
fn assert_shard_stopped(store: &Store) {
    assert_eq!(
        store.get("k3").unwrap().version(),
        1,
        "reads must keep working"
    );
    match store.put_blocking("late", &common::record(9, "late")) {
        Err(Error::ShardFailed { shard: 0, cause }) => assert!(!cause.is_empty()),
        other => panic!("expected ShardFailed, got {other:?}"),
    }
    assert!(store.get("late").is_none());
    assert!(matches!(store.close(), Err(Error::ShardFailed { .. })));
}

/// The ids of writes that ended with `errno`.
fn failed_writes(events: &[IoEvent], errno: i32) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            IoEvent::WriteEnd { id, result } if *result == Err(errno) => Some(*id),
            _ => None,
        })
        .collect()
}

/// Runs one write-fault scenario on `backend`; returns the puts' outcomes.
fn write_fault(backend: IoBackend, errno: i32, expected: &Outcome) {
    let dir = common::temp_dir();
    let plan = FaultPlan::new();
    let store = Store::open(config(dir.path(), backend, &plan)).unwrap();
    put_baseline(&store);
    plan.record(true).fail_nth(FaultOp::Write, 1, errno);
    let results = burst(&store, "w", 64, 5);
    let events = plan.take_events();

    // Exactly one write failed, and exactly its frames' puts got the typed
    // error; every other put of the burst was refused, none acknowledged.
    let failed = failed_writes(&events, errno);
    assert_eq!(failed.len(), 1, "{backend:?}: {events:?}");
    let hit: BTreeSet<String> = frames_in_write(write_bytes(&events, failed[0]).unwrap())
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(!hit.is_empty());
    for (key, got) in &results {
        if hit.contains(key) {
            assert_eq!(got, expected, "{backend:?}: {key} was in the failed write");
        } else {
            assert_eq!(
                *got,
                Outcome::ShardFailed,
                "{backend:?}: {key} came after the fault"
            );
        }
        assert!(
            store.get(key).is_none(),
            "{key} readable after a failed put"
        );
    }
    assert_eq!(plan.injected(FaultOp::Write), 1);
    assert_shard_stopped(&store);
    drop(store);
    // The failed write never reached the disk.
    reopen_and_check(dir.path(), backend, &hit);
}

#[test]
fn eio_on_write_fails_exactly_its_batch() {
    for backend in BACKENDS {
        write_fault(
            backend,
            EIO,
            &Outcome::Io {
                op: "writing segment",
                errno: Some(EIO),
            },
        );
    }
}

#[test]
fn enospc_on_write_is_no_space() {
    for backend in BACKENDS {
        write_fault(backend, ENOSPC, &Outcome::NoSpace);
    }
}

/// A failed flush. With `SyncMethod::Dsync` the flush is part of the
/// O_DSYNC write, so the kernel (and the simulated disk) reports it as the
/// write's error.
fn sync_fault(backend: IoBackend, method: SyncMethod, errno: i32, expected: &Outcome) {
    let dir = common::temp_dir();
    let plan = FaultPlan::new();
    let store = Store::open(config(dir.path(), backend, &plan).sync_method(method)).unwrap();
    put_baseline(&store);
    plan.record(true).fail_nth(FaultOp::Sync, 1, errno);
    let results = burst(&store, "s", 64, 5);
    for (key, _) in &results {
        assert!(
            store.get(key).is_none(),
            "{key} readable after a failed put"
        );
    }
    assert_shard_stopped(&store);
    let events = plan.take_events();

    // The failed sync and the path it was on.
    let (fail_pos, sync_path) = events
        .iter()
        .enumerate()
        .find_map(|(i, e)| match e {
            IoEvent::SyncEnd { id, ok: false } => events[..i].iter().find_map(|s| match s {
                IoEvent::SyncStart { id: sid, path } if sid == id => Some((i, path.clone())),
                _ => None,
            }),
            _ => None,
        })
        .unwrap();
    // The puts that got the sync's error are exactly the frames of one write
    // that completed before that sync started.
    let errored: BTreeSet<String> = results
        .iter()
        .filter(|(_, o)| o == expected)
        .map(|(k, _)| k.clone())
        .collect();
    let candidates: Vec<BTreeSet<String>> = events[..fail_pos]
        .iter()
        .filter_map(|e| match e {
            IoEvent::WriteEnd { id, result: Ok(_) } => Some(
                frames_in_write(write_bytes(&events, *id).unwrap())
                    .into_iter()
                    .map(|(k, _)| k)
                    .collect(),
            ),
            _ => None,
        })
        .collect();
    assert!(
        candidates.contains(&errored),
        "{backend:?} {method:?}: puts failed by the sync {errored:?} are not one batch"
    );
    for (key, got) in &results {
        if !errored.contains(key) {
            assert_eq!(*got, Outcome::ShardFailed, "{backend:?} {method:?}: {key}");
        }
    }
    // Never retried: after the failed fdatasync, the segment is synced again
    // only as the own flush of a batch that was already in flight (right
    // after that batch's write), never bare; it is never sealed (no hint)
    // and nothing is acknowledged (checked above).
    let mut wrote_since_sync = false;
    for e in &events[fail_pos + 1..] {
        match e {
            IoEvent::WriteEnd { result: Ok(_), .. } => wrote_since_sync = true,
            IoEvent::SyncStart { path, .. } if *path == sync_path => {
                assert!(
                    wrote_since_sync,
                    "{backend:?}: the failed fdatasync was retried: {:?}",
                    &events[fail_pos..]
                );
                wrote_since_sync = false;
            }
            IoEvent::SmallFile { path, .. } => {
                panic!("{backend:?}: {path:?} written after a failed fdatasync")
            }
            _ => {}
        }
    }
    drop(store);
    reopen_and_check(dir.path(), backend, &BTreeSet::new());
}

#[test]
fn eio_on_fsync_fails_exactly_its_batch_and_is_never_retried() {
    for backend in BACKENDS {
        sync_fault(
            backend,
            SyncMethod::Fdatasync,
            EIO,
            &Outcome::Io {
                op: "fdatasync of segment",
                errno: Some(EIO),
            },
        );
    }
}

#[test]
fn eio_on_the_flush_of_an_o_dsync_write_fails_exactly_its_batch() {
    for backend in BACKENDS {
        sync_fault(
            backend,
            SyncMethod::Dsync,
            EIO,
            &Outcome::Io {
                op: "writing segment",
                errno: Some(EIO),
            },
        );
    }
}

#[test]
fn enospc_on_fsync_is_no_space() {
    for backend in BACKENDS {
        for method in [SyncMethod::Fdatasync, SyncMethod::Dsync] {
            sync_fault(backend, method, ENOSPC, &Outcome::NoSpace);
        }
    }
}

/// Async mode acknowledges before the flush; a failed background flush
/// stops the shard, and the close reports it.
#[test]
fn failed_background_flush_stops_an_async_shard() {
    for backend in BACKENDS {
        let dir = common::temp_dir();
        let plan = FaultPlan::new();
        let store = Store::open(
            config(dir.path(), backend, &plan)
                .durability(Durability::Async)
                .flush_interval_ms(5),
        )
        .unwrap();
        put_baseline(&store);
        std::thread::sleep(Duration::from_millis(50));
        plan.fail_from(FaultOp::Sync, 1, EIO);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut n = 0i64;
        let refused = loop {
            assert!(
                Instant::now() < deadline,
                "{backend:?}: the shard never stopped"
            );
            n += 1;
            match store.put_blocking(&format!("a{n}"), &common::record(2, "async")) {
                Ok(_) => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => break e,
            }
        };
        assert!(
            matches!(refused, Error::ShardFailed { .. }),
            "{backend:?}: {refused:?}"
        );
        assert!(plan.injected(FaultOp::Sync) >= 1);
        assert_shard_stopped(&store);
        drop(store);
        reopen_and_check(dir.path(), backend, &BTreeSet::new());
    }
}

/// A failed segment creation at `open` is a typed error that leaves the dir
/// usable; one at rotation fails that batch and stops the shard.
#[test]
fn failed_segment_creation() {
    for backend in BACKENDS {
        let dir = common::temp_dir();
        let plan = FaultPlan::new();
        plan.fail_nth(FaultOp::Create, 1, EIO);
        match Store::open(config(dir.path(), backend, &plan)) {
            Err(Error::Io { op, source, .. }) => {
                assert_eq!(op, "creating segment");
                assert_eq!(source.raw_os_error(), Some(EIO));
            }
            other => panic!("{backend:?}: expected Io, got {other:?}"),
        }
        let store =
            Store::open(config(dir.path(), backend, &plan).max_segment_records(10)).unwrap();
        put_baseline(&store);
        plan.fail_nth(FaultOp::Create, 1, EIO);
        match store.put_blocking("rot", &common::record(3, "rotation")) {
            Err(Error::Io { op, .. }) => assert_eq!(op, "creating segment"),
            other => panic!("{backend:?}: expected Io, got {other:?}"),
        }
        assert_shard_stopped(&store);
        drop(store);
        reopen_and_check(dir.path(), backend, &BTreeSet::from(["rot".to_owned()]));
    }
}

/// Taking a spare file for a new segment can fail like creating one (its
/// open, the 1st recycling call, or its rename, the 2nd): that batch fails,
/// the shard stops, and nothing acknowledged is lost.
#[test]
fn failed_spare_reuse() {
    for backend in BACKENDS {
        for (nth, op) in [(1, "opening spare segment"), (2, "renaming spare segment")] {
            let dir = common::temp_dir();
            let plan = FaultPlan::new();
            let store = Store::open(
                config(dir.path(), backend, &plan)
                    .max_segment_records(10)
                    .spare_segments(2),
            )
            .unwrap();
            put_baseline(&store);
            for i in 0..30 {
                store
                    .put_blocking(&format!("filler{}", i % 3), &common::record(2, "fill"))
                    .unwrap();
            }
            assert_eq!(store.compact().unwrap().segments_recycled, 2);
            // The segment after the checkpoint is new; the next rotation
            // takes a spare.
            plan.fail_nth(FaultOp::Recycle, nth, EIO);
            let mut acked = Vec::new();
            let failed = (0..20).find_map(|i| {
                let key = format!("r{i}");
                match store.put_blocking(&key, &common::record(3, "rotation")) {
                    Ok(_) => {
                        acked.push(key);
                        None
                    }
                    Err(e) => Some(e),
                }
            });
            match failed {
                Some(Error::Io { op: got, .. }) => assert_eq!(got, op, "{backend:?}"),
                other => panic!("{backend:?}: expected Io from {op}, got {other:?}"),
            }
            assert_eq!(plan.injected(FaultOp::Recycle), 1);
            assert_shard_stopped(&store);
            drop(store);
            reopen_and_check(dir.path(), backend, &BTreeSet::new());
            let store = Store::open(common::config(dir.path()).shards(1)).unwrap();
            for key in &acked {
                assert!(store.get(key).is_some(), "{backend:?}: acked {key} lost");
            }
            store.close().unwrap();
        }
    }
}

/// A failed hint write costs only a scan at the next open: puts go on.
#[test]
fn failed_hint_write_costs_only_a_scan() {
    for backend in BACKENDS {
        let dir = common::temp_dir();
        let plan = FaultPlan::new();
        plan.fail_from(FaultOp::SmallFile, 1, EIO);
        let store = Store::open(config(dir.path(), backend, &plan).max_segment_records(3)).unwrap();
        put_baseline(&store);
        assert!(
            plan.injected(FaultOp::SmallFile) >= 3,
            "rotations wrote no hint"
        );
        store.close().unwrap();
        drop(store);
        let store = Store::open(common::config(dir.path()).shards(1).io_backend(backend)).unwrap();
        assert_eq!(store.recovery_report().hinted_segments, 0);
        assert!(store.recovery_report().segments >= 4);
        for i in 0..10 {
            assert_eq!(store.get(&format!("k{i}")).unwrap().version(), 1);
        }
        store.close().unwrap();
    }
}

/// Random EIO/ENOSPC on writes, syncs, creates and directory syncs, over
/// many rounds on two shards: whatever fails, every acknowledged put is
/// recovered with its version or a newer one. Seed: `RINGSTORE_FAULT_SEED`;
/// rounds: `RINGSTORE_FAULT_ROUNDS` (default 40 per backend).
#[test]
fn random_faults_never_lose_an_acknowledged_put() {
    let seed = common::seed_from_env("RINGSTORE_FAULT_SEED");
    let rounds: u64 = common::env_or("RINGSTORE_FAULT_ROUNDS", 40);
    eprintln!(
        "random faults: seed {seed} (replay with RINGSTORE_FAULT_SEED={seed}), {rounds} rounds per backend"
    );
    let mut injected = 0;
    let mut acked_total = 0;
    for backend in BACKENDS {
        let dir = common::temp_dir();
        let mut acked: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
        for round in 0..rounds {
            let plan = FaultPlan::new();
            let s = seed ^ round.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            plan.fail_randomly(FaultOp::Write, 20_000, EIO, s)
                .fail_randomly(FaultOp::Sync, 20_000, EIO, s + 1)
                .fail_randomly(FaultOp::Create, 50_000, ENOSPC, s + 2)
                .fail_randomly(FaultOp::SyncDir, 20_000, EIO, s + 3);
            let store = match Store::open(
                common::config(dir.path())
                    .io_backend(backend)
                    .max_segment_records(16)
                    .fault_plan(plan.clone()),
            ) {
                Ok(store) => store,
                Err(e) => {
                    // A fault while opening: a typed error, nothing else.
                    assert!(
                        matches!(e, Error::Io { .. } | Error::NoSpace { .. }),
                        "{e:?}"
                    );
                    injected += plan.total_injected();
                    continue;
                }
            };
            for i in 0..40i64 {
                let version = (round as i64) * 1000 + i;
                let results = burst(&store, &format!("r{}-", i % 7), 8, version);
                for (key, got) in results {
                    match got {
                        Outcome::Acked => {
                            acked_total += 1;
                            let e = acked.entry(key).or_insert(version);
                            *e = (*e).max(version);
                        }
                        Outcome::Io { .. } | Outcome::NoSpace | Outcome::ShardFailed => {}
                        Outcome::Other(e) => panic!("round {round}: unexpected {e}"),
                    }
                }
            }
            let _ = store.close();
            injected += plan.total_injected();
            drop(store);
            let check = Store::open(common::config(dir.path()).io_backend(backend)).unwrap();
            for (key, version) in &acked {
                let got = check
                    .get(key)
                    .unwrap_or_else(|| panic!("{backend:?} round {round}: acked {key} lost"));
                assert!(
                    got.version() >= *version,
                    "{backend:?} round {round}: {key}"
                );
            }
            check.close().unwrap();
        }
    }
    eprintln!(
        "random faults: {injected} faults injected, {acked_total} acknowledged puts checked after reopen, 0 lost"
    );
    assert!(injected > 0);
}
