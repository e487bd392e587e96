//! `--compact-above-bytes` turns on the store's retention: compaction deletes
//! superseded frames, so verification switches to "same or newer version on
//! disk" and still finds every acknowledged put. Below the store's 1 MiB
//! minimum the flag is refused as bad input.

mod common;

#[test]
fn retention_runs_and_verifies_by_newest_version() {
    let out = tempfile::tempdir().unwrap();
    let mut args = common::TINY.to_vec();
    args.extend(["--compact-above-bytes", "1048576"]);
    let j = common::run_json(&args, out.path());
    assert_eq!(j["config"]["compact_above_bytes"], 1_048_576);
    assert_eq!(j["verification"]["check"], "same_or_newer_version");
    assert_eq!(j["verification"]["acked"], 80);
    assert_eq!(j["lost"], 0);
    // Compaction may delete frames before they are counted: the bytes
    // written are an estimate, flagged as such.
    assert_eq!(j["write_bytes_estimated"], true);
    assert!(j["write_mb_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_limit_below_one_mib_exits_2() {
    let output = common::run(&["--compact-above-bytes", "1000"]);
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("--compact-above-bytes"), "{err}");
}
