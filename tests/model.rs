//! Model-based test of the whole lifecycle: seeded random sequences of
//! `open` (1–4 shards, Sync or Async, small segment limits so segments rotate
//! every few records, 0–3 spare files kept, io_uring or portable backend),
//! puts (fresh and stale versions), deletes (fresh and stale versions;
//! some stores forget tombstones at every compaction),
//! `compact` (which retires segments into spares that later segments
//! overwrite, across shard-count changes), `close`, drop without `close`, and
//! SIGKILL of a child process that writes and compacts in the same dir —
//! each followed by a reopen in the default recovery mode, checked against an
//! in-memory oracle:
//!
//! * `open` never fails;
//! * every acknowledged Sync put (and every acknowledged Async put once a
//!   `close` returned `Ok`) is there, at its version or a newer one, unless
//!   a delete of at least its version was issued;
//! * an acknowledged delete holds: the key is absent or holds a newer put
//!   (or, once a store that forgets tombstones compacted, any put);
//! * nothing else wins: every record found carries a version that was put
//!   for its key.
//!
//! Budget: `RINGSTORE_MODEL_SECONDS` (default 10; CI runs 60). Every
//! glommio executor leaks one eventfd (glommio issue #448), one per shard
//! per `open` on the io_uring backend: a run of more than about a thousand
//! sequences in one process meets the open-files limit, so long runs are
//! several processes with their own seeds. The run's seed
//! is printed and replayed with `RINGSTORE_MODEL_SEED`; a failing sequence
//! prints its own seed, replayed alone with `RINGSTORE_MODEL_SEQUENCE_SEED`.

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failure here is a test failure"
)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ringstore::{Config, Durability, IoBackend, Store};

const TEST_NAME: &str = "random_lifecycles_lose_nothing_acknowledged";
const CHILD_DIR: &str = "RINGSTORE_MODEL_CHILD_DIR";
const CHILD_SPEC: &str = "RINGSTORE_MODEL_CHILD_SPEC";
const KEYS: u64 = 12;

/// xorshift64*: everything follows from the seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// How a store of the sequence is opened.
#[derive(Debug, Clone, Copy)]
struct Shape {
    shards: usize,
    sync: bool,
    segment_records: u64,
    spares: usize,
    portable: bool,
    /// Tombstones forgotten at every compaction (`tombstone_retention` 0).
    forget: bool,
}

impl Shape {
    fn random(rng: &mut Rng) -> Shape {
        Shape {
            shards: 1 + rng.below(4) as usize,
            sync: rng.below(3) > 0,
            segment_records: 2 + rng.below(6),
            spares: rng.below(4) as usize,
            portable: rng.below(4) == 0,
            forget: rng.below(4) == 0,
        }
    }

    fn config(&self, dir: &Path) -> Config {
        common::config(dir)
            .shards(self.shards)
            .durability(match self.sync {
                true => Durability::Sync,
                false => Durability::Async,
            })
            .max_segment_records(self.segment_records)
            .spare_segments(self.spares)
            .io_backend(match self.portable {
                true => IoBackend::Portable,
                false => IoBackend::Auto,
            })
            .tombstone_retention(match self.forget {
                true => Duration::ZERO,
                false => Duration::from_secs(3600),
            })
    }

    fn encode(&self) -> String {
        format!(
            "{},{},{},{},{},{}",
            self.shards,
            u8::from(self.sync),
            self.segment_records,
            self.spares,
            u8::from(self.portable),
            u8::from(self.forget)
        )
    }

    fn decode(s: &str) -> Shape {
        let f: Vec<u64> = s.split(',').map(|x| x.parse().unwrap()).collect();
        Shape {
            shards: f[0] as usize,
            sync: f[1] == 1,
            segment_records: f[2],
            spares: f[3] as usize,
            portable: f[4] == 1,
            forget: f[5] == 1,
        }
    }
}

/// A put or a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Put,
    Delete,
}

/// What the store must hold.
#[derive(Default)]
struct Oracle {
    /// Every version ever put (or about to be put) per key.
    issued: HashMap<String, BTreeSet<i64>>,
    /// Every version ever deleted (or about to be) per key.
    issued_deletes: HashMap<String, BTreeSet<i64>>,
    /// The newest acknowledged write per key that must survive (a tie of
    /// version goes to the later acknowledgement).
    durable: HashMap<String, (i64, Op)>,
    /// Acknowledged Async writes: durable once a `close` returns `Ok`.
    pending: Vec<(String, i64, Op)>,
    /// A store that forgets tombstones has compacted: an older put of a
    /// deleted key may apply again.
    forgot: bool,
}

impl Oracle {
    fn issue(&mut self, key: &str, version: i64, op: Op) {
        let issued = match op {
            Op::Put => &mut self.issued,
            Op::Delete => &mut self.issued_deletes,
        };
        issued.entry(key.to_owned()).or_default().insert(version);
    }

