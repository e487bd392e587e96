//! Not a test: writes a large data dir for measuring the tool's throughput.
//! `RINGSTORE_LOG_BENCH_DIR=/disk/dir RINGSTORE_LOG_BENCH_MB=1000 cargo test
//! --release -p ringstore-log --test bench_data -- --ignored --nocapture`

mod common;

use std::time::Instant;

use ringstore::{Config, Durability, Record, Store, Value};

#[test]
#[ignore = "writes hundreds of MB; run by hand to measure throughput"]
fn write_bench_data_dir() {
    let Some(dir) = std::env::var_os("RINGSTORE_LOG_BENCH_DIR") else {
        println!("set RINGSTORE_LOG_BENCH_DIR");
        return;
    };
    let target_mb: u64 = std::env::var("RINGSTORE_LOG_BENCH_MB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let store = Store::open(
        Config::new(&dir)
            .shards(2)
            .pin_cpus(false)
            .durability(Durability::Async),
    )
    .unwrap();
    let started = Instant::now();
    let filler = "x".repeat(600);
    // ~1 KiB frames: 10 fields, one 600-byte string.
    let per_thread = target_mb * 1024 / 4;
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let store = store.clone();
            let filler = &filler;
            s.spawn(move || {
                for i in 0..per_thread {
                    let version = (i * 4 + t) as i64;
                    let r = Record::new()
                        .with("collection_time", version)
                        .with("temperature", 20.0 + (i % 100) as f64 / 10.0)
                        .with("humidity", (i % 97) as i64)
                        .with("site", format!("site-{}", i % 50))
                        .with("ok", i % 3 != 0)
                        .with("raw", vec![t as u8; 16])
                        .with("tags", vec![Value::Str("a".into()), Value::Int(version)])
                        .with("note", filler.as_str())
                        .with("seq", i as i64)
                        .with("thread", t as i64);
                    store
                        .put_blocking(&format!("sensor-{}-{}", t, i % 20_000), &r)
                        .unwrap();
                }
            });
        }
    });
    store.close().unwrap();
    println!(
        "wrote {} puts in {:.1} s into {}",
        per_thread * 4,
        started.elapsed().as_secs_f64(),
        std::path::Path::new(&dir).display()
    );
}
