//! `--sample-interval-ms` records a time series while the writers run: one
//! sample per interval, in time order, each with RSS and the interval's own
//! put and get counts and percentiles; their counts add up to the run's
//! totals, and the report carries a soak summary.

mod common;

#[test]
fn samples_cover_the_run_in_order() {
    let out = tempfile::tempdir().unwrap();
    let mut args = common::TINY.to_vec();
    args.extend([
        "--duration",
        "2s",
        "--write-interval-ms",
        "5",
        "--sample-interval-ms",
        "200",
    ]);
    let j = common::run_json(&args, out.path());
    assert_eq!(j["lost"], 0);
    let samples = j["samples"].as_array().unwrap();
    // 2 s in 200 ms steps: about 10, fewer on a loaded machine. More only
    // if the writers ran late (CI once saw 13 in a run that lasted 2.6 s), so
    // the upper bound is checked against the times below, not a count.
    assert!(samples.len() >= 5, "{} samples", samples.len());

    let f = |s: &serde_json::Value, name: &str| {
        s[name]
            .as_f64()
            .unwrap_or_else(|| panic!("{name} missing in {s}"))
    };
    let times: Vec<f64> = samples.iter().map(|s| f(s, "t_s")).collect();
    assert!(
        times.is_sorted() && times.windows(2).all(|w| w[0] < w[1]),
        "{times:?}"
    );
    assert!(times[0] > 0.0 && *times.last().unwrap() < 10.0, "{times:?}");
    // No sample before its due time: the k-th full interval ends at or after
    // k × 200 ms (only the last, shorter one may end early).
    for (k, t) in times.iter().enumerate().take(times.len() - 1) {
        assert!(
            *t >= 0.2 * (k + 1) as f64 - 1e-6,
            "sample {k} at {t} s: {times:?}"
        );
    }
    for s in samples {
        assert!(s["rss_bytes"].as_u64().unwrap() > 0, "{s}");
        assert!(s["dir_bytes"].as_u64().unwrap() > 0, "{s}");
        assert!(f(s, "interval_s") > 0.0, "{s}");
        assert!(f(s, "cpu_pct") >= 0.0 && f(s, "host_cpu_pct") >= 0.0, "{s}");
        if s["puts"].as_u64().unwrap() > 0 {
            assert!(f(s, "put_p50_us") > 0.0, "{s}");
            assert!(f(s, "put_p50_us") <= f(s, "put_p99_us"), "{s}");
            assert!(f(s, "put_p99_us") <= f(s, "put_max_us"), "{s}");
        }
        if s["gets"].as_u64().unwrap() > 0 {
            assert!(f(s, "get_p50_us") <= f(s, "get_p99_us"), "{s}");
            assert!(f(s, "get_p99_us") <= f(s, "get_max_us"), "{s}");
        }
    }
    // Every acknowledged put falls in some interval (a sliver after the last
    // full interval may be dropped).
    let sampled: u64 = samples.iter().map(|s| s["puts"].as_u64().unwrap()).sum();
    let puts = j["puts"].as_u64().unwrap();
    assert!(
        sampled <= puts && sampled * 10 >= puts * 8,
        "{sampled} of {puts}"
    );

    let soak = &j["soak"];
    assert_eq!(soak["samples"].as_u64().unwrap(), samples.len() as u64);
    let (min, median, max) = (
        soak["rss_min_bytes"].as_u64().unwrap(),
        soak["rss_median_bytes"].as_u64().unwrap(),
        soak["rss_max_bytes"].as_u64().unwrap(),
    );
    assert!(0 < min && min <= median && median <= max, "{soak}");
    assert!(soak["rss_flat_pct"].as_f64().unwrap() >= 0.0, "{soak}");
    assert!(soak["put_p99_drift"].as_f64().unwrap() > 0.0, "{soak}");
}

#[test]
fn without_the_flag_there_are_no_samples() {
    let out = tempfile::tempdir().unwrap();
    let j = common::run_json(common::TINY, out.path());
    assert_eq!(j["samples"], serde_json::json!([]));
    assert!(j["soak"].is_null());
}
