//! Property test of the shared decoder as the tool drives it: arbitrary and
//! mutated bytes (torn, flipped, overwritten segments; frames with valid CRCs
//! around garbage or mutated rkyv payloads) never panic, never hang, and every
//! run ends with a verdict. Seeded: the seed is printed and
//! `RINGSTORE_LOG_SEED=<n>` replays it; `RINGSTORE_LOG_CASES=<n>` runs more.

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test generators: indices are in bounds by construction, a failure is a test failure"
)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{crc32c, header_block};
use ringstore::inspect::SegmentReader;
use ringstore::inspect::format::{
    FrameFields, FrameKind, FrameSalt, MIN_BLOCK_SIZE, encode_frame, frame_footprint,
};
use ringstore_log::source::discover;
use ringstore_log::verify::{VerifyOptions, verify};

/// xorshift64*: tiny, seeded, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// A segment whose frames have valid CRCs around `payloads`.
fn segment_with(payloads: &[Vec<u8>], rng: &mut Rng) -> Vec<u8> {
    let mut out = header_block(MIN_BLOCK_SIZE);
    for (i, p) in payloads.iter().enumerate() {
        let key = format!("k{}", rng.below(1000));
        let mut f = vec![0u8; frame_footprint(key.len(), p.len())];
        encode_frame(
            &FrameFields {
                kind: FrameKind::Put,
                version: rng.next() as i64,
                lsn: i as u64,
                generation: 1,
                key: &key,
                payload: p,
                payload_crc: crc32c(p),
            },
            FrameSalt::segment(1),
            &mut f,
        )
        .unwrap();
        out.extend_from_slice(&f);
        if rng.below(3) == 0 {
            // End the batch: filler to the next block.
            let block = MIN_BLOCK_SIZE as usize;
            out.resize(out.len().div_ceil(block) * block, 0);
        }
    }
    out
}

fn mutate(base: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = base.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(6) {
            0 => {
                let i = rng.below(b.len());
                if let Some(x) = b.get_mut(i) {
                    *x ^= 1 << rng.below(8);
                }
            }
            1 => b.truncate(rng.below(b.len() + 1)),
            2 => {
                let at = rng.below(b.len());
                let n = rng.below(64);
                for i in at..(at + n).min(b.len()) {
                    b[i] = rng.next() as u8;
                }
            }
            3 => {
                // A plausible or absurd frame length at an aligned spot.
                let at = rng.below(b.len() / 8) * 8;
                let len = [0u32, 1, 39, 40, 41, 4096, u32::MAX, rng.next() as u32][rng.below(8)];
                if at + 4 <= b.len() {
                    b[at..at + 4].copy_from_slice(&len.to_le_bytes());
                }
            }
            4 => {
                let extra = rng.below(3 * MIN_BLOCK_SIZE as usize);
                let tail = rng.bytes(extra);
                b.extend_from_slice(&tail);
            }
            _ => {
                let at = rng.below(b.len());
                let n = rng.below(8192);
                for i in at..(at + n).min(b.len()) {
                    b[i] = 0;
                }
            }
        }
    }
    b
}

/// Reads `path` through the decoder with resync after every error: must end
/// within a bound proportional to the file size.
fn drive_reader(path: &Path) {
    let Ok(mut r) = SegmentReader::open(path) else {
        return;
    };
    let bound = r.file_len() / 8 + 16;
    let mut steps = 0u64;
    loop {
        steps += 1;
        assert!(
            steps <= bound,
            "reader did not terminate on {}",
            path.display()
        );
        match r.next_frame() {
            Ok(Some(_)) => continue,
            Ok(None) => {
                let end = r.position();
                if !r.has_bytes_after(end).unwrap() {
                    break;
                }
                if r.resync_after(end).unwrap().is_none() {
                    break;
                }
            }
            Err(ringstore::inspect::ReadError::Format { offset, .. }) => {
                if r.resync_after(offset).unwrap().is_none() {
                    break;
                }
            }
            Err(e) => panic!("I/O error on a regular file: {e}"),
        }
    }
}

#[test]
fn arbitrary_bytes_never_panic_or_hang() {
    let seed = std::env::var("RINGSTORE_LOG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    let cases: usize = std::env::var("RINGSTORE_LOG_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    println!(
        "decoder property test: seed {seed} ({cases} cases); replay with RINGSTORE_LOG_SEED={seed}"
    );
    let mut rng = Rng(seed);

    // Real segments and real rkyv payloads written by the store.
    let store_dir = common::temp_dir();
    common::populate(store_dir.path(), 4, 2);
    let real: Vec<Vec<u8>> = common::segments(store_dir.path())
        .iter()
        .map(|(_, _, p)| std::fs::read(p).unwrap())
        .collect();
    let payloads: Vec<Vec<u8>> = common::segments(store_dir.path())
        .iter()
        .flat_map(|(_, _, p)| {
            let mut r = SegmentReader::open(p).unwrap();
            let mut v = Vec::new();
            while let Some((_, f)) = r.next_frame().unwrap() {
                v.push(f.payload.to_vec());
            }
            v
        })
        .collect();

    let work = common::temp_dir();
    let shard = work.path().join("shard-0");
    std::fs::create_dir_all(&shard).unwrap();
    let path = shard.join("00000000000000000001.seg");
    // Sanity: the generator's frames are valid, so case 1 reaches bytecheck.
    std::fs::write(&path, segment_with(&payloads, &mut rng)).unwrap();
    let mut out = Vec::new();
    let clean = verify(
        &discover(work.path()).unwrap(),
        &VerifyOptions::default(),
        &mut out,
    )
    .unwrap();
    assert_eq!(
        (clean.problems, clean.frames),
        (0, payloads.len() as u64),
        "{}",
        String::from_utf8_lossy(&out)
    );

    let started = Instant::now();
    for case in 0..cases {
        let bytes = match rng.below(5) {
            0 => mutate(&real[rng.below(real.len())], &mut rng),
            1 => {
                // Valid CRCs around mutated rkyv payloads: only bytecheck stands
                // between these bytes and the record reader.
                let ps: Vec<Vec<u8>> = (0..1 + rng.below(6))
                    .map(|_| mutate(&payloads[rng.below(payloads.len())], &mut rng))
                    .collect();
                segment_with(&ps, &mut rng)
            }
            2 => {
                let ps: Vec<Vec<u8>> = (0..1 + rng.below(6))
                    .map(|_| {
                        let n = rng.below(512);
                        rng.bytes(n)
                    })
                    .collect();
                segment_with(&ps, &mut rng)
            }
            3 => {
                let mut b = header_block(MIN_BLOCK_SIZE);
                let n = rng.below(4 * MIN_BLOCK_SIZE as usize);
                b.extend_from_slice(&rng.bytes(n));
                mutate(&b, &mut rng)
            }
            _ => {
                let n = rng.below(3 * MIN_BLOCK_SIZE as usize);
                rng.bytes(n)
            }
        };
        std::fs::write(&path, &bytes).unwrap();
        drive_reader(&path);
        // The whole tool path: discovery, walk, payload validation, report.
        let source = discover(work.path()).unwrap();
        let mut out = Vec::new();
        let summary = verify(&source, &VerifyOptions::default(), &mut out)
            .unwrap_or_else(|e| panic!("case {case} (seed {seed}): {e}"));
        assert!(summary.segments == 1, "case {case} (seed {seed})");
        assert!(!out.is_empty());
    }
    assert!(
        started.elapsed() < Duration::from_secs(300),
        "too slow: a hang in the making"
    );
}
