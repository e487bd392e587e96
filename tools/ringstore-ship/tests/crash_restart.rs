//! A shipper killed at every step of a commit (data files uploaded but not
//! committed; committed but `SHIPPED` not yet written), at the first and at a
//! later commit, then restarted, leaves every row exactly once.

mod common;

use common::*;

#[test]
fn kills_at_every_step_then_a_restart_ship_each_row_exactly_once() {
    let Some(stack) = stack("kills_at_every_step_then_a_restart_ship_each_row_exactly_once") else {
        return;
    };
    let dir = temp_dir();
    let newest = populate(dir.path(), 30, 20, 2);
    let table = unique_table("crash_restart");
    // One segment per commit, so a run makes many commits.
    for point in [
        "after-upload:1",
        "after-commit:1",
        "after-upload:3",
        "after-commit:3",
    ] {
        let out = ship_cmd(&stack, dir.path(), &table, "svc-a")
            .args(["--once", "--commit-bytes", "1"])
            .env("RINGSTORE_SHIP_FAILPOINT", point)
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "{point}: the failpoint did not stop the process: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("failpoint"), "{point}: {stderr}");
    }
    let done = ok(&ship_cmd(&stack, dir.path(), &table, "svc-a")
        .args(["--once", "--commit-bytes", "1"])
        .output()
        .unwrap());
    assert!(done["segments"].as_u64().unwrap() > 0, "{done}");
    assert_table_equals_export(&stack, dir.path(), &table, "svc-a", &newest);
    assert!(dir.path().join("SHIPPED").exists());
}

#[test]
fn sigkill_at_a_random_moment_then_a_restart_ships_each_row_exactly_once() {
    let Some(stack) =
        stack("sigkill_at_a_random_moment_then_a_restart_ships_each_row_exactly_once")
    else {
        return;
    };
    let dir = temp_dir();
    let newest = populate(dir.path(), 30, 20, 2);
    let table = unique_table("sigkill");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_millis() as u64;
    eprintln!("seed {seed} (kill delays in ms derive from it)");
    for round in 0..3u64 {
        let delay = 200 + (seed * 7 + round * 331) % 900;
        let mut c = ship_cmd(&stack, dir.path(), &table, "svc-a");
        c.args(["--once", "--commit-bytes", "1"]);
        let mut child = spawn(c);
        std::thread::sleep(std::time::Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
    }
    ok(&ship_once(&stack, dir.path(), &table, "svc-a"));
    assert_table_equals_export(&stack, dir.path(), &table, "svc-a", &newest);
}
