//! The active segment of one shard: creation (header block, fsync of file and
//! directory), group-commit appends on fresh aligned blocks, and rotation.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::Error;
use crate::io::{LogBuffer, LogFile, LogFs};
use crate::segment::format::{
    FrameFields, MIN_BLOCK_SIZE, SegmentHeader, align_up, encode_frame, frame_footprint,
};

/// errno of a full device.
const ENOSPC: i32 = 28;

/// File name of segment `seq`: 20 zero-padded digits, so names sort by seq.
pub fn segment_file_name(seq: u64) -> String {
    format!("{seq:020}.seg")
}

/// Identity of the segments a writer creates.
#[derive(Debug, Clone)]
pub(crate) struct WriterSpec {
    pub shard_dir: PathBuf,
    pub shard: u32,
    pub shard_count: u32,
    pub generation: u64,
    pub max_segment_bytes: u64,
    pub max_segment_records: u64,
}

/// One frame to append.
pub(crate) struct PendingFrame<'a> {
    pub fields: FrameFields<'a>,
}

/// The shard's open segment.
pub(crate) struct SegmentWriter<Fs: LogFs> {
    fs: Fs,
    spec: WriterSpec,
    file: Option<Fs::File>,
    path: PathBuf,
    seq: u64,
    /// Next write offset: always a multiple of `block_size`.
    offset: u64,
    records: u64,
    block_size: u64,
}

impl<Fs: LogFs> SegmentWriter<Fs> {
    /// Creates segment `seq` and makes its header and directory entry durable.
    pub async fn create(fs: Fs, spec: WriterSpec, seq: u64) -> Result<Self, Error> {
        let path = spec.shard_dir.join(segment_file_name(seq));
        let file = fs
            .create(&path)
            .await
            .map_err(|e| Error::io("creating segment", &path, e))?;
        let block_size = file.alignment().max(u64::from(MIN_BLOCK_SIZE));
        let header = SegmentHeader {
            block_size: block_size as u32,
            shard: spec.shard,
            shard_count: spec.shard_count,
            seq,
            generation: spec.generation,
            created_unix_ns: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        };
        let mut buf = file.alloc(block_size as usize);
        let bytes = buf.bytes_mut();
        bytes.fill(0);
        header.encode(bytes);
        let mut writer = SegmentWriter {
            fs,
            spec,
            file: Some(file),
            path,
            seq,
            offset: 0,
            records: 0,
            block_size,
        };
        writer.write_block_aligned(buf, block_size as usize).await?;
        writer.sync().await?;
        writer
            .fs
            .sync_dir(&writer.spec.shard_dir)
            .await
            .map_err(|e| Error::io("syncing shard directory", &writer.spec.shard_dir, e))?;
        Ok(writer)
    }

    /// Store generation written into every frame.
    pub fn generation(&self) -> u64 {
        self.spec.generation
    }

    /// Encodes `frames` into one aligned buffer (zero filler after the last
    /// frame) and writes it at the next block; rotates first when the batch
    /// would push the segment past its limits. Not durable until `sync`.
    pub async fn append(&mut self, frames: &[PendingFrame<'_>]) -> Result<(), Error> {
        let bytes: usize = frames
            .iter()
            .map(|f| frame_footprint(f.fields.key.len(), f.fields.payload.len()))
            .sum();
        let total = align_up(bytes.max(1), self.block_size as usize);
        let over_bytes = self.offset + total as u64 > self.spec.max_segment_bytes;
        let over_records = self.records + frames.len() as u64 > self.spec.max_segment_records;
        if self.records > 0 && (over_bytes || over_records) {
            self.rotate().await?;
        }
        let Some(file) = self.file.as_ref() else {
            return Err(Error::Closed);
        };
        let mut buf = file.alloc(total);
        let out = buf.bytes_mut();
        let mut at = 0;
        for f in frames {
            at += encode_frame(&f.fields, out.get_mut(at..).unwrap_or_default());
        }
        if let Some(filler) = out.get_mut(at..) {
            filler.fill(0);
        }
        self.write_block_aligned(buf, total).await?;
        self.records += frames.len() as u64;
        Ok(())
    }

    async fn write_block_aligned(
        &mut self,
        buf: <Fs::File as LogFile>::Buffer,
        len: usize,
    ) -> Result<(), Error> {
        let Some(file) = self.file.as_ref() else {
            return Err(Error::Closed);
        };
        debug_assert_eq!(self.offset % self.block_size, 0);
        debug_assert_eq!(len as u64 % self.block_size, 0);
        let no_space = || Error::NoSpace {
            shard: self.spec.shard as usize,
            path: self.path.clone(),
        };
        let written = file.write_at(buf, self.offset).await.map_err(|e| {
            if e.raw_os_error() == Some(ENOSPC) {
                no_space()
            } else {
                Error::io("writing segment", &self.path, e)
            }
        })?;
        if written < len {
            // A short direct write means the device is full.
            return Err(no_space());
        }
        self.offset += len as u64;
        Ok(())
    }

    /// Makes everything appended so far durable.
    pub async fn sync(&self) -> Result<(), Error> {
        let Some(file) = self.file.as_ref() else {
            return Err(Error::Closed);
        };
        file.sync_data()
            .await
            .map_err(|e| Error::io("fdatasync of segment", &self.path, e))
    }

    /// Seals the active segment (durable, closed, never written again) and
    /// opens the next one.
    async fn rotate(&mut self) -> Result<(), Error> {
        self.sync().await?;
        if let Some(file) = self.file.take() {
            file.close()
                .await
                .map_err(|e| Error::io("closing segment", &self.path, e))?;
        }
        let next = SegmentWriter::create(self.fs.clone(), self.spec.clone(), self.seq + 1).await?;
        *self = next;
        Ok(())
    }

    /// Syncs and closes the active segment.
    pub async fn close(&mut self) -> Result<(), Error> {
        self.sync().await?;
        if let Some(file) = self.file.take() {
            file.close()
                .await
                .map_err(|e| Error::io("closing segment", &self.path, e))?;
        }
        Ok(())
    }
}
