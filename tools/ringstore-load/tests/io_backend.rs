//! `--io-backend portable` runs the store on its blocking backend, loses
//! nothing, and the report names the backend actually used; `auto` reports
//! what it resolved to, never `auto`.

mod common;

#[test]
fn portable_backend_runs_and_is_reported() {
    let out = tempfile::tempdir().unwrap();
    let mut args = common::TINY.to_vec();
    args.extend(["--io-backend", "portable"]);
    let j = common::run_json(&args, out.path());
    assert_eq!(j["io_backend"], "portable");
    assert_eq!(j["config"]["io_backend"], "portable");
    assert_eq!(j["puts"], 80);
    assert_eq!(j["lost"], 0);
    assert_eq!(j["verification"]["check"], "exact_frame");
    assert_eq!(j["write_bytes_estimated"], false);
}

#[test]
fn auto_reports_the_backend_it_resolved_to() {
    let out = tempfile::tempdir().unwrap();
    let j = common::run_json(common::TINY, out.path());
    assert_eq!(j["config"]["io_backend"], "auto");
    let resolved = j["io_backend"].as_str().unwrap();
    assert!(["io-uring", "portable"].contains(&resolved), "{resolved}");
}
