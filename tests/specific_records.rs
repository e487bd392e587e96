//! The seed's specific-records test: two keys, three puts each in a fixed
//! order, from two concurrent writers. Every put is on disk; the readable
//! record of each key is its highest version; the older ones come back Stale.

mod common;

use ringstore::{PutOutcome, Store};

#[test]
fn newest_version_wins_and_stale_puts_are_logged() {
    let dir = common::temp_dir();
    let store = Store::open(common::config(dir.path())).unwrap();
    let t = 1_700_000_000_000_000_000i64;
    let plans = [
        ("sensorA", [t, t + 100, t + 50]),
        ("sensorB", [t, t - 100, t + 110]),
    ];
    let outcomes: Vec<Vec<PutOutcome>> = std::thread::scope(|s| {
        let handles: Vec<_> = plans
            .iter()
            .map(|(key, versions)| {
                let store = store.clone();
                s.spawn(move || {
                    versions
                        .iter()
                        .map(|v| store.put_blocking(key, &common::record(*v, key)).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        outcomes[0],
        vec![
            PutOutcome::Applied,
            PutOutcome::Applied,
            PutOutcome::Stale {
                current_version: t + 100
            }
        ]
    );
    assert_eq!(
        outcomes[1],
        vec![
            PutOutcome::Applied,
            PutOutcome::Stale { current_version: t },
            PutOutcome::Applied
        ]
    );
    let a = store.get("sensorA").unwrap();
    let b = store.get("sensorB").unwrap();
    assert_eq!(a.version(), t + 100);
    assert_eq!(b.version(), t + 110);
    assert_eq!(
        common::int_field(&a.to_record(), "collection_time"),
        Some(t + 100)
    );
    assert_eq!(a.to_record(), common::record(t + 100, "sensorA"));

    let frames = common::read_all_frames(dir.path());
    assert_eq!(
        frames.len(),
        6,
        "all six puts, stale ones too, are in the log"
    );
    for (key, versions) in plans {
        let mut on_disk: Vec<i64> = frames
            .iter()
            .filter(|f| f.key == key)
            .map(|f| f.version)
            .collect();
        on_disk.sort();
        let mut want = versions.to_vec();
        want.sort();
        assert_eq!(on_disk, want, "{key}");
    }
    store.close().unwrap();
}
