//! Regression: files a crash leaves that nothing will ever read or finish —
//! a hint temporary (`<seq>.tmp`, cut before its rename) and a hint whose
//! segment a compaction removed before the crash — stayed in the shard
//! folders forever. `open` now removes them, and keeps everything else.

mod common;

use ringstore::Store;
use ringstore::inspect::layout::{self, FileKind};

#[test]
fn open_removes_orphaned_hints_and_hint_temporaries() {
    let dir = common::temp_dir();
    let config = || common::config(dir.path()).max_segment_records(2);
    let store = Store::open(config()).unwrap();
    for v in 0..10 {
        store
            .put_blocking(&format!("k{v}"), &common::record(v, "x"))
            .unwrap();
    }
    store.close().unwrap();
    let shard = layout::shard_dir(dir.path(), 0);
    let before = layout::files(&shard).unwrap();
    let hint_of_a_segment = before
        .iter()
        .find(|f| f.kind == FileKind::Hint)
        .expect("sealed segments have hints")
        .path
        .clone();
    let next = layout::next_seq(&shard).unwrap();
    let temp = shard.join(layout::file_name(next + 5, FileKind::HintTemp));
    let orphan = shard.join(layout::file_name(next + 6, FileKind::Hint));
    std::fs::write(&temp, b"half a hint").unwrap();
    std::fs::copy(&hint_of_a_segment, &orphan).unwrap();

    let store = Store::open(config()).unwrap();
    assert!(!temp.exists(), "hint temporary left in place");
    assert!(!orphan.exists(), "hint without a segment left in place");
    assert!(
        hint_of_a_segment.exists(),
        "a live segment's hint was removed"
    );
    for v in 0..10 {
        assert_eq!(store.get(&format!("k{v}")).unwrap().version(), v);
    }
    store.close().unwrap();
}

/// Found by the model test (`tests/model.rs`): a hint temporary left in a
/// shard folder by a process killed while sealing made every later
/// `compact` fail once that folder belonged to a run with more shards
/// ("removing retired shard dir failed: Directory not empty"). The sweep
/// at `open` removes it, so the folder is retired whole.
#[test]
fn a_folder_with_crash_leftovers_is_retired_by_compaction() {
    let dir = common::temp_dir();
    let store = Store::open(common::config(dir.path()).max_segment_records(2)).unwrap();
    for v in 0..10 {
        store
            .put_blocking(&format!("k{v}"), &common::record(v, "x"))
            .unwrap();
    }
    store.close().unwrap();
    let shard1 = layout::shard_dir(dir.path(), 1);
    let next = layout::next_seq(&shard1).unwrap();
    std::fs::write(
        shard1.join(layout::file_name(next, FileKind::HintTemp)),
        b"cut before its rename",
    )
    .unwrap();

    let store = Store::open(common::config(dir.path()).shards(1)).unwrap();
    let report = store.compact().unwrap();
    assert_eq!(report.folders_removed, 1, "{report:?}");
    assert!(!shard1.exists());
    for v in 0..10 {
        assert_eq!(store.get(&format!("k{v}")).unwrap().version(), v);
    }
    store.close().unwrap();
}
