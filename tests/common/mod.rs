//! Helpers shared by the integration tests (public API only).
#![allow(dead_code, reason = "each test file uses a different subset")]
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failure here is a test failure"
)]

use std::path::{Path, PathBuf};

use ringstore::inspect::{SegmentReader, parse_segment_name, parse_shard_dir};
use ringstore::{Config, Record, Value};

/// A temporary data dir on a real filesystem. `RINGSTORE_TEST_DIR` picks the
/// parent (tmpfs has no O_DIRECT, so the default is the target dir's disk).
pub fn temp_dir() -> tempfile::TempDir {
    let parent = std::env::var_os("RINGSTORE_TEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&parent).unwrap();
    tempfile::Builder::new()
        .prefix("ringstore-test-")
        .tempdir_in(parent)
        .unwrap()
}

/// A config for tests: two shards, unpinned (tests run in parallel).
pub fn config(dir: &Path) -> Config {
    Config::new(dir).shards(2).pin_cpus(false)
}

/// A small record with the given version.
pub fn record(version: i64, note: &str) -> Record {
    Record::new()
        .with("collection_time", version)
        .with("note", note)
        .with("value", version as f64 * 0.5)
}

/// One frame found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskFrame {
    pub shard_dir: usize,
    pub seq: u64,
    pub offset: u64,
    pub len: u32,
    pub key: String,
    pub version: i64,
    pub lsn: u64,
    pub generation: u64,
}

/// Every frame of every segment under `dir`, decoded with the store's decoder.
/// Segment files of `dir` written over spare files by the newest store
/// generation (the last run to open it). A segment whose header a kill
/// left unreadable (created or being reused when the process died) is not
/// counted (the next open repairs it).
pub fn reused_segments_of_last_run(dir: &Path) -> usize {
    let headers: Vec<(bool, u64)> = ringstore::inspect::shard_dirs(dir)
        .unwrap()
        .into_iter()
        .flat_map(|(_, shard)| ringstore::inspect::segments(&shard).unwrap())
        .filter_map(|(_, path)| match SegmentReader::open(&path) {
            Ok(reader) => Some((reader.header().reused, reader.header().generation)),
            Err(e) => {
                eprintln!("not counted: {}: {e}", path.display());
                None
            }
        })
        .collect();
    let last = headers.iter().map(|&(_, g)| g).max().unwrap_or(0);
    headers.iter().filter(|&&(r, g)| r && g == last).count()
}

pub fn read_all_frames(dir: &Path) -> Vec<DiskFrame> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let Some(shard) = entry.file_name().to_str().and_then(parse_shard_dir) else {
            continue;
        };
        let mut segs: Vec<_> = std::fs::read_dir(entry.path())
            .unwrap()
            .filter_map(|e| {
                let e = e.unwrap();
                e.file_name()
                    .to_str()
                    .and_then(parse_segment_name)
                    .map(|s| (s, e.path()))
            })
            .collect();
        segs.sort();
        for (seq, path) in segs {
            let mut reader = SegmentReader::open(&path).unwrap();
            while let Some((offset, f)) = reader.next_frame().unwrap() {
                out.push(DiskFrame {
                    shard_dir: shard,
                    seq,
                    offset,
                    len: f.len,
                    key: f.key.to_owned(),
                    version: f.version,
                    lsn: f.lsn,
                    generation: f.generation,
                });
            }
        }
    }
    out
}

/// The value of an Int field of a record.
/// Within each segment, frames follow each other in LSN order; `context`
/// names the case in the failure message.
pub fn assert_frames_in_lsn_order(frames: &[DiskFrame], context: &str) {
    for pair in frames.windows(2) {
        if let [a, b] = pair {
            if (a.shard_dir, a.seq) == (b.shard_dir, b.seq) {
                assert!(
                    (a.generation, a.lsn) < (b.generation, b.lsn),
                    "{context}: log out of LSN order: {a:?} then {b:?}"
                );
            }
        }
    }
}

pub fn int_field(r: &Record, field: &str) -> Option<i64> {
    match r.get(field) {
        Some(Value::Int(v)) => Some(*v),
        _ => None,
    }
}

/// `name` from the environment, parsed, or `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A seed from `name` in the environment (to replay a run), else from the
/// clock; tests print it.
pub fn seed_from_env(name: &str) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

