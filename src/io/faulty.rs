//! A fault-injecting wrapper around any [`LogFs`] (cargo feature
//! `failpoints`, compiled out otherwise): it fails chosen operations with a
//! chosen errno on the Nth call, from the Nth call on, or with a seeded
//! probability, and can record every operation (with the bytes written) so
//! tests can rebuild the disk states a power cut could leave.
//!
//! The decision path is atomics only (no lock on the put path); the event
//! log takes a mutex, and only while recording is switched on.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::io::{LogBuffer, LogFile, LogFs};

/// errno of an I/O error.
pub const EIO: i32 = 5;
/// errno of a full device.
pub const ENOSPC: i32 = 28;
/// errno of a read-only filesystem.
pub const EROFS: i32 = 30;

/// An operation of the I/O seam that a [`FaultPlan`] can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultOp {
    /// Creating a segment file.
    Create,
    /// A direct write to a segment.
    Write,
    /// `fdatasync` of a segment.
    Sync,
    /// `fsync` of a shard directory.
    SyncDir,
    /// Removing a file.
    Remove,
    /// Writing a small side file (a hint) atomically.
    SmallFile,
    /// Reusing a spare segment file: opening it and renaming it.
    Recycle,
}

impl FaultOp {
    /// Every operation, in index order.
    pub const ALL: [FaultOp; 7] = [
        FaultOp::Create,
        FaultOp::Write,
        FaultOp::Sync,
        FaultOp::SyncDir,
        FaultOp::Remove,
        FaultOp::SmallFile,
        FaultOp::Recycle,
    ];
}

/// One operation seen by the seam while recording (see
/// [`FaultPlan::record`]). Events are in the order they happened across
/// every shard of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoEvent {
    /// A segment file was created (`ok == false`: the create failed).
    Create {
        /// The new file.
        path: PathBuf,
        /// Whether it succeeded.
        ok: bool,
    },
    /// A write was issued: `bytes` at `offset` of `path`.
    WriteStart {
        /// Matches the `WriteEnd` of the same write.
        id: u64,
        /// The file.
        path: PathBuf,
        /// Byte offset.
        offset: u64,
        /// The whole buffer handed to the write.
        bytes: Arc<[u8]>,
    },
    /// A write completed: bytes written, or the errno it failed with.
    WriteEnd {
        /// The `id` of its `WriteStart`.
        id: u64,
        /// Bytes written or errno.
        result: Result<usize, i32>,
    },
    /// `fdatasync` of `path` was issued: it covers every write to `path`
    /// that completed before this event.
    SyncStart {
        /// Matches the `SyncEnd`.
        id: u64,
        /// The file.
        path: PathBuf,
    },
    /// `fdatasync` completed.
    SyncEnd {
        /// The `id` of its `SyncStart`.
        id: u64,
        /// Whether it succeeded.
        ok: bool,
    },
    /// A directory was synced (its entries are durable when `ok`).
    SyncDir {
        /// The directory.
        dir: PathBuf,
        /// Whether it succeeded.
        ok: bool,
    },
    /// A file was removed.
    Remove {
        /// The file.
        path: PathBuf,
        /// Whether it succeeded.
        ok: bool,
    },
    /// A small file was replaced atomically and durably.
    SmallFile {
        /// The file.
        path: PathBuf,
        /// Its new contents.
        bytes: Arc<[u8]>,
        /// Whether it succeeded.
        ok: bool,
    },
    /// A segment file was closed.
    Close {
        /// The file.
        path: PathBuf,
    },
    /// An existing (spare) file was opened for writes, keeping its bytes.
    Reopen {
        /// The file.
        path: PathBuf,
        /// Whether it succeeded.
        ok: bool,
    },
    /// An open file was renamed (durable once its directory is synced).
    Rename {
        /// The old name.
        from: PathBuf,
        /// The new name.
        to: PathBuf,
        /// Whether it succeeded.
        ok: bool,
    },
}

