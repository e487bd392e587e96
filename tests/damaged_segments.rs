//! Damaged bytes on disk: a torn tail is truncated (default mode), refused
//! (Strict) and reported; a flipped byte before the tail fails `open` with the
//! file and offset, or is skipped (SkipCorrupt) keeping every intact frame.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failure here is a test failure"
)]

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ringstore::{Error, RecoveryMode, Store};

/// Writes `n` puts to a one-shard store, one batch each, and returns the
/// newest segment of shard 0 (the only one with frames).
fn make_dir(dir: &Path, n: i64) -> PathBuf {
    let store = Store::open(common::config(dir).shards(1)).unwrap();
    for i in 0..n {
        store
            .put_blocking(&format!("k{i}"), &common::record(i, "damage"))
            .unwrap();
    }
    store.close().unwrap();
    let frames = common::read_all_frames(dir);
    assert_eq!(frames.len() as i64, n);
    let seq = frames.first().map(|f| f.seq).unwrap();
    dir.join("shard-0")
        .join(ringstore::inspect::segment_file_name(seq))
}

fn open(dir: &Path, mode: RecoveryMode) -> Result<Store, Error> {
    Store::open(common::config(dir).shards(1).recovery_mode(mode))
}

#[test]
fn torn_tail_is_truncated_by_default_and_refused_in_strict_mode() {
    let dir = common::temp_dir();
    let seg = make_dir(dir.path(), 5);
    let frames = common::read_all_frames(dir.path());
    let last = frames.last().unwrap().offset;
    // Cut the last frame in half, as a crash mid-write would.
    let f = OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(last + 30).unwrap();
    drop(f);
    match open(dir.path(), RecoveryMode::Strict) {
        Err(Error::Corrupt { path, offset, .. }) => {
            assert_eq!(path, seg);
            assert_eq!(offset, last);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let store = open(dir.path(), RecoveryMode::TolerateTornTail).unwrap();
    assert_eq!(store.len(), 4);
    let report = store.recovery_report();
    assert_eq!(report.torn_tails.len(), 1);
    assert_eq!(report.torn_tails[0].offset, last);
    store
        .put_blocking("k4", &common::record(4, "rewritten"))
        .unwrap();
    store.close().unwrap();
    drop(store);
    // The truncation made the old segment clean: even Strict opens now.
    let store = open(dir.path(), RecoveryMode::Strict).unwrap();
    assert_eq!(store.len(), 5);
    store.close().unwrap();
}

#[test]
fn flipped_byte_before_the_tail_names_file_and_offset() {
    let dir = common::temp_dir();
    let seg = make_dir(dir.path(), 6);
    let frames = common::read_all_frames(dir.path());
    let victim = &frames[2];
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&seg)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, victim.offset + 60).unwrap();
    f.write_all_at(&[b[0] ^ 0x40], victim.offset + 60).unwrap();
    drop(f);
    for mode in [RecoveryMode::Strict, RecoveryMode::TolerateTornTail] {
        match open(dir.path(), mode) {
            Err(e @ Error::Corrupt { .. }) => {
                let Error::Corrupt { path, offset, .. } = &e else {
                    unreachable!()
                };
                assert_eq!(path, &seg);
                assert_eq!(*offset, victim.offset, "{mode:?}");
                assert!(e.to_string().contains(&victim.offset.to_string()));
            }
            other => panic!("{mode:?}: expected Corrupt, got {other:?}"),
        }
    }
    let store = open(dir.path(), RecoveryMode::SkipCorrupt).unwrap();
    assert_eq!(store.len(), 5, "every intact frame is kept");
    assert!(store.get(&victim.key).is_none());
    let report = store.recovery_report();
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].offset, victim.offset);
    store.close().unwrap();
}

#[test]
fn garbage_header_of_an_old_segment_is_corruption() {
    let dir = common::temp_dir();
    let seg = make_dir(dir.path(), 2);
    // Open once more so the damaged segment is no longer the newest.
    open(dir.path(), RecoveryMode::TolerateTornTail)
        .unwrap()
        .close()
        .unwrap();
    let f = OpenOptions::new().write(true).open(&seg).unwrap();
    f.write_all_at(b"garbage!", 0).unwrap();
    drop(f);
    match open(dir.path(), RecoveryMode::TolerateTornTail) {
        Err(Error::Corrupt {
            path, offset: 0, ..
        }) => assert_eq!(path, seg),
        other => panic!("expected Corrupt at 0, got {other:?}"),
    }
}

#[test]
fn a_cut_at_every_byte_of_the_last_frame_is_a_torn_tail() {
    let dir = common::temp_dir();
    let seg = make_dir(dir.path(), 3);
    let frames = common::read_all_frames(dir.path());
    let last = frames.last().unwrap().clone();
    let original = std::fs::read(&seg).unwrap();
    let hint = seg.with_extension("hint");
    let _ = std::fs::remove_file(&hint);
    let end = last.offset + u64::from(last.len);
    for cut in last.offset + 1..end {
        std::fs::write(&seg, &original[..cut as usize]).unwrap();
        match open(dir.path(), RecoveryMode::Strict) {
            Err(Error::Corrupt { offset, .. }) => assert_eq!(offset, last.offset, "cut at {cut}"),
            other => panic!("cut at {cut}: Strict should refuse, got {other:?}"),
        }
        let store = open(dir.path(), RecoveryMode::TolerateTornTail).unwrap();
        assert_eq!(store.len(), 2, "cut at {cut}");
        assert!(store.get(&last.key).is_none());
        assert_eq!(store.recovery_report().torn_tails.len(), 1);
        store.close().unwrap();
        drop(store);
        assert_eq!(
            std::fs::metadata(&seg).unwrap().len(),
            last.offset,
            "cut at {cut}: not truncated"
        );
    }
}
