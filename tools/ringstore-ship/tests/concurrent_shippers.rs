//! Several shippers commit to one table at once and lose no commit and
//! duplicate no row: two shippers of the same data dir (racing for the same
//! segments), and two instances with their own data dirs.

mod common;

use common::*;

#[test]
fn two_shippers_of_one_dir_race_and_ship_each_row_once() {
    let Some(stack) = stack("two_shippers_of_one_dir_race_and_ship_each_row_once") else {
        return;
    };
    let dir = temp_dir();
    let newest = populate(dir.path(), 30, 20, 2);
    let table = unique_table("race_one_dir");
    // Create the table first so both start planning against it at once.
    let mut children = Vec::new();
    for _ in 0..2 {
        let mut c = ship_cmd(&stack, dir.path(), &table, "svc-a");
        c.args(["--once", "--commit-bytes", "1"]);
        children.push(spawn(c));
    }
    let mut segments = 0;
    let mut conflicts = 0;
    for child in children {
        let s = ok(&child.wait_with_output().unwrap());
        segments += s["segments"].as_u64().unwrap();
        conflicts += s["conflicts"].as_u64().unwrap();
    }
    eprintln!("segments shipped {segments}, conflicts {conflicts}");
    assert_table_equals_export(&stack, dir.path(), &table, "svc-a", &newest);
}

#[test]
fn two_instances_ship_to_one_table_concurrently() {
    let Some(stack) = stack("two_instances_ship_to_one_table_concurrently") else {
        return;
    };
    let dirs = [temp_dir(), temp_dir()];
    let newest: Vec<_> = dirs.iter().map(|d| populate(d.path(), 25, 16, 2)).collect();
    let table = unique_table("two_instances");
    let children: Vec<_> = dirs
        .iter()
        .zip(["svc-a", "svc-b"])
        .map(|(d, name)| {
            let mut c = ship_cmd(&stack, d.path(), &table, name);
            c.args(["--once", "--commit-bytes", "1"]);
            spawn(c)
        })
        .collect();
    for child in children {
        ok(&child.wait_with_output().unwrap());
    }
    for ((d, name), newest) in dirs.iter().zip(["svc-a", "svc-b"]).zip(&newest) {
        assert_table_equals_export(&stack, d.path(), &table, name, newest);
    }
}
