//! What the benches share.

use std::path::PathBuf;

/// A temporary data dir under `RINGSTORE_BENCH_DIR` (default: the target
/// dir's disk; tmpfs has no O_DIRECT), or `None` if it cannot be made.
pub fn bench_dir() -> Option<tempfile::TempDir> {
    let parent = std::env::var_os("RINGSTORE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    tempfile::Builder::new()
        .prefix("ringstore-bench-")
        .tempdir_in(parent)
        .ok()
}
