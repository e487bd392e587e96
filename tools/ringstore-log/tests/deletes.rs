//! Deletes through every command, as processes, on a data dir written with
//! `Store::delete_blocking`: a key deleted for good, a key deleted then put
//! back, a stale delete (older than the record, `Stale`, still in the log),
//! a delete of a key never put, and a delete in a second generation.
//!
//! Guards against the tools reading a delete's payload (8 bytes: the
//! deletion time) as a record: `verify` called every delete a problem,
//! `dump` and `export` skipped them as damage, and `latest` could not say
//! which keys were deleted.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a test failure"
)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{DiskFrame, export, frames, json_lines, record, run_on, stderr, stdout, temp_dir};
use ringstore::{PutOutcome, Store};

fn now_unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// One delete made through the store, and when (bounds on its deletion time).
#[derive(Debug, Clone)]
struct Deleted {
    key: String,
    version: i64,
    applied: bool,
    after_ns: u64,
    before_ns: u64,
}

/// What `story` wrote.
struct Story {
    deletes: Vec<Deleted>,
    /// Keys that hold a record at the end, with their version.
    live: BTreeMap<String, i64>,
    /// Keys whose newest frame is a delete, with the delete's version.
    gone: BTreeMap<String, i64>,
}

fn delete(store: &Store, key: &str, version: i64, out: &mut Vec<Deleted>) -> PutOutcome {
    let after_ns = now_unix_ns();
    let outcome = store.delete_blocking(key, version).unwrap();
    let before_ns = now_unix_ns();
    out.push(Deleted {
        key: key.to_owned(),
        version,
        applied: outcome == PutOutcome::Applied,
        after_ns,
        before_ns,
    });
    outcome
}

/// Writes the story through the public API, in two generations.
fn story(dir: &Path) -> Story {
    let mut deletes = Vec::new();
    let store = Store::open(common::config(dir)).unwrap();
    for k in 0..6 {
        store
            .put_blocking(&format!("key-{k}"), &record(k, 10))
            .unwrap();
    }
    // Deleted for good.
    assert_eq!(
        delete(&store, "key-1", 20, &mut deletes),
        PutOutcome::Applied
    );
    // Deleted, then brought back by a newer put.
    assert_eq!(
        delete(&store, "key-2", 20, &mut deletes),
        PutOutcome::Applied
    );
    assert_eq!(
        store.put_blocking("key-2", &record(2, 30)).unwrap(),
        PutOutcome::Applied
    );
    // A stale delete: older than the record, changes nothing.
    assert!(matches!(
        delete(&store, "key-3", 5, &mut deletes),
        PutOutcome::Stale { .. }
    ));
    // A key the store never held.
    assert_eq!(
        delete(&store, "never-put", 7, &mut deletes),
        PutOutcome::Applied
    );
    store.close().unwrap();

    let store = Store::open(common::config(dir)).unwrap();
    assert_eq!(
        delete(&store, "key-4", 11, &mut deletes),
        PutOutcome::Applied
    );
    // A put older than the tombstone stays out.
    assert!(matches!(
        store.put_blocking("key-4", &record(4, 9)).unwrap(),
        PutOutcome::Stale { .. }
    ));
    store.close().unwrap();

    let live = [("key-0", 10), ("key-2", 30), ("key-3", 10), ("key-5", 10)];
    let gone = [("key-1", 20), ("key-4", 11), ("never-put", 7)];
    let owned = |v: &[(&str, i64)]| v.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
    Story {
        deletes,
        live: owned(&live),
        gone: owned(&gone),
    }
}

fn disk_deletes(disk: &[DiskFrame]) -> Vec<&DiskFrame> {
    disk.iter().filter(|f| f.op == "delete").collect()
}

/// The delete of the story that wrote frame `f`.
fn made<'a>(s: &'a Story, f: &DiskFrame) -> &'a Deleted {
    s.deletes
        .iter()
        .find(|d| d.key == f.key && d.version == f.version)
        .unwrap_or_else(|| panic!("no delete of the story wrote {f:?}"))
}

