//! `Store::delete`: a versioned tombstone that wins or loses by version
//! exactly like a put, survives restarts in every shard count and crashes,
//! is copied forward by compaction while remembered and forgotten after
//! `Config::tombstone_retention` — never letting a write it beat come back.

#![expect(
    clippy::unwrap_used,
    reason = "test code: a failure here is a test failure"
)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use ringstore::{Durability, Error, PutOutcome, ReadOnlyStore, Store};

fn keys_of(store: &Store) -> Vec<String> {
    let mut keys: Vec<String> = store.keys().collect();
    keys.sort();
    keys
}

fn a_delete_wins_and_loses_by_version(durability: Durability) {
    let dir = common::temp_dir();
    let store = Store::open(common::config(dir.path()).durability(durability)).unwrap();
    store.put_blocking("a", &common::record(5, "a5")).unwrap();
    store.put_blocking("b", &common::record(1, "b1")).unwrap();
    assert_eq!(store.len(), 2);

    // Older than the record: nothing changes.
    assert_eq!(
        store.delete_blocking("a", 4).unwrap(),
        PutOutcome::Stale { current_version: 5 }
    );
    assert_eq!(store.get("a").unwrap().version(), 5);

    // Same version: the later write wins.
    assert_eq!(store.delete_blocking("a", 5).unwrap(), PutOutcome::Applied);
    store.flush_blocking().unwrap();
    assert!(store.get("a").is_none());
    assert_eq!(store.len(), 1, "a deleted key is not counted");
    assert_eq!(keys_of(&store), ["b"]);
    assert_eq!(store.iter().count(), 1);
    assert_eq!(store.scan_prefix("a").count(), 0);

    // A put older than the delete is stale; a newer one brings the key back.
    assert_eq!(
        store.put_blocking("a", &common::record(4, "a4")).unwrap(),
        PutOutcome::Stale { current_version: 5 }
    );
    assert!(store.get("a").is_none());
    assert_eq!(
        store.put_blocking("a", &common::record(6, "a6")).unwrap(),
        PutOutcome::Applied
    );
    store.flush_blocking().unwrap();
    assert_eq!(store.get("a").unwrap().version(), 6);
    assert_eq!(store.len(), 2);

    // Deleting a key never stored still keeps older puts out.
    assert_eq!(
        store.delete_blocking("never", 10).unwrap(),
        PutOutcome::Applied
    );
    assert_eq!(
        store
            .put_blocking("never", &common::record(9, "n9"))
            .unwrap(),
        PutOutcome::Stale {
            current_version: 10
        }
    );
    store.flush_blocking().unwrap();
    assert!(store.get("never").is_none());
    assert_eq!(store.len(), 2);
    store.close().unwrap();
}

#[test]
fn a_delete_wins_and_loses_by_version_sync() {
    a_delete_wins_and_loses_by_version(Durability::Sync);
}

#[test]
fn a_delete_wins_and_loses_by_version_async() {
    a_delete_wins_and_loses_by_version(Durability::Async);
}

#[test]
fn bad_deletes_get_typed_errors() {
    let dir = common::temp_dir();
    let store = Store::open(common::config(dir.path())).unwrap();
    assert!(matches!(
        store.delete_blocking("", 1),
        Err(Error::EmptyKey { .. })
    ));
    let long = "k".repeat(2000);
    assert!(matches!(
        store.delete_blocking(&long, 1),
        Err(Error::KeyTooLong { .. })
    ));
    let other = store.clone();
    store.close().unwrap();
    assert!(matches!(other.delete_blocking("a", 1), Err(Error::Closed)));
}

/// Recovery ranks tombstones like puts, whatever the shard count of the
/// run that wrote them and of the run that reads them.
#[test]
fn deletes_survive_reopening_with_any_shard_count() {
    let dir = common::temp_dir();
    let cfg = |shards: usize| common::config(dir.path()).shards(shards);
    let store = Store::open(cfg(1)).unwrap();
    for i in 0..60i64 {
        store
            .put_blocking(&format!("k{i}"), &common::record(10, "v"))
            .unwrap();
    }
    for i in (0..60i64).step_by(3) {
        store.delete_blocking(&format!("k{i}"), 10).unwrap();
    }
    store.close().unwrap();
    let expected: Vec<String> = {
        let mut k: Vec<String> = (0..60i64)
            .filter(|i| i % 3 != 0)
            .map(|i| format!("k{i}"))
            .collect();
        k.sort();
        k
    };
    for shards in [3, 2, 1, 4] {
        let store = Store::open(cfg(shards)).unwrap();
        assert_eq!(store.recovery_report().deleted_keys, 20, "{shards} shards");
        assert_eq!(keys_of(&store), expected, "{shards} shards");
        assert_eq!(store.len(), 40);
        // Still remembered: an older put of a deleted key is stale.
        assert_eq!(
            store.put_blocking("k0", &common::record(9, "old")).unwrap(),
            PutOutcome::Stale {
                current_version: 10
            },
            "{shards} shards"
        );
        assert!(ReadOnlyStore::open(dir.path()).unwrap().get("k3").is_none());
        store.close().unwrap();
    }
}

