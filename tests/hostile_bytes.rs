//! Hostile bytes on disk (DESIGN.md guarantee 5: no panic on any bytes found
//! on disk). Property tests feed random and mutated segment and hint files
//! of a real data dir to recovery, in `SkipCorrupt` and the default mode:
//! recovery never panics, never allocates without bound, returns only
//! records that were written, and keeps every intact frame that lies before
//! the damage. A regression test opens with the bug it guards against: a
//! CRC-valid forged frame whose payload nests lists a million levels deep
//! used to overflow the stack during bytecheck validation (an abort, not a
//! panic).
//!
//! Cases per property: `PROPTEST_CASES` (default 256); failures print the
//! seed to replay (proptest's own persistence is off: no files written).

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    unsafe_code,
    reason = "test code; the counting allocator needs `unsafe impl GlobalAlloc`"
)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, FileFailurePersistence};
use ringstore::inspect::format::{
    FORMAT_VERSION, FrameFields, FrameKind, FrameSalt, MIN_BLOCK_SIZE, SegmentHeader, align_up,
    encode_frame, frame_footprint,
};
use ringstore::inspect::{scan_latest, segment_file_name};
use ringstore::{Error, Record, RecordRef, RecoveryMode, Store, Value};

/// Counts live heap bytes and their peak, to bound what recovery allocates.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counters are plain atomics and never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Held for the whole of every test in this file. The allocation counter is
/// process-wide: under `cargo test` (tests as threads of one process) the
/// 1-million-level payload of another test once counted 20 MB into a
/// recovery's peak and failed it.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Peak bytes allocated above the starting level while `f` runs (callers
/// hold `serial`, so no other test of this file allocates meanwhile).
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

/// A record nesting `depth` lists in its `deep` field, archived. Built,
/// serialized and leaked on a thread with a huge stack (building and
/// dropping such a value recurses once per level).
fn deep_payload(depth: usize) -> Vec<u8> {
    std::thread::Builder::new()
        .stack_size(4 << 30)
        .spawn(move || {
            let mut v = Value::Int(1);
            for _ in 1..depth {
                v = Value::List(vec![v]);
            }
            let r = Record::new().with("collection_time", 1i64).with("deep", v);
            let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&r).unwrap().to_vec();
            std::mem::forget(r);
            bytes
        })
        .unwrap()
        .join()
        .unwrap()
}

/// A one-segment data dir whose only frame carries `payload` under a valid
/// CRC: what an attacker with write access to the dir can forge.
fn forged_dir(payload: &[u8]) -> tempfile::TempDir {
    let dir = common::temp_dir();
    let shard = dir.path().join("shard-0");
    std::fs::create_dir_all(&shard).unwrap();
    let block = MIN_BLOCK_SIZE as usize;
    let mut file = vec![0u8; block];
    SegmentHeader {
        block_size: MIN_BLOCK_SIZE,
        shard: 0,
        shard_count: 1,
        pipeline_depth: 1,
        seq: 1,
        generation: 1,
        created_unix_ns: 0,
        format_version: FORMAT_VERSION,
        reused: false,
    }
    .encode(&mut file)
    .unwrap();
    let footprint = frame_footprint("evil".len(), payload.len());
    let mut frame = vec![0u8; align_up(footprint, block)];
    encode_frame(
        &FrameFields {
            kind: FrameKind::Put,
            version: 1,
            lsn: 1,
            generation: 1,
            key: "evil",
            payload,
            payload_crc: crc32c::crc32c(payload),
        },
        FrameSalt::segment(1),
        &mut frame,
    )
    .unwrap();
    file.extend_from_slice(&frame);
    std::fs::write(shard.join(segment_file_name(1)), file).unwrap();
    dir
}

