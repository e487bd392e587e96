//! Pause points for tests that force an interleaving (cargo feature
//! `failpoints` only): a test arms a [`Pause`] at a named point, waits until
//! some thread is held there, does what must happen meanwhile, then
//! releases it. Process-wide: a test binary that uses them runs one such
//! test at a time.

use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// Where a thread can be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PausePoint {
    /// An `Async` put past its check that the store is open, before it
    /// publishes and sends its frame.
    AsyncPutEntered,
    /// `Store::compact` after every shard's checkpoint is durable, before
    /// it renames or deletes anything.
    CompactFileWork,
}

#[derive(Debug, Default)]
struct State {
    held: bool,
    released: bool,
}

/// One armed pause: holds the first thread that reaches its point.
#[derive(Debug)]
pub struct Pause {
    point: PausePoint,
    state: Mutex<State>,
    changed: Condvar,
}

static ARMED: Mutex<Vec<Arc<Pause>>> = Mutex::new(Vec::new());

impl Pause {
    /// Arms a pause at `point`: the next thread to reach it waits there
    /// until [`Pause::release`].
    pub fn arm(point: PausePoint) -> Arc<Pause> {
        let pause = Arc::new(Pause {
            point,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        ARMED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(&pause));
        pause
    }

    /// Blocks until a thread is held at the point.
    pub fn wait_until_held(&self) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while !s.held {
            s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Lets the held thread (or the next to arrive) go on.
    pub fn release(&self) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.released = true;
        self.changed.notify_all();
    }

    fn hold(&self) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.held = true;
        self.changed.notify_all();
        while !s.released {
            s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Called at `point`: holds the caller if a pause is armed there (each
/// armed pause holds one thread).
pub(crate) fn reached(point: PausePoint) {
    let pause = {
        let mut armed = ARMED.lock().unwrap_or_else(PoisonError::into_inner);
        let at = armed.iter().position(|p| p.point == point);
        at.map(|i| armed.swap_remove(i))
    };
    if let Some(p) = pause {
        p.hold();
    }
}