/// While remembered, a compaction copies each tombstone forward: once the
/// segments that held the deleted records are retired, the key stays
/// deleted after a reopen and older puts stay stale.
#[test]
fn compaction_keeps_remembered_tombstones() {
    let dir = common::temp_dir();
    let cfg = || {
        common::config(dir.path())
            .max_segment_records(8)
            .tombstone_retention(Duration::from_secs(3600))
    };
    let store = Store::open(cfg()).unwrap();
    for i in 0..40i64 {
        store
            .put_blocking(&format!("k{i}"), &common::record(1, "v"))
            .unwrap();
    }
    for i in 0..10i64 {
        store.delete_blocking(&format!("k{i}"), 2).unwrap();
    }
    let report = store.compact().unwrap();
    assert_eq!(report.records, 40, "30 records and 10 tombstones copied");
    assert_eq!(report.tombstones_forgotten, 0);
    assert!(report.segments_removed + report.segments_recycled > 0);
    store.close().unwrap();
    let store = Store::open(cfg()).unwrap();
    assert_eq!(store.len(), 30);
    assert!(store.get("k0").is_none());
    assert_eq!(
        store
            .put_blocking("k0", &common::record(1, "again"))
            .unwrap(),
        PutOutcome::Stale { current_version: 2 }
    );
    store.close().unwrap();
}

/// Past the retention a compaction forgets a tombstone: the key is unknown
/// again (any version applies), and after a reopen nothing of the deleted
/// record comes back.
#[test]
fn compaction_forgets_old_tombstones() {
    let dir = common::temp_dir();
    let cfg = || {
        common::config(dir.path())
            .max_segment_records(8)
            .tombstone_retention(Duration::ZERO)
    };
    let store = Store::open(cfg()).unwrap();
    for i in 0..20i64 {
        store
            .put_blocking(&format!("k{i}"), &common::record(5, "v"))
            .unwrap();
    }
    for i in 0..5i64 {
        store.delete_blocking(&format!("k{i}"), 5).unwrap();
    }
    let report = store.compact().unwrap();
    assert_eq!(report.tombstones_forgotten, 5);
    assert_eq!(report.records, 15);
    store.close().unwrap();

    let store = Store::open(cfg()).unwrap();
    assert_eq!(
        store.recovery_report().deleted_keys,
        0,
        "nothing left on disk"
    );
    assert_eq!(store.len(), 15);
    assert!(store.get("k0").is_none(), "the deleted record stays gone");
    assert_eq!(
        store
            .put_blocking("k0", &common::record(1, "older"))
            .unwrap(),
        PutOutcome::Applied,
        "a forgotten delete no longer keeps older puts out"
    );
    store.close().unwrap();
}

/// Marks every sealed segment of `shard-0` up to `through` as shipped.
fn mark_shipped(dir: &std::path::Path, through: u64) {
    let text = format!("ringstore-shipped 1\ninstance t\ntable ns.t\nshard-0 {through} 1 0\nend\n");
    std::fs::write(dir.join("SHIPPED"), text).unwrap();
}

/// Seqs of the segments in `shard-0`.
/// One shard, one record per segment, segments kept until shipped, and
/// tombstones forgotten at the first compaction that may forget them.
fn forgetting_behind_a_shipper(dir: &std::path::Path) -> ringstore::Config {
    common::config(dir)
        .shards(1)
        .max_segment_records(1)
        .retain_until_shipped(true)
        .tombstone_retention(Duration::ZERO)
}

fn segment_seqs(dir: &std::path::Path) -> Vec<u64> {
    ringstore::inspect::segments(&dir.join("shard-0"))
        .unwrap()
        .into_iter()
        .map(|(seq, _)| seq)
        .collect()
}