#[test]
fn dump_shows_every_delete_with_its_version_and_deletion_time() {
    let dir = temp_dir();
    let s = story(dir.path());
    let disk = frames(dir.path());
    // Every delete is in the log, the stale one included.
    assert_eq!(disk_deletes(&disk).len(), s.deletes.len(), "{disk:?}");

    let o = run_on("dump", dir.path(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "", "nothing reported as damage");
    let lines = json_lines(&stdout(&o));
    assert_eq!(
        lines.len(),
        disk.len(),
        "one line per frame, deletes included"
    );
    for (line, f) in lines.iter().zip(&disk) {
        assert_eq!(line["key"], f.key.as_str());
        assert_eq!(line["version"], f.version);
        assert_eq!(line["op"], f.op, "{line}");
        assert_eq!(line["offset"], f.offset);
        match f.op {
            "delete" => {
                assert_eq!(line["record"], serde_json::Value::Null, "{line}");
                let at = line["deleted_at_unix_ns"].as_u64().unwrap();
                let d = made(&s, f);
                assert!(
                    (d.after_ns..=d.before_ns).contains(&at),
                    "{line}: deletion time outside the call {d:?}"
                );
                assert_eq!(Some(at), f.deleted_at_unix_ns);
            }
            _ => {
                assert_eq!(line["deleted_at_unix_ns"], serde_json::Value::Null);
                assert_eq!(line["record"]["collection_time"], f.version, "{line}");
            }
        }
    }

    // The stale delete is in the dump too (the log keeps it).
    let stale: Vec<&Deleted> = s.deletes.iter().filter(|d| !d.applied).collect();
    assert_eq!(stale.len(), 1, "{:?}", s.deletes);
    for d in stale {
        assert!(
            lines.iter().any(|l| l["op"] == "delete"
                && l["key"] == d.key.as_str()
                && l["version"] == d.version),
            "stale delete {d:?} missing"
        );
    }

    // Only one key's history: its put, its delete, its put back.
    let o = run_on("dump", dir.path(), &["--key", "key-2"]);
    let ops: Vec<(String, i64)> = json_lines(&stdout(&o))
        .iter()
        .map(|l| {
            (
                l["op"].as_str().unwrap().to_owned(),
                l["version"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            ("put".into(), 10),
            ("delete".into(), 20),
            ("put".into(), 30)
        ]
    );

    let o = run_on("dump", dir.path(), &["--format", "table"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    let mut rows = text.lines();
    assert!(rows.next().unwrap().contains(" op "), "{text}");
    let delete_rows: Vec<&str> = rows.filter(|r| r.contains(" delete ")).collect();
    assert_eq!(delete_rows.len(), s.deletes.len(), "{text}");
    assert!(
        delete_rows.iter().any(|r| r.ends_with("\"never-put\"")),
        "{text}"
    );
}

#[test]
fn verify_counts_deletes_and_calls_none_of_them_damage() {
    let dir = temp_dir();
    let s = story(dir.path());
    let disk = frames(dir.path());
    let o = run_on("verify", dir.path(), &["--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let lines = json_lines(&stdout(&o));
    assert_eq!(lines.len(), 1, "no finding, only the summary: {lines:?}");
    let summary = &lines[0];
    assert_eq!(summary["problems"], 0, "{summary}");
    assert_eq!(summary["frames"], disk.len());
    assert_eq!(summary["deletes"], s.deletes.len(), "{summary}");

    let o = run_on("verify", dir.path(), &["--strict"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains(&format!("({} deletes)", s.deletes.len())),
        "{}",
        stdout(&o)
    );
}

#[test]
fn latest_leaves_deleted_keys_out_unless_asked_and_agrees_with_the_store() {
    let dir = temp_dir();
    let s = story(dir.path());
    let o = run_on("latest", dir.path(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines = json_lines(&stdout(&o));
    let got: BTreeMap<String, i64> = lines
        .iter()
        .map(|l| {
            assert_eq!(l["op"], "put", "{l}");
            (
                l["key"].as_str().unwrap().to_owned(),
                l["version"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, s.live);
    assert!(
        stderr(&o).contains(&format!("{} deleted keys not listed", s.gone.len())),
        "{}",
        stderr(&o)
    );

    // What the store itself recovers.
    let store = Store::open(common::config(dir.path())).unwrap();
    assert_eq!(store.len(), s.live.len());
    for (key, version) in &s.live {
        assert_eq!(store.get(key).unwrap().version(), *version, "{key}");
    }
    for key in s.gone.keys() {
        assert!(store.get(key).is_none(), "{key}");
    }
    store.close().unwrap();

    let o = run_on("latest", dir.path(), &["--include-deleted"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("not listed"), "{}", stderr(&o));
    let lines = json_lines(&stdout(&o));
    let keys: Vec<&str> = lines.iter().map(|l| l["key"].as_str().unwrap()).collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "sorted: {keys:?}");
    assert_eq!(lines.len(), s.live.len() + s.gone.len());
    let disk = frames(dir.path());
    for l in &lines {
        let key = l["key"].as_str().unwrap();
        let version = l["version"].as_i64().unwrap();
        let at = disk
            .iter()
            .find(|f| l["shard"] == f.shard && l["segment"] == f.seq && l["offset"] == f.offset)
            .unwrap_or_else(|| panic!("no frame at {l}"));
        assert_eq!((at.key.as_str(), at.version), (key, version), "{l}");
        if let Some(v) = s.gone.get(key) {
            assert_eq!(version, *v, "{l}");
            assert_eq!(l["op"], "delete", "{l}");
            assert_eq!(at.op, "delete", "{l}");
            assert_eq!(l["record"], serde_json::Value::Null, "{l}");
            assert_eq!(l["deleted_at_unix_ns"].as_u64(), at.deleted_at_unix_ns);
        } else {
            assert_eq!(s.live.get(key), Some(&version), "{l}");
            assert_eq!(l["op"], "put", "{l}");
        }
    }
}

#[test]
fn ls_counts_records_and_deletes_apart() {
    let dir = temp_dir();
    let s = story(dir.path());
    let disk = frames(dir.path());
    let o = run_on("ls", dir.path(), &["--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines = json_lines(&stdout(&o));
    let total = lines.last().unwrap();
    assert_eq!(total["deletes"], s.deletes.len(), "{total}");
    assert_eq!(total["records"], disk.len() - s.deletes.len(), "{total}");
    for line in &lines[..lines.len() - 1] {
        let seq = line["segment"].as_u64().unwrap();
        let mine = disk
            .iter()
            .filter(|f| line["shard"] == f.shard && f.seq == seq);
        let deletes = mine.clone().filter(|f| f.op == "delete").count();
        assert_eq!(line["deletes"], deletes, "{line}");
        assert_eq!(line["records"], mine.count() - deletes, "{line}");
    }
}

#[test]
fn jsonl_export_marks_deletes_like_dump_and_latest() {
    let dir = temp_dir();
    let s = story(dir.path());
    let out_dir = temp_dir();
    let all = out_dir.path().join("all.jsonl");
    let o = export(dir.path(), "jsonl", &all, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(&all).unwrap();
    assert_eq!(text, stdout(&run_on("dump", dir.path(), &[])));
    let deletes = json_lines(&text)
        .iter()
        .filter(|l| l["op"] == "delete")
        .count();
    assert_eq!(deletes, s.deletes.len());

    let latest = out_dir.path().join("latest.jsonl");
    let o = export(
        dir.path(),
        "jsonl",
        &latest,
        &["--latest", "--include-deleted"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&latest).unwrap(),
        stdout(&run_on("latest", dir.path(), &["--include-deleted"]))
    );
    let o = export(dir.path(), "jsonl", &latest, &["--latest"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        json_lines(&std::fs::read_to_string(&latest).unwrap()).len(),
        s.live.len()
    );

    // --include-deleted only means something for the newest per key.
    let o = export(dir.path(), "jsonl", &latest, &["--include-deleted"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[cfg(feature = "parquet")]
#[test]
fn parquet_export_has_an_op_column_and_null_fields_for_deletes() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::RowAccessor;

    let dir = temp_dir();
    let s = story(dir.path());
    let out_dir = temp_dir();
    let out = out_dir.path().join("all.parquet");
    let o = export(dir.path(), "parquet", &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let reader = SerializedFileReader::new(std::fs::File::open(&out).unwrap()).unwrap();
    let names: Vec<String> = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    let col = |n: &str| {
        names
            .iter()
            .position(|c| c == n)
            .unwrap_or_else(|| panic!("no column {n}: {names:?}"))
    };
    let disk = frames(dir.path());
    let mut n = 0;
    for (row, f) in reader.get_row_iter(None).unwrap().zip(&disk) {
        let row = row.unwrap();
        assert_eq!(row.get_string(col("key")).unwrap(), &f.key);
        assert_eq!(row.get_string(col("op")).unwrap(), f.op);
        let deleted_at = row.get_long(col("deleted_at_unix_ns")).ok();
        let collection_time = row.get_long(col("collection_time")).ok();
        match f.op {
            "delete" => {
                assert_eq!(deleted_at.map(|t| t as u64), f.deleted_at_unix_ns);
                assert_eq!(collection_time, None, "a delete has no fields");
                let d = made(&s, f);
                assert!((d.after_ns..=d.before_ns).contains(&f.deleted_at_unix_ns.unwrap()));
            }
            _ => {
                assert_eq!(deleted_at, None);
                assert_eq!(collection_time, Some(f.version));
            }
        }
        n += 1;
    }
    assert_eq!(n, disk.len());

    let latest = out_dir.path().join("latest.parquet");
    let o = export(
        dir.path(),
        "parquet",
        &latest,
        &["--latest", "--include-deleted"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let reader = SerializedFileReader::new(std::fs::File::open(&latest).unwrap()).unwrap();
    let ops: BTreeMap<String, String> = reader
        .get_row_iter(None)
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            (
                r.get_string(col("key")).unwrap().clone(),
                r.get_string(col("op")).unwrap().clone(),
            )
        })
        .collect();
    for key in s.live.keys() {
        assert_eq!(ops.get(key).map(String::as_str), Some("put"), "{key}");
    }
    for key in s.gone.keys() {
        assert_eq!(ops.get(key).map(String::as_str), Some("delete"), "{key}");
    }
    assert_eq!(ops.len(), s.live.len() + s.gone.len());
}
