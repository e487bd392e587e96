//! `--baseline`, `--recovery`, `--plot` and `--keep` together: the device is
//! measured before and after, the reopen finds every key at its newest
//! acknowledged version, the SVG has both curves, and the data dir stays.

mod common;

#[test]
fn baseline_recovery_plot_and_keep() {
    let out = tempfile::tempdir().unwrap();
    let plot = out.path().join("latency.svg");
    let mut args = common::TINY.to_vec();
    args.extend(common::QUICK_BASELINE);
    args.extend([
        "--recovery",
        "--keep",
        "--durability",
        "async",
        "--plot",
        plot.to_str().unwrap(),
    ]);
    let j = common::run_json(&args, out.path());
    let data_dir = std::path::PathBuf::from(j["data_dir"].as_str().unwrap());
    let kept = data_dir.join("store").is_dir();
    std::fs::remove_dir_all(&data_dir).unwrap();
    assert!(kept, "--keep keeps the data dir");
    assert_eq!(j["kept"], true);

    assert_eq!(j["lost"], 0);
    let b = &j["baseline"];
    for field in [
        "seq_write_mb_per_s",
        "durable_write_mb_per_s",
        "fsync_write_p99_us",
    ] {
        assert!(b[field].as_f64().unwrap() > 0.0, "{field}: {b}");
    }
    assert_eq!(b["before"]["fsync_write_us"]["count"], 200);
    common::assert_percentiles_ordered(&b["after"]["fsync_write_us"]);
    // Async: efficiency is relative to the raw bandwidth.
    let efficiency = j["efficiency"].as_f64().unwrap();
    let expected =
        j["write_mb_per_s"].as_f64().unwrap() / b["seq_write_mb_per_s"].as_f64().unwrap();
    assert!((efficiency - expected).abs() < 1e-9 * expected.max(1.0));

    let r = &j["recovery"];
    assert_eq!(r["mismatched_keys"], 0);
    assert_eq!(r["torn_tails"], 0);
    assert_eq!(r["frames"], j["verification"]["frames"]);
    assert!(r["keys"].as_u64().unwrap() <= 20);

    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg"));
    assert_eq!(svg.matches("<polyline").count(), 2);
}
