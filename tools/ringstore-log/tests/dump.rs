//! `dump` as a process: every line is JSON (a `jq`-style round trip), one per
//! frame, with the record as the store wrote it; filters and the table view.

mod common;

use common::{frames, json_lines, populate, run_on, stdout, temp_dir};

#[test]
fn every_frame_is_one_json_line() {
    let dir = temp_dir();
    let w = populate(dir.path(), 5, 3);
    let o = run_on("dump", dir.path(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    let lines = json_lines(&stdout(&o));
    let disk = frames(dir.path());
    assert_eq!(lines.len(), w.puts.len());
    assert_eq!(lines.len(), disk.len());
    for (line, f) in lines.iter().zip(&disk) {
        assert_eq!(line["key"], f.key.as_str());
        assert_eq!(line["version"], f.version);
        assert_eq!(line["shard"], f.shard);
        assert_eq!(line["segment"], f.seq);
        assert_eq!(line["offset"], f.offset);
        let r = &line["record"];
        assert_eq!(r["collection_time"], f.version);
        assert_eq!(r["x"].as_f64().unwrap(), f.version as f64 * 0.5);
        assert_eq!(r["ok"], f.version % 2 == 0);
        assert!(
            r["name"]
                .as_str()
                .unwrap()
                .ends_with(&format!("\"v{}\"\n", f.version))
        );
        assert_eq!(r["tags"][0], f.version);
    }
    // Every put is in the dump, stale ones included.
    let mut got: Vec<(String, i64)> = lines
        .iter()
        .map(|l| {
            (
                l["key"].as_str().unwrap().to_owned(),
                l["version"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut want = w.puts.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn filters_select_by_key_version_and_limit() {
    let dir = temp_dir();
    let w = populate(dir.path(), 4, 3);
    let o = run_on(
        "dump",
        dir.path(),
        &[
            "--key",
            "key-2",
            "--since-version",
            "4",
            "--until-version",
            "104",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    let lines = json_lines(&stdout(&o));
    let want = w
        .puts
        .iter()
        .filter(|(k, v)| k == "key-2" && (4..=104).contains(v))
        .count();
    assert!(want > 0);
    assert_eq!(lines.len(), want);
    assert!(lines.iter().all(|l| l["key"] == "key-2"));

    let o = run_on("dump", dir.path(), &["--limit", "3"]);
    assert_eq!(json_lines(&stdout(&o)).len(), 3);
    let o = run_on(
        "dump",
        dir.path(),
        &["--since-version", "-5", "--until-version", "-5"],
    );
    assert_eq!(json_lines(&stdout(&o)).len(), 2, "the two stale puts");
}

#[test]
fn table_shows_frame_headers() {
    let dir = temp_dir();
    let w = populate(dir.path(), 3, 2);
    let o = run_on("dump", dir.path(), &["--format", "table"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    let mut lines = out.lines();
    let header = lines.next().unwrap();
    assert!(
        header.contains("offset") && header.contains("lsn") && header.contains("key"),
        "{header}"
    );
    assert_eq!(lines.count(), w.puts.len());
}

#[test]
fn single_segment_dump() {
    let dir = temp_dir();
    populate(dir.path(), 3, 2);
    let disk = frames(dir.path());
    let first = &disk[0];
    let o = run_on("dump", &first.path, &[]);
    assert_eq!(o.status.code(), Some(0));
    let lines = json_lines(&stdout(&o));
    assert_eq!(
        lines.len(),
        disk.iter().filter(|f| f.path == first.path).count()
    );
    assert_eq!(lines[0]["offset"], first.offset);
}
