//! `--help` names every flag with its default, and the exit codes.

mod common;

#[test]
fn help_lists_every_flag_and_default() {
    let output = common::run(&["--help"]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--dir",
        "--writers",
        "--writes-per-writer",
        "--write-interval-ms",
        "--offer-fraction",
        "--readers",
        "--read-interval-ms",
        "--keys",
        "--doubles",
        "--strings",
        "--string-len",
        "--shards",
        "--durability",
        "--duration",
        "--seed",
        "--json",
        "--plot",
        "--keep",
        "--baseline",
        "--recovery",
        "--io-backend",
        "--compact-above-bytes",
        "--sample-interval-ms",
    ] {
        assert!(text.contains(flag), "--help lacks {flag}");
    }
    for default in [
        "[default: 40]",
        "[default: 2400]",
        "[default: 200]",
        "[default: 2048]",
        "[default: sync]",
        "[default: auto]",
        "[default: /var/tmp]",
        "RINGSTORE_LOAD_DIR",
    ] {
        assert!(text.contains(default), "--help lacks {default}");
    }
    assert!(text.contains("Exit codes"));
}
