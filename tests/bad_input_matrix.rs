//! The bad-input matrix (DESIGN.md guarantee 5): one table of every input
//! class a caller can hand to `put`, each with its exact expected result.
//! Refused inputs get their typed error and write nothing; accepted ones
//! round-trip bit for bit (NaN payloads, infinities, -0.0 included), through
//! a reopen too. Keys are `&str`, so a non-UTF-8 key cannot be expressed:
//! keys are 1..=1024 bytes of UTF-8, any code point (NUL, newlines, emoji)
//! allowed, length counted in bytes. Puts racing `close` end `Ok` (and are
//! then durable) or `Err(Closed)`, nothing else.

mod common;

use std::collections::BTreeMap;

use ringstore::{Error, MAX_VALUE_DEPTH, PutOutcome, Record, Store, Value};

/// The expected result of one put.
#[derive(Debug)]
enum Expect {
    Applied,
    Stale(i64),
    Refused(fn(&Error) -> bool),
}

fn nested(depth: usize) -> Value {
    let mut v = Value::Int(1);
    for i in 1..depth {
        v = if i % 2 == 0 {
            Value::List(vec![v])
        } else {
            Value::Map(BTreeMap::from([("n".to_owned(), v)]))
        };
    }
    v
}

fn with_version(v: impl Into<Value>) -> Record {
    Record::new().with("collection_time", v).with("x", 1i64)
}

/// Bitwise equality: NaN payloads and the sign of zero count.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, a), (kb, b))| ka == kb && same(a, b))
        }
        _ => a == b,
    }
}

fn same_record(a: &Record, b: &Record) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|((ka, a), (kb, b))| ka == kb && same(a, b))
}

