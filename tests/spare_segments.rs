//! Segments retired by `Store::compact` are kept as spares (up to
//! `Config::spare_segments` per shard) and later segments overwrite their
//! files. A reused file still holds the frames of its earlier use after the
//! new data until it is sealed and cut: recovery must never take them for
//! the new segment's, also after a crash, and lose nothing acknowledged.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failure here is a test failure"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ringstore::{Config, IoBackend, RecoveryMode, Store};

const CHILD_DIR: &str = "RINGSTORE_SPARE_CHILD_DIR";

fn config(dir: &Path) -> Config {
    common::config(dir)
        .max_segment_records(10)
        .spare_segments(2)
}

/// Inode numbers of the files with `extension` in every shard folder.
fn inodes(dir: &Path, extension: &str) -> BTreeMap<u64, PathBuf> {
    let mut out = BTreeMap::new();
    for shard in std::fs::read_dir(dir).unwrap() {
        let shard = shard.unwrap().path();
        if !shard.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&shard).unwrap() {
            let path = f.unwrap().path();
            if path.extension().is_some_and(|x| x == extension) {
                out.insert(std::fs::metadata(&path).unwrap().ino(), path);
            }
        }
    }
    out
}

/// Puts `count` records of about `pad` bytes over 20 keys with versions from
/// `first`.
fn put_many(
    store: &Store,
    (first, count): (i64, i64),
    pad: usize,
    newest: &mut BTreeMap<String, i64>,
) {
    let pad = "s".repeat(pad);
    for v in first..first + count {
        let key = format!("key{}", v % 20);
        store.put_blocking(&key, &common::record(v, &pad)).unwrap();
        newest.insert(key, v);
    }
}

/// A closed store's dir after 200 puts and a compaction: 2 spares per
/// shard. The segment opened after the checkpoint is a new file; the next
/// one (after a rotation) would take a spare.
fn dir_with_spares(newest: &mut BTreeMap<String, i64>) -> tempfile::TempDir {
    let dir = common::temp_dir();
    let store = Store::open(config(dir.path())).unwrap();
    put_many(&store, (0, 200), 2000, newest);
    store.compact().unwrap();
    store.close().unwrap();
    drop(store);
    dir
}

fn assert_newest(store: &Store, newest: &BTreeMap<String, i64>, context: &str) {
    assert_eq!(store.len(), newest.len(), "{context}");
    for (k, v) in newest {
        assert_eq!(store.get(k).unwrap().version(), *v, "{context}: {k}");
    }
}

#[test]
fn compaction_keeps_spares_and_later_segments_overwrite_them() {
    keeps_and_overwrites_spares(config);
}

/// The same through the blocking backend (machines without io_uring).
#[test]
fn the_portable_backend_reuses_spares_too() {
    keeps_and_overwrites_spares(|dir| config(dir).io_backend(IoBackend::Portable));
}

fn keeps_and_overwrites_spares(config: impl Fn(&Path) -> Config) {
    let dir = common::temp_dir();
    let mut newest = BTreeMap::new();
    let store = Store::open(config(dir.path())).unwrap();
    // Larger records first: the segments that reuse these files hold less
    // than the files did, so their earlier frames stay after the new data.
    put_many(&store, (0, 200), 6000, &mut newest);
    let report = store.compact().unwrap();
    assert_eq!(report.segments_recycled, 4, "2 per shard: {report:?}");
    assert!(report.segments_removed > 0, "{report:?}");
    let spares = inodes(dir.path(), "spare");
    assert_eq!(spares.len(), 4, "{spares:?}");

    // Every new segment takes a spare while there is one.
    put_many(&store, (200, 100), 2000, &mut newest);
    assert!(
        inodes(dir.path(), "spare").is_empty(),
        "spares left after 10 rotations"
    );
    let reused: Vec<_> = inodes(dir.path(), "seg")
        .into_iter()
        .filter(|(ino, _)| spares.contains_key(ino))
        .collect();
    assert_eq!(reused.len(), 4, "segments in spare files: {reused:?}");
    assert_newest(&store, &newest, "before close");
    store.close().unwrap();
    drop(store);

    // Sealing ended each reused segment with a zero block after its data
    // (no truncate): the earlier frames stay, and a reader stops cleanly.
    for (_, path) in &reused {
        let mut reader = ringstore::inspect::SegmentReader::open(path).unwrap();
        assert!(reader.header().reused, "{}", path.display());
        while reader.next_frame().unwrap().is_some() {}
        let end = reader.position();
        assert!(end < reader.file_len(), "{} was cut", path.display());
        assert!(reader.has_bytes_after(end).unwrap());
        assert!(!reader.damage_after_end(end).unwrap(), "{}", path.display());
    }

    // Nothing to report at the next open.
    let store = Store::open(config(dir.path())).unwrap();
    let report = store.recovery_report();
    assert!(report.torn_tails.is_empty(), "{report:?}");
    assert!(report.skipped.is_empty(), "{report:?}");
    assert_newest(&store, &newest, "after reopen");
    store.close().unwrap();
    common::assert_frames_in_lsn_order(&common::read_all_frames(dir.path()), "after reopen");
}

