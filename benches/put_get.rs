//! Put and get of a seed-sized (~100 KB) record. The data dir comes from
//! `RINGSTORE_BENCH_DIR` (default: the target dir, on disk; tmpfs has no
//! O_DIRECT).

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use ringstore::{Config, Record, Store};

fn seed_record(version: i64) -> Record {
    let mut r = Record::new()
        .with("id", "sensor1")
        .with("collection_time", version);
    for i in 1..=50 {
        r.insert(format!("metricdbl{i}"), i as f64 * 1.5);
        r.insert(format!("metricstr{i}"), "0123456789abcdef".repeat(128));
    }
    r
}

fn bench(c: &mut Criterion) {
    let parent = std::env::var_os("RINGSTORE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let Ok(dir) = tempfile::Builder::new()
        .prefix("ringstore-bench-")
        .tempdir_in(parent)
    else {
        eprintln!("cannot create a bench dir");
        return;
    };
    let Ok(store) = Store::open(Config::new(dir.path()).shards(1)) else {
        eprintln!("cannot open the store");
        return;
    };
    let record = seed_record(1);
    let mut version = 1i64;
    c.bench_function("put_sync_100KB", |b| {
        b.iter(|| {
            version += 1;
            let mut r = record.clone();
            r.insert("collection_time", version);
            black_box(store.put_blocking("sensor1", &r).ok())
        })
    });
    c.bench_function("get_100KB", |b| {
        b.iter(|| black_box(store.get(black_box("sensor1"))))
    });
    c.bench_function("encode_100KB", |b| {
        b.iter(|| {
            black_box(
                rkyv::to_bytes::<rkyv::rancor::Error>(black_box(&record))
                    .map(|v| v.len())
                    .ok(),
            )
        })
    });
    let _ = store.close();
}

criterion_group!(benches, bench);
criterion_main!(benches);