fn cases() -> Vec<(&'static str, String, Record, Expect)> {
    let r = |v: i64| common::record(v, "m");
    let floats = Record::new()
        .with("collection_time", 1i64)
        .with("nan", f64::NAN)
        .with("nan_payload", f64::from_bits(0x7FF8_0000_DEAD_BEEF))
        .with("neg_nan", f64::from_bits(0xFFF8_0000_0000_0001))
        .with("inf", f64::INFINITY)
        .with("neg_inf", f64::NEG_INFINITY)
        .with("neg_zero", -0.0)
        .with("subnormal", f64::from_bits(1))
        .with("max", f64::MAX)
        .with(
            "list",
            vec![Value::Float(f64::NAN), Value::Float(f64::INFINITY)],
        );
    vec![
        // Keys.
        (
            "empty key",
            String::new(),
            r(1),
            Expect::Refused(|e| matches!(e, Error::EmptyKey { max_bytes: 1024 })),
        ),
        (
            "1025-byte key",
            "k".repeat(1025),
            r(1),
            Expect::Refused(|e| {
                matches!(
                    e,
                    Error::KeyTooLong {
                        len_bytes: 1025,
                        max_bytes: 1024
                    }
                )
            }),
        ),
        (
            "1 MiB key",
            "k".repeat(1 << 20),
            r(1),
            Expect::Refused(|e| {
                matches!(
                    e,
                    Error::KeyTooLong {
                        len_bytes: 1_048_576,
                        ..
                    }
                )
            }),
        ),
        (
            "513 two-byte chars (1026 bytes)",
            "é".repeat(513),
            r(1),
            Expect::Refused(|e| {
                matches!(
                    e,
                    Error::KeyTooLong {
                        len_bytes: 1026,
                        ..
                    }
                )
            }),
        ),
        ("1024-byte key", "k".repeat(1024), r(1), Expect::Applied),
        (
            "512 two-byte chars (1024 bytes)",
            "é".repeat(512),
            r(1),
            Expect::Applied,
        ),
        ("one-byte key", "k".into(), r(1), Expect::Applied),
        (
            "NUL, newline, tab in key",
            "a\0b\nc\td".into(),
            r(1),
            Expect::Applied,
        ),
        (
            "emoji and RTL key",
            "🔑ключ مفتاح".into(),
            r(1),
            Expect::Applied,
        ),
        ("whitespace-only key", "   ".into(), r(1), Expect::Applied),
        // Floats must round-trip bit for bit.
        (
            "NaN, infinities, -0.0, subnormal",
            "floats".into(),
            floats,
            Expect::Applied,
        ),
        // Versions.
        (
            "i64::MIN version",
            "vmin".into(),
            r(i64::MIN),
            Expect::Applied,
        ),
        (
            "i64::MAX version",
            "vmax".into(),
            r(i64::MAX),
            Expect::Applied,
        ),
        ("zero version", "vzero".into(), r(0), Expect::Applied),
        ("negative version", "neg".into(), r(-1), Expect::Applied),
        (
            "older negative version",
            "neg".into(),
            r(-5),
            Expect::Stale(-1),
        ),
        (
            "equal version (tie: later write wins)",
            "neg".into(),
            r(-1),
            Expect::Applied,
        ),
        ("newer version", "neg".into(), r(7), Expect::Applied),
        (
            "i64::MIN after 7",
            "neg".into(),
            r(i64::MIN),
            Expect::Stale(7),
        ),
        (
            "float version",
            "fv".into(),
            with_version(1.0),
            Expect::Refused(|e| matches!(e, Error::InvalidVersion { found: "Float", .. })),
        ),
        (
            "NaN version",
            "nanv".into(),
            with_version(f64::NAN),
            Expect::Refused(|e| matches!(e, Error::InvalidVersion { found: "Float", .. })),
        ),
        (
            "string version",
            "sv".into(),
            with_version("5"),
            Expect::Refused(|e| matches!(e, Error::InvalidVersion { found: "Str", .. })),
        ),
        (
            "bool version",
            "bv".into(),
            with_version(true),
            Expect::Refused(|e| matches!(e, Error::InvalidVersion { found: "Bool", .. })),
        ),
        (
            "null version",
            "nv".into(),
            with_version(Value::Null),
            Expect::Refused(|e| matches!(e, Error::InvalidVersion { found: "Null", .. })),
        ),
        (
            "list version",
            "lv".into(),
            with_version(vec![Value::Int(1)]),
            Expect::Refused(|e| matches!(e, Error::InvalidVersion { found: "List", .. })),
        ),
        (
            "bytes version",
            "byv".into(),
            with_version(vec![1u8]),
            Expect::Refused(|e| matches!(e, Error::InvalidVersion { found: "Bytes", .. })),
        ),
        (
            "missing version",
            "mv".into(),
            Record::new().with("other", 1i64),
            Expect::Refused(
                |e| matches!(e, Error::MissingVersion { field, .. } if field == "collection_time"),
            ),
        ),
        (
            "empty record",
            "er".into(),
            Record::new(),
            Expect::Refused(|e| matches!(e, Error::MissingVersion { .. })),
        ),
        (
            "version nested, not top-level",
            "nested-v".into(),
            Record::new().with(
                "m",
                Value::Map(BTreeMap::from([(
                    "collection_time".to_owned(),
                    Value::Int(1),
                )])),
            ),
            Expect::Refused(|e| matches!(e, Error::MissingVersion { .. })),
        ),
        // Nesting.
        (
            "nesting at the limit",
            "deep64".into(),
            r(1).with("n", nested(MAX_VALUE_DEPTH)),
            Expect::Applied,
        ),
        (
            "nesting one past the limit",
            "deep65".into(),
            r(1).with("n", nested(MAX_VALUE_DEPTH + 1)),
            Expect::Refused(|e| matches!(e, Error::TooDeep { max_depth: 64, .. })),
        ),
        (
            "nesting far past the limit",
            "deep1k".into(),
            r(1).with("n", nested(1_000)),
            Expect::Refused(|e| matches!(e, Error::TooDeep { .. })),
        ),
        (
            "wide list (100k items)",
            "wide".into(),
            r(1).with("n", Value::List(vec![Value::Int(3); 100_000])),
            Expect::Applied,
        ),
        // Sizes (the store below allows 2 MiB records).
        (
            "record over the limit",
            "big".into(),
            r(1).with("blob", vec![0u8; 3 << 20]),
            Expect::Refused(|e| {
                matches!(
                    e,
                    Error::RecordTooLarge {
                        max_bytes: 2_097_152,
                        ..
                    }
                )
            }),
        ),
        (
            "record just under the limit",
            "nearly".into(),
            r(1).with("blob", vec![7u8; (2 << 20) - 4096]),
            Expect::Applied,
        ),
        (
            "empty string, bytes and field name",
            "empties".into(),
            r(1).with("", "").with("b", Vec::<u8>::new()),
            Expect::Applied,
        ),
    ]
}

