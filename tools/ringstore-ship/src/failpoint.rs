//! Crash points for tests: `RINGSTORE_SHIP_FAILPOINT=<name>[:<n>]` makes the
//! process abort (no cleanup, no unwinding, like `kill -9`) the `n`th time
//! (default 1st) it passes the point `<name>`:
//!
//! * `after-upload`: the data files of a commit are in object storage, the
//!   commit is not made;
//! * `after-commit`: the commit is in the table, `SHIPPED` is not updated.
//!
//! Unset in production: then each point is one environment lookup per commit.

use std::sync::atomic::{AtomicU32, Ordering};

/// The environment variable.
pub const ENV: &str = "RINGSTORE_SHIP_FAILPOINT";

static PASSED: AtomicU32 = AtomicU32::new(0);

/// Aborts the process if the failpoint `name` is armed and due.
pub fn hit(name: &str) {
    let Ok(spec) = std::env::var(ENV) else {
        return;
    };
    let (point, nth) = match spec.split_once(':') {
        Some((p, n)) => (p, n.parse::<u32>().unwrap_or(1)),
        None => (spec.as_str(), 1),
    };
    if point != name {
        return;
    }
    if PASSED.fetch_add(1, Ordering::SeqCst) + 1 >= nth {
        eprintln!("ringstore-ship: failpoint {name} hit, aborting");
        std::process::abort();
    }
}