/// A put older than a tombstone is still written to the log, after the
/// tombstone. Regression guard: a compaction that forgot the tombstone
/// while the shipper still held back that put's segment (and let the
/// tombstone's own segment go) made the stale put come back at the next
/// open. A tombstone is now kept by two more compactions after an older
/// write lost to it.
#[test]
fn a_stale_put_never_comes_back_after_its_tombstone_is_forgotten() {
    let dir = common::temp_dir();
    let cfg = || forgetting_behind_a_shipper(dir.path());
    let store = Store::open(cfg()).unwrap();
    let stale = |note: &str| {
        assert_eq!(
            store.put_blocking("k", &common::record(6, note)).unwrap(),
            PutOutcome::Stale { current_version: 7 }
        );
    };
    store.put_blocking("k", &common::record(5, "v5")).unwrap();
    store.delete_blocking("k", 7).unwrap();
    stale("first stale");
    // Everything shipped: the compaction retires all it supersedes.
    mark_shipped(dir.path(), u64::MAX / 2);
    let mut forgotten = vec![store.compact().unwrap().tombstones_forgotten];
    let copy = *segment_seqs(dir.path()).last().unwrap();
    // A later stale put lands in a segment after the tombstone's copy; the
    // shipper has the copy's segment but not that one.
    stale("second stale");
    mark_shipped(dir.path(), copy);
    let report = store.compact().unwrap();
    forgotten.push(report.tombstones_forgotten);
    assert!(report.segments_kept_unshipped > 0, "{report:?}");
    store.close().unwrap();

    let store = Store::open(cfg()).unwrap();
    assert!(
        store.get("k").is_none(),
        "the stale put came back: {:?}",
        store.get("k").map(|r| r.to_json())
    );
    // Once everything is shipped, the first compaction of this run retires
    // the held-back segment (a reopened store forgets nothing before one
    // compaction kept nothing back), and the next forgets the tombstone.
    mark_shipped(dir.path(), u64::MAX / 2);
    for _ in 0..3 {
        forgotten.push(store.compact().unwrap().tombstones_forgotten);
    }
    assert_eq!(forgotten, [0, 0, 0, 1, 0]);
    store.close().unwrap();
    let store = Store::open(cfg()).unwrap();
    assert!(store.get("k").is_none());
    assert_eq!(store.recovery_report().deleted_keys, 0);
    store.close().unwrap();
}

/// Regression guard: with `retain_until_shipped`, a compaction may keep a
/// folder the shipper has not shipped (here the folder of a run with more
/// shards, holding an older put of the key) while it retires the
/// tombstone's own segments. Forgetting the tombstone then would let that
/// put come back at the next open; a checkpoint forgets nothing until a
/// compaction kept nothing back.
#[test]
fn a_tombstone_outlives_older_puts_the_shipper_holds_back() {
    let dir = common::temp_dir();
    // A key that two shards route to folder 1.
    let key = (0..)
        .map(|i| format!("k{i}"))
        .find(|k| ringstore::inspect::shard_for(k, 2) == 1)
        .unwrap();
    let store = Store::open(common::config(dir.path()).shards(2)).unwrap();
    store.put_blocking(&key, &common::record(5, "v5")).unwrap();
    store.close().unwrap();

    let cfg = || forgetting_behind_a_shipper(dir.path());
    let store = Store::open(cfg()).unwrap();
    store.delete_blocking(&key, 7).unwrap();
    // The shipper has all of folder 0 and nothing of folder 1.
    mark_shipped(dir.path(), u64::MAX / 2);
    let reports: Vec<_> = (0..3).map(|_| store.compact().unwrap()).collect();
    store.close().unwrap();
    let store = Store::open(cfg()).unwrap();
    assert!(
        store.get(&key).is_none(),
        "the put the shipper held back came back: {:?}",
        store.get(&key).map(|r| r.to_json())
    );
    store.close().unwrap();
    for report in reports {
        assert_eq!(report.tombstones_forgotten, 0, "{report:?}");
        assert!(report.segments_kept_unshipped > 0, "{report:?}");
    }
}

const CHILD_DIR: &str = "RINGSTORE_DELETE_CHILD_DIR";

/// The child: puts key `k{i}` then deletes it, printing each acknowledged
/// delete, until killed.
fn child(dir: &str) {
    let store = Store::open(common::config(std::path::Path::new(dir))).unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0i64.. {
        let key = format!("k{i}");
        store.put_blocking(&key, &common::record(1, "v")).unwrap();
        let _ = writeln!(out, "PUT {i}");
        if i % 2 == 0 {
            assert_eq!(store.delete_blocking(&key, 1).unwrap(), PutOutcome::Applied);
            let _ = writeln!(out, "DEL {i}");
        }
        let _ = out.flush();
    }
}

/// A SIGKILL while putting and deleting: every acknowledged delete holds
/// after the reopen, every acknowledged put of a key not deleted is there.
#[test]
fn sigkill_keeps_every_acknowledged_delete() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        child(&dir);
        return;
    }
    let dir = common::temp_dir();
    let mut child = common::spawn_self(
        "sigkill_keeps_every_acknowledged_delete",
        (CHILD_DIR, dir.path()),
    );
    let (mut puts, mut deletes) = (Vec::new(), Vec::new());
    for line in BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        if let Some(i) = line.strip_prefix("PUT ") {
            puts.push(i.parse::<i64>().unwrap());
        } else if let Some(i) = line.strip_prefix("DEL ") {
            deletes.push(i.parse::<i64>().unwrap());
            if deletes.len() == 150 {
                child.kill().unwrap();
            }
        }
    }
    child.wait().unwrap();
    assert!(deletes.len() >= 150);
    let store = Store::open(common::config(dir.path())).unwrap();
    for i in &deletes {
        assert!(store.get(&format!("k{i}")).is_none(), "delete of k{i} lost");
    }
    for i in puts.iter().filter(|i| *i % 2 == 1) {
        assert!(store.get(&format!("k{i}")).is_some(), "put of k{i} lost");
    }
    store.close().unwrap();
}
