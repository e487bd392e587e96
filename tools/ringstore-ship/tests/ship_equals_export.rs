//! The table holds exactly the history `ringstore-log export` gives for the
//! same data dir, as pyiceberg and DuckDB read it; a second run ships
//! nothing; `SHIPPED` names the newest segment of every shard folder.

mod common;

use common::*;

#[test]
fn shipped_rows_equal_the_export_and_a_rerun_adds_nothing() {
    let Some(stack) = stack("shipped_rows_equal_the_export_and_a_rerun_adds_nothing") else {
        return;
    };
    let dir = temp_dir();
    let newest = populate(dir.path(), 40, 12, 2);
    let table = unique_table("equals_export");

    let first = ok(&ship_once(&stack, dir.path(), &table, "svc-a"));
    assert!(first["segments"].as_u64().unwrap() >= 4, "{first}");
    assert_eq!(first["rows"], 40 * 12 * 2, "{first}");
    assert!(first["commits"].as_u64().unwrap() >= 1, "{first}");
    let got = assert_table_equals_export(&stack, dir.path(), &table, "svc-a", &newest);
    let snapshots = got["pyiceberg"]["snapshots"].as_u64().unwrap();

    let again = ok(&ship_once(&stack, dir.path(), &table, "svc-a"));
    assert_eq!(again["segments"], 0, "{again}");
    assert_eq!(again["commits"], 0, "{again}");
    let got = assert_table_equals_export(&stack, dir.path(), &table, "svc-a", &newest);
    assert_eq!(got["pyiceberg"]["snapshots"].as_u64().unwrap(), snapshots);

    let shipped = std::fs::read_to_string(dir.path().join("SHIPPED")).unwrap();
    assert!(
        shipped.starts_with("ringstore-shipped 1\ninstance svc-a\n"),
        "{shipped}"
    );
    assert!(shipped.ends_with("end\n"), "{shipped}");
    for shard in 0..2 {
        let newest_seq = newest_seq(dir.path(), shard).unwrap();
        let line = shipped
            .lines()
            .find(|l| l.starts_with(&format!("shard-{shard} ")))
            .unwrap();
        assert_eq!(
            line.split(' ').nth(1).unwrap().parse::<u64>().unwrap(),
            newest_seq,
            "{shipped}"
        );
    }
}
