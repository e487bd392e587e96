//! The production backend: glommio DMA files (O_DIRECT through io_uring).
//!
//! glommio's stream writer is deliberately not used: dropping it without
//! `close` loses data, and it rewrites its padded tail block later, which
//! would put acknowledged frames at risk of a torn rewrite.

use std::io;
use std::path::Path;

use glommio::io::{Directory, DmaBuffer, DmaFile, OpenOptions};

use crate::io::{LogBuffer, LogFile, LogFs};

/// glommio DMA filesystem access; only usable on a glommio executor thread.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct DmaFs;

impl LogBuffer for DmaBuffer {
    fn bytes_mut(&mut self) -> &mut [u8] {
        self.as_bytes_mut()
    }
}

impl LogFile for DmaFile {
    type Buffer = DmaBuffer;

    fn alignment(&self) -> u64 {
        DmaFile::alignment(self)
    }

    fn alloc(&self, len: usize) -> DmaBuffer {
        self.alloc_dma_buffer(len)
    }

    async fn write_at(&self, buf: DmaBuffer, offset: u64) -> io::Result<usize> {
        Ok(DmaFile::write_at(self, buf, offset).await?)
    }

    async fn sync_data(&self) -> io::Result<()> {
        Ok(self.fdatasync().await?)
    }

    async fn close(self) -> io::Result<()> {
        Ok(DmaFile::close(self).await?)
    }

    async fn len(&self) -> io::Result<u64> {
        Ok(self.file_size().await?)
    }

    async fn rename(&self, to: &Path) -> io::Result<()> {
        Ok(DmaFile::rename(self, to).await?)
    }
}

fn dsync_flag(write_through: bool) -> i32 {
    if write_through {
        rustix::fs::OFlags::DSYNC.bits() as i32
    } else {
        0
    }
}

impl LogFs for DmaFs {
    type File = DmaFile;

    async fn create(&self, path: &Path, write_through: bool) -> io::Result<DmaFile> {
        Ok(OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(dsync_flag(write_through))
            .dma_open(path)
            .await?)
    }

    async fn open_existing(&self, path: &Path, write_through: bool) -> io::Result<DmaFile> {
        Ok(OpenOptions::new()
            .write(true)
            .custom_flags(dsync_flag(write_through))
            .dma_open(path)
            .await?)
    }

    fn queue_recheck(&self) -> Option<std::time::Duration> {
        // glommio 0.9 occasionally does not run the executor for a wake
        // from a caller's thread (see `shard::worker`).
        Some(std::time::Duration::from_millis(2))
    }

    async fn sleep(&self, duration: std::time::Duration) {
        glommio::timer::sleep(duration).await;
    }

    async fn spares(&self, dir: &Path) -> io::Result<Vec<std::path::PathBuf>> {
        let dir = dir.to_path_buf();
        glommio::executor()
            .spawn_blocking(move || crate::layout::spares(&dir))
            .await
    }

    async fn remove_file(&self, path: &Path) -> io::Result<()> {
        let path = path.to_path_buf();
        glommio::executor()
            .spawn_blocking(move || std::fs::remove_file(&path))
            .await
    }

    async fn write_small_file(&self, path: &Path, bytes: Vec<u8>) -> io::Result<()> {
        // Small buffered writes off the executor thread: the shard keeps
        // serving puts meanwhile.
        let path = path.to_path_buf();
        glommio::executor()
            .spawn_blocking(move || crate::io::write_small_file_blocking(&path, &bytes))
            .await
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let d = Directory::open(dir).await?;
        d.sync().await?;
        Ok(d.close().await?)
    }
}
