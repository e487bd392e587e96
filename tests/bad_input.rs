//! Every class of bad input gets its exact typed error, writes nothing, and
//! leaves the store working.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failure here is a test failure"
)]

mod common;

use ringstore::{Config, Error, PutOutcome, Record, Store, Value};

fn frames(dir: &std::path::Path) -> usize {
    common::read_all_frames(dir).len()
}

fn assert_still_works(store: &Store, dir: &std::path::Path) {
    let before = frames(dir);
    assert_eq!(
        store
            .put_blocking("healthy", &common::record(before as i64, "ok"))
            .unwrap(),
        PutOutcome::Applied
    );
    assert_eq!(frames(dir), before + 1);
}

/// A record whose `nested` field is `depth` levels deep.
fn deep_record(depth: usize) -> Record {
    let mut v = Value::Int(1);
    for _ in 1..depth {
        v = Value::List(vec![v]);
    }
    common::record(1, "deep").with("nested", v)
}

#[test]
fn bad_puts_are_refused_and_change_nothing() {
    let dir = common::temp_dir();
    let store = Store::open(common::config(dir.path()).max_record_bytes(64 << 10)).unwrap();
    type Case = (&'static str, String, Record, fn(&Error) -> bool);
    let cases: Vec<Case> = vec![
        ("empty key", String::new(), common::record(1, "x"), |e| {
            matches!(e, Error::EmptyKey { .. })
        }),
        ("long key", "k".repeat(1025), common::record(1, "x"), |e| {
            matches!(
                e,
                Error::KeyTooLong {
                    len_bytes: 1025,
                    max_bytes: 1024
                }
            )
        }),
        (
            "big record",
            "big".into(),
            common::record(1, &"x".repeat(100 << 10)),
            |e| {
                matches!(
                    e,
                    Error::RecordTooLarge {
                        max_bytes: 65536,
                        ..
                    }
                )
            },
        ),
        (
            "no version",
            "nov".into(),
            Record::new().with("other", 1i64),
            |e| matches!(e, Error::MissingVersion { field, .. } if field == "collection_time"),
        ),
        (
            "float version",
            "fv".into(),
            Record::new().with("collection_time", 1.5),
            |e| matches!(e, Error::InvalidVersion { found: "Float", .. }),
        ),
        (
            "string version",
            "sv".into(),
            Record::new().with("collection_time", Value::Str("5".into())),
            |e| matches!(e, Error::InvalidVersion { found: "Str", .. }),
        ),
        (
            "too deep",
            "deep".into(),
            deep_record(ringstore::MAX_VALUE_DEPTH + 1),
            |e| matches!(e, Error::TooDeep { max_depth: 64, .. }),
        ),
    ];
    for (name, key, record, is_expected) in cases {
        let before = frames(dir.path());
        let err = store.put_blocking(&key, &record).expect_err(name);
        assert!(is_expected(&err), "{name}: unexpected error {err:?}");
        assert!(!err.to_string().is_empty());
        assert_eq!(frames(dir.path()), before, "{name}: something was written");
        assert!(
            store.get(&key).is_none(),
            "{name}: something became readable"
        );
        assert_still_works(&store, dir.path());
    }
    // A key of exactly the maximum length, and the deepest allowed nesting, are fine.
    store
        .put_blocking("deep", &deep_record(ringstore::MAX_VALUE_DEPTH))
        .unwrap();
    store
        .put_blocking(&"k".repeat(1024), &common::record(1, "max"))
        .unwrap();
    store.close().unwrap();
}

#[test]
fn put_after_close_is_refused_and_gets_still_answer() {
    let dir = common::temp_dir();
    let store = Store::open(common::config(dir.path())).unwrap();
    store.put_blocking("a", &common::record(1, "a")).unwrap();
    let clone = store.clone();
    store.close().unwrap();
    assert!(matches!(
        clone.put_blocking("a", &common::record(2, "a")),
        Err(Error::Closed)
    ));
    assert_eq!(clone.get("a").unwrap().version(), 1);
    assert_eq!(frames(dir.path()), 1);
}

#[test]
fn second_open_of_a_dir_is_locked() {
    let dir = common::temp_dir();
    let store = Store::open(common::config(dir.path())).unwrap();
    match Store::open(common::config(dir.path())) {
        Err(Error::Locked { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
        other => panic!("expected Locked, got {other:?}"),
    }
    assert_still_works(&store, dir.path());
    store.close().unwrap();
    // Released by `close`, even while the closed handle still serves gets.
    let again = Store::open(common::config(dir.path())).unwrap();
    assert_eq!(
        store.get("healthy").map(|r| r.version()),
        again.get("healthy").map(|r| r.version())
    );
    again.close().unwrap();
    drop(again);
    drop(store);
    // And released when a store is dropped without `close`.
    drop(Store::open(common::config(dir.path())).unwrap());
    Store::open(common::config(dir.path()))
        .unwrap()
        .close()
        .unwrap();
}

#[test]
fn invalid_config_is_refused() {
    let dir = common::temp_dir();
    let cases = [
        (common::config(dir.path()).shards(0), "shards"),
        (
            common::config(dir.path()).version_field(""),
            "version_field",
        ),
        (common::config(dir.path()).queue_depth(0), "queue_depth"),
        (
            common::config(dir.path()).max_record_bytes(0),
            "max_record_bytes",
        ),
        (
            common::config(dir.path()).max_segment_bytes(4096),
            "max_segment_bytes",
        ),
        (
            common::config(dir.path()).flush_interval_ms(0),
            "flush_interval_ms",
        ),
        (
            common::config(dir.path()).wake_stalled_shard_after_ms(60_001),
            "wake_stalled_shard_after_ms",
        ),
        (
            common::config(dir.path()).record_buffer_pool_bytes((1 << 30) + 1),
            "record_buffer_pool_bytes",
        ),
    ];
    for (config, field) in cases {
        match Store::open(config) {
            Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: expected InvalidConfig, got {other:?}"),
        }
    }
}

#[test]
fn tmpfs_dir_is_refused_unless_allowed() {
    let shm = std::path::Path::new("/dev/shm");
    let is_tmpfs = std::fs::read_to_string("/proc/mounts")
        .map(|m| {
            m.lines().any(|l| {
                l.split(' ').nth(1) == Some("/dev/shm") && l.split(' ').nth(2) == Some("tmpfs")
            })
        })
        .unwrap_or(false);
    if !is_tmpfs {
        eprintln!("skipped: /dev/shm is not a tmpfs mount on this machine");
        return;
    }
    let dir = tempfile::tempdir_in(shm).unwrap();
    match Store::open(Config::new(dir.path()).shards(1).pin_cpus(false)) {
        Err(Error::NoDirectIo { filesystem, .. }) => {
            assert!(filesystem.contains("tmpfs"), "{filesystem}")
        }
        other => panic!("expected NoDirectIo, got {other:?}"),
    }
    let store = Store::open(
        Config::new(dir.path())
            .shards(1)
            .pin_cpus(false)
            .allow_non_durable_dir(true),
    )
    .unwrap();
    store
        .put_blocking("t", &common::record(1, "tmpfs"))
        .unwrap();
    assert_eq!(store.get("t").unwrap().version(), 1);
    store.close().unwrap();
}

/// Runs this test binary again, in a child with RLIMIT_MEMLOCK lowered, to
/// check that `open` reports the limit instead of letting glommio fail.
#[test]
fn low_memlock_is_reported_with_its_remedy() {
    if std::env::var_os("RINGSTORE_MEMLOCK_CHILD").is_some() {
        let dir = common::temp_dir();
        // Forced io_uring: `IoBackend::Auto` would fall back to the portable
        // backend instead (tests/io_backends.rs).
        match Store::open(common::config(dir.path()).io_backend(ringstore::IoBackend::IoUring)) {
            Err(e @ Error::MemlockTooLow { .. }) => {
                assert!(e.to_string().contains("ulimit -l"), "{e}");
                println!("CHILD-OK");
            }
            other => panic!("expected MemlockTooLow, got {other:?}"),
        }
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg("ulimit -l 64 && exec \"$0\" --exact low_memlock_is_reported_with_its_remedy --nocapture")
        .arg(&exe)
        .env("RINGSTORE_MEMLOCK_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CHILD-OK"),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
