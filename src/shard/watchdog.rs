//! The shard watchdog: a thread that wakes a shard executor which has work
//! to do but has stopped turning, with a signal sent to that thread alone.
//!
//! Why it exists: with glommio 0.9 on Linux 6.18, a shard executor can
//! (rarely) sleep in `io_uring_enter` for minutes although its write has
//! finished at the device; its 2 ms timer does not wake it either, and
//! attaching a debugger (which interrupts the sleep) releases it at once. The cause was not found (a completion left
//! as io_uring task work for a thread never woken to run it, or a wake-up
//! lost below). A signal delivered to the
//! thread wakes it, runs its pending task work and makes `io_uring_enter`
//! return `EINTR`, which glommio treats as an ordinary wake-up.
//!
//! The signal is `SIGURG`: its default action is to ignore it, so a stray
//! one harms nothing, and the handler (installed once per process, only
//! when a store enables the watchdog) does nothing but chain to any handler
//! that was there before (`signal-hook`). Handlers are installed with
//! `SA_RESTART`, so other threads' blocking calls are restarted.
//!
//! The shard publishes a [`Pulse`]: a turn counter bumped when its loop
//! handles an event and when it begins a wait, and the time by which it
//! expects to turn again (now, while busy in a turn or while a write or
//! flush is in flight; a timer's deadline; never, when it waits only for
//! puts). The watchdog samples each pulse four times per `after`; a shard
//! that is overdue (past that time, or idle with puts queued) without
//! turning for `after` gets a signal, and again every `after` while that
//! lasts. A shard waiting in its loop for a slow write still turns (its
//! 2 ms re-check), but a turn that itself waits on a slow disk (a rotation)
//! draws signals too: they cost a system call each and change nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::pthread::{Pthread, pthread_kill, pthread_self};
use nix::sys::signal::{SigSet, Signal};

use crate::shard::ShardShared;

/// The signal that wakes a stalled executor.
const WAKE_SIGNAL: Signal = Signal::SIGURG;

/// `Pulse::due_ns` of a shard that waits only for puts.
const NEVER: u64 = u64::MAX;

/// `Pulse::state` values: whether the executor thread may be signalled.
const UNREGISTERED: u8 = 0;
const ALIVE: u8 = 1;
/// The watchdog is signalling the thread right now: it may not exit.
const SIGNALLING: u8 = 2;
const EXITED: u8 = 3;

/// What a shard executor shares with the watchdog.
#[derive(Debug)]
pub(crate) struct Pulse {
    /// Turns of the shard's loop so far (each event handled and each wait
    /// begun).
    turns: AtomicU64,
    /// When the shard expects to turn next at the latest, in ns since
    /// `epoch`; [`NEVER`] while it waits only for puts.
    due_ns: AtomicU64,
    /// Whether the shard waits for events in its loop (with its periodic
    /// re-check armed on glommio), rather than for I/O inside a turn.
    in_wait: AtomicBool,
    /// The executor thread, valid while `state` is `ALIVE` or `SIGNALLING`.
    thread: AtomicU64,
    /// Its kernel thread id, to read its scheduler state.
    tid: AtomicI32,
    state: AtomicU8,
    epoch: Instant,
}

impl Default for Pulse {
    fn default() -> Self {
        Pulse {
            turns: AtomicU64::new(0),
            due_ns: AtomicU64::new(NEVER),
            in_wait: AtomicBool::new(false),
            thread: AtomicU64::new(0),
            tid: AtomicI32::new(0),
            state: AtomicU8::new(UNREGISTERED),
            epoch: Instant::now(),
        }
    }
}

