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
