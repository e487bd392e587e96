//! `verify` exit codes as a process: 0 on a clean dir, 0 with a torn tail
//! (reported as in progress, not corruption), 1 on a flipped byte (reported
//! at the flipped frame's offset), 2 on usage or I/O errors.

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use common::{frames, json_lines, populate, run, run_on, stdout, temp_dir};
use ringstore::{RecoveryMode, Store};

#[test]
fn clean_dir_exits_0() {
    let dir = temp_dir();
    let w = populate(dir.path(), 5, 4);
    let o = run_on("verify", dir.path(), &["--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let lines = json_lines(&stdout(&o));
    assert_eq!(lines.len(), 1, "only the summary: {lines:?}");
    let s = &lines[0];
    assert_eq!(s["kind"], "summary");
    assert_eq!(s["frames"], w.puts.len());
    assert_eq!(s["problems"], 0);
    assert_eq!(s["torn_tails"], 0);

    let text = run_on("verify", dir.path(), &[]);
    assert_eq!(text.status.code(), Some(0));
    assert!(stdout(&text).starts_with("clean:"), "{}", stdout(&text));
}

#[test]
fn torn_tail_is_in_progress_not_corruption() {
    let dir = temp_dir();
    populate(dir.path(), 5, 4);
    let all = frames(dir.path());
    // The last frame of shard 1's newest segment, cut mid-frame.
    let last = all.iter().rfind(|f| f.shard == 1).unwrap().clone();
    let file = OpenOptions::new().write(true).open(&last.path).unwrap();
    file.set_len(last.offset + u64::from(last.len) / 2).unwrap();
    drop(file);

    let o = run_on("verify", dir.path(), &["--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let lines = json_lines(&stdout(&o));
    let torn: Vec<_> = lines.iter().filter(|l| l["kind"] == "torn_tail").collect();
    assert_eq!(torn.len(), 1, "{lines:?}");
    assert_eq!(torn[0]["offset"], last.offset);
    assert_eq!(torn[0]["path"], last.path.display().to_string());
    assert_eq!(torn[0]["shard"], 1);
    let frames_before = all.iter().filter(|f| f.path == last.path).count();
    assert_eq!(
        torn[0]["frame"], frames_before,
        "the cut frame is the segment's last"
    );

    let text = stdout(&run_on("verify", dir.path(), &[]));
    assert!(text.contains("TORN TAIL (in progress"), "{text}");

    // --strict counts it as a problem.
    assert_eq!(
        run_on("verify", dir.path(), &["--strict"]).status.code(),
        Some(1)
    );
    // The tool never modifies the dir: the file still has its torn length.
    let len = std::fs::metadata(&last.path).unwrap().len();
    assert_eq!(len, last.offset + u64::from(last.len) / 2);
}

#[test]
fn flipped_byte_reports_the_frame_offset() {
    let dir = temp_dir();
    populate(dir.path(), 5, 4);
    let all = frames(dir.path());
    // A frame in the middle of a sealed (not newest) segment of shard 0.
    let newest = all
        .iter()
        .filter(|f| f.shard == 0)
        .map(|f| f.seq)
        .max()
        .unwrap();
    let in_sealed: Vec<_> = all
        .iter()
        .filter(|f| f.shard == 0 && f.seq < newest)
        .collect();
    let victim = in_sealed[in_sealed.len() / 2].clone();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&victim.path)
        .unwrap();
    let at = victim.offset + u64::from(victim.len) - 3;
    let mut b = [0u8; 1];
    file.read_exact_at(&mut b, at).unwrap();
    file.write_all_at(&[b[0] ^ 0x10], at).unwrap();
    drop(file);

    let o = run_on("verify", dir.path(), &["--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let lines = json_lines(&stdout(&o));
    let problems: Vec<_> = lines.iter().filter(|l| l["kind"] == "problem").collect();
    assert_eq!(problems.len(), 1, "{lines:?}");
    let p = problems[0];
    assert_eq!(p["offset"], victim.offset);
    assert_eq!(p["path"], victim.path.display().to_string());
    let number = all
        .iter()
        .filter(|f| f.path == victim.path && f.offset <= victim.offset)
        .count();
    assert_eq!(p["frame"], number);
    assert!(p["reason"].as_str().unwrap().contains("checksum"), "{p}");
    let summary = lines.last().unwrap();
    assert_eq!(summary["problems"], 1);
    // Every other frame was still checked.
    assert_eq!(summary["frames"], all.len() - 1);

    // The same problem through the text output and on the segment alone.
    let text = stdout(&run_on("verify", dir.path(), &[]));
    assert!(
        text.contains(&format!("offset {}", victim.offset)),
        "{text}"
    );
    let alone = run_on("verify", &victim.path, &[]);
    assert_eq!(alone.status.code(), Some(1));
}

/// `verify` judges damage with the same library call as `Store::open`: for
/// a flipped byte in every frame of a shard's newest segment (so damage
/// followed by 0, 1, 2, … batches, some of which a crash with batches in
/// flight can leave), and in every recovery mode, `verify --mode` exits 0
/// exactly when `open` in that mode opens a copy of the dir. (The segment
/// was sealed by `close`; its hint is removed so that `open` reads every
/// frame, as it does for the unsealed newest segment a crash leaves: with a
/// hint, `open` reads only each key's newest frame, and damage elsewhere in a
/// sealed segment is found by `verify` alone.)
#[test]
fn verify_agrees_with_open_in_every_mode() {
    let dir = temp_dir();
    populate(dir.path(), 5, 4);
    let all = frames(dir.path());
    let newest = all
        .iter()
        .filter(|f| f.shard == 1)
        .map(|f| f.seq)
        .max()
        .unwrap();
    let in_newest: Vec<_> = all
        .iter()
        .filter(|f| f.shard == 1 && f.seq == newest)
        .cloned()
        .collect();
    assert!(in_newest.len() >= 2, "need a frame after the victim");
    let mut verdicts = std::collections::BTreeSet::new();
    for victim in &in_newest {
        let damaged = temp_dir();
        copy_dir(dir.path(), damaged.path());
        let path = damaged
            .path()
            .join(victim.path.strip_prefix(dir.path()).unwrap());
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        file.write_all_at(&[0xEE], victim.offset + 41).unwrap();
        drop(file);
        std::fs::remove_file(path.with_extension("hint")).unwrap();
        for (arg, mode) in [
            ("tolerate-torn-tail", RecoveryMode::TolerateTornTail),
            ("strict", RecoveryMode::Strict),
            ("skip-corrupt", RecoveryMode::SkipCorrupt),
        ] {
            let o = run_on("verify", damaged.path(), &["--json", "--mode", arg]);
            let scratch = temp_dir();
            copy_dir(damaged.path(), scratch.path());
            let opened = Store::open(common::config(scratch.path()).recovery_mode(mode))
                .map(|s| s.close().unwrap())
                .is_ok();
            assert_eq!(
                o.status.code(),
                Some(if opened { 0 } else { 1 }),
                "victim at {} of {}, mode {arg}: open {}; verify said {}",
                victim.offset,
                path.display(),
                if opened { "opens" } else { "refuses" },
                stdout(&o)
            );
            verdicts.insert((arg, opened));
        }
    }
    // Both outcomes were met in the default mode: a damaged frame followed by
    // more batches than can be in flight is refused, the last one is a torn
    // tail.
    assert!(
        verdicts.contains(&("tolerate-torn-tail", true)),
        "{verdicts:?}"
    );
    assert!(
        verdicts.contains(&("tolerate-torn-tail", false)),
        "{verdicts:?}"
    );
}

/// Copies a data dir (its shard folders and their files).
#[expect(clippy::unwrap_used, reason = "test helper")]
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn usage_and_io_errors_exit_2() {
    let dir = temp_dir();
    let missing = dir.path().join("nope");
    let o = run_on("verify", &missing, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        common::stderr(&o).contains("nope"),
        "{}",
        common::stderr(&o)
    );
    // A dir that is not a data dir.
    let empty = temp_dir();
    assert_eq!(run_on("verify", empty.path(), &[]).status.code(), Some(2));
    // Bad arguments.
    assert_eq!(run(&["verify"]).status.code(), Some(2));
    assert_eq!(run(&["frobnicate", "x"]).status.code(), Some(2));
}

#[test]
fn a_running_store_verifies_clean() {
    let dir = temp_dir();
    populate(dir.path(), 3, 2);
    let store = Store::open(common::config(dir.path())).unwrap();
    store
        .put_blocking("live", &common::record(9, 1000))
        .unwrap();
    let o = run_on("verify", dir.path(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    store.close().unwrap();
}

#[test]
fn garbage_file_is_a_problem_not_a_panic() {
    let dir = temp_dir();
    let f = dir.path().join("junk.seg");
    std::fs::write(&f, vec![0x5A; 10_000]).unwrap();
    let o = run_on("verify", &f, &["--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let lines = json_lines(&stdout(&o));
    assert_eq!(lines[0]["kind"], "problem");
    assert_eq!(lines[0]["offset"], 0);
}

#[test]
fn a_newest_segment_whose_header_never_landed_is_a_torn_tail() {
    let dir = temp_dir();
    populate(dir.path(), 3, 2);
    let segs = common::segments(dir.path());
    let (_, seq, _) = segs.iter().rfind(|s| s.0 == 0).unwrap().clone();
    // A crash right after creating the next segment: an empty file.
    let next = dir
        .path()
        .join("shard-0")
        .join(format!("{:020}.seg", seq + 1));
    std::fs::write(&next, b"").unwrap();
    let o = run_on("verify", dir.path(), &["--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let lines = json_lines(&stdout(&o));
    assert_eq!(lines[0]["kind"], "torn_tail");
    assert_eq!(lines[0]["path"], next.display().to_string());

    // Once a newer segment exists, the same empty file is corruption.
    let after = dir
        .path()
        .join("shard-0")
        .join(format!("{:020}.seg", seq + 2));
    std::fs::copy(&segs.iter().rfind(|s| s.0 == 0).unwrap().2, &after).unwrap();
    let o = run_on("verify", dir.path(), &["--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
}

/// A `ringstore-load --keep` run dir holds the store in `store/`: pointed
/// at the run dir, the tool names the data dir inside it (exit 2).
#[test]
fn a_run_dir_points_at_its_store_folder() {
    let run_dir = temp_dir();
    let store = run_dir.path().join("store");
    populate(&store, 3, 2);
    let o = run_on("verify", run_dir.path(), &[]);
    assert_eq!(o.status.code(), Some(2));
    let err = common::stderr(&o);
    assert!(
        err.contains("not a ringstore data dir")
            && err.contains(&format!("the data dir is {}", store.display())),
        "{err}"
    );
    let inside = run_on("verify", &store, &[]);
    assert_eq!(inside.status.code(), Some(0), "{}", stdout(&inside));
}