/// When one operation fails. All counters count calls of that operation
/// across every shard of the store.
#[derive(Debug, Default)]
struct OpRule {
    calls: AtomicU64,
    injected: AtomicU64,
    /// Fail the call with this 1-based number (0: never).
    nth: AtomicU64,
    /// Fail every call from this 1-based number on (0: never).
    from: AtomicU64,
    /// Fail each call with this probability, in millionths.
    per_million: AtomicU32,
    /// splitmix64 state of the probability draws.
    rng: AtomicU64,
    errno: AtomicI32,
    /// Every call waits this long before going through (0: no wait).
    delay_ns: AtomicU64,
}

/// Which operations of the I/O seam fail, and how; shared (`Arc`) between
/// the test and every shard of the store it is installed in with
/// `Config::fault_plan`. Rules can be changed while the store runs.
#[derive(Debug, Default)]
pub struct FaultPlan {
    rules: [OpRule; 7],
    recording: AtomicBool,
    next_id: AtomicU64,
    events: Mutex<Vec<IoEvent>>,
}

impl FaultPlan {
    /// A plan that fails nothing and records nothing.
    pub fn new() -> Arc<FaultPlan> {
        Arc::new(FaultPlan::default())
    }

    fn rule(&self, op: FaultOp) -> &OpRule {
        let [create, write, sync, sync_dir, remove, small_file, recycle] = &self.rules;
        match op {
            FaultOp::Create => create,
            FaultOp::Write => write,
            FaultOp::Sync => sync,
            FaultOp::SyncDir => sync_dir,
            FaultOp::Remove => remove,
            FaultOp::SmallFile => small_file,
            FaultOp::Recycle => recycle,
        }
    }

    /// Fails the `n`-th call of `op` counted from now (`n` ≥ 1) with `errno`.
    pub fn fail_nth(&self, op: FaultOp, n: u64, errno: i32) -> &Self {
        let r = self.rule(op);
        r.errno.store(errno, Ordering::SeqCst);
        r.nth
            .store(r.calls.load(Ordering::SeqCst) + n.max(1), Ordering::SeqCst);
        self
    }

    /// Fails every call of `op` from the `n`-th one counted from now on
    /// (`n` ≥ 1) with `errno`: a device that stays broken.
    pub fn fail_from(&self, op: FaultOp, n: u64, errno: i32) -> &Self {
        let r = self.rule(op);
        r.errno.store(errno, Ordering::SeqCst);
        r.from
            .store(r.calls.load(Ordering::SeqCst) + n.max(1), Ordering::SeqCst);
        self
    }

    /// Fails each call of `op` with probability `per_million` / 1 000 000,
    /// drawn from a generator seeded with `seed` (the same calls in the same
    /// order fail again with the same seed).
    pub fn fail_randomly(&self, op: FaultOp, per_million: u32, errno: i32, seed: u64) -> &Self {
        let r = self.rule(op);
        r.errno.store(errno, Ordering::SeqCst);
        r.rng.store(seed, Ordering::SeqCst);
        r.per_million
            .store(per_million.min(1_000_000), Ordering::SeqCst);
        self
    }

    /// Makes every call of `op` wait `delay` before it goes through (or
    /// fails): a slow device. Only `Write` and `Sync` wait; zero stops it.
    pub fn delay(&self, op: FaultOp, delay: std::time::Duration) -> &Self {
        let ns = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        self.rule(op).delay_ns.store(ns, Ordering::SeqCst);
        self
    }

    fn delay_of(&self, op: FaultOp) -> Option<std::time::Duration> {
        match self.rule(op).delay_ns.load(Ordering::SeqCst) {
            0 => None,
            ns => Some(std::time::Duration::from_nanos(ns)),
        }
    }

    /// Stops failing `op` (its counters stay).
    pub fn clear(&self, op: FaultOp) -> &Self {
        let r = self.rule(op);
        r.nth.store(0, Ordering::SeqCst);
        r.from.store(0, Ordering::SeqCst);
        r.per_million.store(0, Ordering::SeqCst);
        self
    }

