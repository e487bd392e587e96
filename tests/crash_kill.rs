//! A real crash: a child process writes from several threads and prints every
//! acknowledgement; the parent kills it with SIGKILL at a random moment,
//! reopens the dir, and finds every acknowledged put (or a newer version of
//! its key). Rounds: `RINGSTORE_KILL_ROUNDS` (default 50 for Sync); the seed
//! is printed and replayed from `RINGSTORE_KILL_SEED`.

mod common;

use ringstore::Durability;

#[test]
fn sigkill_loses_no_acknowledged_sync_put() {
    let config = |dir: &std::path::Path| common::config(dir).durability(Durability::Sync);
    if common::kill::run_child_if_asked(config) {
        return;
    }
    let rounds = common::env_or("RINGSTORE_KILL_ROUNDS", 50);
    common::kill::rounds(
        "sigkill_loses_no_acknowledged_sync_put",
        config,
        rounds,
        true,
    );
}

/// A process crash (not a power loss) in Async mode loses at most what was
/// not yet written; recovery must still open cleanly.
#[test]
fn sigkill_in_async_mode_recovers_cleanly() {
    let config = |dir: &std::path::Path| common::config(dir).durability(Durability::Async);
    if common::kill::run_child_if_asked(config) {
        return;
    }
    let rounds = common::env_or("RINGSTORE_KILL_ROUNDS", 10);
    common::kill::rounds(
        "sigkill_in_async_mode_recovers_cleanly",
        config,
        rounds,
        false,
    );
}

/// Compaction in a loop with small segments: new segments keep reusing the
/// files compaction retired, so kills land while a spare is being taken
/// (header, rename) and while a reused file still holds its earlier frames
/// after the new ones. Nothing acknowledged may be lost.
#[test]
fn sigkill_while_segments_reuse_spare_files_loses_nothing() {
    kill_while_reusing_spares(
        "sigkill_while_segments_reuse_spare_files_loses_nothing",
        Durability::Sync,
        20,
        20,
    );
}

/// The same in Async mode, with rotations every 5 records: children are
/// killed within milliseconds of their first put, so the compaction before
/// the puts leaves spares and the first rotations take them. Recovery must
/// open cleanly and keep every segment's frames in LSN order (Async loses
/// at most what was not yet written).
#[test]
fn sigkill_in_async_mode_while_segments_reuse_spare_files() {
    kill_while_reusing_spares(
        "sigkill_in_async_mode_while_segments_reuse_spare_files",
        Durability::Async,
        5,
        10,
    );
}

/// Kill rounds of children that compact every 20 ms with 2 spares kept and
/// rotate every `segment_records`; `RINGSTORE_KILL_ROUNDS` overrides
/// `default_rounds`. Fails unless some kill left a segment in a spare file.
fn kill_while_reusing_spares(
    name: &str,
    durability: Durability,
    segment_records: u64,
    default_rounds: u64,
) {
    let config = move |dir: &std::path::Path| {
        common::config(dir)
            .durability(durability)
            .max_segment_records(segment_records)
            .spare_segments(2)
    };
    if common::kill::run_child_if_asked_compacting(
        config,
        Some(std::time::Duration::from_millis(20)),
    ) {
        return;
    }
    let rounds = common::env_or("RINGSTORE_KILL_ROUNDS", default_rounds);
    let into_spares = common::kill::rounds(name, config, rounds, durability == Durability::Sync);
    eprintln!("{into_spares} segments in spare files found after the kills of {rounds} rounds");
    assert!(
        into_spares > 0,
        "no child wrote a segment into a spare file: the test did not test reuse"
    );
}