    fn acknowledged(&mut self, key: &str, version: i64, op: Op) {
        let v = self.durable.entry(key.to_owned()).or_insert((version, op));
        if version >= v.0 {
            *v = (version, op);
        }
    }

    /// Whether a delete of `key` at `version` or later was issued.
    fn deleted_at_or_after(&self, key: &str, version: i64) -> bool {
        self.issued_deletes
            .get(key)
            .is_some_and(|d| d.range(version..).next().is_some())
    }

    fn check(&self, store: &Store, context: &str) {
        for (key, (version, op)) in &self.durable {
            let got = store.get(key).map(|r| r.version());
            match (op, got) {
                (Op::Put, Some(v)) => assert!(
                    v >= *version,
                    "{context}: {key} has v{v} < acknowledged v{version}"
                ),
                (Op::Put, None) => assert!(
                    self.deleted_at_or_after(key, *version),
                    "{context}: {key} (acknowledged v{version}) lost"
                ),
                (Op::Delete, Some(v)) => assert!(
                    v >= *version || self.forgot,
                    "{context}: {key} has v{v}, older than its acknowledged delete v{version}"
                ),
                (Op::Delete, None) => {}
            }
        }
        for key in store.keys_for_test() {
            let got = store.get(&key).unwrap().version();
            assert!(
                self.issued.get(&key).is_some_and(|v| v.contains(&got)),
                "{context}: {key} has v{got}, a version never put"
            );
        }
    }
}

/// The keys a store can hold in this test.
trait KeysForTest {
    fn keys_for_test(&self) -> Vec<String>;
}

impl KeysForTest for Store {
    fn keys_for_test(&self) -> Vec<String> {
        (0..KEYS)
            .map(|k| format!("k{k}"))
            .filter(|k| self.get(k).is_some())
            .collect()
    }
}

/// In the child: open, then put (printing `ISSUE` before and `ACK` after
/// each) and compact now and then, until killed.
fn run_child(dir: &str, spec: &str) {
    let (shape, rest) = spec.split_once(';').unwrap();
    let shape = Shape::decode(shape);
    let mut fields = rest.split(',').map(|x| x.parse::<u64>().unwrap());
    let (seed, base) = (fields.next().unwrap(), fields.next().unwrap() as i64);
    let mut rng = Rng::new(seed);
    let store = Store::open(shape.config(Path::new(dir))).unwrap();
    println!("OPEN");
    for i in 0..100_000i64 {
        let key = format!("k{}", rng.below(KEYS));
        let version = base + i;
        if rng.below(6) == 0 {
            println!("ISSUE-DEL {key} {version}");
            store.delete_blocking(&key, version).unwrap();
            println!("ACK-DEL {key} {version}");
        } else {
            println!("ISSUE {key} {version}");
            store
                .put_blocking(&key, &common::record(version, "child"))
                .unwrap();
            println!("ACK {key} {version}");
        }
        if rng.below(8) == 0 {
            store.compact().unwrap();
        }
    }
    loop {
        std::thread::park();
    }
}

/// One random sequence in a fresh dir.
fn sequence(seed: u64) -> usize {
    let mut rng = Rng::new(seed);
    let dir = common::temp_dir();
    let mut oracle = Oracle::default();
    let mut store: Option<(Store, Shape)> = None;
    let mut next_version = 1_000i64;
    let steps = 8 + rng.below(16);
    let mut ops = 0;
    for step in 0..steps {
        let context = format!("sequence seed {seed}, step {step}");
        match (store.is_some(), rng.below(10)) {
            (false, 0..=6) => {
                let shape = Shape::random(&mut rng);
                let s = Store::open(shape.config(dir.path()))
                    .unwrap_or_else(|e| panic!("{context}: open {shape:?} failed: {e}"));
                oracle.check(&s, &format!("{context}, after open {shape:?}"));
                store = Some((s, shape));
            }
            (false, _) => {
                let shape = Shape::random(&mut rng);
                kill_a_child(&mut rng, dir.path(), shape, &mut next_version, &mut oracle);
            }
            (true, 0..=4) => {
                let (s, shape) = store.as_ref().unwrap();
                for _ in 0..1 + rng.below(12) {
                    let key = format!("k{}", rng.below(KEYS));
                    // One write in five is stale (an older version).
                    let version = match rng.below(5) {
                        0 => next_version - 1 - rng.below(20) as i64,
                        _ => {
                            next_version += 1;
                            next_version
                        }
                    };
                    // One write in five is a delete.
                    let op = match rng.below(5) {
                        0 => Op::Delete,
                        _ => Op::Put,
                    };
                    oracle.issue(&key, version, op);
                    let outcome = match op {
                        Op::Put => s.put_blocking(&key, &common::record(version, "model")),
                        Op::Delete => s.delete_blocking(&key, version),
                    };
                    outcome.unwrap_or_else(|e| panic!("{context}: {op:?} failed: {e}"));
                    match shape.sync {
                        true => oracle.acknowledged(&key, version, op),
                        false => oracle.pending.push((key, version, op)),
                    }
                }
            }
            (true, 5..=6) => {
                let (s, shape) = store.as_ref().unwrap();
                s.compact()
                    .unwrap_or_else(|e| panic!("{context}: compact failed: {e}"));
                oracle.forgot |= shape.forget;
            }
            (true, 7..=8) => {
                let (s, _) = store.take().unwrap();
                s.close()
                    .unwrap_or_else(|e| panic!("{context}: close failed: {e}"));
                for (key, version, op) in std::mem::take(&mut oracle.pending) {
                    oracle.acknowledged(&key, version, op);
                }
            }
            (true, _) => {
                // Dropped without close: as safe as a crash (Async puts not
                // yet flushed may be lost).
                drop(store.take());
                oracle.pending.clear();
            }
        }
        ops += 1;
    }
    if let Some((s, _)) = store.take() {
        s.close().unwrap();
        for (key, version, op) in std::mem::take(&mut oracle.pending) {
            oracle.acknowledged(&key, version, op);
        }
    }
    let shape = Shape::random(&mut rng);
    let s = Store::open(shape.config(dir.path()))
        .unwrap_or_else(|e| panic!("sequence seed {seed}: final open {shape:?} failed: {e}"));
    oracle.check(&s, &format!("sequence seed {seed}, final open {shape:?}"));
    s.close().unwrap();
    ops
}

