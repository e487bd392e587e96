//! Runs the `ringstore-load` binary as a process, as users and CI do.

#![allow(dead_code, reason = "each test file uses a different part")]
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failure here is a test failure"
)]

use std::path::Path;
use std::process::{Command, Output};

/// A workload small enough for a test: 4 writers x 20 puts, 2 readers, 20
/// keys, records of about 1.2 KB.
pub const TINY: &[&str] = &[
    "--writers",
    "4",
    "--writes-per-writer",
    "20",
    "--readers",
    "2",
    "--keys",
    "20",
    "--strings",
    "8",
    "--string-len",
    "64",
    "--doubles",
    "4",
    "--shards",
    "2",
];

/// `--baseline` small enough for a test: 8 MiB per bandwidth test, 2
/// writes in flight.
pub const QUICK_BASELINE: &[&str] = &["--baseline", "--baseline-mib", "8", "--baseline-depth", "2"];

/// Runs the binary with `args`.
pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringstore-load"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs the binary with `args` plus `--json <dir>/out.json`, asserts it
/// succeeded and returns the parsed JSON.
pub fn run_json(args: &[&str], out_dir: &Path) -> serde_json::Value {
    let json = out_dir.join("out.json");
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--json", json.to_str().unwrap()]);
    let output = run(&all);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap()
}

/// Asserts a latency object has every documented field, in order.
pub fn assert_percentiles_ordered(latency: &serde_json::Value) {
    let field = |name: &str| {
        latency
            .get(name)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or_else(|| panic!("{name} missing in {latency}"))
    };
    let values: Vec<f64> = ["min", "p50", "p90", "p99", "p999", "p9999", "max"]
        .into_iter()
        .map(field)
        .collect();
    let (min, max) = (field("min"), field("max"));
    assert!(min > 0.0, "{latency}");
    assert!(values.is_sorted(), "not ordered: {latency}");
    let mean = field("mean");
    assert!(min <= mean && mean <= max, "{latency}");
}
