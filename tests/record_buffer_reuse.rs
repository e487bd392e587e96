//! `put` serializes into the buffers of superseded records
//! (`Config::record_buffer_pool_bytes`). A buffer may be reused only once no
//! handle can see its record: a `RecordRef` kept across many newer puts of
//! its key must still read exactly what was written, and every key must read
//! its own newest record, whatever sizes come and go.
#![expect(
    clippy::unwrap_used,
    reason = "tests: a failure here is a test failure"
)]

mod common;

use ringstore::{Config, PutOutcome, Record, RecordRef, Store};

/// A record whose content depends on key, version and size, so a record
/// read back from a reused buffer that held another one is told apart.
fn record(key: usize, version: i64, len: usize) -> Record {
    let fill = char::from(b'a' + ((key * 7 + version as usize) % 26) as u8);
    Record::new()
        .with("collection_time", version)
        .with("key", key as i64)
        .with("body", fill.to_string().repeat(len))
}

/// `r` holds exactly the archive of the record written: the same record
/// and no bytes left over from a buffer's earlier use.
fn check(r: &RecordRef, key: usize, version: i64, len: usize) {
    let written = record(key, version, len);
    assert_eq!(r.version(), version);
    assert_eq!(r.to_record(), written, "key {key} v{version}");
    let archive = rkyv::to_bytes::<rkyv::rancor::Error>(&written).unwrap();
    assert!(
        r.as_bytes() == archive.as_slice(),
        "key {key} v{version}: bytes differ"
    );
}

fn churn(config: Config) {
    let store = Store::open(config).unwrap();
    const KEYS: usize = 8;
    // Sizes that grow and shrink, so pooled buffers are sometimes too small.
    let len = |v: i64| 1000 + (v as usize * 3517) % 60_000;
    for key in 0..KEYS {
        store
            .put_blocking(&format!("k{key}"), &record(key, 1, len(1)))
            .unwrap();
    }
    let held: Vec<RecordRef> = (0..KEYS)
        .map(|k| store.get(&format!("k{k}")).unwrap())
        .collect();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                for v in 2..=60i64 {
                    for key in (w..KEYS).step_by(4) {
                        let outcome = store
                            .put_blocking(&format!("k{key}"), &record(key, v, len(v)))
                            .unwrap();
                        assert_eq!(outcome, PutOutcome::Applied);
                        // Read back at once: the newest record, intact.
                        check(&store.get(&format!("k{key}")).unwrap(), key, v, len(v));
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    for (key, r) in held.iter().enumerate() {
        check(r, key, 1, len(1));
        check(&store.get(&format!("k{key}")).unwrap(), key, 60, len(60));
    }
    store.close().unwrap();
}

#[test]
fn held_records_survive_reuse_of_superseded_buffers() {
    let dir = common::temp_dir();
    churn(common::config(dir.path()));
}

#[test]
fn a_tiny_pool_and_no_pool_behave_the_same() {
    for bytes in [0, 70_000] {
        let dir = common::temp_dir();
        churn(common::config(dir.path()).record_buffer_pool_bytes(bytes));
    }
}