/// The kill test, shared by every backend: a child process (this test
/// binary, re-run on one test) writes from four threads and prints each
/// acknowledgement; the parent SIGKILLs it after a seeded random number of
/// acknowledgements, reopens the dir and checks every acknowledged put.
/// Starts this test binary again as a child running only `test_name`,
/// with `env` set and its stdout piped (the child side of a crash test).
pub fn spawn_self(test_name: &str, env: (&str, &std::path::Path)) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test_name, "--nocapture"])
        .env(env.0, env.1)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

pub mod kill {
    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Write};
    use std::path::Path;
    use std::process::{Command, Stdio};

    use ringstore::{Config, Store};

    const CHILD_DIR: &str = "RINGSTORE_CRASH_CHILD_DIR";
    const ROUND: &str = "RINGSTORE_CRASH_ROUND";

    /// In the child process: write forever, printing `ACK key version`, and
    /// return `true`. In the parent: return `false` at once.
    pub fn run_child_if_asked(config: impl Fn(&Path) -> Config) -> bool {
        run_child_if_asked_compacting(config, None)
    }

    /// [`run_child_if_asked`], also running `Store::compact` once before
    /// the puts and then every `compact_every` on a thread of its own.
    pub fn run_child_if_asked_compacting(
        config: impl Fn(&Path) -> Config,
        compact_every: Option<std::time::Duration>,
    ) -> bool {
        let Ok(dir) = std::env::var(CHILD_DIR) else {
            return false;
        };
        // Later rounds write higher versions, so each round's puts are fresh.
        let base = super::env_or::<i64>(ROUND, 0) * 1_000_000;
        let store = Store::open(config(Path::new(&dir))).unwrap();
        if let Some(every) = compact_every {
            // The first before any put: it retires the earlier rounds'
            // segments into spares, so the writers' first rotations take
            // them even when the kill comes within milliseconds (Async).
            store.compact().unwrap();
            let store = store.clone();
            std::thread::spawn(move || {
                loop {
                    std::thread::sleep(every);
                    store.compact().unwrap();
                }
            });
        }
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0i64.. {
                        let key = format!("key{}", (i * 7 + w) % 50);
                        let version = base + i * 4 + w;
                        store
                            .put_blocking(&key, &super::record(version, "crash"))
                            .unwrap();
                        let mut out = std::io::stdout().lock();
                        let _ = writeln!(out, "ACK {key} {version}");
                        let _ = out.flush();
                    }
                })
            })
            .collect();
        for w in writers {
            let _ = w.join();
        }
        true
    }

    /// Runs `rounds` kill rounds of the test named `test_name` (whose body
    /// starts with `run_child_if_asked`). With `check_versions`, every
    /// acknowledged version (or a newer one) must be back; without it (Async
    /// mode), recovery must just open cleanly. Returns how many segments
    /// the children wrote over spare files, summed over rounds (counted on
    /// disk after each kill).
    pub fn rounds(
        test_name: &str,
        config: impl Fn(&Path) -> Config,
        rounds: u64,
        check_versions: bool,
    ) -> usize {
        let mut into_spares = 0;
        let dir = super::temp_dir();
        let seed = super::seed_from_env("RINGSTORE_KILL_SEED");
        eprintln!(
            "{test_name}: seed {seed} (replay with RINGSTORE_KILL_SEED={seed}), {rounds} rounds"
        );
        let mut rng = seed | 1;
        for round in 0..rounds {
            // xorshift64: the kill point of each round follows from the seed.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let kill_after = 1 + rng % 400;
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args(["--exact", test_name, "--nocapture"])
                .env(CHILD_DIR, dir.path())
                .env(ROUND, round.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut acked: HashMap<String, i64> = HashMap::new();
            let mut n = 0;
            let mut killed = false;
            // Lines printed before the kill landed count too: they were
            // acknowledged.
            for line in BufReader::new(child.stdout.take().unwrap())
                .lines()
                .map_while(Result::ok)
            {
                let mut parts = line.split(' ');
                if parts.next() != Some("ACK") {
                    continue;
                }
                let key = parts.next().unwrap().to_owned();
                let version: i64 = parts.next().unwrap().parse().unwrap();
                let e = acked.entry(key).or_insert(version);
                *e = (*e).max(version);
                n += 1;
                if n == kill_after && !killed {
                    child.kill().unwrap();
                    killed = true;
                }
            }
            child.wait().unwrap();
            into_spares += super::reused_segments_of_last_run(dir.path());
            assert!(
                n > 0,
                "seed {seed} round {round}: the child acknowledged nothing"
            );
            let store = Store::open(config(dir.path())).unwrap();
            if check_versions {
                for (key, version) in &acked {
                    let got = store.get(key).unwrap_or_else(|| {
                        panic!("seed {seed} round {round}: {key} lost after kill")
                    });
                    assert!(
                        got.version() >= *version,
                        "seed {seed} round {round}: {key} has {} < acked {version}",
                        got.version()
                    );
                }
            }
            store.close().unwrap();
            // Whatever the kill cut, every segment keeps its frames in LSN
            // order (recovery tells torn batches from corruption by it;
            // Async callers take LSNs concurrently and the shard reorders).
            super::assert_frames_in_lsn_order(
                &super::read_all_frames(dir.path()),
                &format!("seed {seed} round {round}"),
            );
        }
        into_spares
    }
}

