//! A tiny workload runs end to end: every put is counted, acknowledged, found
//! on disk (lost = 0), and the JSON carries the documented fields.

mod common;

#[test]
fn tiny_run_reports_every_put_and_loses_none() {
    let out = tempfile::tempdir().unwrap();
    let j = common::run_json(common::TINY, out.path());

    assert_eq!(j["puts"], 80);
    assert_eq!(j["put_errors"], 0);
    assert_eq!(j["lost"], 0);
    assert!(j["stale_puts"].as_u64().unwrap() <= 80);
    assert_eq!(j["verification"]["acked"], 80);
    assert!(j["verification"]["frames"].as_u64().unwrap() >= 80);
    assert_eq!(j["verification"]["stale_keys"], 0);

    let gets = j["gets"].as_u64().unwrap();
    assert!(gets > 0, "readers read while writers wrote");
    assert_eq!(
        j["get_hits"].as_u64().unwrap() + j["get_misses"].as_u64().unwrap(),
        gets
    );
    assert_eq!(j["put_latency_us"]["count"], 80);
    assert_eq!(j["get_latency_us"]["count"].as_u64().unwrap(), gets);
    common::assert_percentiles_ordered(&j["put_latency_us"]);
    // The store's own view: every Sync put timed from its queue to its
    // reply, which cannot exceed the caller's view of the slowest put.
    assert_eq!(j["put_in_store_us"]["count"], 80);
    assert_eq!(j["put_queued_us"]["count"], 80);
    assert!(
        j["put_in_store_us"]["max"].as_f64().unwrap()
            <= j["put_latency_us"]["max"].as_f64().unwrap()
    );
    assert!(j["write_us"]["count"].as_u64().unwrap() >= 1);
    common::assert_percentiles_ordered(&j["get_latency_us"]);
    // Coordinated-omission correction only adds samples, each smaller than
    // the put it stands behind: more counts, the same max.
    common::assert_percentiles_ordered(&j["put_latency_corrected_us"]);
    assert!(j["put_latency_corrected_us"]["count"].as_u64().unwrap() >= 80);
    assert_eq!(
        j["put_latency_corrected_us"]["max"],
        j["put_latency_us"]["max"]
    );

    for field in [
        "wall_ms",
        "writes_per_ms",
        "reads_per_ms",
        "write_mb_per_s",
        "cpu_seconds",
    ] {
        assert!(j[field].as_f64().unwrap() > 0.0, "{field}: {}", j[field]);
    }
    assert!(j["peak_rss_bytes"].as_u64().unwrap() > 0);
    // The readers' CPU and the writers' own work are parts of the
    // process's CPU (which /proc counts in 10 ms ticks).
    let g = &j["generation"];
    let readers = g["reader_cpu_seconds"].as_f64().unwrap();
    let writers = g["writer_cpu_outside_puts_seconds"].as_f64().unwrap();
    assert!(readers > 0.0, "{g}");
    assert!(
        readers + writers <= j["cpu_seconds"].as_f64().unwrap() + 0.05,
        "{g} vs cpu_seconds {}",
        j["cpu_seconds"]
    );
    assert!(j["baseline"].is_null());
    assert!(j["efficiency"].is_null());
    assert!(j["recovery"].is_null());

    // Every knob as used, shards resolved.
    assert_eq!(j["config"]["writers"], 4);
    assert_eq!(j["config"]["shards"], 2);
    assert_eq!(j["config"]["durability"], "sync");
    assert!(j["device"].is_object());

    // Without --keep the data dir is gone.
    assert_eq!(j["kept"], false);
    assert!(!std::path::Path::new(j["data_dir"].as_str().unwrap()).exists());
}

/// `--get-cpu` splits the slow gets by whether their thread ran: the counts
/// are consistent and the most CPU a get used is measured. Without the
/// flag: null.
#[test]
fn get_cpu_reports_what_slow_gets_did() {
    let out = tempfile::tempdir().unwrap();
    let mut args = common::TINY.to_vec();
    args.push("--get-cpu");
    let j = common::run_json(&args, out.path());
    let slow = &j["slow_gets"];
    assert_eq!(slow["threshold_us"], 100.0);
    let count = slow["count"].as_u64().unwrap();
    assert!(slow["mostly_running"].as_u64().unwrap() <= count, "{slow}");
    let cpu_max = slow["cpu_max_us"].as_f64().unwrap();
    assert!(cpu_max > 0.0, "{slow}");
    assert!(j["get_latency_us"]["count"].as_u64().unwrap() > 0);

    let plain = tempfile::tempdir().unwrap();
    assert!(common::run_json(common::TINY, plain.path())["slow_gets"].is_null());
}

/// `--keep` says where the kept store is (the run dir's `store/` folder),
/// and that path opens as a store.
#[test]
fn keep_prints_the_store_path() {
    let out = tempfile::tempdir().unwrap();
    let mut args = common::TINY.to_vec();
    args.extend(["--keep", "--dir"]);
    args.push(out.path().to_str().unwrap());
    let o = common::run(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("kept the store at "))
        .unwrap_or_else(|| panic!("no kept path in:\n{err}"));
    let path = line
        .split("kept the store at ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap();
    assert!(path.ends_with("/store"), "{path}");
    let store =
        ringstore::Store::open(ringstore::Config::new(path).shards(1).pin_cpus(false)).unwrap();
    assert!(!store.is_empty());
    store.close().unwrap();
}