/// Regression: a CRC-valid frame nesting a million lists used to abort the
/// process (stack overflow in bytecheck) during recovery. Now the payload is
/// refused with a typed error, on the 2 MiB stacks recovery threads have.
#[test]
fn a_million_nested_lists_are_refused_not_a_stack_overflow() {
    let _serial = serial();
    let payload = deep_payload(1_000_000);
    let p = payload.clone();
    let refused = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || RecordRef::from_untrusted("evil", 1, &p).is_err())
        .unwrap()
        .join()
        .unwrap();
    assert!(refused);
    let dir = forged_dir(&payload);
    for mode in [
        RecoveryMode::TolerateTornTail,
        RecoveryMode::SkipCorrupt,
        RecoveryMode::Strict,
    ] {
        match scan_latest(dir.path(), mode) {
            Err(Error::Corrupt { reason, .. }) => {
                assert!(reason.contains("invalid record payload"), "{reason}")
            }
            other => panic!("{mode:?}: expected Corrupt, got {other:?}"),
        }
    }
    match Store::open(common::config(dir.path()).shards(1)) {
        Err(Error::Corrupt { .. }) => {}
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// The depth limit of puts (64) is the depth limit of what recovery
/// accepts: 64 levels load, 65 (which no put can write) are refused.
#[test]
fn recovery_accepts_exactly_the_depth_puts_accept() {
    let _serial = serial();
    for (depth, ok) in [
        (ringstore::MAX_VALUE_DEPTH, true),
        (ringstore::MAX_VALUE_DEPTH + 1, false),
    ] {
        let dir = forged_dir(&deep_payload(depth));
        let got = scan_latest(dir.path(), RecoveryMode::TolerateTornTail);
        assert_eq!(got.is_ok(), ok, "depth {depth}: {got:?}");
    }
}

/// A real data dir (two shards, rotated and sealed segments with hints, an
/// active segment per shard), built once: its files and its frames.
struct Pristine {
    files: Vec<(PathBuf, Vec<u8>)>,
    frames: Vec<common::DiskFrame>,
    /// (key, version) of every frame written.
    written: std::collections::HashSet<(String, i64)>,
    _dir: tempfile::TempDir,
}

fn pristine() -> &'static Pristine {
    static P: OnceLock<Pristine> = OnceLock::new();
    P.get_or_init(|| {
        let dir = common::temp_dir();
        let store = Store::open(
            common::config(dir.path())
                .max_segment_records(12)
                .io_backend(ringstore::IoBackend::Portable),
        )
        .unwrap();
        for i in 0..60i64 {
            let key = format!("key{}", i % 17);
            let note = "p".repeat((i as usize * 53) % 700);
            store.put_blocking(&key, &common::record(i, &note)).unwrap();
        }
        store.close().unwrap();
        drop(store);
        // Reopen and write a little: the newest segments are unsealed, as
        // after a crash.
        let store = Store::open(common::config(dir.path())).unwrap();
        for i in 60..70i64 {
            store
                .put_blocking(&format!("key{}", i % 17), &common::record(i, "tail"))
                .unwrap();
        }
        std::mem::forget(store); // no close: like a crash (the lock dies with the test)
        let frames = common::read_all_frames(dir.path());
        let mut files = Vec::new();
        for shard in std::fs::read_dir(dir.path()).unwrap() {
            let shard = shard.unwrap().path();
            if !shard.is_dir() {
                continue;
            }
            for f in std::fs::read_dir(&shard).unwrap() {
                let f = f.unwrap().path();
                let rel = f.strip_prefix(dir.path()).unwrap().to_path_buf();
                files.push((rel, std::fs::read(&f).unwrap()));
            }
        }
        files.sort();
        let written = frames.iter().map(|f| (f.key.clone(), f.version)).collect();
        Pristine {
            files,
            frames,
            written,
            _dir: dir,
        }
    })
}

/// How one file is damaged.
#[derive(Debug, Clone)]
enum Damage {
    /// XOR these bytes at these positions (modulo the file length).
    Flip(Vec<(usize, u8)>),
    /// Cut the file at this fraction (per mille) of its length.
    Truncate(u16),
    /// Overwrite `len` bytes at `at` (per mille of the length) with `fill`
    /// (or random bytes when `None`).
    Overwrite {
        at: u16,
        len: usize,
        fill: Option<u8>,
        noise: Vec<u8>,
    },
    /// Replace the whole file with random bytes.
    Garbage(Vec<u8>),
    /// Append random bytes.
    Append(Vec<u8>),
}

fn damage_strategy() -> impl Strategy<Value = Damage> {
    prop_oneof![
        prop::collection::vec((any::<usize>(), 1u8..), 1..8).prop_map(Damage::Flip),
        (0u16..1000).prop_map(Damage::Truncate),
        (
            0u16..1000,
            1usize..9000,
            prop::option::of(any::<u8>()),
            prop::collection::vec(any::<u8>(), 64)
        )
            .prop_map(|(at, len, fill, noise)| Damage::Overwrite {
                at,
                len,
                fill,
                noise
            }),
        prop::collection::vec(any::<u8>(), 0..20_000).prop_map(Damage::Garbage),
        prop::collection::vec(any::<u8>(), 1..9000).prop_map(Damage::Append),
    ]
}

/// Applies `damage`; returns the new bytes and the offset of the first
/// changed byte (everything before it is intact).
fn apply(bytes: &[u8], damage: &Damage) -> (Vec<u8>, usize) {
    let mut out = bytes.to_vec();
    let len = out.len().max(1);
    let first = match damage {
        Damage::Flip(flips) => {
            let mut first = usize::MAX;
            for (at, x) in flips {
                if out.is_empty() {
                    break;
                }
                let at = at % out.len();
                out[at] ^= x;
                first = first.min(at);
            }
            first
        }
        Damage::Truncate(permille) => {
            let cut = len * usize::from(*permille) / 1000;
            out.truncate(cut);
            cut
        }
        Damage::Overwrite {
            at,
            len: n,
            fill,
            noise,
        } => {
            let at = len * usize::from(*at) / 1000;
            let end = (at + n).min(out.len());
            for (i, b) in out.iter_mut().enumerate().take(end).skip(at) {
                *b = fill.unwrap_or(noise[i % noise.len()]);
            }
            at
        }
        Damage::Garbage(g) => {
            out = g.clone();
            0
        }
        Damage::Append(extra) => {
            out.extend_from_slice(extra);
            bytes.len()
        }
    };
    (out, first)
}

