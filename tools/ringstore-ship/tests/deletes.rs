//! Deletes reach the table as rows with `op = 'delete'` (and `record` the
//! JSON `null`), exactly as many as `ringstore-log export` finds, and the
//! README's newest-per-key query leaves out the keys whose newest row is a
//! delete while keeping a key put back after its delete.
//!
//! Guards against the shipper reading a delete's payload as a record (it
//! refused the segment as damaged) or writing every row as a `put`.

mod common;

use common::*;
use ringstore::{PutOutcome, Record, Store};

fn record(version: i64) -> Record {
    Record::new()
        .with("collection_time", version)
        .with("name", format!("v{version}"))
}

#[test]
fn deletes_are_shipped_as_delete_rows_and_the_newest_query_skips_them() {
    let Some(stack) = stack("deletes_are_shipped_as_delete_rows_and_the_newest_query_skips_them")
    else {
        return;
    };
    let dir = temp_dir();
    let store = Store::open(config(dir.path())).unwrap();
    for v in 1..=3 {
        for k in 0..40 {
            store.put_blocking(&format!("key-{k}"), &record(v)).unwrap();
        }
    }
    let mut deletes = 0;
    // Deleted for good: key-0..key-9.
    for k in 0..10 {
        let o = store.delete_blocking(&format!("key-{k}"), 100).unwrap();
        assert_eq!(o, PutOutcome::Applied);
        deletes += 1;
    }
    // Deleted, then put back: key-10..key-14.
    for k in 10..15 {
        let key = format!("key-{k}");
        assert_eq!(
            store.delete_blocking(&key, 100).unwrap(),
            PutOutcome::Applied
        );
        assert_eq!(
            store.put_blocking(&key, &record(200)).unwrap(),
            PutOutcome::Applied
        );
        deletes += 1;
    }
    // A stale delete: in the log, changes nothing.
    assert!(matches!(
        store.delete_blocking("key-20", -1).unwrap(),
        PutOutcome::Stale { .. }
    ));
    deletes += 1;
    store.close().unwrap();

    let newest: Vec<(String, i64)> = (10..40)
        .map(|k| (format!("key-{k}"), if k < 15 { 200 } else { 3 }))
        .collect();
    let table = unique_table("deletes");
    let first = ok(&ship_once(&stack, dir.path(), &table, "svc-del"));
    assert_eq!(first["rows"], 40 * 3 + deletes + 5, "{first}");
    // Rows, sum(version), key hash and delete rows equal the export's; the
    // newest-per-key query gives exactly the live keys.
    let got = assert_table_equals_export(&stack, dir.path(), &table, "svc-del", &newest);
    assert_eq!(got["export"]["deletes"], deletes, "{got}");
    for reader in ["pyiceberg", "duckdb"] {
        assert_eq!(got[reader]["deletes"], deletes, "{reader}: {got}");
        assert!(got[reader]["newest"].get("key-0").is_none(), "{got}");
    }
}
