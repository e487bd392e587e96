//! `Store::shard_stats` accounts for every put, on both Sync flush methods
//! and in Async mode: the frames counted equal the puts acknowledged and the
//! frames found on disk, each shard reports only its own work, and the flush
//! count follows the method (`Dsync` writes through O_DSYNC and never calls
//! fdatasync; `Fdatasync` flushes once per batch). Every write and (Sync)
//! every put is timed in the histograms. What the stats say is what
//! recovery finds after a reopen.

#![expect(
    clippy::unwrap_used,
    reason = "test code: a failure here is a test failure"
)]

mod common;

use ringstore::{Durability, Store, SyncMethod};

const PUTS: i64 = 300;

fn run(durability: Durability, method: SyncMethod) {
    let dir = common::temp_dir();
    let config = common::config(dir.path())
        .durability(durability)
        .sync_method(method);
    let store = Store::open(config.clone()).unwrap();
    // Bursts from several threads, so batches hold more than one put.
    std::thread::scope(|s| {
        for t in 0..4i64 {
            let store = &store;
            s.spawn(move || {
                for i in 0..PUTS / 4 {
                    let version = t * 10_000 + i;
                    store
                        .put_blocking(&format!("k{}", version % 37), &common::record(version, "s"))
                        .unwrap();
                }
            });
        }
    });
    store.close().unwrap();
    let stats = store.shard_stats();
    let label = format!("{durability:?} {method:?}");
    assert_eq!(stats.len(), 2, "{label}");
    let frames: u64 = stats.iter().map(|s| s.frames).sum();
    assert_eq!(frames, PUTS as u64, "{label}: frames counted");
    let on_disk = common::read_all_frames(dir.path());
    assert_eq!(on_disk.len() as u64, frames, "{label}: frames on disk");
    for (i, s) in stats.iter().enumerate() {
        assert_eq!(s.shard, i, "{label}");
        let mine = on_disk.iter().filter(|f| f.shard_dir == i).count() as u64;
        assert_eq!(s.frames, mine, "{label}: shard {i} counts its own frames");
        assert!(s.batches >= 1 && s.batches <= s.frames, "{label}: {s:?}");
        assert!(
            s.bytes > s.frames * 40,
            "{label}: bytes include the frames: {s:?}"
        );
        assert!(!s.write.is_zero(), "{label}: write time measured: {s:?}");
        assert!(
            !s.write_max.is_zero() && s.write_max <= s.write,
            "{label}: the longest write is one of them: {s:?}"
        );
        assert_eq!(
            s.write_times.count(),
            s.batches,
            "{label}: every write timed: {s:?}"
        );
        assert_eq!(s.write_times.max(), s.write_max, "{label}");
        let (queued, in_store) = (&s.put_queued, &s.put_in_store);
        if durability == Durability::Sync {
            assert_eq!(in_store.count(), s.frames, "{label}: every put timed");
            assert_eq!(queued.count(), s.frames, "{label}: every put timed");
            for h in [queued, in_store] {
                assert!(
                    h.quantile(0.5) <= h.quantile(0.99) && h.quantile(0.99) <= h.max(),
                    "{label}: {h:?}"
                );
            }
            // A put's time in the store covers its wait and its batch's
            // write: the longest write was inside some put's time.
            assert!(queued.max() <= in_store.max(), "{label}");
            assert!(in_store.max() >= s.write_max, "{label}: {s:?}");
        } else {
            // Async puts are answered on the caller's thread.
            assert_eq!(in_store.count() + queued.count(), 0, "{label}");
        }
        match (durability, method) {
            (Durability::Sync, SyncMethod::Dsync) => {
                assert_eq!(s.syncs, 0, "{label}: O_DSYNC needs no fdatasync: {s:?}");
            }
            (Durability::Sync, SyncMethod::Fdatasync) => {
                assert_eq!(
                    s.syncs, s.batches,
                    "{label}: one fdatasync per batch: {s:?}"
                );
                assert!(!s.sync.is_zero(), "{label}: {s:?}");
            }
            // Background flushes: at least the one at close.
            (Durability::Async, _) => assert!(s.syncs >= 1, "{label}: {s:?}"),
        }
    }
    let reopened = Store::open(config).unwrap();
    assert_eq!(reopened.len(), 37, "{label}: every key back");
    let fresh = reopened.shard_stats();
    assert!(
        fresh.iter().all(|s| s.frames == 0 && s.batches == 0),
        "{label}: stats count since open: {fresh:?}"
    );
    reopened.close().unwrap();
}

#[test]
fn sync_o_dsync_counts_every_put_and_no_fdatasync() {
    run(Durability::Sync, SyncMethod::Dsync);
}

#[test]
fn sync_fdatasync_counts_one_flush_per_batch() {
    run(Durability::Sync, SyncMethod::Fdatasync);
}

#[test]
fn async_counts_every_put_and_its_background_flushes() {
    run(Durability::Async, SyncMethod::Dsync);
}

/// `idle` is the time a shard had no write in flight: a shard that waits
/// 100 ms before its first put reports at least that, one that never wrote
/// nothing yet (the open gap is counted when the next write starts), and
/// idle never exceeds the store's lifetime.
#[test]
fn idle_counts_the_time_without_a_write_in_flight() {
    let dir = common::temp_dir();
    let opened = std::time::Instant::now();
    let store = Store::open(common::config(dir.path()).shards(1)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(store.shard_stats()[0].idle, std::time::Duration::ZERO);
    store.put_blocking("k", &common::record(1, "a")).unwrap();
    let idle = store.shard_stats()[0].idle;
    assert!(idle >= std::time::Duration::from_millis(100), "{idle:?}");
    assert!(idle <= opened.elapsed(), "{idle:?}");
    store.close().unwrap();
}