    /// Stops failing anything.
    pub fn clear_all(&self) -> &Self {
        for op in FaultOp::ALL {
            self.clear(op);
        }
        self
    }

    /// Calls of `op` seen so far (failed ones included).
    pub fn calls(&self, op: FaultOp) -> u64 {
        self.rule(op).calls.load(Ordering::SeqCst)
    }

    /// Faults injected into `op` so far.
    pub fn injected(&self, op: FaultOp) -> u64 {
        self.rule(op).injected.load(Ordering::SeqCst)
    }

    /// Faults injected into every operation so far.
    pub fn total_injected(&self) -> u64 {
        FaultOp::ALL.iter().map(|&op| self.injected(op)).sum()
    }

    /// Starts (`true`) or stops recording every operation as an [`IoEvent`].
    pub fn record(&self, on: bool) -> &Self {
        self.recording.store(on, Ordering::SeqCst);
        self
    }

    /// Number of events recorded so far: read it after a put is
    /// acknowledged to know which prefix of the log covers that put.
    pub fn events_len(&self) -> usize {
        self.events.lock().map_or(0, |e| e.len())
    }

    /// A copy of the events recorded so far.
    pub fn events(&self) -> Vec<IoEvent> {
        self.events
            .lock()
            .map_or_else(|_| Vec::new(), |e| e.clone())
    }

    /// Takes the events recorded so far, leaving the log empty.
    pub fn take_events(&self) -> Vec<IoEvent> {
        self.events
            .lock()
            .map_or_else(|_| Vec::new(), |mut e| std::mem::take(&mut *e))
    }

    /// Runs `op`, a change made outside the I/O seam (by `Store::compact`),
    /// and logs it as `event(succeeded)` if recording. The log is held
    /// meanwhile, so nothing a shard does with the change's result (open a
    /// renamed file) is logged before it.
    pub(crate) fn logged<T, E>(
        &self,
        op: impl FnOnce() -> Result<T, E>,
        event: impl FnOnce(bool) -> IoEvent,
    ) -> Result<T, E> {
        if !self.recording() {
            return op();
        }
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        let result = op();
        events.push(event(result.is_ok()));
        result
    }

    fn recording(&self) -> bool {
        self.recording.load(Ordering::SeqCst)
    }

    fn push(&self, event: IoEvent) {
        if let Ok(mut e) = self.events.lock() {
            e.push(event);
        }
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::SeqCst)
    }

    /// Counts one call of `op` and decides whether it fails.
    fn check(&self, op: FaultOp) -> Result<(), io::Error> {
        let r = self.rule(op);
        let n = r.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let nth = r.nth.load(Ordering::SeqCst);
        let from = r.from.load(Ordering::SeqCst);
        let mut fail = nth == n || (from != 0 && n >= from);
        let p = r.per_million.load(Ordering::SeqCst);
        if !fail && p > 0 {
            let state = r
                .rng
                .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::SeqCst)
                .wrapping_add(0x9E37_79B9_7F4A_7C15);
            fail = splitmix64(state) % 1_000_000 < u64::from(p);
        }
        if fail {
            r.injected.fetch_add(1, Ordering::SeqCst);
            return Err(io::Error::from_raw_os_error(r.errno.load(Ordering::SeqCst)));
        }
        Ok(())
    }
}

fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A [`LogFs`] that consults a [`FaultPlan`] before every operation.
#[derive(Debug, Clone)]
pub(crate) struct FaultyFs<F> {
    inner: F,
    plan: Arc<FaultPlan>,
}

impl<F: LogFs> FaultyFs<F> {
    pub(crate) fn new(inner: F, plan: Arc<FaultPlan>) -> Self {
        FaultyFs { inner, plan }
    }

    /// Wraps a file the inner filesystem opened at `path`.
    fn file(&self, inner: F::File, path: &Path, write_through: bool) -> FaultyFile<F> {
        FaultyFile {
            fs: self.inner.clone(),
            inner,
            plan: self.plan.clone(),
            path: std::cell::RefCell::new(path.to_path_buf()),
            write_through,
        }
    }
}

