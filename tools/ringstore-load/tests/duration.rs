//! `--duration` replaces the put count: writers stop when the time is up.

mod common;

#[test]
fn writers_run_for_the_duration() {
    let out = tempfile::tempdir().unwrap();
    let mut args = common::TINY.to_vec();
    args.extend(["--duration", "400ms", "--write-interval-ms", "5"]);
    let j = common::run_json(&args, out.path());
    let wall_ms = j["wall_ms"].as_f64().unwrap();
    assert!((400.0..5000.0).contains(&wall_ms), "wall {wall_ms} ms");
    // 4 writers, one put per 5 ms for 0.4 s: at most 4 x 81.
    let puts = j["puts"].as_u64().unwrap();
    assert!((4..=4 * 81).contains(&puts), "{puts} puts");
    assert_eq!(j["lost"], 0);
    assert_eq!(j["config"]["duration"], 0.4);
}