/// The child of `a_crash_in_a_reused_segment_loses_nothing`: fills the dir,
/// compacts, writes a few puts into a reused spare, prints them, and aborts
/// (no unwinding, no seal: the file keeps its old frames after the new ones).
fn crash_child(dir: &Path) {
    let config = config(dir).shards(1);
    let store = Store::open(config).unwrap();
    let mut newest = BTreeMap::new();
    put_many(&store, (0, 200), 2000, &mut newest);
    store.compact().unwrap();
    let spares: BTreeSet<u64> = inodes(dir, "spare").into_keys().collect();
    let mut out = std::io::stdout().lock();
    for ino in &spares {
        writeln!(out, "SPARE {ino}").unwrap();
    }
    // The checkpoint's puts fill 2 segments; the next rotation takes the
    // first spare. Put until it has, then 3 more into it.
    let mut v = 1000;
    while inodes(dir, "spare").len() == spares.len() {
        put_many(&store, (v, 1), 2000, &mut newest);
        v += 1;
    }
    put_many(&store, (v, 3), 2000, &mut newest);
    for (k, version) in &newest {
        writeln!(out, "ACK {k} {version}").unwrap();
    }
    out.flush().unwrap();
    std::process::abort();
}

#[test]
fn a_crash_in_a_reused_segment_loses_nothing() {
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        crash_child(Path::new(&dir));
        return;
    }
    let dir = common::temp_dir();
    let child = common::spawn_self(
        "a_crash_in_a_reused_segment_loses_nothing",
        (CHILD_DIR, dir.path()),
    );
    let mut spares = BTreeSet::new();
    let mut acked = BTreeMap::new();
    let mut child = child;
    for line in BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["SPARE", ino] => {
                spares.insert(ino.parse::<u64>().unwrap());
            }
            ["ACK", key, version] => {
                acked.insert((*key).to_owned(), version.parse::<i64>().unwrap());
            }
            _ => {}
        }
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child must crash (abort)");
    assert_eq!(acked.len(), 20, "the child did not finish its puts");

    // The crash left the newest segment in a reused file, with the frames
    // of its earlier use after the 4 new ones.
    let segments = inodes(dir.path(), "seg");
    let newest_seg = segments.values().max().unwrap().clone();
    let ino = std::fs::metadata(&newest_seg).unwrap().ino();
    assert!(
        spares.contains(&ino),
        "{} is not a reused spare",
        newest_seg.display()
    );
    // The old frames fail their CRC under the new segment's seq: the reader
    // reports damage right after the 4 new frames.
    let mut reader = ringstore::inspect::SegmentReader::open(&newest_seg).unwrap();
    let mut frames = 0;
    while let Ok(Some(_)) = reader.next_frame() {
        frames += 1;
    }
    assert_eq!(frames, 4, "frames of this segment in the reused file");
    let end = reader.position();
    assert!(
        reader.resync_after(end).unwrap().is_none(),
        "no frame of this segment after {end}"
    );
    assert!(
        reader.has_bytes_after(end).unwrap(),
        "the reused file should still hold its earlier frames after offset {end}"
    );

    let store = Store::open(config(dir.path()).shards(1)).unwrap();
    assert_newest(&store, &acked, "after the crash");
    let report = store.recovery_report().clone();
    assert_eq!(report.torn_tails.len(), 1, "{report:?}");
    let torn = report.torn_tails.first().unwrap();
    assert_eq!((&torn.path, torn.offset), (&newest_seg, end), "{report:?}");
    assert!(report.skipped.is_empty(), "{report:?}");
    store.close().unwrap();
    drop(store);
    common::assert_frames_in_lsn_order(&common::read_all_frames(dir.path()), "after the crash");
    // Recovery cut the leftovers: the next open finds nothing to repair.
    let store = Store::open(config(dir.path()).shards(1)).unwrap();
    assert!(store.recovery_report().torn_tails.is_empty());
    assert_newest(&store, &acked, "second reopen");
    store.close().unwrap();
}