/// A file opened through [`FaultyFs`].
pub(crate) struct FaultyFile<F: LogFs> {
    /// The inner filesystem, for its timer (`FaultPlan::delay`).
    fs: F,
    inner: F::File,
    plan: Arc<FaultPlan>,
    /// Current name (changed by `rename`).
    path: std::cell::RefCell<PathBuf>,
    /// Opened `O_DSYNC`: a completed write was also flushed, so it is
    /// recorded (and may fail) as a write followed by a sync.
    write_through: bool,
}

impl<F: LogFs> LogFile for FaultyFile<F> {
    type Buffer = <F::File as LogFile>::Buffer;

    fn alignment(&self) -> u64 {
        self.inner.alignment()
    }

    fn alloc(&self, len: usize) -> Self::Buffer {
        self.inner.alloc(len)
    }

    async fn write_at(&self, mut buf: Self::Buffer, offset: u64) -> io::Result<usize> {
        let plan = &self.plan;
        let id = if plan.recording() {
            let id = plan.next_id();
            plan.push(IoEvent::WriteStart {
                id,
                path: self.path(),
                offset,
                bytes: Arc::from(&*buf.bytes_mut()),
            });
            Some(id)
        } else {
            None
        };
        self.wait_if_slow(FaultOp::Write).await;
        let result = match plan.check(FaultOp::Write) {
            Ok(()) => self.inner.write_at(buf, offset).await,
            Err(e) => Err(e),
        };
        if let Some(id) = id {
            plan.push(IoEvent::WriteEnd {
                id,
                result: match &result {
                    Ok(n) => Ok(*n),
                    Err(e) => Err(e.raw_os_error().unwrap_or(-1)),
                },
            });
        }
        let written = result?;
        if self.write_through {
            // The inner file is O_DSYNC too: its flush already happened.
            self.sync_step(false).await?;
        }
        Ok(written)
    }

    async fn sync_data(&self) -> io::Result<()> {
        self.sync_step(true).await
    }

    async fn close(self) -> io::Result<()> {
        if self.plan.recording() {
            self.plan.push(IoEvent::Close { path: self.path() });
        }
        self.inner.close().await
    }

    async fn len(&self) -> io::Result<u64> {
        self.inner.len().await
    }

    async fn rename(&self, to: &Path) -> io::Result<()> {
        let result = match self.plan.check(FaultOp::Recycle) {
            Ok(()) => self.inner.rename(to).await,
            Err(e) => Err(e),
        };
        if self.plan.recording() {
            self.plan.push(IoEvent::Rename {
                from: self.path(),
                to: to.to_path_buf(),
                ok: result.is_ok(),
            });
        }
        if result.is_ok() {
            *self.path.borrow_mut() = to.to_path_buf();
        }
        result
    }
}

impl<F: LogFs> FaultyFile<F> {
    fn path(&self) -> PathBuf {
        self.path.borrow().clone()
    }

    async fn wait_if_slow(&self, op: FaultOp) {
        if let Some(delay) = self.plan.delay_of(op) {
            self.fs.sleep(delay).await;
        }
    }

    /// A flush of the file, recorded and subject to the plan; `call_inner`
    /// says whether the inner file still has to be synced.
    async fn sync_step(&self, call_inner: bool) -> io::Result<()> {
        let plan = &self.plan;
        let id = if plan.recording() {
            let id = plan.next_id();
            plan.push(IoEvent::SyncStart {
                id,
                path: self.path(),
            });
            Some(id)
        } else {
            None
        };
        self.wait_if_slow(FaultOp::Sync).await;
        let result = match plan.check(FaultOp::Sync) {
            Ok(()) if call_inner => self.inner.sync_data().await,
            Ok(()) => Ok(()),
            Err(e) => Err(e),
        };
        if let Some(id) = id {
            plan.push(IoEvent::SyncEnd {
                id,
                ok: result.is_ok(),
            });
        }
        result
    }
}

