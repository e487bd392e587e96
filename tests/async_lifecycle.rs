//! `close_async` and `compact_async` from an async runtime (tokio here):
//! the same results as their blocking twins, without blocking the
//! runtime's threads.

mod common;

use ringstore::{Error, Store};

#[test]
fn compact_and_close_as_futures() {
    let dir = common::temp_dir();
    let store = Store::open(common::config(dir.path()).max_segment_records(5)).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    rt.block_on(async {
        for i in 0..40i64 {
            store
                .put(&format!("k{}", i % 8), &common::record(i, "v"))
                .await
                .unwrap();
        }
        let report = store.compact_async().await.unwrap();
        assert_eq!(report.records, 8);
        assert!(report.segments_removed + report.segments_recycled > 0);
        store.close_async().await.unwrap();
        // Idempotent, like `close`.
        store.close_async().await.unwrap();
        assert!(matches!(store.compact_async().await, Err(Error::Closed)));
    });
    let reopened = Store::open(common::config(dir.path())).unwrap();
    assert_eq!(reopened.len(), 8);
    reopened.close().unwrap();
}