impl Pulse {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(NEVER - 1)
    }

    /// The shard's loop turned: it is busy until it says what it waits for.
    pub fn turn(&self) {
        self.turns.fetch_add(1, Ordering::Relaxed);
        self.due_ns.store(self.now_ns(), Ordering::Relaxed);
        self.in_wait.store(false, Ordering::Relaxed);
    }

    /// The shard is about to wait: for I/O it submitted (`io_pending`), for
    /// a timer running out after `timer`, or (neither) for puts only.
    /// Starting to wait counts as a turn: the watchdog times each wait from
    /// its start.
    pub fn waiting(&self, io_pending: bool, timer: Option<Duration>) {
        self.turns.fetch_add(1, Ordering::Relaxed);
        let due = match (io_pending, timer) {
            (true, _) => self.now_ns(),
            (false, Some(t)) => self
                .now_ns()
                .saturating_add(u64::try_from(t.as_nanos()).unwrap_or(NEVER)),
            (false, None) => NEVER,
        };
        self.due_ns.store(due, Ordering::Relaxed);
        self.in_wait.store(true, Ordering::Relaxed);
    }

    /// Called on the executor thread before the shard runs: the watchdog
    /// may signal this thread until the returned guard is dropped. The
    /// thread inherits its signal mask from the thread that opened the
    /// store; the wake signal is unblocked here, or it would stay pending
    /// and wake nothing.
    pub fn attach_current_thread(self: &Arc<Self>) -> Attached {
        if let Err(e) = wake_set().thread_unblock() {
            log::warn!("watchdog: could not unblock SIGURG on a shard executor: {e}");
        }
        self.thread.store(pthread_self(), Ordering::Relaxed);
        self.tid
            .store(rustix::thread::gettid().as_raw_pid(), Ordering::Relaxed);
        self.state.store(ALIVE, Ordering::Release);
        Attached(Arc::clone(self))
    }

    /// Whether the executor thread is in an interruptible sleep (`S` in
    /// `/proc`: not running, not waiting for a CPU, and not blocked in the
    /// kernel on I/O, `D`, which no signal interrupts); false when that
    /// cannot be read.
    fn thread_asleep(&self) -> bool {
        let tid = self.tid.load(Ordering::Relaxed);
        std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
            .ok()
            .and_then(|stat| thread_state(&stat))
            .is_some_and(|state| state == 'S')
    }

    /// Signals the executor thread if it is still attached.
    fn signal(&self) -> bool {
        if self
            .state
            .compare_exchange(ALIVE, SIGNALLING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        let thread: Pthread = self.thread.load(Ordering::Relaxed);
        let sent = pthread_kill(thread, WAKE_SIGNAL);
        self.state.store(ALIVE, Ordering::Release);
        if let Err(e) = &sent {
            log::warn!("watchdog: could not signal a shard executor: {e}");
        }
        sent.is_ok()
    }
}

/// While alive, the executor thread may be signalled. Dropped on the
/// executor thread before it exits (also when it unwinds): it waits out a
/// signal being sent, so no signal targets a thread that has gone.
pub(crate) struct Attached(Arc<Pulse>);

impl Drop for Attached {
    fn drop(&mut self) {
        // Bounded: the watchdog holds SIGNALLING for one `pthread_kill`.
        while self
            .0
            .state
            .compare_exchange(ALIVE, EXITED, Ordering::AcqRel, Ordering::Acquire)
            .is_err_and(|s| s == SIGNALLING)
        {
            std::hint::spin_loop();
        }
    }
}

/// The watchdog's view of one shard between samples.
#[derive(Debug, Default)]
struct Watch {
    turns: u64,
    /// First sample of the current overdue stretch without a turn.
    stuck_since_ns: Option<u64>,
}

impl Watch {
    /// One sample: `turns` and whether the shard is overdue at `now_ns`.
    /// True when the shard has been overdue without turning for `after_ns`
    /// since the first sample that saw it so (then again every `after_ns`).
    fn stalled(&mut self, now_ns: u64, turns: u64, overdue: bool, after_ns: u64) -> bool {
        if turns != self.turns {
            self.turns = turns;
            self.stuck_since_ns = None;
        }
        if !overdue {
            self.stuck_since_ns = None;
            return false;
        }
        let since = *self.stuck_since_ns.get_or_insert(now_ns);
        if now_ns.saturating_sub(since) >= after_ns {
            self.stuck_since_ns = Some(now_ns);
            return true;
        }
        false
    }
}

