//! `--baseline` runs the workload's closed loop through a bare group-commit
//! log (its writers, records of its size, one file per shard) and, in Sync,
//! reports the store's MB/s as a ratio to it.

mod common;

#[test]
fn the_baseline_runs_the_closed_loop_through_a_bare_group_commit_log() {
    let out = tempfile::tempdir().unwrap();
    let mut args = common::TINY.to_vec();
    args.extend(common::QUICK_BASELINE);
    let j = common::run_json(&args, out.path());
    assert_eq!(j["lost"], 0);

    let b = &j["baseline"];
    assert_eq!(b["group_commit_writers"], 4);
    assert_eq!(b["shard_files"], 2);
    // A record as serialized holds at least its payload (4 doubles, 8
    // strings of 64 characters) and less than a block of field names.
    let record_bytes = b["group_commit_record_bytes"].as_u64().unwrap();
    assert!(
        (4 * 8 + 8 * 64..4 * 8 + 8 * 64 + 4096).contains(&record_bytes),
        "{record_bytes}"
    );
    for run in ["before", "after"] {
        assert!(
            b[run]["group_commit_mb_per_s"].as_f64().unwrap() > 0.0,
            "{run}: {b}"
        );
    }
    let group_commit = b["group_commit_mb_per_s"].as_f64().unwrap();
    let ratio = j["efficiency_vs_group_commit"].as_f64().unwrap();
    let expected = j["write_mb_per_s"].as_f64().unwrap() / group_commit;
    assert!(
        (ratio - expected).abs() < 1e-9 * expected.max(1.0),
        "{ratio} vs {expected}"
    );
}

#[test]
fn async_runs_report_no_group_commit_ratio() {
    let out = tempfile::tempdir().unwrap();
    let mut args = common::TINY.to_vec();
    args.extend(common::QUICK_BASELINE);
    args.extend(["--durability", "async"]);
    let j = common::run_json(&args, out.path());
    assert!(j["baseline"]["group_commit_mb_per_s"].as_f64().unwrap() > 0.0);
    assert!(j["efficiency_vs_group_commit"].is_null(), "{j}");
}
