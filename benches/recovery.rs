//! Recovery speed: ranking a data dir from hints versus scanning every frame
//! (the same dir, hints removed). `RINGSTORE_BENCH_DIR` picks the disk.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use ringstore::inspect::scan_latest;
use ringstore::{Config, Record, RecoveryMode, Store};

fn build(dir: &Path) -> Option<()> {
    let store = Store::open(Config::new(dir).shards(2).max_segment_records(500)).ok()?;
    let pad = "x".repeat(4000);
    for i in 0..6000i64 {
        let r = Record::new()
            .with("collection_time", i)
            .with("pad", pad.as_str());
        store.put_blocking(&format!("key{}", i % 200), &r).ok()?;
    }
    store.close().ok()
}

fn copy_without_hints(from: &Path, to: &Path) -> std::io::Result<()> {
    for shard in std::fs::read_dir(from)? {
        let shard = shard?.path();
        if !shard.is_dir() {
            continue;
        }
        let target = to.join(shard.file_name().unwrap_or_default());
        std::fs::create_dir_all(&target)?;
        for f in std::fs::read_dir(&shard)? {
            let f = f?.path();
            if f.extension().is_some_and(|e| e == "seg") {
                std::fs::copy(&f, target.join(f.file_name().unwrap_or_default()))?;
            }
        }
    }
    Ok(())
}

fn bench(c: &mut Criterion) {
    let parent = std::env::var_os("RINGSTORE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let (Ok(hinted), Ok(plain)) = (
        tempfile::Builder::new()
            .prefix("ringstore-bench-")
            .tempdir_in(&parent),
        tempfile::Builder::new()
            .prefix("ringstore-bench-")
            .tempdir_in(&parent),
    ) else {
        eprintln!("cannot create bench dirs");
        return;
    };
    if build(hinted.path()).is_none() || copy_without_hints(hinted.path(), plain.path()).is_err() {
        eprintln!("cannot build the bench data dir");
        return;
    }
    let mut g = c.benchmark_group("recovery_6000_frames_200_keys");
    g.sample_size(20);
    g.bench_function("with_hints", |b| {
        b.iter(|| {
            black_box(
                scan_latest(hinted.path(), RecoveryMode::TolerateTornTail)
                    .map(|r| r.0.len())
                    .ok(),
            )
        })
    });
    g.bench_function("scan_without_hints", |b| {
        b.iter(|| {
            black_box(
                scan_latest(plain.path(), RecoveryMode::TolerateTornTail)
                    .map(|r| r.0.len())
                    .ok(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
