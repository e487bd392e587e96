//! The retention thread (`Config::compact_above_sealed_bytes`): once a
//! second it compares the sealed segments' total size with the limit and
//! compacts when it is exceeded (and has at least doubled since what the
//! last compaction left, so a live set near the limit does not compact in
//! a loop). It holds only a [`WeakStore`]: dropping the last `Store` ends
//! it, and `close` stops it at once.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::Error;
use crate::store::WeakStore;

/// How often the sealed size is checked.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The running retention thread.
pub(crate) struct Retention {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: JoinHandle<()>,
}

impl Retention {
    /// Starts compacting `store` whenever its sealed segments exceed
    /// `limit_bytes`.
    pub(crate) fn start(store: WeakStore, limit_bytes: u64) -> std::io::Result<Retention> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let stopped = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("ringstore-retention".into())
            .spawn(move || run(&store, limit_bytes, &stopped))?;
        Ok(Retention { stop, handle })
    }

    /// Asks the thread to stop (it finishes a compaction in progress).
    pub(crate) fn request_stop(&self) {
        let (flag, changed) = &*self.stop;
        *flag.lock().unwrap_or_else(PoisonError::into_inner) = true;
        changed.notify_all();
    }

    /// Stops the thread and waits for it, unless called on it (the last
    /// `Store` dropped by the retention thread itself).
    pub(crate) fn stop(self) {
        self.request_stop();
        if self.handle.thread().id() != std::thread::current().id() {
            let _ = self.handle.join();
        }
    }
}

fn run(store: &WeakStore, limit_bytes: u64, stop: &(Mutex<bool>, Condvar)) {
    let mut left_by_last = 0u64;
    loop {
        {
            let (flag, changed) = stop;
            let guard = flag.lock().unwrap_or_else(PoisonError::into_inner);
            let (guard, _) = changed
                .wait_timeout_while(guard, CHECK_EVERY, |stopped| !*stopped)
                .unwrap_or_else(PoisonError::into_inner);
            if *guard {
                return;
            }
        }
        let Some(store) = store.upgrade() else {
            return;
        };
        let bytes = store.sealed_bytes();
        if bytes > limit_bytes && bytes > 2 * left_by_last {
            match store.compact() {
                Ok(report) => {
                    log::info!("retention: compacted, {report:?}");
                    left_by_last = store.sealed_bytes();
                }
                Err(Error::Closed) => return,
                Err(e) => log::warn!("retention: compaction failed: {e}"),
            }
        }
    }
}
