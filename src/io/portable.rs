//! The portable backend, for machines where io_uring is blocked (container
//! seccomp profiles, `kernel.io_uring_disabled`, a low memlock limit): each
//! shard runs the same worker future on its own std thread with a simple
//! local executor (`futures::executor::block_on`), and its log goes through
//! plain blocking syscalls — `O_DIRECT` positional writes (`pwrite`) and
//! `fdatasync`. Same files, same frames, same group commit, same
//! guarantees; only the submission mechanism differs.
//!
//! A blocking write parks the shard's thread, which is what a shard thread is
//! for: no other shard shares it. The Async-mode flush timer runs on a small
//! timer thread per shard so that a `sleep` never blocks the worker's other
//! futures.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::pin::Pin;
use std::sync::mpsc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use rustix::fs::{AtFlags, OFlags, StatxFlags};

use crate::io::{LogBuffer, LogFile, LogFs};

/// Alignment assumed when the kernel cannot report the file's direct-I/O
/// alignment (statx `STATX_DIOALIGN` needs Linux 6.1): a 4 KiB block suits
/// every common device.
const FALLBACK_ALIGNMENT: u64 = 4096;
/// Smallest alignment used (one sector).
const MIN_ALIGNMENT: u64 = 512;
/// Largest alignment believed from the kernel.
const MAX_ALIGNMENT: u64 = 1 << 20;

/// Blocking std I/O with `O_DIRECT`, for one shard thread.
#[derive(Debug, Clone)]
pub(crate) struct PortableFs {
    timer: mpsc::Sender<TimerEntry>,
    /// The data dir may be on a filesystem without `O_DIRECT` (tmpfs), which
    /// the user allowed explicitly: fall back to buffered writes there (as
    /// glommio does); `fdatasync` still orders them.
    allow_buffered: bool,
}

impl PortableFs {
    /// Starts the shard's timer thread.
    pub(crate) fn new(shard: usize, allow_buffered: bool) -> io::Result<PortableFs> {
        let (timer, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("ringstore-timer-{shard}"))
            .spawn(move || run_timer(&rx))?;
        Ok(PortableFs {
            timer,
            allow_buffered,
        })
    }
}

/// A buffer whose bytes start on the file's direct-I/O alignment: an
/// over-allocated `Vec` sliced at the first aligned address. The `Vec` is
/// never grown, so its memory (and the alignment) never moves.
#[derive(Debug)]
pub(crate) struct AlignedBuffer {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuffer {
    fn new(len: usize, align: usize) -> AlignedBuffer {
        let storage = vec![0u8; len + align];
        let start = storage.as_ptr().align_offset(align).min(align);
        AlignedBuffer {
            storage,
            start,
            len,
        }
    }

    fn bytes(&self) -> &[u8] {
        self.storage
            .get(self.start..self.start + self.len)
            .unwrap_or_default()
    }
}

impl LogBuffer for AlignedBuffer {
    fn bytes_mut(&mut self) -> &mut [u8] {
        self.storage
            .get_mut(self.start..self.start + self.len)
            .unwrap_or_default()
    }
}

/// One segment opened for direct writes.
#[derive(Debug)]
pub(crate) struct PortableFile {
    file: File,
    alignment: u64,
    /// Current name, for `rename`.
    path: std::cell::RefCell<std::path::PathBuf>,
}

/// The direct-I/O alignment the kernel reports for `file` (offsets and
/// memory), or a safe default.
fn dio_alignment(file: &File) -> u64 {
    match rustix::fs::statx(file, "", AtFlags::EMPTY_PATH, StatxFlags::DIOALIGN) {
        Ok(st) if st.stx_mask & StatxFlags::DIOALIGN.bits() != 0 && st.stx_dio_offset_align > 0 => {
            let align = u64::from(st.stx_dio_offset_align.max(st.stx_dio_mem_align));
            if align.is_power_of_two() {
                align.clamp(MIN_ALIGNMENT, MAX_ALIGNMENT)
            } else {
                FALLBACK_ALIGNMENT
            }
        }
        _ => FALLBACK_ALIGNMENT,
    }
}

impl LogFile for PortableFile {
    type Buffer = AlignedBuffer;

    fn alignment(&self) -> u64 {
        self.alignment
    }

    fn alloc(&self, len: usize) -> AlignedBuffer {
        AlignedBuffer::new(len, self.alignment as usize)
    }

