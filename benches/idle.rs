//! CPU an open store costs while nothing happens: open a store (default
//! config: one shard per CPU, watchdog on), write a few records, then
//! measure the whole process's CPU time over a quiet interval, for Sync and
//! Async stores. Run: `cargo bench --bench idle` (`IDLE_SECONDS`, default
//! 10; data dir under `RINGSTORE_BENCH_DIR`, default the target dir).
//! Prints the share of one core used, from the per-thread scheduler
//! statistics (`/proc/self/task/*/schedstat`, nanosecond resolution).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ringstore::{Config, Durability, Record, Store};

/// Nanoseconds every thread of this process has run so far.
fn process_cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn measure(durability: Durability, seconds: u64) -> Option<f64> {
    let parent = std::env::var_os("RINGSTORE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = tempfile::Builder::new()
        .prefix("ringstore-bench-idle-")
        .tempdir_in(parent)
        .ok()?;
    let store = Store::open(Config::new(dir.path()).durability(durability)).ok()?;
    for i in 0..100i64 {
        let r = Record::new()
            .with("collection_time", i)
            .with("note", "idle");
        store.put_blocking(&format!("k{i}"), &r).ok()?;
    }
    // Let Async flushes and the shards' last turns finish.
    std::thread::sleep(Duration::from_millis(500));
    let (cpu0, t0) = (process_cpu_ns(), Instant::now());
    std::thread::sleep(Duration::from_secs(seconds));
    let (cpu1, t1) = (process_cpu_ns(), Instant::now());
    store.close().ok()?;
    let share = (cpu1.saturating_sub(cpu0)) as f64 / (t1 - t0).as_nanos() as f64;
    Some(share * 100.0)
}

fn main() {
    // `cargo test --benches` runs bench binaries with `--bench` absent:
    // only measure when asked to.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let seconds = std::env::var("IDLE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    for durability in [Durability::Sync, Durability::Async] {
        match measure(durability, seconds) {
            Some(pct) => println!(
                "idle {durability:?} store, {} shards, {seconds} s: {pct:.3} % of one core",
                std::thread::available_parallelism().map_or(1, |n| n.get())
            ),
            None => eprintln!("idle {durability:?}: could not open or write the store"),
        }
    }
}
