//! `--offer-fraction` paces the writers at a share of the raw bandwidth the
//! baseline measured before the workload, so "half of the device" means the
//! same on any disk; without `--baseline` it is refused.

mod common;

#[test]
fn writers_are_paced_at_the_share_of_the_measured_bandwidth() {
    let out = tempfile::tempdir().unwrap();
    let mut args = common::TINY.to_vec();
    // A tiny share, so that the pause is long enough to see in the run's
    // wall time (TINY's records are ~0.5 KB).
    args.extend(common::QUICK_BASELINE);
    args.extend(["--offer-fraction", "0.0002"]);
    let j = common::run_json(&args, out.path());
    assert_eq!(j["lost"], 0);

    let c = &j["config"];
    let payload_bytes = c["doubles"].as_f64().unwrap() * 8.0
        + c["strings"].as_f64().unwrap() * c["string_len"].as_f64().unwrap();
    let raw_mb_per_s = j["baseline"]["before"]["seq_write_mb_per_s"]
        .as_f64()
        .unwrap();
    let expected_us = c["writers"].as_f64().unwrap() * payload_bytes / (0.0002 * raw_mb_per_s);
    let paced_us = c["paced_write_interval_us"].as_f64().unwrap();
    assert!(
        (paced_us - expected_us.round().max(1.0)).abs() <= 1.0,
        "paced every {paced_us} µs, expected {expected_us}"
    );

    // Each writer's 20 puts are 19 pauses apart at least.
    let puts = c["writes_per_writer"].as_f64().unwrap();
    let wall_ms = j["wall_ms"].as_f64().unwrap();
    assert!(
        wall_ms >= (puts - 1.0) * paced_us / 1000.0,
        "the workload took {wall_ms} ms for {puts} puts every {paced_us} µs"
    );
    // Paced, so the coordinated-omission correction applies.
    assert!(j["put_latency_corrected_us"]["count"].as_u64().unwrap() >= 80);
}

#[test]
fn without_the_baseline_it_exits_2_and_says_why() {
    let output = common::run(&["--offer-fraction", "0.5"]);
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8(output.stderr).unwrap();
    assert!(
        err.contains("offer-fraction") && err.contains("--baseline"),
        "{err}"
    );
}