/// Puts racing compaction: helpers shared by the Sync and Async tests.
pub mod race {
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use ringstore::{Config, Record, Store};

    /// Compacts `store` in a loop on its own thread until `done` (at least 3
    /// times); the receiver gets the number of runs.
    pub fn compact_in_a_loop(
        store: &Store,
        done: &Arc<AtomicBool>,
    ) -> std::sync::mpsc::Receiver<usize> {
        let (runs_tx, runs_rx) = std::sync::mpsc::channel();
        let (store, done) = (store.clone(), Arc::clone(done));
        std::thread::spawn(move || {
            let mut runs = 0;
            while !done.load(Ordering::Acquire) || runs < 3 {
                store.compact().unwrap();
                runs += 1;
            }
            let _ = runs_tx.send(runs);
        });
        runs_rx
    }

    /// After reopening `dir` with `config`, each key holds the record (its
    /// note) that memory held before the close.
    pub fn assert_recovery_agrees(
        dir: &Path,
        config: impl Fn(&Path) -> Config,
        in_memory: &BTreeMap<String, String>,
    ) {
        let store = Store::open(config(dir)).unwrap();
        for (key, note) in in_memory {
            let recovered = note_of(&store.get(key).unwrap().to_record());
            assert_eq!(&recovered, note, "{key}: memory and recovery disagree");
        }
        store.close().unwrap();
    }

    /// The `note` field of a test record.
    pub fn note_of(r: &Record) -> String {
        match r.get("note") {
            Some(ringstore::Value::Str(s)) => s.clone(),
            other => panic!("note is {other:?}"),
        }
    }

    /// `threads` writers put one version to 5 keys, each put with its own
    /// note, while compaction copies the records in a loop: the record each
    /// key holds in memory is the one recovery picks, and every segment
    /// keeps its frames in LSN order.
    pub fn ties_racing_compaction_agree_after_recovery(
        config: impl Fn(&Path) -> Config + Copy,
        threads: usize,
    ) {
        let dir = super::temp_dir();
        let store = Store::open(config(dir.path())).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let deadline = std::time::Duration::from_secs(60);
        let runs_rx = compact_in_a_loop(&store, &done);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        for t in 0..threads {
            let (store, done_tx) = (store.clone(), done_tx.clone());
            std::thread::spawn(move || {
                for i in 0..400 {
                    let key = format!("tie{}", i % 5);
                    let note = format!("t{t}-{i}");
                    store.put_blocking(&key, &super::record(7, &note)).unwrap();
                }
                let _ = done_tx.send(());
            });
        }
        for _ in 0..threads {
            done_rx
                .recv_timeout(deadline)
                .unwrap_or_else(|e| panic!("a writer stalled: {e}"));
        }
        done.store(true, Ordering::Release);
        let runs = runs_rx
            .recv_timeout(deadline)
            .unwrap_or_else(|e| panic!("compaction stalled: {e}"));
        assert!(runs >= 3);
        let in_memory: BTreeMap<String, String> = (0..5)
            .map(|k| {
                let key = format!("tie{k}");
                (key.clone(), note_of(&store.get(&key).unwrap().to_record()))
            })
            .collect();
        store.close().unwrap();
        super::assert_frames_in_lsn_order(
            &super::read_all_frames(dir.path()),
            "ties vs compaction",
        );
        assert_recovery_agrees(dir.path(), config, &in_memory);
    }
}
