//! Refusals, as processes: refused credentials (exit 4), an unreachable
//! catalog (exit 3), an incompatible table (exit 5), another dir under the
//! same instance name (exit 5), a damaged sealed segment (exit 1, with file
//! and offset). None of them commits anything.

mod common;

use std::process::Command;

use common::*;

fn exit_code(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

#[test]
fn bad_credentials_are_refused_and_nothing_is_written() {
    let Some(stack) = stack("bad_credentials_are_refused_and_nothing_is_written") else {
        return;
    };
    let dir = temp_dir();
    populate(dir.path(), 5, 5, 1);
    let table = unique_table("bad_credentials");
    let out = ship_cmd_with(
        &stack,
        dir.path(),
        &table,
        "svc-a",
        &stack.catalog,
        &format!("{}:wrong-secret", stack.access_key),
    )
    .arg("--once")
    .output()
    .unwrap();
    assert_eq!(
        exit_code(&out),
        4,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = summary(&out);
    assert_eq!(s["error"], "bad_credentials", "{s}");
    assert!(!dir.path().join("SHIPPED").exists());
}

#[test]
fn an_unreachable_catalog_is_reported_with_its_uri() {
    let Some(stack) = stack("an_unreachable_catalog_is_reported_with_its_uri") else {
        return;
    };
    let dir = temp_dir();
    populate(dir.path(), 5, 5, 1);
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let uri = format!("http://127.0.0.1:{port}");
    let credential = format!("{}:{}", stack.access_key, stack.secret_key);
    let out = ship_cmd_with(&stack, dir.path(), "t", "svc-a", &uri, &credential)
        .arg("--once")
        .output()
        .unwrap();
    assert_eq!(
        exit_code(&out),
        3,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = summary(&out);
    assert_eq!(s["error"], "catalog_unreachable", "{s}");
    assert!(s["message"].as_str().unwrap().contains(&uri), "{s}");
}

#[test]
fn a_table_with_an_incompatible_schema_is_refused() {
    let Some(stack) = stack("a_table_with_an_incompatible_schema_is_refused") else {
        return;
    };
    let dir = temp_dir();
    populate(dir.path(), 5, 5, 1);
    let table = unique_table("incompatible");
    // Someone else's table: `key` is a long.
    let script = format!(
        r#"
import os
from pyiceberg.catalog import load_catalog
from pyiceberg.schema import Schema
from pyiceberg.types import NestedField, LongType
e = os.environ
c = load_catalog("x", type="rest", uri=e["RINGSTORE_SHIP_TEST_CATALOG"], warehouse=e["RINGSTORE_SHIP_TEST_WAREHOUSE"],
                 credential=e["AWS_ACCESS_KEY_ID"] + ":" + e["AWS_SECRET_ACCESS_KEY"])
try:
    c.create_namespace("{NAMESPACE}")
except Exception:
    pass
c.create_table("{NAMESPACE}.{table}", schema=Schema(NestedField(1, "key", LongType(), required=True)))
"#
    );
    let made = Command::new(&stack.python)
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let out = ship_once(&stack, dir.path(), &table, "svc-a");
    assert_eq!(
        exit_code(&out),
        5,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = summary(&out);
    assert_eq!(s["error"], "incompatible_schema", "{s}");
    assert!(
        s["message"].as_str().unwrap().contains("\"key\" is long"),
        "{s}"
    );
}

#[test]
fn another_dir_under_a_shipped_instance_name_is_refused() {
    let Some(stack) = stack("another_dir_under_a_shipped_instance_name_is_refused") else {
        return;
    };
    let (a, b) = (temp_dir(), temp_dir());
    populate(a.path(), 10, 10, 1);
    populate(b.path(), 10, 10, 1);
    let table = unique_table("instance_clash");
    ok(&ship_once(&stack, a.path(), &table, "svc-a"));
    let out = ship_once(&stack, b.path(), &table, "svc-a");
    assert_eq!(
        exit_code(&out),
        5,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(summary(&out)["error"], "instance_mismatch");
}

#[test]
fn a_damaged_sealed_segment_stops_its_shard_with_file_and_offset() {
    let Some(stack) = stack("a_damaged_sealed_segment_stops_its_shard_with_file_and_offset") else {
        return;
    };
    let dir = temp_dir();
    populate(dir.path(), 10, 10, 1);
    let seg = dir.path().join("shard-0").join("00000000000000000001.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    // A byte inside the first frame's key (frames start at block 4096).
    let at = 4096 + 44;
    bytes[at] ^= 0x55;
    std::fs::write(&seg, &bytes).unwrap();
    let table = unique_table("damaged");
    let out = ship_once(&stack, dir.path(), &table, "svc-a");
    assert_eq!(
        exit_code(&out),
        1,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = summary(&out);
    assert_eq!(s["error"], "damaged_segment", "{s}");
    let msg = s["message"].as_str().unwrap();
    assert!(
        msg.contains("00000000000000000001.seg") && msg.contains("offset 4096"),
        "{msg}"
    );
}