#[test]
fn strict_mode_keeps_no_spares() {
    let dir = common::temp_dir();
    let mut newest = BTreeMap::new();
    let store = Store::open(config(dir.path())).unwrap();
    put_many(&store, (0, 200), 2000, &mut newest);
    assert_eq!(store.compact().unwrap().segments_recycled, 4);
    store.close().unwrap();
    drop(store);

    // Strict refuses a torn tail, and a crash in a reused file leaves one:
    // Strict stores neither keep nor take spares, and drop those they find.
    let strict = config(dir.path()).recovery_mode(RecoveryMode::Strict);
    let store = Store::open(strict).unwrap();
    put_many(&store, (200, 100), 2000, &mut newest);
    assert_eq!(inodes(dir.path(), "spare").len(), 4, "Strict took a spare");
    let report = store.compact().unwrap();
    assert_eq!(report.segments_recycled, 0, "{report:?}");
    assert!(inodes(dir.path(), "spare").is_empty());
    assert_newest(&store, &newest, "strict");
    store.close().unwrap();
}

#[test]
fn zero_spares_deletes_retired_segments() {
    let dir = common::temp_dir();
    let mut newest = BTreeMap::new();
    let store = Store::open(config(dir.path()).spare_segments(0)).unwrap();
    put_many(&store, (0, 200), 2000, &mut newest);
    let report = store.compact().unwrap();
    assert_eq!(report.segments_recycled, 0, "{report:?}");
    assert!(inodes(dir.path(), "spare").is_empty());
    assert_newest(&store, &newest, "no spares");
    store.close().unwrap();
}

#[test]
fn compaction_keeps_the_largest_retired_files_as_spares() {
    let dir = common::temp_dir();
    let mut newest = BTreeMap::new();
    let config = || config(dir.path()).shards(1);
    // A short run leaves the oldest segment small (sealed by `close`).
    let store = Store::open(config()).unwrap();
    put_many(&store, (0, 2), 4000, &mut newest);
    store.close().unwrap();
    drop(store);
    let store = Store::open(config()).unwrap();
    put_many(&store, (10, 40), 4000, &mut newest);
    // Retired now: the small segment (the oldest) and full ones; the spares
    // must be full ones.
    store.compact().unwrap();
    let sizes: Vec<u64> = inodes(dir.path(), "spare")
        .values()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .collect();
    assert_eq!(sizes.len(), 2, "{sizes:?}");
    let full = 10 * 4096;
    assert!(
        sizes.iter().all(|&s| s > full),
        "a spare smaller than a full segment was kept: {sizes:?}"
    );
    assert_newest(&store, &newest, "after compaction");
    store.close().unwrap();
}

#[test]
fn an_open_without_puts_gives_its_spare_back() {
    let mut newest = BTreeMap::new();
    let dir = dir_with_spares(&mut newest);
    let before = inodes(dir.path(), "spare");
    assert_eq!(before.len(), 4);
    // Each open takes a spare for its first segment; closing without a put
    // must give it back, not delete it.
    for _ in 0..3 {
        let store = Store::open(config(dir.path())).unwrap();
        assert_eq!(inodes(dir.path(), "spare").len(), 2, "one taken per shard");
        store.close().unwrap();
        drop(store);
        let after = inodes(dir.path(), "spare");
        assert_eq!(
            after.keys().collect::<Vec<_>>(),
            before.keys().collect::<Vec<_>>(),
            "the same files are spares again"
        );
    }
    let store = Store::open(config(dir.path())).unwrap();
    assert_newest(&store, &newest, "after empty opens");
    assert!(store.recovery_report().torn_tails.is_empty());
    store.close().unwrap();
}

