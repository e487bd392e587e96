//! Bad command lines and unusable dirs fail fast, with a message naming the
//! problem and a non-zero exit code, before any load is generated.

#![expect(clippy::unwrap_used, reason = "test: a failure here is a test failure")]

mod common;

fn stderr_of(args: &[&str]) -> (Option<i32>, String) {
    let output = common::run(args);
    (
        output.status.code(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn an_unknown_flag_exits_2_and_names_it() {
    let (code, err) = stderr_of(&["--writerz", "3"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--writerz"), "{err}");
}

#[test]
fn a_malformed_value_exits_2() {
    let (code, err) = stderr_of(&["--durability", "sometimes"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("sometimes"), "{err}");
    let (code, err) = stderr_of(&["--duration", "soon"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("soon"), "{err}");
}

#[test]
fn an_out_of_range_value_exits_2_and_names_the_flag() {
    let (code, err) = stderr_of(&["--writers", "0"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--writers"), "{err}");
}

#[test]
fn a_missing_output_dir_is_refused_before_the_run() {
    let (code, err) = stderr_of(&["--json", "/nonexistent-dir/out.json"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("/nonexistent-dir"), "{err}");
}

#[test]
fn a_tmpfs_dir_is_refused_with_a_hint() {
    let shm = std::path::Path::new("/dev/shm");
    let on_tmpfs = std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some("/dev/shm") && l.contains(" tmpfs "));
    if !shm.is_dir() || !on_tmpfs {
        eprintln!("skipped: /dev/shm is not a tmpfs here");
        return;
    }
    let (code, err) = stderr_of(&[
        "--dir",
        "/dev/shm",
        "--writers",
        "1",
        "--writes-per-writer",
        "1",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("tmpfs") && err.contains("--dir"), "{err}");
}
