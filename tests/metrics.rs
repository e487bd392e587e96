//! Cargo feature `metrics`: `Store::publish_metrics` sets each shard's
//! figures in the installed `metrics` recorder.

mod common;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use ringstore::Store;

#[test]
fn shard_figures_reach_the_recorder() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let dir = common::temp_dir();
    let store = Store::open(common::config(dir.path())).unwrap();
    for i in 0..50i64 {
        store
            .put_blocking(&format!("k{i}"), &common::record(i, "v"))
            .unwrap();
    }
    metrics::with_local_recorder(&recorder, || store.publish_metrics());
    let snapshot = snapshotter.snapshot().into_vec();
    let value = |name: &str, shard: &str| {
        snapshot
            .iter()
            .find(|(key, ..)| {
                key.key().name() == name
                    && key
                        .key()
                        .labels()
                        .any(|l| l.key() == "shard" && l.value() == shard)
            })
            .map(|(_, _, _, v)| v)
    };
    let mut frames = 0;
    let mut keys = 0.0;
    for shard in ["0", "1"] {
        match value("ringstore_frames_total", shard) {
            Some(DebugValue::Counter(n)) => frames += *n,
            other => panic!("shard {shard}: frames {other:?}"),
        }
        match value("ringstore_keys", shard) {
            Some(DebugValue::Gauge(g)) => keys += g.into_inner(),
            other => panic!("shard {shard}: keys {other:?}"),
        }
    }
    assert_eq!(frames, 50);
    assert_eq!(keys, 50.0);
    store.close().unwrap();
}
