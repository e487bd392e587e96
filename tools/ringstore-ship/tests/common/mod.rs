//! Helpers for the shipper's process tests: the test stack from the
//! environment (or a loud skip), data dirs written by a real store, the
//! binary as a child process, and the table read back by pyiceberg and
//! DuckDB.
#![allow(dead_code, reason = "each test file uses a different subset")]
#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test helpers: a failure here is a test failure"
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ringstore::{Config, Record, Store};
use ringstore_log::export::{ExportFormat, ExportOptions, export};
use ringstore_log::source::discover;

/// The running test stack, from the variables run-tests.sh sets.
#[derive(Debug, Clone)]
pub struct Stack {
    pub catalog: String,
    pub warehouse: String,
    pub s3: String,
    pub access_key: String,
    pub secret_key: String,
    /// Python of the venv with pyiceberg and DuckDB.
    pub python: PathBuf,
    /// read_table.py.
    pub reader: PathBuf,
    /// test-stack/server.sh, which stops and starts the server (its state
    /// from `RINGSTORE_SHIP_STACK_STATE` / `_VENV`), if tests may do so.
    pub server_ctl: Option<PathBuf>,
}

/// The stack, or `None` after a loud message when the variables are absent
/// (run the tests through tools/ringstore-ship/test-stack/run-tests.sh).
pub fn stack(test: &str) -> Option<Stack> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let found = (|| {
        Some(Stack {
            catalog: var("RINGSTORE_SHIP_TEST_CATALOG")?,
            warehouse: var("RINGSTORE_SHIP_TEST_WAREHOUSE")?,
            s3: var("RINGSTORE_SHIP_TEST_S3")?,
            access_key: var("AWS_ACCESS_KEY_ID")?,
            secret_key: var("AWS_SECRET_ACCESS_KEY")?,
            python: var("RINGSTORE_SHIP_TEST_PYTHON")?.into(),
            reader: Path::new(env!("CARGO_MANIFEST_DIR")).join("test-stack/read_table.py"),
            server_ctl: var("RINGSTORE_SHIP_TEST_SERVER_CTL").map(PathBuf::from),
        })
    })();
    if found.is_none() {
        loud(&format!(
            "\n!!!!!!!! SKIPPED {test}: no test stack (RINGSTORE_SHIP_TEST_CATALOG, RINGSTORE_SHIP_TEST_WAREHOUSE, RINGSTORE_SHIP_TEST_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, RINGSTORE_SHIP_TEST_PYTHON unset).\n!!!!!!!! Run tools/ringstore-ship/test-stack/run-tests.sh to start the object store and catalog and run these tests against them.\n"
        ));
    }
    found
}

/// Writes straight to the process's stderr, past the test harness's output
/// capture, so a skip is seen in every run.
pub fn loud(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// A table name no other test (or earlier run) uses.
pub fn unique_table(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{test}_{}_{}", std::process::id(), nanos % 1_000_000_000)
}

pub const NAMESPACE: &str = "ringstore_test";

/// A temporary dir on a real filesystem (tmpfs has no O_DIRECT).
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ringstore-ship-test-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

/// Two shards, unpinned, small segments so every shard seals several.
pub fn config(dir: &Path) -> Config {
    Config::new(dir)
        .shards(2)
        .pin_cpus(false)
        .max_segment_records(50)
}

/// Puts `keys` keys × `versions` versions through a real store (opened and
/// closed `runs` times, so there are several generations); returns the
/// newest version of each key.
pub fn populate(dir: &Path, keys: usize, versions: i64, runs: i64) -> Vec<(String, i64)> {
    let mut newest = Vec::new();
    for run in 0..runs {
        let store = Store::open(config(dir)).unwrap();
        for v in 0..versions {
            for k in 0..keys {
                let version = 1000 * run + v;
                let record = Record::new()
                    .with("collection_time", version)
                    .with("name", format!("sensor-{k} \"v{version}\""))
                    .with("x", version as f64 / 4.0);
                store.put_blocking(&format!("key-{k}"), &record).unwrap();
            }
        }
        store.close().unwrap();
    }
    for k in 0..keys {
        newest.push((format!("key-{k}"), 1000 * (runs - 1) + versions - 1));
    }
    newest
}

/// `ringstore-log export --format jsonl` of `dir` into `out`.
pub fn export_jsonl(dir: &Path, out: &Path) {
    let source = discover(dir).unwrap();
    let opts = ExportOptions {
        format: ExportFormat::Jsonl,
        out: out.to_path_buf(),
        latest: false,
        include_deleted: false,
        mode: ringstore::RecoveryMode::TolerateTornTail,
        progress: false,
    };
    let mut err = Vec::new();
    let s = export(&source, dir, &opts, &mut err).unwrap();
    assert_eq!(s.problems, 0, "{}", String::from_utf8_lossy(&err));
}

/// The shipper as a command for `dir`, with `--json` (the caller adds
/// `--once` or `--follow`).
pub fn ship_cmd(stack: &Stack, dir: &Path, table: &str, instance: &str) -> Command {
    let credential = format!("{}:{}", stack.access_key, stack.secret_key);
    ship_cmd_with(stack, dir, table, instance, &stack.catalog, &credential)
}

/// `ship_cmd` with another catalog URI or credential.
pub fn ship_cmd_with(
    stack: &Stack,
    dir: &Path,
    table: &str,
    instance: &str,
    catalog: &str,
    credential: &str,
) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ringstore-ship"));
    c.arg(dir)
        .args(["--catalog", catalog])
        .args(["--warehouse", &stack.warehouse])
        .args(["--namespace", NAMESPACE])
        .args(["--table", table])
        .args(["--instance", instance])
        .args(["--credential", credential])
        .args(["--s3-endpoint", &stack.s3])
        .arg("--json")
        .env_remove("RINGSTORE_SHIP_FAILPOINT")
        .env("AWS_ACCESS_KEY_ID", &stack.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &stack.secret_key);
    c
}

