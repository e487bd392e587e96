//! The active segment of one shard: creation (header block, fsync of file and
//! directory), group-commit appends on fresh aligned blocks, and rotation.
//!
//! Every batch starts with a mark frame that records how much of the segment
//! was durable when the batch was staged (`Progress`: the contiguous prefix
//! of completed writes that a later successful fdatasync, or `O_DSYNC`,
//! covered). Recovery reads the marks to tell the writes a power cut may
//! keep in any subset from corruption (`segment::damage`).
//!
//! A new segment reuses a spare file when the shard folder has one (a
//! segment `Store::compact` retired): writing over blocks the filesystem
//! already allocated and initialized changes no metadata, so a durable write
//! needs no journal commit (on ext4 such writes took half the time of
//! appends, `docs/BENCHMARKS.md`). The frames of the file's earlier use stay
//! after the new data: their CRC fails under the new segment's seq
//! (`FrameSalt`; seqs are never reused in a folder, `layout::next_seq`) and
//! their generation is not the new header's, so readers never take them for
//! frames of the new segment,
//! and sealing writes one zero block after the data, the format's end mark,
//! so a sealed segment ends cleanly without cutting the file (a large
//! truncate, with discards, would hold up the shard).

use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::error::Error;
use crate::io::{LogBuffer, LogFile, LogFs};
use crate::layout::{hint_path, segment_file_name};
use crate::segment::format::{
    FORMAT_VERSION, FrameFields, FrameKind, FrameSalt, MARK_LEN, MIN_BLOCK_SIZE, SegmentHeader,
    align_up, encode_frame_flagged, encode_mark, frame_footprint, frame_len,
};
use crate::segment::hint::HintBuilder;
use crate::shard::stats::IoTimes;

/// A segment that was sealed: complete, durable, never written again. Safe
/// to copy or ship; see `Store::compact` before deleting one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSegment {
    /// Shard folder index.
    pub shard: usize,
    /// Segment sequence number.
    pub seq: u64,
    /// The segment file.
    pub path: PathBuf,
    /// Frames in the segment (every put, stale ones too).
    pub records: u64,
    /// Size of the file in bytes.
    pub bytes: u64,
    /// Lowest version in the segment (`None` when it holds no frame).
    pub first_version: Option<i64>,
    /// Highest version in the segment.
    pub last_version: Option<i64>,
}

/// Called with every segment a shard seals, on the store's notifier thread
/// (see `Config::on_sealed`).
pub type SealedCallback = std::sync::Arc<dyn Fn(&SealedSegment) + Send + Sync>;

/// Identity of the segments a writer creates.
#[derive(Clone)]
pub(crate) struct WriterSpec {
    pub shard_dir: PathBuf,
    pub shard: u32,
    pub shard_count: u32,
    pub pipeline_depth: u32,
    /// Open segments `O_DSYNC` (Sync mode, `SyncMethod::Dsync`): each
    /// write is durable at completion and needs no `fdatasync`.
    pub write_through: bool,
    pub generation: u64,
    pub max_segment_bytes: u64,
    pub max_segment_records: u64,
    /// Where sealed segments are published (`Store::sealed_segments`,
    /// `Config::on_sealed`).
    pub sealed: std::sync::Arc<crate::sealed::SealedLog>,
    /// Reuse spare files of the shard folder for new segments.
    pub recycle: bool,
}

/// One frame to append.
pub(crate) struct PendingFrame<'a> {
    pub fields: FrameFields<'a>,
}

/// The shard's open segment.
pub(crate) struct SegmentWriter<Fs: LogFs> {
    fs: Fs,
    spec: WriterSpec,
    /// Shared with the write jobs in flight; sealing waits until it is the
    /// only reference.
    file: Option<Rc<Fs::File>>,
    path: PathBuf,
    seq: u64,
    /// Next write offset: always a multiple of `block_size`.
    offset: u64,
    /// Size of the file when it was opened (a reused spare's; 0 for a new
    /// file): its old bytes lie beyond `offset` until overwritten.
    file_len: u64,
    /// The spare file this segment was created in, if any.
    spare: Option<PathBuf>,
    /// End of the zeros this segment wrote ahead of its data (0: none):
    /// batches below it overwrite blocks already written.
    zeroed_through: u64,
    /// The write carrying the latest zeros ahead, until it completes: a
    /// later write into those zeros must not start before it (the zeros
    /// landing after the data would erase it).
    zero_fence: Option<Fence>,
    records: u64,
    block_size: u64,
    hint: HintBuilder,
    /// What of this segment has been written and made durable (shared with
    /// the jobs in flight); each batch's mark records it.
    progress: Rc<Progress>,
}

