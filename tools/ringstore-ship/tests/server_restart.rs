//! A `--follow` shipper keeps going across a restart of the object store and
//! catalog: segments sealed while the server is down are shipped once it is
//! back (the shipper reports the outage and retries), and nothing is
//! shipped twice.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

#[test]
fn a_following_shipper_survives_a_server_restart() {
    let Some(stack) = stack("a_following_shipper_survives_a_server_restart") else {
        return;
    };
    let Some(ctl) = stack.server_ctl.clone() else {
        loud(
            "\n!!!!!!!! SKIPPED a_following_shipper_survives_a_server_restart: RINGSTORE_SHIP_TEST_SERVER_CTL unset\n",
        );
        return;
    };
    let server = |action: &str| {
        let status = Command::new(&ctl).arg(action).status().unwrap();
        assert!(status.success(), "server.sh {action} failed");
    };
    let dir = temp_dir();
    populate(dir.path(), 20, 10, 1);
    let table = unique_table("server_restart");
    let mut c = ship_cmd(&stack, dir.path(), &table, "svc-a");
    c.args(["--follow", "--poll-ms", "300"]);
    let mut child = KillOnDrop(Some(spawn(c)));
    wait_for(&dir, 1);

    server("stop");
    // More history sealed while the server is down; the shipper meets the
    // outage at its next look.
    let newest = populate(dir.path(), 20, 10, 3);
    std::thread::sleep(Duration::from_millis(1500));
    server("start");
    wait_until_shipped(&dir);

    // SIGTERM: the shipper stops between commits with exit 0.
    let child = child.0.take().unwrap();
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("retrying"),
        "the outage went unnoticed:\n{stderr}"
    );
    assert_table_equals_export(&stack, dir.path(), &table, "svc-a", &newest);
}
