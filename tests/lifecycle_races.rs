//! Close, compact and puts racing each other, with the interleaving forced
//! by pause points and a slow simulated disk (feature `failpoints`). The
//! pause points are process-wide, so the tests of this file take turns.

mod common;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ringstore::failpoints::{FaultOp, FaultPlan, IoEvent, Pause, PausePoint};
use ringstore::{Durability, Error, PutOutcome, Store};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Regression: an `Async` put that had passed its "store open?" check when
/// `close` drained the queue could be acknowledged and never written (or,
/// later, fail `Closed` while its record was already readable). Now `close`
/// waits for such a put to finish sending, and writes it.
#[test]
fn an_async_put_racing_close_is_written_or_refused_never_lost() {
    let _turn = turn();
    let dir = common::temp_dir();
    let store = Store::open(common::config(dir.path()).durability(Durability::Async)).unwrap();
    let pause = Pause::arm(PausePoint::AsyncPutEntered);
    let putter = {
        let store = store.clone();
        std::thread::spawn(move || store.put_blocking("racer", &common::record(7, "r")))
    };
    pause.wait_until_held();
    let closer = {
        let store = store.clone();
        std::thread::spawn(move || store.close())
    };
    // Give `close` every chance to finish its drain before the put sends.
    std::thread::sleep(Duration::from_millis(200));
    pause.release();
    let put = putter.join().unwrap();
    closer.join().unwrap().unwrap();
    assert_eq!(put.unwrap(), PutOutcome::Applied, "it was past the check");
    drop(store);
    let reopened = Store::open(common::config(dir.path())).unwrap();
    let got = reopened
        .get("racer")
        .expect("an acknowledged Async put is written by close");
    assert_eq!(got.version(), 7);
    reopened.close().unwrap();
}

/// A put that arrives once `close` has begun is refused and leaves nothing
/// readable.
#[test]
fn a_put_after_close_began_is_refused() {
    let _turn = turn();
    let dir = common::temp_dir();
    let store = Store::open(common::config(dir.path()).durability(Durability::Async)).unwrap();
    store.close().unwrap();
    let put = store.put_blocking("late", &common::record(1, "l"));
    assert!(matches!(put, Err(Error::Closed)), "{put:?}");
    assert!(store.get("late").is_none());
}

/// Regression: a second `close` returned at once (the first had taken the
/// executors) and dropped the data-dir lock while the first was still
/// joining a shard that was writing its last frames. Now the second waits:
/// when it returns, every shard has closed its segment.
#[test]
fn a_second_close_waits_for_the_first() {
    let _turn = turn();
    let dir = common::temp_dir();
    let plan = FaultPlan::new();
    // One shard: the first close takes its executor to join.
    let store = Store::open(
        common::config(dir.path())
            .shards(1)
            .durability(Durability::Async)
            .fault_plan(plan.clone()),
    )
    .unwrap();
    store.put_blocking("k", &common::record(1, "x")).unwrap();
    // The first close has a slow write to wait for.
    plan.delay(FaultOp::Write, Duration::from_millis(800))
        .record(true);
    store.put_blocking("k2", &common::record(1, "y")).unwrap();
    let first = {
        let store = store.clone();
        std::thread::spawn(move || store.close())
    };
    // Wait until the first close has begun (puts are refused).
    while store.put_blocking("probe", &common::record(1, "p")).is_ok() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let second = store.close();
    let closed_files = plan
        .events()
        .iter()
        .filter(|e| matches!(e, IoEvent::Close { .. }))
        .count();
    assert!(
        closed_files >= 1,
        "the second close returned before the shard closed its segment"
    );
    assert!(second.is_ok(), "{second:?}");
    first.join().unwrap().unwrap();
    plan.delay(FaultOp::Write, Duration::ZERO);
    let reopened = Store::open(common::config(dir.path()).shards(1)).unwrap();
    assert_eq!(reopened.get("k2").unwrap().version(), 1);
    reopened.close().unwrap();
}

/// Regression: `close` during a `compact` released the data-dir lock while
/// the compaction was still about to rename and delete files, so another
/// process could open the dir meanwhile. Now `close` waits for it.
#[test]
fn close_waits_for_a_compaction_in_progress() {
    let _turn = turn();
    let dir = common::temp_dir();
    let store = Store::open(common::config(dir.path()).max_segment_records(4)).unwrap();
    for i in 0..20 {
        store
            .put_blocking(&format!("k{}", i % 5), &common::record(i, "v"))
            .unwrap();
    }
    let order = std::sync::Arc::new(AtomicUsize::new(0));
    let pause = Pause::arm(PausePoint::CompactFileWork);
    let compactor = {
        let (store, order) = (store.clone(), order.clone());
        std::thread::spawn(move || {
            let report = store.compact();
            (report, order.fetch_add(1, Ordering::SeqCst))
        })
    };
    pause.wait_until_held();
    let closer = {
        let (store, order) = (store.clone(), order.clone());
        std::thread::spawn(move || {
            let closed = store.close();
            (closed, order.fetch_add(1, Ordering::SeqCst))
        })
    };
    // Give `close` every chance to finish before the compaction goes on.
    std::thread::sleep(Duration::from_millis(300));
    pause.release();
    let (report, compact_rank) = compactor.join().unwrap();
    let (closed, close_rank) = closer.join().unwrap();
    closed.unwrap();
    let report = report.unwrap();
    assert!(
        report.segments_removed + report.segments_recycled > 0,
        "{report:?}"
    );
    assert!(
        compact_rank < close_rank,
        "close returned (and released the lock) before the compaction finished"
    );
    assert!(matches!(store.compact(), Err(Error::Closed)));
    let reopened = Store::open(common::config(dir.path())).unwrap();
    for k in 0..5 {
        assert!(reopened.get(&format!("k{k}")).is_some());
    }
    reopened.close().unwrap();
}

/// Two compactions at once (the retention thread and a user) take turns,
/// and both succeed.
#[test]
fn concurrent_compactions_take_turns() {
    let _turn = turn();
    let dir = common::temp_dir();
    let store = Store::open(common::config(dir.path()).max_segment_records(4)).unwrap();
    for i in 0..40 {
        store
            .put_blocking(&format!("k{}", i % 7), &common::record(i, "v"))
            .unwrap();
    }
    let pause = Pause::arm(PausePoint::CompactFileWork);
    let first = {
        let store = store.clone();
        std::thread::spawn(move || store.compact())
    };
    pause.wait_until_held();
    let second = {
        let store = store.clone();
        std::thread::spawn(move || store.compact())
    };
    std::thread::sleep(Duration::from_millis(200));
    pause.release();
    first.join().unwrap().unwrap();
    second.join().unwrap().unwrap();
    store.close().unwrap();
    let reopened = Store::open(common::config(dir.path())).unwrap();
    assert_eq!(reopened.len(), 7);
    reopened.close().unwrap();
}
