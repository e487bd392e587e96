//! `--write-interval-ms 0` runs writers as fast as the store acknowledges.
//! Regression: the coordinated-omission correction once treated a zero
//! interval as 1 ns and recorded millions of synthetic samples per put,
//! so a closed-loop run never finished.

mod common;

#[test]
fn closed_loop_finishes_and_needs_no_correction() {
    let out = tempfile::tempdir().unwrap();
    let mut args = common::TINY.to_vec();
    args.extend(["--write-interval-ms", "0", "--read-interval-ms", "0"]);
    let j = common::run_json(&args, out.path());
    assert_eq!(j["puts"], 80);
    assert_eq!(j["lost"], 0);
    assert_eq!(j["write_ticks_missed"], 0);
    assert_eq!(j["put_latency_corrected_us"], j["put_latency_us"]);
    assert_eq!(j["config"]["write_interval_ms"], 0);
}