/// How far a segment's writes have completed and become durable, as
/// contiguous prefixes (writes of one segment complete in any order).
#[derive(Debug, Default)]
struct Progress {
    /// Every byte below this offset was written by a completed write.
    completed_through: std::cell::Cell<u64>,
    /// Completed writes above `completed_through`: start → end.
    completed_above: std::cell::RefCell<std::collections::BTreeMap<u64, u64>>,
    /// Every byte below this offset is durable: its write completed before
    /// an fdatasync that started later and succeeded (or it was an
    /// `O_DSYNC` write).
    durable_through: std::cell::Cell<u64>,
}

impl Progress {
    /// A write of `[offset, end)` completed.
    fn completed(&self, offset: u64, end: u64) {
        let mut above = self.completed_above.borrow_mut();
        above.insert(offset, end);
        let mut through = self.completed_through.get();
        while let Some(end) = above.remove(&through) {
            through = end;
        }
        self.completed_through.set(through);
    }

    /// A sync that started when writes had completed through `through`
    /// succeeded.
    fn durable(&self, through: u64) {
        self.durable_through
            .set(self.durable_through.get().max(through));
    }
}

impl<Fs: LogFs> SegmentWriter<Fs> {
    /// Creates segment `seq` (with `into_spare`, in a spare file when the
    /// spec allows spares and there is one) and makes its header and
    /// directory entry durable.
    pub async fn create(
        fs: Fs,
        spec: WriterSpec,
        seq: u64,
        into_spare: bool,
    ) -> Result<Self, Error> {
        let path = spec.shard_dir.join(segment_file_name(seq));
        let shard = spec.shard as usize;
        let spare = match spec.recycle && into_spare {
            true => fs
                .spares(&spec.shard_dir)
                .await
                .map_err(|e| Error::shard_io("listing spare segments", &spec.shard_dir, shard, e))?
                .into_iter()
                .next(),
            false => None,
        };
        let (file, file_len, opened_as) = match spare {
            Some(spare) => {
                let file = fs
                    .open_existing(&spare, spec.write_through)
                    .await
                    .map_err(|e| Error::shard_io("opening spare segment", &spare, shard, e))?;
                let len = file
                    .len()
                    .await
                    .map_err(|e| Error::shard_io("sizing spare segment", &spare, shard, e))?;
                (file, len, spare)
            }
            None => {
                let file = fs
                    .create(&path, spec.write_through)
                    .await
                    .map_err(|e| Error::shard_io("creating segment", &path, shard, e))?;
                (file, 0, path.clone())
            }
        };
        let block_size = file.alignment().max(u64::from(MIN_BLOCK_SIZE));
        let header = SegmentHeader {
            block_size: block_size as u32,
            shard: spec.shard,
            shard_count: spec.shard_count,
            pipeline_depth: spec.pipeline_depth,
            seq,
            generation: spec.generation,
            created_unix_ns: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
            format_version: FORMAT_VERSION,
            reused: opened_as != path,
        };
        let mut buf = file.alloc(block_size as usize);
        let bytes = buf.bytes_mut();
        bytes.fill(0);
        header.encode(bytes).map_err(|e| Error::Invariant {
            shard,
            path: opened_as.clone(),
            what: format!("encoding the segment header: {e}"),
        })?;
        let mut writer = SegmentWriter {
            fs,
            spec,
            file: Some(Rc::new(file)),
            spare: (opened_as != path).then(|| opened_as.clone()),
            path: opened_as,
            seq,
            offset: 0,
            file_len,
            zeroed_through: 0,
            zero_fence: None,
            records: 0,
            block_size,
            hint: HintBuilder::default(),
            progress: Rc::new(Progress::default()),
        };
        writer.job(buf, block_size as usize)?.run(true).await?;
        if writer.path != path {
            // The spare takes the segment's name only once its new header
            // is durable: a crash before leaves a spare, after, a segment
            // whose old frames all fail their CRC under the new seq.
            if let Some(file) = &writer.file {
                file.rename(&path).await.map_err(|e| {
                    Error::shard_io("renaming spare segment", &writer.path, shard, e)
                })?;
            }
            writer.path = path;
        }
        writer.sync_shard_dir().await?;
        Ok(writer)
    }