    async fn write_at(&self, buf: AlignedBuffer, offset: u64) -> io::Result<usize> {
        let bytes = buf.bytes();
        let mut done = 0usize;
        while let Some(rest) = bytes.get(done..).filter(|r| !r.is_empty()) {
            match self.file.write_at(rest, offset + done as u64) {
                // Nothing more fits: report the short write (a full device).
                Ok(0) => break,
                Ok(n) => {
                    done += n;
                    // A direct write can only resume on an aligned offset.
                    if done as u64 % self.alignment != 0 {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if done > 0
                        && e.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error()) =>
                {
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    async fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    async fn close(self) -> io::Result<()> {
        drop(self.file);
        Ok(())
    }

    async fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    async fn rename(&self, to: &Path) -> io::Result<()> {
        std::fs::rename(&*self.path.borrow(), to)?;
        *self.path.borrow_mut() = to.to_path_buf();
        Ok(())
    }
}

impl PortableFs {
    /// Opens `path` for direct writes (`create`: a new file, which must not
    /// exist), falling back to buffered I/O where the filesystem refuses
    /// `O_DIRECT` and the config allows a non-durable dir.
    fn open(&self, path: &Path, write_through: bool, create: bool) -> io::Result<PortableFile> {
        let dsync = if write_through {
            OFlags::DSYNC
        } else {
            OFlags::empty()
        };
        let options = |flags: OFlags| {
            let mut o = OpenOptions::new();
            o.write(true)
                .create_new(create)
                .mode(0o644)
                .custom_flags(flags.bits() as i32);
            o
        };
        let file = match options(OFlags::DIRECT | dsync).open(path) {
            Ok(f) => f,
            Err(e)
                if self.allow_buffered
                    && e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) =>
            {
                if create {
                    // The kernel may have created the file before refusing
                    // O_DIRECT; it is still empty.
                    match std::fs::remove_file(path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                    }
                }
                options(dsync).open(path)?
            }
            Err(e) => return Err(e),
        };
        let alignment = dio_alignment(&file);
        Ok(PortableFile {
            file,
            alignment,
            path: std::cell::RefCell::new(path.to_path_buf()),
        })
    }
}

impl LogFs for PortableFs {
    type File = PortableFile;

    async fn create(&self, path: &Path, write_through: bool) -> io::Result<PortableFile> {
        self.open(path, write_through, true)
    }

    async fn open_existing(&self, path: &Path, write_through: bool) -> io::Result<PortableFile> {
        self.open(path, write_through, false)
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    async fn sleep(&self, duration: Duration) {
        Sleep {
            deadline: Instant::now() + duration,
            timer: self.timer.clone(),
            registered: None,
        }
        .await;
    }

    async fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    async fn write_small_file(&self, path: &Path, bytes: Vec<u8>) -> io::Result<()> {
        crate::io::write_small_file_blocking(path, &bytes)
    }
}

/// A wake-up request for the timer thread.
struct TimerEntry {
    deadline: Instant,
    seq: u64,
    waker: Waker,
}

impl PartialEq for TimerEntry {
    fn eq(&self, other: &Self) -> bool {
        (self.deadline, self.seq) == (other.deadline, other.seq)
    }
}

impl Eq for TimerEntry {}

impl PartialOrd for TimerEntry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TimerEntry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.deadline, self.seq).cmp(&(other.deadline, other.seq))
    }
}

/// The timer thread: wakes each registered waker at its deadline; exits
/// (waking whatever is left) once the shard's filesystem handle is gone.
fn run_timer(rx: &mpsc::Receiver<TimerEntry>) {
    let mut heap: BinaryHeap<Reverse<TimerEntry>> = BinaryHeap::new();
    let mut seq = 0u64;
    loop {
        let now = Instant::now();
        while heap.peek().is_some_and(|Reverse(e)| e.deadline <= now) {
            if let Some(Reverse(e)) = heap.pop() {
                e.waker.wake();
            }
        }
        let next = match heap.peek() {
            Some(Reverse(e)) => rx.recv_timeout(e.deadline.saturating_duration_since(now)),
            None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        };
        match next {
            Ok(mut e) => {
                seq += 1;
                e.seq = seq;
                heap.push(Reverse(e));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                for Reverse(e) in heap.drain() {
                    e.waker.wake();
                }
                return;
            }
        }
    }
}

/// Completes at `deadline`; registers its waker with the timer thread.
struct Sleep {
    deadline: Instant,
    timer: mpsc::Sender<TimerEntry>,
    registered: Option<Waker>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if Instant::now() >= this.deadline {
            return Poll::Ready(());
        }
        if this
            .registered
            .as_ref()
            .is_none_or(|w| !w.will_wake(cx.waker()))
        {
            let entry = TimerEntry {
                deadline: this.deadline,
                seq: 0,
                waker: cx.waker().clone(),
            };
            if this.timer.send(entry).is_err() {
                // No timer thread: finish now rather than never.
                return Poll::Ready(());
            }
            this.registered = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned_and_own_their_bytes() {
        for align in [512usize, 4096, 65536] {
            for len in [align, 3 * align] {
                let mut b = AlignedBuffer::new(len, align);
                assert_eq!(b.bytes_mut().len(), len);
                assert_eq!(b.bytes_mut().as_ptr() as usize % align, 0);
            }
        }
    }

    #[test]
    fn sleep_completes_without_blocking_other_futures() {
        let Ok(fs) = PortableFs::new(0, false) else {
            return;
        };
        let started = Instant::now();
        futures::executor::block_on(async {
            let short = fs.sleep(Duration::from_millis(5));
            let long = fs.sleep(Duration::from_millis(50));
            futures::pin_mut!(short, long);
            match futures::future::select(long, short).await {
                futures::future::Either::Right(_) => {}
                futures::future::Either::Left(_) => panic!("the longer sleep finished first"),
            }
        });
        let took = started.elapsed();
        // The short sleep won the race above; the bound only guards against
        // a sleep that never ends (loaded CI machines are slow to wake).
        assert!(
            took >= Duration::from_millis(5) && took < Duration::from_secs(5),
            "{took:?}"
        );
    }
}
