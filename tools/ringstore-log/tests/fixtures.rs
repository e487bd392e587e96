//! Committed format fixtures (tests/fixtures/, 12 KiB each) read by the built
//! binary: an intact segment, the same with a torn tail, and with a flipped
//! byte in the middle. They pin the on-disk format: if a format change breaks
//! them, bump the format version and regenerate with
//! `RINGSTORE_LOG_WRITE_FIXTURES=1 cargo test -p ringstore-log --test fixtures -- --ignored`.
//! The committed files are format version 1 (written before version 2),
//! so they also pin that this build still reads version 1; the generator
//! now writes the current version.
//!
//! Each segment: header block, a batch of 3 frames at 4096, a batch of 2
//! frames at 8192 (keys `a`..`e`, versions 1..5).

mod common;

use std::path::{Path, PathBuf};

use common::{json_lines, run_on, stdout};
use ringstore::{RecoveryMode, Store};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Offsets of the 5 frames of the intact fixture.
#[expect(clippy::unwrap_used, reason = "test helper")]
fn offsets() -> Vec<u64> {
    let mut r = ringstore::inspect::SegmentReader::open(&segment(&fixture("intact"))).unwrap();
    let mut out = Vec::new();
    while let Some((off, _)) = r.next_frame().unwrap() {
        out.push(off);
    }
    out
}

fn segment(dir: &Path) -> PathBuf {
    dir.join("shard-0").join("00000000000000000001.seg")
}

#[test]
fn intact_fixture_is_clean() {
    let o = run_on("verify", &fixture("intact"), &["--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let lines = json_lines(&stdout(&o));
    assert_eq!(lines.last().unwrap()["frames"], 5);
    let dump = json_lines(&stdout(&run_on("dump", &fixture("intact"), &[])));
    let keys: Vec<&str> = dump.iter().map(|l| l["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["a", "b", "c", "d", "e"]);
    assert_eq!(dump[2]["record"]["name"], "c");
    assert_eq!(offsets().len(), 5);
    assert_eq!(
        offsets()[3],
        8192,
        "second batch starts on a block boundary"
    );
}

#[test]
fn torn_tail_fixture_is_in_progress() {
    let o = run_on("verify", &fixture("torn_tail"), &["--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let lines = json_lines(&stdout(&o));
    assert_eq!(lines[0]["kind"], "torn_tail");
    assert_eq!(lines[0]["offset"], offsets()[4]);
    assert_eq!(lines[0]["frame"], 5);
    assert_eq!(
        run_on("verify", &fixture("torn_tail"), &["--strict"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        json_lines(&stdout(&run_on("dump", &fixture("torn_tail"), &[]))).len(),
        4
    );
}

/// A flipped byte in the first batch of the only (so newest) segment,
/// followed by one more batch: `verify` judges it as `Store::open` does in
/// each recovery mode (the same library call). Version 1 frames carry no
/// batch marks, so recovery cannot count the batches after the damage: a
/// later batch whose frames continue the log order is read as in flight at
/// a crash, a torn tail that the default mode truncates.
#[test]
fn corrupt_middle_fixture_is_judged_as_open_judges_it() {
    for (arg, mode, opens) in [
        ("tolerate-torn-tail", RecoveryMode::TolerateTornTail, true),
        ("strict", RecoveryMode::Strict, false),
        ("skip-corrupt", RecoveryMode::SkipCorrupt, true),
    ] {
        let copy = common::temp_dir();
        std::fs::create_dir(copy.path().join("shard-0")).unwrap();
        std::fs::copy(segment(&fixture("corrupt_middle")), segment(copy.path())).unwrap();
        let opened = Store::open(common::config(copy.path()).recovery_mode(mode))
            .map(|s| s.close().unwrap())
            .is_ok();
        assert_eq!(opened, opens, "{arg}: Store::open");
        let o = run_on(
            "verify",
            &fixture("corrupt_middle"),
            &["--json", "--mode", arg],
        );
        assert_eq!(
            o.status.code(),
            Some(if opens { 0 } else { 1 }),
            "{arg}: {}",
            stdout(&o)
        );
        let lines = json_lines(&stdout(&o));
        let kind = match mode {
            RecoveryMode::TolerateTornTail => "torn_tail",
            RecoveryMode::Strict => "problem",
            RecoveryMode::SkipCorrupt => "skipped",
        };
        assert_eq!(lines[0]["kind"], kind, "{arg}");
        assert_eq!(lines[0]["offset"], offsets()[1]);
        assert_eq!(lines[0]["frame"], 2);
    }
    // `dump` keeps every intact frame: frame 3 shares the damaged batch's
    // block and is lost with it; the next batch is read again.
    let d = run_on("dump", &fixture("corrupt_middle"), &[]);
    assert_eq!(d.status.code(), Some(1));
    assert_eq!(json_lines(&stdout(&d)).len(), 3);
}

#[test]
#[ignore = "regenerates the committed fixtures"]
fn write_fixtures() {
    use ringstore::inspect::format::{
        FrameFields, FrameKind, FrameSalt, encode_frame, frame_footprint,
    };
    if std::env::var_os("RINGSTORE_LOG_WRITE_FIXTURES").is_none() {
        return;
    }
    // rkyv payloads exactly as the store archives them.
    let tmp = common::temp_dir();
    let store =
        ringstore::Store::open(ringstore::Config::new(tmp.path()).shards(1).pin_cpus(false))
            .unwrap();
    let keys = ["a", "b", "c", "d", "e"];
    let mut payloads = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let r = ringstore::Record::new()
            .with("collection_time", i as i64 + 1)
            .with("name", *k)
            .with("x", 0.25);
        store.put_blocking(k, &r).unwrap();
        payloads.push(store.get(k).unwrap().as_bytes().to_vec());
    }
    store.close().unwrap();

    let mut seg = common::header_block(4096);
    seg.resize(3 * 4096, 0);
    let mut offsets = Vec::new();
    let mut at = 4096;
    for (i, (k, p)) in keys.iter().zip(&payloads).enumerate() {
        if i == 3 {
            at = 8192;
        }
        let n = frame_footprint(k.len(), p.len());
        encode_frame(
            &FrameFields {
                kind: FrameKind::Put,
                version: i as i64 + 1,
                lsn: i as u64 + 1,
                generation: 1,
                key: k,
                payload: p,
                payload_crc: common::crc32c(p),
            },
            FrameSalt::segment(1),
            &mut seg[at..at + n],
        )
        .unwrap();
        offsets.push((at, n));
        at += n;
    }
    let write = |name: &str, bytes: &[u8]| {
        let p = segment(&fixture(name));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    };
    write("intact", &seg);
    let (last, n) = offsets[4];
    write("torn_tail", &seg[..last + n / 2]);
    let mut bad = seg.clone();
    bad[offsets[1].0 + 44] ^= 0x01;
    write("corrupt_middle", &bad);
}