    /// Makes the shard folder's entries durable (fsync of the directory).
    async fn sync_shard_dir(&self) -> Result<(), Error> {
        self.fs
            .sync_dir(&self.spec.shard_dir)
            .await
            .map_err(|e| Error::io("syncing shard directory", &self.spec.shard_dir, e))
    }

    /// Whether the active segment was created in a spare file.
    pub fn in_spare(&self) -> bool {
        self.spare.is_some()
    }

    /// Seq of the active segment.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Store generation written into every frame.
    pub fn generation(&self) -> u64 {
        self.spec.generation
    }

    /// Whether a batch of `frames` frames occupying `footprint_bytes` must go
    /// to a new segment (the active one already holds frames and would pass
    /// a limit).
    pub fn needs_rotation(&self, footprint_bytes: usize, frames: usize) -> bool {
        let total = align_up(MARK_LEN + footprint_bytes, self.block_size as usize) as u64;
        let over_bytes = self.offset + total > self.spec.max_segment_bytes;
        let over_records = self.records + frames as u64 > self.spec.max_segment_records;
        self.records > 0 && (over_bytes || over_records)
    }

    /// Encodes `frames` into one aligned buffer (zero filler after the last
    /// frame) and reserves the next blocks for it; the returned job writes it.
    /// Nothing is durable until a sync that starts after the write completes.
    pub fn stage(&mut self, frames: &[PendingFrame<'_>]) -> Result<WriteJob<Fs::File>, Error> {
        let bytes: usize = frames
            .iter()
            .map(|f| frame_footprint(f.fields.key.len(), f.fields.payload.len()))
            .sum();
        // The batch's mark, then its frames.
        let total = align_up(MARK_LEN + bytes, self.block_size as usize);
        let zeros = self.zeros_ahead(total);
        let Some(file) = self.file.as_ref() else {
            return Err(Error::Closed);
        };
        let mut buf = file.alloc(total + zeros);
        let out = buf.bytes_mut();
        let broken = |what: String| Error::Invariant {
            shard: self.spec.shard as usize,
            path: self.path.clone(),
            what,
        };
        // The buffer must hold the mark and the frames' footprint exactly as
        // computed above; if it ever did not, encoding fails here and the
        // batch is never written (no default bytes reach the disk).
        let mut at = encode_mark(
            self.progress.durable_through.get(),
            self.spec.generation,
            FrameSalt::segment(self.seq),
            out,
        )
        .map_err(|e| broken(format!("encoding the batch's mark: {e}")))?;
        let mut entries = Vec::with_capacity(frames.len());
        for (i, f) in frames.iter().enumerate() {
            let fields = &f.fields;
            let dst = out.get_mut(at..).ok_or_else(|| {
                broken(format!(
                    "frame {i} starts at {at}, past the {}-byte staging buffer",
                    total
                ))
            })?;
            let footprint = encode_frame_flagged(fields, FrameSalt::segment(self.seq), i == 0, dst)
                .map_err(|e| broken(format!("encoding frame {i} of the batch: {e}")))?;
            entries.push((fields, self.offset + at as u64));
            at += footprint;
        }
        // The filler, and the zeros ahead if any.
        let filler = out.get_mut(at..).ok_or_else(|| {
            broken(format!(
                "the batch's frames end at {at}, past the {total}-byte staging buffer"
            ))
        })?;
        filler.fill(0);
        // Only a batch that encoded whole is described by the hint.
        for (fields, offset) in entries {
            self.hint.add(
                fields.kind == FrameKind::Delete,
                fields.key,
                fields.version,
                fields.generation,
                fields.lsn,
                offset,
                frame_len(fields.key.len(), fields.payload.len()) as u32,
            );
        }
        self.records += frames.len() as u64;
        let mut job = self.job(buf, total)?;
        if zeros > 0 {
            job.zeros = zeros;
            self.zeroed_through = job.offset + (total + zeros) as u64;
            let (fence, done) = Fence::new();
            // Earlier jobs are below this one; only later ones wait.
            self.zero_fence = Some(fence);
            job.fence_done = Some(done);
        }
        Ok(job)
    }

    /// Zero bytes to write after a batch of `total` bytes at the current
    /// offset, so that the batches after it overwrite blocks already
    /// written instead of appending (see [`ZERO_AHEAD_BYTES`]): only for a
    /// small batch that would append, as far ahead as the segment is long
    /// (at most `ZERO_AHEAD_BYTES`), up to the segment's size limit.
    fn zeros_ahead(&self, total: usize) -> usize {
        let end = self.offset + total as u64;
        let written = self.file_len.max(self.zeroed_through);
        if total > ZERO_AHEAD_MAX_BATCH_BYTES || end <= written {
            return 0;
        }
        let limit = align_up(
            usize::try_from(self.spec.max_segment_bytes).unwrap_or(usize::MAX),
            self.block_size as usize,
        ) as u64;
        // As far ahead as the segment already holds, up to the full lead:
        // a small segment's file stays within twice its data.
        let ahead = ZERO_AHEAD_BYTES.min(align_up(end as usize, self.block_size as usize) as u64);
        let target = (end + ahead).min(limit.max(end));
        usize::try_from(target - end).unwrap_or(0)
    }

    /// Rotates if needed, then writes `frames` and waits for the write (not
    /// durable until `sync`).
    pub async fn append(&mut self, frames: &[PendingFrame<'_>]) -> Result<(), Error> {
        let bytes: usize = frames
            .iter()
            .map(|f| frame_footprint(f.fields.key.len(), f.fields.payload.len()))
            .sum();
        if self.needs_rotation(bytes, frames.len()) {
            self.rotate().await?;
        }
        self.stage(frames)?.run(false).await
    }

    /// Reserves `len` bytes at the next block for `buf`.
    fn job(
        &mut self,
        buf: <Fs::File as LogFile>::Buffer,
        len: usize,
    ) -> Result<WriteJob<Fs::File>, Error> {
        let Some(file) = self.file.as_ref() else {
            return Err(Error::Closed);
        };
        debug_assert_eq!(self.offset % self.block_size, 0);
        debug_assert_eq!(len as u64 % self.block_size, 0);
        // A write into zeros whose write is still in flight waits for it.
        if self.zero_fence.as_ref().is_some_and(Fence::is_done) {
            self.zero_fence = None;
        }
        let after = self.zero_fence.as_ref().map(Fence::wait);
        let job = WriteJob {
            progress: Rc::clone(&self.progress),
            file: Rc::clone(file),
            buf,
            write_through: self.spec.write_through,
            offset: self.offset,
            len,
            zeros: 0,
            after,
            fence_done: None,
            path: self.path.clone(),
            shard: self.spec.shard as usize,
        };
        self.offset += len as u64;
        Ok(job)
    }

    /// A future that makes every write completed before it starts durable,
    /// without borrowing the writer (it runs beside new writes).
    pub fn sync_job(
        &self,
    ) -> Result<impl std::future::Future<Output = Result<(), Error>> + 'static, Error> {
        let Some(file) = self.file.as_ref() else {
            return Err(Error::Closed);
        };
        let file = Rc::clone(file);
        let path = self.path.clone();
        let progress = Rc::clone(&self.progress);
        Ok(async move {
            let through = progress.completed_through.get();
            file.sync_data()
                .await
                .map_err(|e| Error::io("fdatasync of segment", &path, e))?;
            progress.durable(through);
            Ok(())
        })
    }

    /// Makes every completed write durable.
    pub async fn sync(&self) -> Result<(), Error> {
        let Some(file) = self.file.as_ref() else {
            return Err(Error::Closed);
        };
        let through = self.progress.completed_through.get();
        file.sync_data().await.map_err(|e| {
            Error::shard_io(
                "fdatasync of segment",
                &self.path,
                self.spec.shard as usize,
                e,
            )
        })?;
        self.progress.durable(through);
        Ok(())
    }

    /// Seals the active segment (durable, closed, never written again) and
    /// opens the next one, in a spare file when there is one.
    pub async fn rotate(&mut self) -> Result<(), Error> {
        self.rotate_into(self.spec.recycle).await
    }

    /// [`SegmentWriter::rotate`] into a new file, for a segment that will
    /// hold far less than a spare (a checkpoint): in a spare, its file size
    /// would count the spare's stale tail as history, which retention
    /// compares against.
    pub async fn rotate_into_new_file(&mut self) -> Result<(), Error> {
        self.rotate_into(false).await
    }

    async fn rotate_into(&mut self, spare: bool) -> Result<(), Error> {
        self.seal().await?;
        let next =
            SegmentWriter::create(self.fs.clone(), self.spec.clone(), self.seq + 1, spare).await?;
        *self = next;
        Ok(())
    }

    /// Seals the active segment (the store is closing).
    pub async fn close(&mut self) -> Result<(), Error> {
        self.seal().await
    }

    /// Closes the active segment after a disk fault without syncing, sealing
    /// or announcing it: a failed fdatasync is never retried as if the data
    /// were safe, and no hint vouches for frames that may not be on disk.
    /// The next open scans the segment.
    pub async fn abandon(&mut self) {
        self.hint = HintBuilder::default();
        if let Some(Ok(file)) = self.file.take().map(Rc::try_unwrap) {
            let _ = file.close().await;
        }
    }

    /// Makes the segment durable, closes it, writes its hint and announces
    /// it. A failed hint write only costs a scan at the next open.
    async fn seal(&mut self) -> Result<(), Error> {
        let Some(file) = self.file.take() else {
            return Ok(());
        };
        let file = match Rc::try_unwrap(file) {
            Ok(file) => file,
            Err(_) => {
                debug_assert!(false, "a segment was sealed with writes in flight");
                return Err(Error::io(
                    "sealing segment",
                    &self.path,
                    std::io::Error::other("writes still in flight"),
                ));
            }
        };
        if let Some(spare) = self.spare.as_ref().filter(|_| self.records == 0) {
            // Nothing was written into the reused file: it goes back to
            // being a spare, under its old name (this segment's seq will be
            // used again), instead of being deleted like an empty segment.
            let renamed = file
                .rename(spare)
                .await
                .map_err(|e| Error::io("returning an unused segment to the spares", &self.path, e));
            let closed = file
                .close()
                .await
                .map_err(|e| Error::io("closing segment", &self.path, e));
            renamed?;
            closed?;
            return self.sync_shard_dir().await;
        }
        // A reused spare still holds its earlier frames past the new data:
        // a zero block there ends the data (the sync below makes it durable).
        let data_end = self.offset;
        // Zeros this segment wrote ahead already end the data.
        let ended = match self.file_len > data_end && self.zeroed_through <= data_end {
            true => {
                let mut zeros = file.alloc(self.block_size as usize);
                zeros.bytes_mut().fill(0);
                match file.write_at(zeros, data_end).await {
                    Ok(n) if n as u64 == self.block_size => Ok(()),
                    Ok(_) => Err(Error::NoSpace {
                        shard: self.spec.shard as usize,
                        path: self.path.clone(),
                    }),
                    Err(e) => Err(Error::io("ending a reused segment", &self.path, e)),
                }
            }
            false => Ok(()),
        };
        let synced = file
            .sync_data()
            .await
            .map_err(|e| Error::io("fdatasync of segment", &self.path, e));
        let closed = file
            .close()
            .await
            .map_err(|e| Error::io("closing segment", &self.path, e));
        ended?;
        synced?;
        closed?;
        let file_len = data_end.max(self.file_len).max(self.zeroed_through);
        let hint = std::mem::take(&mut self.hint).finish(file_len);
        if hint.frames == 0 {
            // Nothing was ever written here: drop the file rather than keep
            // an empty segment per open.
            self.fs
                .remove_file(&self.path)
                .await
                .map_err(|e| Error::io("removing empty segment", &self.path, e))?;
            return self.sync_shard_dir().await;
        }
        let sealed = SealedSegment {
            shard: self.spec.shard as usize,
            seq: self.seq,
            path: self.path.clone(),
            records: hint.frames,
            bytes: file_len,
            first_version: (hint.frames > 0).then_some(hint.min_version),
            last_version: (hint.frames > 0).then_some(hint.max_version),
        };
        if let Err(e) = self
            .fs
            .write_small_file(&hint_path(&self.path), hint.encode())
            .await
        {
            log::warn!(
                "{}: writing the hint failed ({e}); the next open scans this segment",
                self.path.display()
            );
        }
        self.spec.sealed.sealed(sealed);
        Ok(())
    }
}

/// One staged batch: a buffer bound to its reserved offset. Jobs of one
/// segment may run concurrently (their ranges never overlap).
pub(crate) struct WriteJob<F: LogFile> {
    progress: Rc<Progress>,
    file: Rc<F>,
    buf: F::Buffer,
    /// The file is `O_DSYNC`: a completed write is already durable.
    write_through: bool,
    offset: u64,
    /// Bytes of the batch (mark, frames, filler).
    len: usize,
    /// Zero bytes written after the batch, in the same write (zeros ahead).
    zeros: usize,
    /// The write of zeros this one lands in, to wait for.
    after: Option<FenceWait>,
    /// Resolved when this write (carrying zeros ahead) completes.
    fence_done: Option<futures::channel::oneshot::Sender<()>>,
    path: PathBuf,
    shard: usize,
}

/// The write carrying the latest zeros ahead: later writes wait for it.
struct Fence {
    done: futures::future::Shared<futures::channel::oneshot::Receiver<()>>,
}

/// Waits for a [`Fence`] (resolves when its write completes or fails).
type FenceWait = futures::future::Shared<futures::channel::oneshot::Receiver<()>>;

impl Fence {
    fn new() -> (Fence, futures::channel::oneshot::Sender<()>) {
        let (tx, rx) = futures::channel::oneshot::channel();
        (
            Fence {
                done: futures::FutureExt::shared(rx),
            },
            tx,
        )
    }