/// Regression: `compact` used to rename retired segments straight to
/// `.spare`, where a shard could take one and durably write a new header
/// into it before the folder sync made the rename durable. A power cut then
/// left a `.seg` file whose old frames all failed under its new header, and
/// recovery refused the dir (found by `crash_states`). Retired files now
/// wait as `.retired` until that sync; one left by a compaction cut short
/// is never read, never reused, and becomes a spare at the next compaction
/// (or is deleted when no spares are kept).
#[test]
fn retired_files_left_by_a_cut_short_compaction_become_spares_later() {
    let mut newest = BTreeMap::new();
    let dir = dir_with_spares(&mut newest);
    // The state a crash between the retiring rename and the promotion
    // leaves: a spare still named `.retired`.
    let spares = inodes(dir.path(), "spare");
    assert_eq!(spares.len(), 4);
    let (&ino, spare) = spares.iter().next().unwrap();
    std::fs::rename(spare, spare.with_extension("retired")).unwrap();

    let store = Store::open(config(dir.path())).unwrap();
    assert_newest(&store, &newest, "a .retired file is not read");
    put_many(&store, (200, 100), 2000, &mut newest);
    assert!(
        !inodes(dir.path(), "seg").contains_key(&ino),
        "a .retired file was reused before its retirement was durable"
    );
    store.compact().unwrap();
    assert!(inodes(dir.path(), "retired").is_empty());
    assert!(inodes(dir.path(), "spare").contains_key(&ino), "promoted");
    assert_newest(&store, &newest, "after compaction");
    store.close().unwrap();
    drop(store);

    // With no spares kept, a left-over `.retired` file is deleted.
    let any = inodes(dir.path(), "spare").into_values().next().unwrap();
    std::fs::rename(&any, any.with_extension("retired")).unwrap();
    let store = Store::open(config(dir.path()).spare_segments(0)).unwrap();
    store.compact().unwrap();
    assert!(inodes(dir.path(), "retired").is_empty());
    assert!(inodes(dir.path(), "spare").is_empty());
    assert_newest(&store, &newest, "no spares");
    store.close().unwrap();
}

/// A data dir written before `compact` made retirements durable first can
/// hold, after a power cut, a file still named for its old segment whose
/// header a later segment had already rewritten (its rename never became
/// durable). Nothing in it was acknowledged. The default mode sets it aside
/// as `.retired` and opens; Strict refuses.
#[test]
fn a_spare_whose_rename_was_lost_is_set_aside() {
    let mut newest = BTreeMap::new();
    let dir = dir_with_spares(&mut newest);
    // An open takes a spare per shard and writes its new header; a close
    // without puts gives it back under its old name, header and all: the
    // bytes of that power-cut state.
    let store = Store::open(config(dir.path())).unwrap();
    store.close().unwrap();
    drop(store);
    let rewritten: Vec<PathBuf> = inodes(dir.path(), "spare")
        .into_values()
        .filter(|p| {
            let named: u64 = p.file_stem().unwrap().to_str().unwrap().parse().unwrap();
            let reader = ringstore::inspect::SegmentReader::open(p).unwrap();
            reader.header().seq > named
        })
        .collect();
    assert_eq!(rewritten.len(), 2, "one per shard");
    let unrenamed = rewritten[0].with_extension("seg");
    std::fs::rename(&rewritten[0], &unrenamed).unwrap();

    let strict = config(dir.path()).recovery_mode(RecoveryMode::Strict);
    assert!(Store::open(strict).is_err(), "Strict refuses it");

    let store = Store::open(config(dir.path())).unwrap();
    let report = store.recovery_report();
    assert_eq!(report.torn_tails.len(), 1, "{report:?}");
    assert_eq!(report.torn_tails[0].path, unrenamed);
    assert!(
        report.torn_tails[0]
            .reason
            .contains("rename never became durable"),
        "{report:?}"
    );
    assert!(!unrenamed.exists());
    assert!(unrenamed.with_extension("retired").exists());
    assert_newest(&store, &newest, "after setting it aside");
    store.close().unwrap();
    drop(store);
    let store = Store::open(config(dir.path())).unwrap();
    assert!(store.recovery_report().torn_tails.is_empty());
    assert_newest(&store, &newest, "second open");
    store.close().unwrap();
}