/// A child process opens the dir with `shape`, writes and compacts, and is
/// killed (SIGKILL) after a random number of acknowledged puts.
fn kill_a_child(
    rng: &mut Rng,
    dir: &Path,
    shape: Shape,
    next_version: &mut i64,
    oracle: &mut Oracle,
) {
    let base = *next_version + 1;
    let kill_after = 1 + rng.below(40);
    // The child compacts: with this shape, tombstones may go.
    oracle.forgot |= shape.forget;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST_NAME, "--nocapture"])
        .env(CHILD_DIR, dir)
        .env(
            CHILD_SPEC,
            format!("{};{},{base}", shape.encode(), rng.next()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acks = 0;
    let mut killed = false;
    let mut opened = false;
    for line in BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        opened |= line == "OPEN";
        let mut parts = line.split(' ');
        let (what, key, version) = (parts.next(), parts.next(), parts.next());
        let (Some(key), Some(version)) = (key, version.and_then(|v| v.parse::<i64>().ok())) else {
            continue;
        };
        *next_version = (*next_version).max(version);
        let op = match what {
            Some("ISSUE-DEL" | "ACK-DEL") => Op::Delete,
            _ => Op::Put,
        };
        match what {
            Some("ISSUE" | "ISSUE-DEL") => oracle.issue(key, version, op),
            Some("ACK" | "ACK-DEL") => {
                acks += 1;
                if shape.sync {
                    oracle.acknowledged(key, version, op);
                }
                if acks >= kill_after && !killed {
                    child.kill().unwrap();
                    killed = true;
                }
            }
            _ => {}
        }
    }
    let status = child.wait().unwrap();
    assert!(
        opened && killed,
        "a child writing with {shape:?} ended by itself ({status}) after {acks} \
         acknowledgements: its open, a put or a compaction failed"
    );
    // The child's Async acknowledgements may be lost; so may anything the
    // parent had pending.
    oracle.pending.clear();
}

#[test]
fn random_lifecycles_lose_nothing_acknowledged() {
    if let (Ok(dir), Ok(spec)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_SPEC)) {
        run_child(&dir, &spec);
        return;
    }
    if let Ok(seed) = std::env::var("RINGSTORE_MODEL_SEQUENCE_SEED") {
        let ops = sequence(seed.parse().unwrap());
        eprintln!("{TEST_NAME}: sequence seed {seed}: {ops} operations, all checks held");
        return;
    }
    let seed = common::seed_from_env("RINGSTORE_MODEL_SEED");
    let budget = Duration::from_secs(common::env_or("RINGSTORE_MODEL_SECONDS", 10));
    let most = common::env_or("RINGSTORE_MODEL_SEQUENCES", u64::MAX);
    eprintln!(
        "{TEST_NAME}: seed {seed} (replay with RINGSTORE_MODEL_SEED={seed}), budget {budget:?}"
    );
    let mut rng = Rng::new(seed);
    let started = Instant::now();
    let (mut sequences, mut ops) = (0u64, 0usize);
    while started.elapsed() < budget && sequences < most {
        let s = rng.next();
        let run = std::panic::catch_unwind(|| sequence(s));
        match run {
            Ok(n) => ops += n,
            Err(e) => {
                eprintln!(
                    "{TEST_NAME}: run seed {seed}: sequence {sequences} failed; replay it alone \
                     with RINGSTORE_MODEL_SEQUENCE_SEED={s}"
                );
                std::panic::resume_unwind(e);
            }
        }
        sequences += 1;
    }
    eprintln!(
        "{TEST_NAME}: seed {seed}: {sequences} sequences, {ops} operations in {:.1} s, all checks held",
        started.elapsed().as_secs_f64()
    );
    assert!(sequences > 0);
}
