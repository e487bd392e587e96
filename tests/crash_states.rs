//! Crash-state explorer: what a power cut can leave on disk, beyond what
//! `kill -9` shows.
//!
//! A small concurrent workload runs through a recording fault plan, which
//! logs every create, write (with its bytes), fdatasync, directory sync,
//! hint write and removal, in order; each acknowledged put notes how much of
//! that log had happened when it was acknowledged. From the log, the test
//! builds the disk states a power cut could leave: at every event boundary,
//! the writes made durable by a completed fdatasync that started after them,
//! plus any subset of the writes still in flight — whole, absent, or torn at
//! 512-byte sectors (a prefix, or any subset of sectors: devices reorder) —
//! an `O_DSYNC` write is recorded as the write followed by its own flush —
//! and files whose directory entry was not yet synced either present or
//! gone. Each state is materialized as real files and recovered:
//!
//! * recovery (default mode, read-only) never fails, panics or hangs;
//! * every put acknowledged before the cut is there (its version or newer);
//! * every record found was written by the workload, byte for byte.
//!
//! Every 40th state is also opened with `Store::open` (which repairs torn
//! tails), checked, closed, and then must read clean in Strict mode.
//!
//! Seeded: `RINGSTORE_CRASH_SEED` replays a run; `RINGSTORE_CRASH_STATES`
//! sets the most states per backend (default 10 000). Needs `--features failpoints`.

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failure here is a test failure"
)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringstore::failpoints::{FaultPlan, IoEvent};
use ringstore::inspect::scan_latest;
use ringstore::{IoBackend, Record, RecoveryMode, Store, SyncMethod};

const SECTOR: usize = 512;

/// xorshift64*: the whole run follows from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// What the workload did: the I/O log and the puts.
struct Recording {
    root: PathBuf,
    events: Vec<IoEvent>,
    /// Every put issued: (key, version) → record.
    issued: HashMap<(String, i64), Record>,
    /// Acknowledged puts: key, version, log length when acknowledged.
    acked: Vec<(String, i64, usize)>,
}