/// Materializes the pristine dir with file `victim` damaged; runs recovery
/// in `mode` and checks the properties.
fn check_damaged(victim: usize, damage: &Damage) -> Result<(), TestCaseError> {
    let p = pristine();
    let dir = common::temp_dir();
    let (victim_path, victim_bytes) = &p.files[victim % p.files.len()];
    let (damaged, first_bad) = apply(victim_bytes, damage);
    let mut input_bytes = 0;
    for (rel, bytes) in &p.files {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let content = if rel == victim_path { &damaged } else { bytes };
        input_bytes += content.len();
        std::fs::write(&path, content).unwrap();
    }
    let is_segment = victim_path.extension().is_some_and(|e| e == "seg");
    // Frames that must survive: those of undamaged files, and those of the
    // damaged segment that end before the first changed byte.
    let mut must: HashMap<&str, i64> = HashMap::new();
    for f in &p.frames {
        let path: &Path = victim_path;
        let file = format!("shard-{}/{}", f.shard_dir, segment_file_name(f.seq));
        let damaged_file = is_segment && path == Path::new(&file);
        if !damaged_file || (f.offset + u64::from(f.len)) as usize <= first_bad {
            let e = must.entry(&f.key).or_insert(f.version);
            *e = (*e).max(f.version);
        }
    }
    for mode in [RecoveryMode::SkipCorrupt, RecoveryMode::TolerateTornTail] {
        let (result, peak) = peak_during(|| scan_latest(dir.path(), mode));
        // Bounded memory: the read window (4 MiB per shard thread) plus a
        // small multiple of the input, whatever the bytes claim.
        prop_assert!(
            peak < (16 << 20) + 8 * input_bytes,
            "{mode:?}: {peak} bytes allocated for {input_bytes} bytes of input"
        );
        match result {
            Ok((latest, _)) => {
                let found: HashMap<&str, i64> = latest
                    .iter()
                    .map(|l| (l.record.key(), l.record.version()))
                    .collect();
                for (key, version) in &found {
                    prop_assert!(
                        p.written.contains(&((*key).to_owned(), *version)),
                        "{mode:?}: {key} v{version} was never written"
                    );
                }
                for (key, version) in &must {
                    let got = found.get(key).copied();
                    prop_assert!(
                        got.is_some_and(|v| v >= *version),
                        "{mode:?}: intact {key} v{version} lost (got {got:?}) after {damage:?} of {victim_path:?} at {first_bad}"
                    );
                }
            }
            Err(Error::Corrupt { path, offset, .. }) => {
                // Refusing is allowed only for damage to a segment (a hint is
                // never required), and names the damaged file.
                prop_assert!(is_segment, "{mode:?}: a damaged hint failed recovery");
                prop_assert!(path.ends_with(victim_path), "{mode:?}: blamed {path:?}");
                // SkipCorrupt refuses only a damaged header.
                if mode == RecoveryMode::SkipCorrupt {
                    prop_assert!(
                        offset == 0 && first_bad < MIN_BLOCK_SIZE as usize,
                        "SkipCorrupt refused damage at {first_bad} (reported {offset})"
                    );
                }
            }
            Err(e) => prop_assert!(false, "{mode:?}: unexpected {e:?}"),
        }
    }
    Ok(())
}

fn prop_config() -> PropConfig {
    PropConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..PropConfig::default()
    }
}

proptest! {
    #![proptest_config(prop_config())]

    /// Damaged segments: recovery keeps every intact frame before the damage.
    #[test]
    fn damaged_segments_keep_every_intact_frame(victim in any::<usize>(), damage in damage_strategy()) {
        let _serial = serial();
        let p = pristine();
        let segs: Vec<usize> = (0..p.files.len())
            .filter(|&i| p.files[i].0.extension().is_some_and(|e| e == "seg"))
            .collect();
        check_damaged(segs[victim % segs.len()], &damage)?;
    }

    /// Damaged hints: never an error, never a lost frame (a bad hint only
    /// costs a scan).
    #[test]
    fn damaged_hints_cost_only_a_scan(victim in any::<usize>(), damage in damage_strategy()) {
        let _serial = serial();
        let p = pristine();
        let hints: Vec<usize> = (0..p.files.len())
            .filter(|&i| p.files[i].0.extension().is_some_and(|e| e == "hint"))
            .collect();
        prop_assume!(!hints.is_empty());
        check_damaged(hints[victim % hints.len()], &damage)?;
    }

    /// Random bytes as a payload behind a valid CRC: validated, never
    /// trusted, never a panic.
    #[test]
    fn random_payloads_are_validated(payload in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _serial = serial();
        let _ = RecordRef::from_untrusted("k", 1, &payload);
    }
}