    fn is_done(&self) -> bool {
        self.done.peek().is_some()
    }

    fn wait(&self) -> FenceWait {
        self.done.clone()
    }
}

/// Zeros written ahead of a segment's data by a small batch that appends:
/// the batches after it overwrite those blocks instead of extending the
/// file. On ext4 an appending durable write also commits the file's size
/// and extents through the journal and takes the inode lock exclusively;
/// an overwrite of written blocks is one cache flush (fio on an ext4 virtual disk,
/// 4 KiB O_DSYNC one at a time: 0.9 k/s appending, 1.8 k/s overwriting).
/// fallocate would not do: its unwritten extents need a journal commit at
/// the first write too.
pub(crate) const ZERO_AHEAD_BYTES: u64 = 1 << 20;

/// Only batches up to this size write zeros ahead: large batches are bound
/// by bandwidth, and zeros would double the bytes they write.
pub(crate) const ZERO_AHEAD_MAX_BATCH_BYTES: usize = 64 << 10;

impl<F: LogFile> WriteJob<F> {
    /// Writes the batch; with `sync`, makes it durable: an `O_DSYNC` write
    /// already is when it completes, otherwise an `fdatasync` that starts
    /// after the write completed.
    pub async fn run(self, sync: bool) -> Result<(), Error> {
        self.run_timed(sync).await.map(|_| ())
    }

