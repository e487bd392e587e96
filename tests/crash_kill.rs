//! A real crash: a child process writes from several threads and prints every
//! acknowledgement; the parent kills it with SIGKILL at a random moment,
//! reopens the dir, and finds every acknowledged put (or a newer version of
//! its key). Rounds: `RINGSTORE_KILL_ROUNDS` (default 50 for Sync); the seed
//! is printed and replayed from `RINGSTORE_KILL_SEED`.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failure here is a test failure"
)]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use ringstore::{Durability, Store};

fn child(dir: &str, durability: Durability) {
    // Later rounds write higher versions, so each round's puts are fresh.
    let base: i64 = std::env::var("RINGSTORE_CRASH_ROUND")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
        * 1_000_000;
    let store =
        Store::open(common::config(std::path::Path::new(dir)).durability(durability)).unwrap();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0i64.. {
                    let key = format!("key{}", (i * 7 + w) % 50);
                    let version = base + i * 4 + w;
                    store
                        .put_blocking(&key, &common::record(version, "crash"))
                        .unwrap();
                    let mut lock = std::io::stdout().lock();
                    let _ = writeln!(lock, "ACK {key} {version}");
                    let _ = lock.flush();
                }
            })
        })
        .collect();
    for w in writers {
        let _ = w.join();
    }
}

fn crash_and_recover(durability: Durability, test_name: &str) {
    if let Ok(dir) = std::env::var("RINGSTORE_CRASH_CHILD_DIR") {
        child(&dir, durability);
        return;
    }
    let dir = common::temp_dir();
    let seed: u64 = std::env::var("RINGSTORE_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let rounds: u64 = std::env::var("RINGSTORE_KILL_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if durability == Durability::Sync {
            50
        } else {
            10
        });
    eprintln!("{test_name}: seed {seed} (replay with RINGSTORE_KILL_SEED={seed}), {rounds} rounds");
    let mut rng = seed | 1;
    for round in 0..rounds {
        // xorshift64: the kill point of each round follows from the seed.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let kill_after = 1 + rng % 400;
        let mut proc = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", test_name, "--nocapture"])
            .env("RINGSTORE_CRASH_CHILD_DIR", dir.path())
            .env("RINGSTORE_CRASH_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut acked: HashMap<String, i64> = HashMap::new();
        let mut lines = BufReader::new(proc.stdout.take().unwrap()).lines();
        let mut n = 0;
        while let Some(Ok(line)) = lines.next() {
            let mut parts = line.split(' ');
            if parts.next() != Some("ACK") {
                continue;
            }
            let key = parts.next().unwrap().to_owned();
            let version: i64 = parts.next().unwrap().parse().unwrap();
            let e = acked.entry(key).or_insert(version);
            *e = (*e).max(version);
            n += 1;
            if n == kill_after {
                proc.kill().unwrap();
                break;
            }
        }
        // Drain what was printed before the kill landed: also acknowledged.
        for line in lines.map_while(Result::ok) {
            let mut parts = line.split(' ');
            if parts.next() == Some("ACK") {
                let key = parts.next().unwrap().to_owned();
                let version: i64 = parts.next().unwrap().parse().unwrap();
                let e = acked.entry(key).or_insert(version);
                *e = (*e).max(version);
            }
        }
        proc.wait().unwrap();
        assert!(n > 0, "child acknowledged nothing");

        let store = Store::open(common::config(dir.path())).unwrap();
        for (key, version) in &acked {
            let got = store
                .get(key)
                .unwrap_or_else(|| panic!("round {round}: {key} lost after kill"));
            if durability == Durability::Sync {
                assert!(
                    got.version() >= *version,
                    "round {round}: {key} has {} < acked {version}",
                    got.version()
                );
            }
        }
        eprintln!(
            "round {round}: killed after {kill_after} acks, {} keys acked, recovery read {} frames, torn tails {:?}",
            acked.len(),
            store.recovery_report().frames,
            store.recovery_report().torn_tails
        );
        store.close().unwrap();
    }
}

#[test]
fn sigkill_loses_no_acknowledged_sync_put() {
    crash_and_recover(Durability::Sync, "sigkill_loses_no_acknowledged_sync_put");
}

/// A process crash (not a power loss) in Async mode loses at most what was
/// not yet written; recovery must still open cleanly.
#[test]
fn sigkill_in_async_mode_recovers_cleanly() {
    crash_and_recover(Durability::Async, "sigkill_in_async_mode_recovers_cleanly");
}