impl<F: LogFs + 'static> LogFs for FaultyFs<F> {
    type File = FaultyFile<F>;

    async fn create(&self, path: &Path, write_through: bool) -> io::Result<Self::File> {
        let result = match self.plan.check(FaultOp::Create) {
            Ok(()) => self.inner.create(path, write_through).await,
            Err(e) => Err(e),
        };
        if self.plan.recording() {
            self.plan.push(IoEvent::Create {
                path: path.to_path_buf(),
                ok: result.is_ok(),
            });
        }
        Ok(self.file(result?, path, write_through))
    }

    async fn open_existing(&self, path: &Path, write_through: bool) -> io::Result<Self::File> {
        let result = match self.plan.check(FaultOp::Recycle) {
            Ok(()) => self.inner.open_existing(path, write_through).await,
            Err(e) => Err(e),
        };
        if self.plan.recording() {
            self.plan.push(IoEvent::Reopen {
                path: path.to_path_buf(),
                ok: result.is_ok(),
            });
        }
        Ok(self.file(result?, path, write_through))
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let result = match self.plan.check(FaultOp::SyncDir) {
            Ok(()) => self.inner.sync_dir(dir).await,
            Err(e) => Err(e),
        };
        if self.plan.recording() {
            self.plan.push(IoEvent::SyncDir {
                dir: dir.to_path_buf(),
                ok: result.is_ok(),
            });
        }
        result
    }

    fn queue_recheck(&self) -> Option<std::time::Duration> {
        self.inner.queue_recheck()
    }

    async fn sleep(&self, duration: std::time::Duration) {
        self.inner.sleep(duration).await;
    }

    async fn spares(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        self.inner.spares(dir).await
    }

    async fn remove_file(&self, path: &Path) -> io::Result<()> {
        let result = match self.plan.check(FaultOp::Remove) {
            Ok(()) => self.inner.remove_file(path).await,
            Err(e) => Err(e),
        };
        if self.plan.recording() {
            self.plan.push(IoEvent::Remove {
                path: path.to_path_buf(),
                ok: result.is_ok(),
            });
        }
        result
    }

    async fn write_small_file(&self, path: &Path, bytes: Vec<u8>) -> io::Result<()> {
        let copy: Option<Arc<[u8]>> = self.plan.recording().then(|| Arc::from(&bytes[..]));
        let result = match self.plan.check(FaultOp::SmallFile) {
            Ok(()) => self.inner.write_small_file(path, bytes).await,
            Err(e) => Err(e),
        };
        if let Some(bytes) = copy {
            self.plan.push(IoEvent::SmallFile {
                path: path.to_path_buf(),
                bytes,
                ok: result.is_ok(),
            });
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_from_and_random_rules() {
        let plan = FaultPlan::new();
        plan.fail_nth(FaultOp::Write, 2, EIO);
        let got: Vec<bool> = (0..4)
            .map(|_| plan.check(FaultOp::Write).is_err())
            .collect();
        assert_eq!(got, [false, true, false, false]);
        plan.fail_from(FaultOp::Sync, 3, ENOSPC);
        let got: Vec<bool> = (0..5).map(|_| plan.check(FaultOp::Sync).is_err()).collect();
        assert_eq!(got, [false, false, true, true, true]);
        assert_eq!(
            plan.check(FaultOp::Sync)
                .err()
                .and_then(|e| e.raw_os_error()),
            Some(ENOSPC)
        );
        plan.clear_all();
        assert!(plan.check(FaultOp::Sync).is_ok());
        let draws = |seed| {
            let p = FaultPlan::new();
            p.fail_randomly(FaultOp::Create, 250_000, EIO, seed);
            (0..1000)
                .map(|_| p.check(FaultOp::Create).is_err())
                .collect::<Vec<_>>()
        };
        let a = draws(7);
        assert_eq!(a, draws(7), "same seed, same faults");
        let n = a.iter().filter(|&&f| f).count();
        assert!((150..350).contains(&n), "{n} faults out of 1000 at 25%");
        assert_eq!(plan.injected(FaultOp::Write), 1);
        assert_eq!(plan.injected(FaultOp::Sync), 4);
    }
}