/// Whether a shard is overdue: past the time it expected to turn by, or
/// waiting only for puts while puts are queued for it.
fn overdue(now_ns: u64, due_ns: u64, queued: bool) -> bool {
    if due_ns == NEVER {
        queued
    } else {
        now_ns >= due_ns
    }
}

/// The running watchdog thread of one store.
pub(crate) struct Watchdog {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

impl Watchdog {
    /// Starts watching `shards`; a shard overdue without turning for
    /// `after` is signalled. `None` (with a warning logged) if the signal
    /// handler or the thread could not be set up: the store then runs
    /// without a watchdog.
    pub fn start(shards: Vec<Arc<ShardShared>>, after: Duration) -> Option<Watchdog> {
        if let Err(e) = install_handler() {
            log::warn!("no shard watchdog: could not install the SIGURG handler: {e}");
            return None;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let after_ns = u64::try_from(after.as_nanos()).unwrap_or(u64::MAX).max(1);
        // Four samples per `after`: a stall is signalled within 1.25 × after.
        let period = (after / 4).max(Duration::from_micros(100));
        let spawned = std::thread::Builder::new()
            .name("ringstore-watchdog".into())
            .spawn(move || {
                let mut watches: Vec<Watch> = shards.iter().map(|_| Watch::default()).collect();
                while !stopped.load(Ordering::Acquire) {
                    std::thread::park_timeout(period);
                    for (shard, watch) in shards.iter().zip(watches.iter_mut()) {
                        let pulse = &shard.pulse;
                        let now = pulse.now_ns();
                        let turns = pulse.turns.load(Ordering::Relaxed);
                        let due = pulse.due_ns.load(Ordering::Relaxed);
                        let late = overdue(now, due, shard.queue.has_queued());
                        if !watch.stalled(now, turns, late, after_ns) {
                            continue;
                        }
                        // Asleep in its loop, where its own re-check timer
                        // should have woken it: the stall this is for.
                        let asleep = pulse.in_wait.load(Ordering::Relaxed) && pulse.thread_asleep();
                        if pulse.signal() {
                            shard.stats.watchdog_woke(asleep);
                            if asleep {
                                log::warn!(
                                    "shard {}: its executor slept through its timers with I/O \
                                     due or puts queued; woken with a signal",
                                    shard.id
                                );
                            }
                        }
                    }
                }
            });
        match spawned {
            Ok(handle) => Some(Watchdog { stop, handle }),
            Err(e) => {
                log::warn!("no shard watchdog: could not start its thread: {e}");
                None
            }
        }
    }

    /// Stops and joins the watchdog thread.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        self.handle.thread().unpark();
        let _ = self.handle.join();
    }
}

/// A signal set holding the wake signal only.
fn wake_set() -> SigSet {
    let mut set = SigSet::empty();
    set.add(WAKE_SIGNAL);
    set
}

/// The state letter of a `/proc/<pid>/task/<tid>/stat` line (after the
/// command name, which may itself hold spaces and parentheses).
fn thread_state(stat: &str) -> Option<char> {
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.trim_start().chars().next()
}

/// Installs the process's `SIGURG` handler once (it only chains to the
/// previous handler, if any).
fn install_handler() -> Result<(), String> {
    static INSTALLED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let flag = Arc::new(AtomicBool::new(false));
            signal_hook::flag::register(WAKE_SIGNAL as i32, flag)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_shard_that_keeps_turning_is_never_signalled() {
        let mut w = Watch::default();
        for i in 0..100 {
            assert!(!w.stalled(i * 30 * MS, i, true, 100 * MS), "sample {i}");
        }
    }

    #[test]
    fn an_overdue_shard_is_signalled_after_the_delay_and_then_once_per_delay() {
        let mut w = Watch::default();
        let signalled: Vec<u64> = (0..20)
            .map(|i| i * 25 * MS)
            .filter(|&now| w.stalled(now, 7, true, 100 * MS))
            .collect();
        assert_eq!(signalled, [100 * MS, 200 * MS, 300 * MS, 400 * MS]);
    }

    #[test]
    fn a_turn_or_an_idle_sample_restarts_the_count() {
        let mut w = Watch::default();
        assert!(!w.stalled(0, 1, true, 100 * MS));
        assert!(!w.stalled(90 * MS, 2, true, 100 * MS));
        assert!(!w.stalled(180 * MS, 2, true, 100 * MS));
        assert!(!w.stalled(200 * MS, 2, false, 100 * MS));
        assert!(!w.stalled(290 * MS, 2, true, 100 * MS));
        assert!(w.stalled(390 * MS, 2, true, 100 * MS));
    }

    #[test]
    fn overdue_means_past_the_deadline_or_idle_with_puts_queued() {
        assert!(!overdue(5, NEVER, false));
        assert!(overdue(5, NEVER, true));
        assert!(!overdue(5, 6, true));
        assert!(overdue(6, 6, false));
    }

    #[test]
    fn the_state_letter_follows_the_last_parenthesis() {
        assert_eq!(thread_state("123 (ringstore-0) S 1 2 3"), Some('S'));
        assert_eq!(thread_state("9 (a) b) (c) R 0"), Some('R'));
        assert_eq!(thread_state("garbage"), None);
        let own = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
        assert_eq!(thread_state(&own), Some('R'), "{own}");
    }

    #[test]
    fn a_sleeping_executor_thread_reads_as_asleep_a_running_one_not() {
        let pulse = Arc::new(Pulse::default());
        let attached = pulse.attach_current_thread();
        assert!(!pulse.thread_asleep(), "this thread is running");
        drop(attached);
        let (tx, rx) = std::sync::mpsc::channel();
        let sleeper = {
            let pulse = Arc::clone(&pulse);
            std::thread::spawn(move || {
                let _attached = pulse.attach_current_thread();
                let _ = tx.send(());
                std::thread::sleep(Duration::from_millis(300));
            })
        };
        assert_eq!(rx.recv(), Ok(()));
        std::thread::sleep(Duration::from_millis(50));
        assert!(pulse.thread_asleep());
        assert!(sleeper.join().is_ok());
    }

    #[test]
    fn attaching_unblocks_the_wake_signal_a_caller_had_blocked() {
        let pulse = Arc::new(Pulse::default());
        let handle = std::thread::spawn(move || {
            let blocked = wake_set().thread_block().is_ok();
            let before = SigSet::thread_get_mask().is_ok_and(|m| m.contains(WAKE_SIGNAL));
            let _attached = pulse.attach_current_thread();
            let after = SigSet::thread_get_mask().is_ok_and(|m| m.contains(WAKE_SIGNAL));
            (blocked, before, after)
        });
        assert_eq!(handle.join().ok(), Some((true, true, false)));
    }

    #[test]
    fn a_detached_thread_is_never_signalled() {
        let pulse = Arc::new(Pulse::default());
        assert!(!pulse.signal(), "never attached");
        let attached = pulse.attach_current_thread();
        drop(attached);
        assert!(!pulse.signal(), "detached");
        assert_eq!(pulse.state.load(Ordering::Acquire), EXITED);
    }

    #[test]
    fn an_attached_thread_receives_the_signal_and_carries_on() {
        assert_eq!(install_handler(), Ok(()));
        let pulse = Arc::new(Pulse::default());
        let attached = pulse.attach_current_thread();
        assert!(pulse.signal());
        assert!(pulse.signal());
        drop(attached);
        assert!(!pulse.signal());
    }
}
