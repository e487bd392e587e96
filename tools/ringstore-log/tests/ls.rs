//! `ls` as a process: shards, segments with record counts and version range,
//! sealed vs active, totals that add up to the frames on disk.

mod common;

use common::{frames, json_lines, populate, run_on, segments, stdout, temp_dir};

#[test]
fn lists_every_segment_and_totals() {
    let dir = temp_dir();
    let w = populate(dir.path(), 5, 4);
    let o = run_on("ls", dir.path(), &["--json"]);
    assert_eq!(o.status.code(), Some(0));
    let lines = json_lines(&stdout(&o));
    let segs = segments(dir.path());
    let (total, per_segment) = lines.split_last().unwrap();
    assert_eq!(per_segment.len(), segs.len());
    assert_eq!(total["kind"], "total");
    assert_eq!(total["segments"], segs.len());
    assert_eq!(total["shards"], 2);
    assert_eq!(total["records"], w.puts.len());
    let disk = frames(dir.path());
    for (line, (shard, seq, path)) in per_segment.iter().zip(&segs) {
        assert_eq!(line["shard"], *shard);
        assert_eq!(line["segment"], *seq);
        let mine: Vec<_> = disk.iter().filter(|f| &f.path == path).collect();
        assert_eq!(line["records"], mine.len());
        assert_eq!(line["bytes"], std::fs::metadata(path).unwrap().len());
        if let Some(first) = mine.first() {
            assert_eq!(line["first_version"], first.version);
            assert_eq!(line["last_version"], mine.last().unwrap().version);
        }
        let newest = segs
            .iter()
            .filter(|s| s.0 == *shard)
            .map(|s| s.1)
            .max()
            .unwrap();
        assert_eq!(
            line["state"],
            if *seq == newest { "active" } else { "sealed" }
        );
    }

    let text = stdout(&run_on("ls", dir.path(), &[]));
    assert!(text.contains("sealed") && text.contains("active"), "{text}");
    assert!(
        text.contains(&format!("{} records", w.puts.len())),
        "{text}"
    );
}

/// Spare files (retired segments kept for reuse) are listed per shard and
/// never read as segments; segments written over one are marked `reused`.
#[test]
fn lists_spares_and_reused_segments() {
    let dir = temp_dir();
    let config = || common::config(dir.path()).spare_segments(2);
    let store = ringstore::Store::open(config()).unwrap();
    for v in 0..40 {
        store
            .put_blocking(&format!("key-{}", v % 4), &common::record(0, v))
            .unwrap();
    }
    store.compact().unwrap();
    // One more segment per shard: each takes a spare.
    for v in 40..60 {
        store
            .put_blocking(&format!("key-{}", v % 4), &common::record(0, v))
            .unwrap();
    }
    store.close().unwrap();
    let on_disk: Vec<std::path::PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).into_iter().flatten())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "spare"))
        .collect();
    assert!(!on_disk.is_empty(), "the workload left no spare");
    // What a compaction cut short leaves: a spare still named `.retired`.
    std::fs::rename(&on_disk[0], on_disk[0].with_extension("retired")).unwrap();

    let o = run_on("ls", dir.path(), &["--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let lines = json_lines(&stdout(&o));
    let total = lines.last().unwrap();
    assert_eq!(total["spare_files"], on_disk.len());
    let listed: u64 = lines
        .iter()
        .filter(|l| l["kind"] == "spares")
        .map(|l| l["files"].as_u64().unwrap())
        .sum();
    assert_eq!(listed, on_disk.len() as u64);
    let segs = segments(dir.path());
    assert_eq!(total["segments"], segs.len(), "spares are not segments");
    assert!(
        lines
            .iter()
            .any(|l| l["kind"] == "segment" && l["reused"] == true),
        "no segment marked reused: {lines:?}"
    );
    assert_eq!(
        run_on("verify", dir.path(), &[]).status.code(),
        Some(0),
        "reused segments verify clean"
    );
    let text = stdout(&run_on("ls", dir.path(), &[]));
    assert!(
        text.contains("reused") && text.contains("spares: "),
        "{text}"
    );
}
