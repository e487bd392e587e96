//! The narrow I/O seam of a shard: every byte a shard writes to its log goes
//! through [`LogFs`] and [`LogFile`]. Production uses glommio DMA files
//! ([`dma`]); machines without io_uring use the blocking [`portable`]
//! backend; tests wrap either in the fault-injecting `faulty` disk (cargo
//! feature `failpoints`).
//!
//! Direct I/O rules the seam enforces on its callers: buffers come from
//! [`LogFile::alloc`] (aligned for the device), offsets and lengths are
//! multiples of [`LogFile::alignment`], and nothing is durable until
//! [`LogFile::sync_data`] returns.

pub(crate) mod dma;
#[cfg(feature = "failpoints")]
pub(crate) mod faulty;
pub(crate) mod portable;

use std::io;
use std::path::Path;

/// A buffer suitable for direct I/O on one file.
pub(crate) trait LogBuffer {
    /// The whole buffer, writable.
    fn bytes_mut(&mut self) -> &mut [u8];
}

/// One open log file.
pub(crate) trait LogFile {
    /// The buffer type writes take ownership of.
    type Buffer: LogBuffer + 'static;

    /// Required alignment of offsets, lengths and buffers, in bytes.
    fn alignment(&self) -> u64;

    /// A buffer of `len` bytes (a multiple of `alignment`) with unspecified
    /// contents.
    fn alloc(&self, len: usize) -> Self::Buffer;

    /// Writes the whole buffer at `offset`; returns the bytes written (fewer
    /// than the buffer means the device ran out of space).
    async fn write_at(&self, buf: Self::Buffer, offset: u64) -> io::Result<usize>;

    /// Makes every completed write durable (fdatasync).
    async fn sync_data(&self) -> io::Result<()>;

    /// Size of the file in bytes.
    async fn len(&self) -> io::Result<u64>;

    /// Renames the open file to `to` (the caller syncs the directory).
    async fn rename(&self, to: &Path) -> io::Result<()>;

    /// Closes the file.
    async fn close(self) -> io::Result<()>;
}

/// The filesystem operations of a shard.
pub(crate) trait LogFs: Clone {
    /// The file type this filesystem opens.
    type File: LogFile + 'static;

    /// Creates `path` (which must not exist) for direct-I/O writes; with
    /// `write_through` (`O_DSYNC`) every completed write is durable.
    async fn create(&self, path: &Path, write_through: bool) -> io::Result<Self::File>;

    /// Opens the existing file `path` for direct-I/O writes, keeping its
    /// contents (a spare segment whose blocks a new segment overwrites).
    async fn open_existing(&self, path: &Path, write_through: bool) -> io::Result<Self::File>;

    /// The spare files of the shard folder `dir`, oldest first (see
    /// `layout::spares`).
    async fn spares(&self, dir: &Path) -> io::Result<Vec<std::path::PathBuf>> {
        crate::layout::spares(dir)
    }

    /// Makes the directory entries of `dir` durable (fsync on the directory).
    async fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// Completes after `duration` without blocking the shard's other work
    /// (the Async-mode flush timer).
    async fn sleep(&self, duration: std::time::Duration);

    /// How often a waiting shard should re-poll its queue on its own, for
    /// runtimes that can miss a wake-up sent from another thread; `None`
    /// when wake-ups are reliable.
    fn queue_recheck(&self) -> Option<std::time::Duration> {
        None
    }

    /// Removes a file (the caller syncs the directory).
    async fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Writes a small side file (a hint) durably and atomically: temp file,
    /// fsync, rename over `path`, fsync of the directory.
    async fn write_small_file(&self, path: &Path, bytes: Vec<u8>) -> io::Result<()>;
}

/// Blocking implementation of [`LogFs::write_small_file`] with std I/O.
pub(crate) fn write_small_file_blocking(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let tmp = crate::layout::hint_temp_path(path);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
