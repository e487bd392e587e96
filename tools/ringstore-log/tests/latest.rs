//! `latest` as a process prints exactly what `Store::open` recovers: one line
//! per key, the same version and the same record.

mod common;

use std::collections::BTreeMap;

use common::{frames, json_lines, populate, run_on, stdout, temp_dir};
use ringstore::Store;

#[test]
fn latest_equals_what_the_store_recovers() {
    let dir = temp_dir();
    populate(dir.path(), 6, 3);
    let o = run_on("latest", dir.path(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    let lines = json_lines(&stdout(&o));
    let by_key: BTreeMap<String, &serde_json::Value> = lines
        .iter()
        .map(|l| (l["key"].as_str().unwrap().to_owned(), l))
        .collect();
    assert_eq!(by_key.len(), lines.len(), "one line per key");
    let keys: Vec<&String> = by_key.keys().collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "sorted by key");

    let on_disk = frames(dir.path());
    let store = Store::open(common::config(dir.path())).unwrap();
    assert_eq!(store.len(), lines.len());
    for (key, line) in &by_key {
        let got = store.get(key).unwrap();
        assert_eq!(line["version"], got.version(), "{key}");
        let want: serde_json::Value = serde_json::from_str(&got.to_json()).unwrap();
        assert_eq!(line["record"], want, "{key}");
        // The location (recovery's) points at the winning frame.
        let at = on_disk
            .iter()
            .find(|f| {
                line["shard"] == f.shard && line["segment"] == f.seq && line["offset"] == f.offset
            })
            .unwrap_or_else(|| panic!("{key}: no frame at {line}"));
        assert_eq!((at.key.as_str(), at.version), (key.as_str(), got.version()));
    }
    store.close().unwrap();
}

#[test]
fn latest_needs_a_data_dir() {
    let dir = temp_dir();
    populate(dir.path(), 2, 1);
    let seg = common::segments(dir.path())[0].2.clone();
    assert_eq!(run_on("latest", &seg, &[]).status.code(), Some(2));
}