/// Runs `ship_cmd` with `--once`.
pub fn ship_once(stack: &Stack, dir: &Path, table: &str, instance: &str) -> Output {
    ship_cmd(stack, dir, table, instance)
        .arg("--once")
        .output()
        .unwrap()
}

/// Spawns `ship_cmd` (the caller adds `--once` or `--follow`).
pub fn spawn(mut c: Command) -> Child {
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The JSON summary of a finished run (its last stdout line).
pub fn summary(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_else(|| {
        panic!(
            "no summary; status {:?}, stderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    serde_json::from_str(line).unwrap()
}

/// Asserts a run succeeded; returns its summary.
pub fn ok(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "ringstore-ship failed: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    summary(out)
}

/// Figures of the table read by pyiceberg and DuckDB (and of an export
/// file), from read_table.py.
pub fn read_table(
    stack: &Stack,
    table: &str,
    instance: &str,
    export: Option<&Path>,
) -> serde_json::Value {
    let mut c = Command::new(&stack.python);
    c.arg(&stack.reader).args([
        "--namespace",
        NAMESPACE,
        "--table",
        table,
        "--instance",
        instance,
    ]);
    if let Some(e) = export {
        c.arg("--export").arg(e);
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "read_table.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Asserts both readers see exactly the rows of `ringstore-log export` of
/// `dir`, no duplicate, and `newest` as the newest version per key.
pub fn assert_table_equals_export(
    stack: &Stack,
    dir: &Path,
    table: &str,
    instance: &str,
    newest: &[(String, i64)],
) -> serde_json::Value {
    let scratch = temp_dir();
    let jsonl = scratch.path().join("export.jsonl");
    export_jsonl(dir, &jsonl);
    let got = read_table(stack, table, instance, Some(&jsonl));
    let export = &got["export"];
    assert!(export["rows"].as_u64().unwrap() > 0, "empty export");
    for reader in ["pyiceberg", "duckdb"] {
        let r = &got[reader];
        for figure in ["rows", "sum_version", "key_hash", "deletes"] {
            assert_eq!(r[figure], export[figure], "{reader} {figure}: {got}");
        }
        assert_eq!(r["duplicates"], 0, "{reader} duplicates: {got}");
        for (key, version) in newest {
            assert_eq!(
                r["newest"][key], *version,
                "{reader} newest of {key}: {got}"
            );
        }
        assert_eq!(
            r["newest"].as_object().unwrap().len(),
            newest.len(),
            "{reader} keys: {got}"
        );
    }
    got
}

/// Kills a shipper if the test fails before stopping it.
pub struct KillOnDrop(pub Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits until `SHIPPED` exists with at least `lines` shard lines.
pub fn wait_for(dir: &tempfile::TempDir, lines: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(dir.path().join("SHIPPED")).unwrap_or_default();
        if text.lines().filter(|l| l.starts_with("shard-")).count() >= lines {
            return;
        }
        assert!(Instant::now() < deadline, "nothing shipped within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until a `--once` run finds nothing left to ship.
pub fn wait_until_shipped(dir: &tempfile::TempDir) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let text = std::fs::read_to_string(dir.path().join("SHIPPED")).unwrap_or_default();
        let all_newest = (0..2).all(|shard| {
            let newest = newest_seq(dir.path(), shard);
            newest.is_some_and(|n| text.contains(&format!("shard-{shard} {n} ")))
        });
        if all_newest {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not everything shipped within 120 s:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The highest segment seq in `dir/shard-<shard>`.
pub fn newest_seq(dir: &Path, shard: u64) -> Option<u64> {
    std::fs::read_dir(dir.join(format!("shard-{shard}")))
        .unwrap()
        .filter_map(|e| {
            ringstore::inspect::parse_segment_name(&e.unwrap().file_name().into_string().unwrap())
        })
        .max()
}
