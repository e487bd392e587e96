//! `--compare seed-design` runs the same tiny workload through the seed's
//! architecture before and after the store, and reports the store's figures
//! as ratios to it, in the table and in the JSON; with `--durability async`
//! the design runs without fsync.

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test helpers: a failure here is a test failure"
)]

mod common;

fn assert_positive(j: &serde_json::Value, field: &str) {
    let v = j[field].as_f64();
    assert!(v.is_some_and(|v| v > 0.0), "{field}: {}", j[field]);
}

fn check_comparison(j: &serde_json::Value, durable: bool) {
    let c = &j["seed_design"];
    assert_eq!(c["design"], "seed-design", "{c}");
    assert_eq!(c["durable"], durable);
    assert_eq!(
        (&c["shards"], &c["persisters"], &c["group_max_records"]),
        (&8.into(), &16.into(), &64.into())
    );
    for round in ["before", "after"] {
        // The design ran the store's workload: the same puts.
        assert_eq!(c[round]["puts"], j["puts"], "{round}: {c}");
        assert_eq!(c[round]["put_latency_us"]["count"], j["puts"]);
        common::assert_percentiles_ordered(&c[round]["put_latency_us"]);
        assert_positive(&c[round], "puts_per_s");
    }
    for field in [
        "puts_per_s",
        "put_p99_us",
        "puts_per_s_ratio",
        "put_p50_ratio",
        "put_p99_ratio",
    ] {
        assert_positive(c, field);
    }
    // The ratio is the store's figure over the mean of the design's runs.
    let store_puts_per_s = j["puts"].as_f64().unwrap() * 1e3 / j["wall_ms"].as_f64().unwrap();
    let ratio = store_puts_per_s / c["puts_per_s"].as_f64().unwrap();
    assert!(
        (c["puts_per_s_ratio"].as_f64().unwrap() - ratio).abs() < 1e-6 * ratio,
        "{c}"
    );
    assert!(j["store_cpu_us_per_put"].as_f64().is_some(), "{j}");
}

#[test]
fn sync_comparison_reports_ratios_to_the_durable_seed_design() {
    let out = tempfile::tempdir().unwrap();
    let mut args = common::TINY.to_vec();
    args.extend(["--compare", "seed-design"]);
    let j = common::run_json(&args, out.path());
    assert_eq!(j["lost"], 0);
    check_comparison(&j, true);
    assert_eq!(j["config"]["compare"], "seed-design");

    // The table says the same.
    let output = common::run(&args);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("seed design 8 shards, 16 persister threads, one fdatasync per group"),
        "{text}"
    );
    assert!(text.contains("vs seed design"), "{text}");
}

#[test]
fn async_comparison_runs_the_design_without_fsync() {
    let out = tempfile::tempdir().unwrap();
    let mut args = common::TINY.to_vec();
    args.extend(["--durability", "async", "--compare", "seed-design"]);
    let j = common::run_json(&args, out.path());
    check_comparison(&j, false);
}

#[test]
fn without_the_flag_there_is_no_comparison() {
    let out = tempfile::tempdir().unwrap();
    let j = common::run_json(common::TINY, out.path());
    assert!(j["seed_design"].is_null());
    assert!(j["config"]["compare"].is_null());
}

#[test]
fn an_unknown_design_is_a_usage_error() {
    let output = common::run(&["--compare", "redis"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("seed-design"));
}
