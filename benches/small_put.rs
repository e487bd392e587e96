//! Small durable puts (`Durability::Sync`): one ~700-byte record (3 doubles,
//! 2 strings of 200 chars, like `ringstore-load --doubles 3 --strings 2
//! --string-len 200`) put by one caller and acknowledged once durable, and
//! 16 callers putting at once (group commit: time per put). Guards the
//! small-put path: its latency is one durable write over blocks the segment
//! already wrote (zeros ahead), plus the hand-offs between threads.
//! `RINGSTORE_BENCH_DIR` picks the disk (default: the target dir; never
//! tmpfs, which has no O_DIRECT).

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ringstore::{Config, Durability, Record, Store};

const KEYS: u64 = 200;

fn record(version: i64) -> Record {
    let text = "0123456789abcdef".repeat(13);
    Record::new()
        .with("collection_time", version)
        .with("metricdbl1", 1.5)
        .with("metricdbl2", 2.5)
        .with("metricdbl3", 3.5)
        .with("metricstr1", text.get(..200).unwrap_or(&text))
        .with("metricstr2", text.get(..200).unwrap_or(&text))
}

/// Puts `iters` records from `callers` threads at once; the wall time.
fn put_from(store: &Store, callers: u64, iters: u64, next: &AtomicU64) -> Duration {
    let per_caller = iters.div_ceil(callers);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..callers {
            scope.spawn(|| {
                for _ in 0..per_caller {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let key = format!("sensor{}", n % KEYS);
                    if store.put_blocking(&key, &record(n as i64)).is_err() {
                        return;
                    }
                }
            });
        }
    });
    started
        .elapsed()
        .mul_f64(iters as f64 / (per_caller * callers) as f64)
}

fn small_put(c: &mut Criterion) {
    let Some(dir) = common::bench_dir() else {
        eprintln!("small_put: no bench dir (set RINGSTORE_BENCH_DIR to a disk)");
        return;
    };
    let Ok(store) = Store::open(
        Config::new(dir.path().join("store"))
            .durability(Durability::Sync)
            .shards(2),
    ) else {
        eprintln!(
            "small_put: the store did not open in {}",
            dir.path().display()
        );
        return;
    };
    let next = AtomicU64::new(1);
    let mut group = c.benchmark_group("small_put");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("one caller, durable", |b| {
        b.iter_custom(|iters| put_from(&store, 1, iters, &next));
    });
    group.bench_function("16 callers, durable, time per put", |b| {
        b.iter_custom(|iters| put_from(&store, 16, iters, &next));
    });
    group.finish();
    let _ = store.close();
}

criterion_group!(benches, small_put);
criterion_main!(benches);