#[test]
fn every_input_class_gets_its_exact_result() {
    let dir = common::temp_dir();
    let config = || common::config(dir.path()).max_record_bytes(2 << 20);
    let store = Store::open(config()).unwrap();
    let mut readable: BTreeMap<String, Record> = BTreeMap::new();
    let cases = cases();
    let n = cases.len();
    for (name, key, record, expect) in cases {
        let frames_before = common::read_all_frames(dir.path()).len();
        let got = store.put_blocking(&key, &record);
        match (&expect, &got) {
            (Expect::Applied, Ok(PutOutcome::Applied)) => {
                readable.insert(key.clone(), record.clone());
            }
            (Expect::Stale(v), Ok(PutOutcome::Stale { current_version })) => {
                assert_eq!(v, current_version, "{name}");
            }
            (Expect::Refused(is_expected), Err(e)) => {
                assert!(is_expected(e), "{name}: unexpected error {e:?}");
                assert!(!e.to_string().is_empty());
                assert_eq!(
                    common::read_all_frames(dir.path()).len(),
                    frames_before,
                    "{name}: a refused put wrote something"
                );
            }
            _ => panic!("{name}: expected {expect:?}, got {got:?}"),
        }
        if let Some(want) = readable.get(&key) {
            let have = store.get(&key).unwrap().to_record();
            assert!(same_record(&have, want), "{name}: read back differs");
        }
    }
    // Non-finite floats render as JSON null.
    let json = store.get("floats").unwrap().to_json();
    assert!(
        json.contains(r#""inf":null"#) && json.contains(r#""nan":null"#),
        "{json}"
    );
    store.close().unwrap();
    drop(store);
    let store = Store::open(config()).unwrap();
    for (key, want) in &readable {
        let have = store.get(key).unwrap().to_record();
        assert!(same_record(&have, want), "{key:?}: differs after reopen");
    }
    store.close().unwrap();
    eprintln!("bad input matrix: {n} input classes, each with its exact result");
}

/// Puts racing `close`: each ends `Ok` (and is then durable) or
/// `Err(Closed)`; close itself succeeds; nothing hangs.
#[test]
fn puts_racing_close_end_ok_or_closed() {
    for round in 0..5 {
        let dir = common::temp_dir();
        let store = Store::open(common::config(dir.path())).unwrap();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(5));
        let writers: Vec<_> = (0..4i64)
            .map(|w| {
                let (store, barrier) = (store.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let mut acked = Vec::new();
                    for i in 0..10_000i64 {
                        let key = format!("w{w}-{i}");
                        match store.put_blocking(&key, &common::record(i, "race")) {
                            Ok(PutOutcome::Applied) => acked.push(key),
                            Err(Error::Closed) => return acked,
                            other => panic!("racing close: {other:?}"),
                        }
                    }
                    acked
                })
            })
            .collect();
        barrier.wait();
        std::thread::sleep(std::time::Duration::from_millis(2 + round * 3));
        store.close().unwrap();
        let acked: Vec<String> = writers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        assert!(matches!(
            store.put_blocking("after", &common::record(1, "x")),
            Err(Error::Closed)
        ));
        drop(store);
        let store = Store::open(common::config(dir.path())).unwrap();
        for key in &acked {
            assert!(
                store.get(key).is_some(),
                "round {round}: acknowledged {key} lost"
            );
        }
        store.close().unwrap();
    }
}
