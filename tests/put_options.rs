//! `put_with` (durability per put) and `put_many` (batches): outcomes in
//! input order, per-item errors, and what a crash in the middle of a batch
//! leaves (a real SIGKILL of a child process).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use ringstore::failpoints::{FaultOp, FaultPlan};
use ringstore::{Durability, Error, PutOptions, PutOutcome, Record, Store};

const CHILD_DIR: &str = "RINGSTORE_PUT_MANY_CHILD_DIR";

#[test]
fn put_many_gives_one_outcome_per_item_in_order() {
    let dir = common::temp_dir();
    let store = Store::open(common::config(dir.path()).shards(3)).unwrap();
    store.put_blocking("k1", &common::record(10, "v")).unwrap();
    let good = common::record(5, "a");
    let newer = common::record(20, "b");
    let no_version = Record::new().with("note", "x");
    let items: Vec<(&str, &Record)> = vec![
        ("k0", &good),
        ("k1", &good), // older than the stored 10
        ("", &good),   // bad key
        ("k2", &no_version),
        ("k1", &newer),
        ("k3", &newer),
    ];
    let out = store.put_many_blocking(items);
    assert_eq!(out.len(), 6);
    assert!(matches!(out[0], Ok(PutOutcome::Applied)));
    assert!(
        matches!(
            out[1],
            Ok(PutOutcome::Stale {
                current_version: 10
            })
        ),
        "{:?}",
        out[1]
    );
    assert!(
        matches!(out[2], Err(Error::EmptyKey { .. })),
        "{:?}",
        out[2]
    );
    assert!(
        matches!(out[3], Err(Error::MissingVersion { .. })),
        "{:?}",
        out[3]
    );
    assert!(matches!(out[4], Ok(PutOutcome::Applied)));
    assert!(matches!(out[5], Ok(PutOutcome::Applied)));
    assert_eq!(store.get("k1").unwrap().version(), 20);
    assert!(store.get("k2").is_none());
    assert_eq!(store.len(), 3);
    store.close().unwrap();
}

/// A `Sync` put in an `Async` store resolves only once durable: with the
/// background flush 60 s away, only its own flush can have synced it, which
/// the store's shard stats count.
#[test]
fn a_durable_put_in_an_async_store_waits_for_its_flush() {
    let dir = common::temp_dir();
    let store = Store::open(
        common::config(dir.path())
            .shards(1)
            .durability(Durability::Async)
            .flush_interval_ms(60_000),
    )
    .unwrap();
    store.put_blocking("lazy", &common::record(1, "v")).unwrap();
    let synced_before: u64 = store.shard_stats().iter().map(|s| s.syncs).sum();
    let durable = PutOptions {
        durability: Durability::Sync,
    };
    store
        .put_with_blocking("eager", &common::record(1, "v"), durable)
        .unwrap();
    let synced_after: u64 = store.shard_stats().iter().map(|s| s.syncs).sum();
    assert!(
        synced_after > synced_before,
        "the put resolved without a flush ({synced_before} -> {synced_after})"
    );
    store.close().unwrap();
}

/// An `Async` put in a `Sync` store resolves once handed to a write, before
/// it is durable, and is readable only once durable. The simulated disk
/// holds every write for 2 s.
#[test]
fn a_fire_and_forget_put_in_a_sync_store_is_answered_before_durable() {
    let dir = common::temp_dir();
    let plan = FaultPlan::new();
    let store = Store::open(
        common::config(dir.path())
            .shards(1)
            .fault_plan(plan.clone()),
    )
    .unwrap();
    plan.delay(FaultOp::Write, Duration::from_secs(2));
    let fire_and_forget = PutOptions {
        durability: Durability::Async,
    };
    let outcome = store
        .put_with_blocking("k", &common::record(3, "v"), fire_and_forget)
        .unwrap();
    assert_eq!(outcome, PutOutcome::Applied);
    assert!(
        store.get("k").is_none(),
        "answered while its write is still held: not readable yet"
    );
    // A durable put after it waits for both writes.
    store.put_blocking("k2", &common::record(1, "v")).unwrap();
    assert_eq!(
        store.get("k").unwrap().version(),
        3,
        "readable once durable"
    );
    plan.delay(FaultOp::Write, Duration::ZERO);
    store.close().unwrap();
}

/// Regression: `flush` in a `Sync` store answered at once, as if every
/// acknowledged put were durable, but a fire-and-forget put is answered
/// before its write completes. `flush` now waits for the writes in flight.
#[test]
fn flush_in_a_sync_store_covers_fire_and_forget_puts() {
    let dir = common::temp_dir();
    let plan = FaultPlan::new();
    let store = Store::open(
        common::config(dir.path())
            .shards(1)
            .fault_plan(plan.clone()),
    )
    .unwrap();
    plan.delay(FaultOp::Write, Duration::from_millis(500));
    let fire_and_forget = PutOptions {
        durability: Durability::Async,
    };
    store
        .put_with_blocking("k", &common::record(3, "v"), fire_and_forget)
        .unwrap();
    assert!(store.get("k").is_none(), "its write is still held");
    store.flush_blocking().unwrap();
    assert_eq!(
        store.get("k").map(|r| r.version()),
        Some(3),
        "durable (and so readable) once flush returns"
    );
    plan.delay(FaultOp::Write, Duration::ZERO);
    store.close().unwrap();
}

/// In the child: `put_many` calls of 16 items forever, printing `ACK n`
/// after call `n` resolved.
#[expect(
    clippy::unwrap_used,
    reason = "the test's child: a failure fails the test"
)]
fn child(dir: &str) {
    let store = Store::open(common::config(std::path::Path::new(dir))).unwrap();
    let records: Vec<Record> = (0..16).map(|j| common::record(j, "batch")).collect();
    for call in 0u64.. {
        let keys: Vec<String> = (0..16).map(|j| format!("c{call}-{j}")).collect();
        let items: Vec<(&str, &Record)> = keys
            .iter()
            .map(String::as_str)
            .zip(records.iter())
            .collect();
        for outcome in store.put_many_blocking(items) {
            outcome.unwrap();
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "ACK {call}");
        let _ = out.flush();
    }
}

/// A SIGKILL in the middle of `put_many` calls: every item of every call
/// that resolved is back, and the calls cut short left whole items or
/// nothing (the store opens in the default mode).
#[test]
fn sigkill_during_put_many_keeps_every_resolved_call() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        child(&dir);
        return;
    }
    let dir = common::temp_dir();
    for (round, kill_after) in [3u64, 17, 40].into_iter().enumerate() {
        let mut child = common::spawn_self(
            "sigkill_during_put_many_keeps_every_resolved_call",
            (CHILD_DIR, dir.path()),
        );
        let mut acked = Vec::new();
        for line in BufReader::new(child.stdout.take().unwrap())
            .lines()
            .map_while(Result::ok)
        {
            if let Some(n) = line.strip_prefix("ACK ") {
                acked.push(n.parse::<u64>().unwrap());
                if acked.len() as u64 == kill_after {
                    child.kill().unwrap();
                }
            }
        }
        child.wait().unwrap();
        assert!(acked.len() as u64 >= kill_after, "round {round}");
        let store = Store::open(common::config(dir.path())).unwrap();
        for call in &acked {
            for j in 0..16 {
                assert!(
                    store.get(&format!("c{call}-{j}")).is_some(),
                    "round {round}: item {j} of resolved call {call} lost"
                );
            }
        }
        store.close().unwrap();
    }
}
