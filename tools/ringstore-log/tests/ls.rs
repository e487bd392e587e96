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
