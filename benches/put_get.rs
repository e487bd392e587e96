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
    // Closed-loop gets from two threads at once over 200 keys (the seed's
    // key count): the time per iteration is one get on each thread, so
    // 1 / time = gets per second per thread (= per core on 2 cores).
    for i in 0..200 {
        let _ = store.put_blocking(&format!("sensor{i}"), &record);
    }
    let keys: Vec<String> = (0..200).map(|i| format!("sensor{i}")).collect();
    c.bench_function("get_100KB_two_threads", |b| {
        b.iter_custom(|iters| {
            let started = std::time::Instant::now();
            std::thread::scope(|s| {
                for t in 0..2usize {
                    let (store, keys) = (&store, &keys);
                    s.spawn(move || {
                        for i in 0..iters as usize {
                            if let Some(key) = keys.get((i * 7 + t * 101) % keys.len()) {
                                black_box(store.get(black_box(key)));
                            }
                        }
                    });
                }
            });
            started.elapsed()
        })
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
    // What `put` does: serialize into a buffer sized from the record up
    // front (no regrowth copies), versus rkyv's growing buffer above.
    c.bench_function("encode_100KB_presized", |b| {
        b.iter(|| {
            let buffer = rkyv::util::AlignedVec::<16>::with_capacity(110_000);
            black_box(
                rkyv::api::high::to_bytes_in::<_, rkyv::rancor::Error>(black_box(&record), buffer)
                    .map(|v| v.len())
                    .ok(),
            )
        })
    });
    let _ = store.close();
    put_async(c, &dir, &record);
}

/// One `Async` put while the log keeps up: the caller's whole path
/// (serialize, CRC, publish, queue). Puts are spaced 200 µs apart (not
/// timed) so the disk, not the byte budget, paces them.
fn put_async(c: &mut Criterion, dir: &tempfile::TempDir, record: &Record) {
    let path = dir.path().join("async");
    let config = Config::new(&path)
        .shards(1)
        .durability(ringstore::Durability::Async);
    let Ok(store) = Store::open(config) else {
        eprintln!("cannot open the Async store");
        return;
    };
    let mut group = c.benchmark_group("put_async");
    group
        .sample_size(10)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(1));
    let mut version = 1i64;
    group.bench_function("100KB_paced", |b| {
        b.iter_custom(|iters| {
            let mut timed = std::time::Duration::ZERO;
            for _ in 0..iters {
                version += 1;
                let mut r = record.clone();
                r.insert("collection_time", version);
                let started = std::time::Instant::now();
                black_box(store.put_blocking("sensor1", &r).ok());
                timed += started.elapsed();
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            timed
        })
    });
    group.finish();
    let _ = store.close();
}

criterion_group!(benches, bench);
criterion_main!(benches);
