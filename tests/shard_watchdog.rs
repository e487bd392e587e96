//! The shard watchdog (`Config::wake_stalled_shard_after_ms`) signals a
//! shard executor that has a write due and has not turned for that long.
//!
//! The stall it exists for (an executor sleeping through a finished write
//! until its thread is interrupted, seen twice in ~120 harness runs) cannot
//! be produced on demand. A slow device can: the fault plan holds every
//! write for 150 ms. A shard waiting for a batch's write still turns (its
//! 2 ms re-check), but a rotation waits for the new segment's header write
//! without turning, so the shard stays overdue for ~150 ms, far longer
//! than the watchdog's 10 ms. The tests check that signals are sent to the
//! executors while puts, rotations and hints go on, that they change
//! nothing a user can see (every put acknowledged and readable after a
//! reopen), and that with the watchdog off none is sent. Needs
//! `--features failpoints`.

#![expect(
    clippy::unwrap_used,
    reason = "test code: a failure here is a test failure"
)]

mod common;

use std::path::Path;
use std::time::Duration;

use ringstore::failpoints::{FaultOp, FaultPlan};
use ringstore::{Config, IoBackend, PutOutcome, Store};

const WRITE_DELAY: Duration = Duration::from_millis(150);
const ROUNDS: i64 = 3;
const KEYS: usize = 12;

fn config(dir: &Path, wake_after_ms: u64) -> Config {
    common::config(dir)
        .io_backend(IoBackend::IoUring)
        .max_segment_records(4)
        .wake_stalled_shard_after_ms(wake_after_ms)
}

/// Rounds of puts of every key, each round's writes held by the device;
/// returns the signals the shards received and their rotations.
fn slow_device_run(dir: &Path, wake_after_ms: u64) -> (u64, u64) {
    let plan = FaultPlan::new();
    plan.delay(FaultOp::Write, WRITE_DELAY);
    let store = Store::open(config(dir, wake_after_ms).fault_plan(plan.clone())).unwrap();
    for version in 1..=ROUNDS {
        let puts: Vec<_> = (0..KEYS)
            .map(|i| store.put(&format!("k{i}"), &common::record(version, "slow")))
            .collect();
        for result in futures::executor::block_on(futures::future::join_all(puts)) {
            assert_eq!(result.unwrap(), PutOutcome::Applied);
        }
    }
    let stats = store.shard_stats();
    assert!(
        stats.iter().all(|s| s.write_max >= WRITE_DELAY),
        "every shard's writes were held: {stats:?}"
    );
    let wakes = stats.iter().map(|s| s.watchdog_wakes).sum();
    let rotations = stats.iter().map(|s| s.rotations).sum();
    store.close().unwrap();
    (wakes, rotations)
}

/// Every key holds its last round's record after a reopen without faults.
fn assert_all_recovered(dir: &Path) {
    let store = Store::open(config(dir, 0)).unwrap();
    for i in 0..KEYS {
        let got = store.get(&format!("k{i}")).unwrap();
        assert_eq!(got.version(), ROUNDS, "k{i}");
    }
    store.close().unwrap();
}

#[test]
fn a_shard_overdue_on_a_slow_write_is_signalled_and_loses_nothing() {
    let dir = common::temp_dir();
    let (wakes, rotations) = slow_device_run(dir.path(), 10);
    // About 14 signals per rotation (150 ms overdue, one per 10 ms); half
    // that leaves room for a watchdog thread starved on a busy machine.
    assert!(rotations >= 2, "{rotations} rotations");
    assert!(
        wakes >= 7 * rotations,
        "{wakes} signals for {rotations} rotations held 150 ms each"
    );
    assert_all_recovered(dir.path());
}

#[test]
fn with_the_watchdog_off_no_signal_is_sent() {
    let dir = common::temp_dir();
    let (wakes, rotations) = slow_device_run(dir.path(), 0);
    assert!(rotations >= 2, "{rotations} rotations");
    assert_eq!(wakes, 0);
    assert_all_recovered(dir.path());
}

/// Regression: the watchdog started only once every shard had created its
/// first segment, so an executor that slept through a completion during
/// `open` held `open` until something else signalled its thread (seen once:
/// an 8-minute `open`). Now it watches from the start: with the device
/// holding the header writes 400 ms, each shard is signalled during `open`.
#[test]
fn a_shard_creating_its_first_segment_is_watched_during_open() {
    let dir = common::temp_dir();
    let plan = FaultPlan::new();
    plan.delay(FaultOp::Write, Duration::from_millis(400));
    let store = Store::open(config(dir.path(), 20).fault_plan(plan.clone())).unwrap();
    let stats = store.shard_stats();
    plan.delay(FaultOp::Write, Duration::ZERO);
    // About 20 signals per shard (400 ms held, one per 20 ms); at least one
    // each leaves room for a starved watchdog thread.
    assert!(
        stats.iter().all(|s| s.watchdog_wakes >= 1),
        "signals during open: {:?}",
        stats.iter().map(|s| s.watchdog_wakes).collect::<Vec<_>>()
    );
    store.close().unwrap();
}