    /// `run`, reporting how long the write and the sync took.
    pub async fn run_timed(self, sync: bool) -> Result<IoTimes, Error> {
        let WriteJob {
            progress,
            file,
            buf,
            write_through,
            offset,
            len,
            zeros,
            after,
            fence_done,
            path,
            shard,
        } = self;
        if let Some(after) = after {
            // Resolves (Ok or cancelled) once the zeros' write is over.
            let _ = after.await;
        }
        let no_space = || Error::NoSpace {
            shard,
            path: path.clone(),
        };
        let started = Instant::now();
        let written = file
            .write_at(buf, offset)
            .await
            .map_err(|e| Error::shard_io("writing segment", &path, shard, e))?;
        drop(fence_done);
        if written < len + zeros {
            // A short direct write means the device is full.
            return Err(no_space());
        }
        // The zeros are not data: progress (and the marks) count the batch.
        progress.completed(offset, offset + len as u64);
        if write_through {
            // Every write of an `O_DSYNC` file is durable at completion.
            progress.durable(progress.completed_through.get());
        }
        let mut times = IoTimes {
            write: started.elapsed(),
            sync: None,
        };
        if sync && !write_through {
            let started = Instant::now();
            let through = progress.completed_through.get();
            file.sync_data()
                .await
                .map_err(|e| Error::shard_io("fdatasync of segment", &path, shard, e))?;
            progress.durable(through);
            times.sync = Some(started.elapsed());
        }
        Ok(times)
    }
}
