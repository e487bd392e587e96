//! With `Durability::Sync`, the frame of each acknowledged put is in its
//! segment file the moment `put` returns: another file handle reads it back
//! through the decoder.

mod common;

use ringstore::{Durability, Store};

#[test]
fn acknowledged_put_is_readable_from_the_file_at_once() {
    let dir = common::temp_dir();
    let store = Store::open(common::config(dir.path()).durability(Durability::Sync)).unwrap();
    for i in 0..20i64 {
        let key = format!("k{}", i % 5);
        store
            .put_blocking(&key, &common::record(i, "durable"))
            .unwrap();
        let frames = common::read_all_frames(dir.path());
        assert!(
            frames.iter().any(|f| f.key == key && f.version == i),
            "put {i} acknowledged but its frame is not in the file"
        );
        assert_eq!(frames.len() as i64, i + 1);
    }
    store.close().unwrap();
}
