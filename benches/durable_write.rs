//! Which durable write is cheaper on this disk: a direct write followed by
//! `fdatasync`, or a direct write to a file opened with O_DSYNC (the kernel
//! flushes as part of the write)? Timed inside a glommio executor, 128 KiB
//! per write, on a fresh aligned block each time (as the store writes).
//! `RINGSTORE_BENCH_DIR` picks the disk (default: the target dir).

mod common;

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use glommio::io::{DmaFile, OpenOptions};
use glommio::{LocalExecutorBuilder, Placement};

const WRITE_BYTES: usize = 128 << 10;
const O_DSYNC: i32 = 0o10000;

/// Runs `iters` durable writes in a fresh executor and returns their total time.
fn timed(dsync: bool, iters: u64) -> Duration {
    let Some(dir) = common::bench_dir() else {
        return Duration::ZERO;
    };
    let path = dir.path().join("bench.seg");
    let run = LocalExecutorBuilder::new(Placement::Unbound).spawn(move || async move {
        let flags = if dsync { O_DSYNC } else { 0 };
        let Ok(file) = OpenOptions::new()
            .write(true)
            .create(true)
            .custom_flags(flags)
            .dma_open(&path)
            .await
        else {
            return Duration::ZERO;
        };
        let started = Instant::now();
        for i in 0..iters {
            let mut buf = file.alloc_dma_buffer(WRITE_BYTES);
            buf.as_bytes_mut().fill(i as u8);
            if DmaFile::write_at(&file, buf, i * WRITE_BYTES as u64)
                .await
                .is_err()
            {
                break;
            }
            if !dsync && file.fdatasync().await.is_err() {
                break;
            }
        }
        let elapsed = started.elapsed();
        let _ = file.close().await;
        elapsed
    });
    run.ok().and_then(|h| h.join().ok()).unwrap_or_default()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("durable_write_128KiB");
    g.sample_size(20);
    g.bench_function("write_then_fdatasync", |b| {
        b.iter_custom(|n| timed(false, n))
    });
    g.bench_function("write_o_dsync", |b| b.iter_custom(|n| timed(true, n)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