fn run_workload(backend: IoBackend, method: SyncMethod, root: &Path) -> Recording {
    let plan = FaultPlan::new();
    plan.record(true);
    let store = Store::open(
        common::config(root)
            .io_backend(backend)
            .sync_method(method)
            .max_segment_records(24)
            // Two batches in flight: the harder crash shapes (a later batch
            // durable, an earlier one not).
            .pipeline_depth(2)
            .fault_plan(plan.clone()),
    )
    .unwrap();
    let issued = Arc::new(Mutex::new(HashMap::new()));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..3i64)
        .map(|w| {
            let (store, plan, issued, acked) =
                (store.clone(), plan.clone(), issued.clone(), acked.clone());
            std::thread::spawn(move || {
                for i in 0..40i64 {
                    let version = i * 3 + w;
                    let key = format!("k{}", version % 16);
                    // Varied sizes: some records span several sectors.
                    let note = "n".repeat(((i * 37 + w * 11) % 9) as usize * 150);
                    let record = common::record(version, &note);
                    issued
                        .lock()
                        .unwrap()
                        .insert((key.clone(), version), record.clone());
                    store.put_blocking(&key, &record).unwrap();
                    acked
                        .lock()
                        .unwrap()
                        .push((key, version, plan.events_len()));
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    store.close().unwrap();
    drop(store);
    let issued = std::mem::take(&mut *issued.lock().unwrap());
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    Recording {
        root: root.to_path_buf(),
        events: plan.take_events(),
        issued,
        acked,
    }
}

/// One write of the log.
struct Write {
    path: PathBuf,
    offset: u64,
    bytes: Arc<[u8]>,
    start: usize,
    /// Index of its completion (`None`: never completed) and success.
    end: Option<(usize, bool)>,
}

/// The log, indexed for building states.
struct Model {
    writes: Vec<Write>,
    /// (path, start index, end index) of every successful fdatasync.
    syncs: Vec<(PathBuf, usize, usize)>,
    creates: Vec<(PathBuf, usize)>,
    removes: Vec<(PathBuf, usize)>,
    dir_syncs: Vec<(PathBuf, usize)>,
    small_files: Vec<(PathBuf, usize, Arc<[u8]>)>,
    len: usize,
}

impl Model {
    fn new(events: &[IoEvent]) -> Model {
        let mut m = Model {
            writes: Vec::new(),
            syncs: Vec::new(),
            creates: Vec::new(),
            removes: Vec::new(),
            dir_syncs: Vec::new(),
            small_files: Vec::new(),
            len: events.len(),
        };
        let mut write_of: HashMap<u64, usize> = HashMap::new();
        let mut sync_of: HashMap<u64, (PathBuf, usize)> = HashMap::new();
        for (i, e) in events.iter().enumerate() {
            match e {
                IoEvent::Create { path, ok: true } => m.creates.push((path.clone(), i)),
                IoEvent::WriteStart {
                    id,
                    path,
                    offset,
                    bytes,
                } => {
                    write_of.insert(*id, m.writes.len());
                    m.writes.push(Write {
                        path: path.clone(),
                        offset: *offset,
                        bytes: bytes.clone(),
                        start: i,
                        end: None,
                    });
                }
                IoEvent::WriteEnd { id, result } => {
                    let w = &mut m.writes[write_of[id]];
                    w.end = Some((i, *result == Ok(w.bytes.len())));
                }
                IoEvent::SyncStart { id, path } => {
                    sync_of.insert(*id, (path.clone(), i));
                }
                IoEvent::SyncEnd { id, ok: true } => {
                    let (path, start) = sync_of[id].clone();
                    m.syncs.push((path, start, i));
                }
                IoEvent::SyncDir { dir, ok: true } => m.dir_syncs.push((dir.clone(), i)),
                IoEvent::Remove { path, ok: true } => m.removes.push((path.clone(), i)),
                IoEvent::SmallFile {
                    path,
                    bytes,
                    ok: true,
                } => m.small_files.push((path.clone(), i, bytes.clone())),
                _ => {}
            }
        }
        m
    }

    /// Interesting cut points: both sides of every event that changes what
    /// may be durable.
    fn cuts(&self, events: &[IoEvent]) -> Vec<usize> {
        let mut cuts: Vec<usize> = events
            .iter()
            .enumerate()
            .filter(|(_, e)| !matches!(e, IoEvent::WriteStart { .. }))
            .flat_map(|(i, _)| [i, i + 1])
            .collect();
        cuts.push(self.len);
        cuts.sort_unstable();
        cuts.dedup();
        cuts
    }
}

/// How an in-flight write ends up after the cut.
#[derive(Clone)]
enum Fate {
    Absent,
    Whole,
    /// Only these sectors reached the disk.
    Sectors(Vec<usize>),
}

/// One disk state: file → contents (plus which files vanished).
struct State {
    files: BTreeMap<PathBuf, Vec<u8>>,
    label: String,
}

fn apply(content: &mut Vec<u8>, offset: u64, bytes: &[u8], fate: &Fate) {
    let sectors = bytes.len().div_ceil(SECTOR);
    let keep: Vec<usize> = match fate {
        Fate::Absent => return,
        Fate::Whole => (0..sectors).collect(),
        Fate::Sectors(s) => s.clone(),
    };
    for s in keep {
        let from = s * SECTOR;
        let to = (from + SECTOR).min(bytes.len());
        let at = offset as usize + from;
        if content.len() < at + (to - from) {
            content.resize(at + (to - from), 0);
        }
        content[at..at + (to - from)].copy_from_slice(&bytes[from..to]);
    }
}

/// The states for cut `c` (the first `c` events happened).
fn states_at(m: &Model, c: usize, rng: &mut Rng) -> Vec<State> {
    // Files present at the cut, and whether their directory entry is durable.
    let mut files: Vec<(PathBuf, bool)> = Vec::new();
    for (path, ci) in m.creates.iter().filter(|(_, ci)| *ci < c) {
        if m.removes.iter().any(|(p, ri)| p == path && *ri < c) {
            continue;
        }
        let parent = path.parent().unwrap();
        let durable = m
            .dir_syncs
            .iter()
            .any(|(d, di)| d == parent && di > ci && *di < c);
        files.push((path.clone(), durable));
    }
    // Per file: the start of the last fdatasync that completed before the cut.
    let synced_from = |path: &Path| {
        m.syncs
            .iter()
            .filter(|(p, _, end)| p == path && *end < c)
            .map(|(_, start, _)| *start)
            .max()
    };
    let mut durable: Vec<&Write> = Vec::new();
    let mut in_flight: Vec<&Write> = Vec::new();
    for w in m.writes.iter().filter(|w| w.start < c) {
        if !files.iter().any(|(p, _)| *p == w.path) {
            continue;
        }
        let done = w.end.filter(|(e, _)| *e < c);
        if matches!(done, Some((_, false))) {
            continue; // failed: nothing of it counts as written
        }
        match (done, synced_from(&w.path)) {
            (Some((e, true)), Some(s)) if e < s => durable.push(w),
            _ => in_flight.push(w),
        }
    }
    let hints: Vec<(&PathBuf, &Arc<[u8]>)> = m
        .small_files
        .iter()
        .filter(|(_, i, _)| *i < c)
        .map(|(p, _, b)| (p, b))
        .collect();

    let build = |fates: &[Fate], drop_undurable_entries: bool, label: String| {
        let mut out: BTreeMap<PathBuf, Vec<u8>> = BTreeMap::new();
        for (path, entry_durable) in &files {
            if drop_undurable_entries && !entry_durable {
                continue;
            }
            out.insert(path.clone(), Vec::new());
        }
        for w in &durable {
            if let Some(content) = out.get_mut(&w.path) {
                apply(content, w.offset, &w.bytes, &Fate::Whole);
            }
        }
        for (w, fate) in in_flight.iter().zip(fates) {
            if let Some(content) = out.get_mut(&w.path) {
                apply(content, w.offset, &w.bytes, fate);
            }
        }
        for (path, bytes) in &hints {
            out.insert((*path).clone(), bytes.to_vec());
        }
        State { files: out, label }
    };

    let n = in_flight.len();
    let mut states = vec![
        build(
            &vec![Fate::Whole; n],
            false,
            format!("cut {c}: all in flight written"),
        ),
        build(
            &vec![Fate::Absent; n],
            false,
            format!("cut {c}: nothing in flight written"),
        ),
    ];
    if files.iter().any(|(_, d)| !d) {
        states.push(build(
            &vec![Fate::Whole; n],
            true,
            format!("cut {c}: unsynced directory entries lost"),
        ));
    }
    for (i, w) in in_flight.iter().enumerate() {
        let sectors = w.bytes.len().div_ceil(SECTOR);
        let mut torn: Vec<usize> = if sectors <= 9 {
            (1..sectors).collect()
        } else {
            vec![1, 2, sectors / 2, sectors - 1, 1 + rng.below(sectors - 1)]
        };
        torn.dedup();
        for k in torn {
            let mut fates = vec![Fate::Absent; n];
            fates[i] = Fate::Sectors((0..k).collect());
            states.push(build(
                &fates,
                false,
                format!("cut {c}: write {i} of {n} in flight torn after {k} of {sectors} sectors"),
            ));
        }
    }
    for r in 0..2 {
        if n == 0 {
            break;
        }
        let fates: Vec<Fate> = in_flight
            .iter()
            .map(|w| match rng.below(3) {
                0 => Fate::Absent,
                1 => Fate::Whole,
                _ => {
                    let sectors = w.bytes.len().div_ceil(SECTOR);
                    Fate::Sectors((0..sectors).filter(|_| rng.below(2) == 0).collect())
                }
            })
            .collect();
        states.push(build(
            &fates,
            false,
            format!("cut {c}: random subset {r} of {n} in flight"),
        ));
    }
    states
}

/// Writes `state` under `dir` (paths re-rooted from the workload's root).
fn materialize(state: &State, from_root: &Path, dir: &Path) {
    for shard in 0..2 {
        std::fs::create_dir_all(dir.join(format!("shard-{shard}"))).unwrap();
    }
    for (path, bytes) in &state.files {
        let rel = path.strip_prefix(from_root).unwrap();
        std::fs::write(dir.join(rel), bytes).unwrap();
    }
}

/// Checks one recovered state: nothing acknowledged before the cut missing,
/// nothing that was never written present.
fn check(rec: &Recording, cut: usize, found: &HashMap<String, (i64, Record)>, label: &str) {
    for (key, version, ack_at) in &rec.acked {
        if *ack_at <= cut {
            let got = found.get(key).map(|(v, _)| *v);
            assert!(
                got.is_some_and(|v| v >= *version),
                "{label}: acknowledged {key} v{version} lost (found {got:?})"
            );
        }
    }
    for (key, (version, record)) in found {
        let issued = rec.issued.get(&(key.clone(), *version));
        assert!(
            issued == Some(record),
            "{label}: {key} v{version} was never written like this"
        );
    }
}

fn explore(
    backend: IoBackend,
    method: SyncMethod,
    seed: u64,
    budget: usize,
    progress: &AtomicU64,
) -> (usize, usize) {
    let work = common::temp_dir();
    let rec = run_workload(backend, method, &work.path().join("store"));
    let model = Model::new(&rec.events);
    let cuts = model.cuts(&rec.events);
    let mut rng = Rng(seed | 1);
    let mut explored = 0usize;
    let mut opened = 0usize;
    // Spread the budget over the cuts; every cut gets at least its base state.
    let per_cut = (budget / cuts.len().max(1)).max(2);
    for &cut in &cuts {
        let mut states = states_at(&model, cut, &mut rng);
        while states.len() > per_cut {
            let drop = 2 + rng.below(states.len() - 2);
            states.swap_remove(drop);
        }
        for state in states {
            let dir = work.path().join(format!("state-{explored}"));
            materialize(&state, &rec.root, &dir);
            let label = format!("{backend:?} {method:?} seed {seed} {}", state.label);
            let (latest, _) = scan_latest(&dir, RecoveryMode::TolerateTornTail)
                .unwrap_or_else(|e| panic!("{label}: recovery failed: {e}"));
            let found: HashMap<String, (i64, Record)> = latest
                .iter()
                .map(|l| {
                    (
                        l.record.key().to_owned(),
                        (l.record.version(), l.record.to_record()),
                    )
                })
                .collect();
            check(&rec, cut, &found, &label);
            if explored % 40 == 0 {
                let store = Store::open(common::config(&dir).io_backend(backend))
                    .unwrap_or_else(|e| panic!("{label}: open failed: {e}"));
                for (key, version, ack_at) in &rec.acked {
                    if *ack_at <= cut {
                        assert!(
                            store.get(key).is_some_and(|r| r.version() >= *version),
                            "{label}: open lost {key}"
                        );
                    }
                }
                store.close().unwrap();
                drop(store);
                scan_latest(&dir, RecoveryMode::Strict)
                    .unwrap_or_else(|e| panic!("{label}: not clean after open repaired it: {e}"));
                opened += 1;
            }
            std::fs::remove_dir_all(&dir).unwrap();
            explored += 1;
            progress.fetch_add(1, Ordering::Relaxed);
        }
    }
    eprintln!(
        "{backend:?} {method:?}: {} I/O events, {} acknowledged puts, {} cut points, {explored} crash states recovered ({opened} also reopened)",
        rec.events.len(),
        rec.acked.len(),
        cuts.len()
    );
    (explored, opened)
}

#[test]
fn every_crash_state_recovers_every_acknowledged_put() {
    let seed = common::seed_from_env("RINGSTORE_CRASH_SEED");
    let budget: usize = common::env_or("RINGSTORE_CRASH_STATES", 10_000);
    eprintln!(
        "crash states: seed {seed} (replay with RINGSTORE_CRASH_SEED={seed}), budget {budget} per backend"
    );
    // Watchdog: a recovery that hangs fails the run instead of stalling CI.
    let progress = Arc::new(AtomicU64::new(0));
    let watched = progress.clone();
    std::thread::spawn(move || {
        let mut last = (u64::MAX, Instant::now());
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let now = watched.load(Ordering::Relaxed);
            if now != last.0 {
                last = (now, Instant::now());
            } else if last.1.elapsed() > Duration::from_secs(60) {
                eprintln!(
                    "crash states: no progress for 60 s after {now} states: recovery hangs (seed {seed})"
                );
                std::process::abort();
            }
        }
    });
    let started = Instant::now();
    let mut total = (0, 0);
    // Both flush methods: O_DSYNC writes (recorded as a write then its
    // flush) on one backend, write + fdatasync on the other.
    for (backend, method) in [
        (IoBackend::IoUring, SyncMethod::Dsync),
        (IoBackend::Portable, SyncMethod::Fdatasync),
    ] {
        let (explored, opened) = explore(backend, method, seed, budget, &progress);
        total = (total.0 + explored, total.1 + opened);
    }
    eprintln!(
        "crash states: {} explored ({} reopened with Store::open) in {:.1} s, 0 acknowledged puts lost",
        total.0,
        total.1,
        started.elapsed().as_secs_f64()
    );
    assert!(total.0 >= 1000);
}
