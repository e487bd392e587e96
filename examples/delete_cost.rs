//! What a versioned delete costs next to a put, and whether the deleted
//! records' memory comes back: 16 threads put 2,000 keys each (~4 KB
//! records, `Durability::Sync`), delete them all, then put as many new
//! keys; prints ops/s, `len` and the process's RSS after each phase, then
//! what a compaction copied. `cargo run --release --example delete_cost --
//! DIR` (DIR on a real disk; a fresh store is made inside it).

use std::time::Instant;

use ringstore::{Config, Record, Store};

const THREADS: u64 = 16;
const KEYS_PER_THREAD: u64 = 2_000;

/// Resident set size of this process, in MiB (0 if unknown).
fn rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Put,
    Delete,
    PutNewKeys,
}

fn run(store: &Store, phase: Phase) -> Result<(), ringstore::Error> {
    let body = "x".repeat(4000);
    let started = Instant::now();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (store, body) = (store.clone(), body.clone());
                s.spawn(move || -> Result<(), ringstore::Error> {
                    for i in 0..KEYS_PER_THREAD {
                        let prefix = if phase == Phase::PutNewKeys { "n" } else { "k" };
                        let key = format!("{prefix}{t}-{i}");
                        if phase == Phase::Delete {
                            store.delete_blocking(&key, 2)?;
                        } else {
                            let record = Record::new()
                                .with("collection_time", 1i64)
                                .with("body", body.as_str());
                            store.put_blocking(&key, &record)?;
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().unwrap_or(Err(ringstore::Error::Closed)))
    })?;
    let ops = THREADS * KEYS_PER_THREAD;
    let secs = started.elapsed().as_secs_f64();
    let name = match phase {
        Phase::Put => "put",
        Phase::Delete => "delete",
        Phase::PutNewKeys => "put new keys",
    };
    println!(
        "{name}: {:.0} ops/s ({ops} in {secs:.2} s), len {}, RSS {} MiB",
        ops as f64 / secs,
        store.len(),
        rss_mib()
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let parent = std::env::args().nth(1).ok_or("usage: delete_cost DIR")?;
    let dir = tempfile::Builder::new()
        .prefix("delete-cost-")
        .tempdir_in(parent)?;
    let store = Store::open(Config::new(dir.path()).shards(2))?;
    println!("RSS at open {} MiB", rss_mib());
    run(&store, Phase::Put)?;
    run(&store, Phase::Delete)?;
    run(&store, Phase::PutNewKeys)?;
    println!("compaction: {:?}", store.compact()?);
    store.close()?;
    Ok(())
}
