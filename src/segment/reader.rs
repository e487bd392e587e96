//! Streaming reader of one segment file: header, then frame after frame,
//! through a bounded window, so memory stays constant whatever the file size.
//! Recovery, the log tool and tests read segments only through this type.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::segment::damage::Step;
use crate::segment::format::{
    FRAME_ALIGN, FormatError, Frame, HEADER_LEN, SegmentHeader, Slot, align_up, classify, is_mark,
};

/// Why bytes after the end of the written data are damage (see
/// [`SegmentReader::damage_after_end`]): a torn write past the end.
pub const BYTES_AFTER_END: &str = "non-zero bytes after the end of the written data";

/// Bytes read from the file at a time (a frame larger than this is read whole).
const WINDOW_BYTES: usize = 4 << 20;

/// A problem found while reading a segment.
#[derive(Debug)]
pub enum ReadError {
    /// The operating system failed a read.
    Io(io::Error),
    /// The bytes at `offset` are not a valid header or frame.
    Format {
        /// Byte offset of the bad header or frame.
        offset: u64,
        /// What is wrong with it.
        error: FormatError,
    },
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "read failed: {e}"),
            ReadError::Format { offset, error } => write!(f, "at offset {offset}: {error}"),
        }
    }
}

/// Reads a segment file sequentially.
#[derive(Debug)]
pub struct SegmentReader {
    file: File,
    path: PathBuf,
    header: SegmentHeader,
    file_len: u64,
    pos: u64,
    window: Window,
    stopped: bool,
    /// Highest `durable_through` of the mark frames read since the last
    /// [`SegmentReader::take_max_mark`].
    max_mark: Option<u64>,
}

/// The bytes of the file currently in memory.
#[derive(Debug, Default)]
struct Window {
    buf: Vec<u8>,
    start: u64,
}

impl SegmentReader {
    /// Opens `path` and checks its header.
    pub fn open(path: &Path) -> Result<SegmentReader, ReadError> {
        let file = File::open(path).map_err(ReadError::Io)?;
        let file_len = file.metadata().map_err(ReadError::Io)?.len();
        let mut reader = SegmentReader {
            file,
            path: path.to_path_buf(),
            header: SegmentHeader {
                block_size: 0,
                shard: 0,
                shard_count: 0,
                pipeline_depth: 0,
                seq: 0,
                generation: 0,
                created_unix_ns: 0,
                format_version: 0,
                reused: false,
            },
            file_len,
            pos: 0,
            window: Window::default(),
            stopped: false,
            max_mark: None,
        };
        let head = fetch(
            &mut reader.window,
            &reader.file,
            reader.file_len,
            0,
            HEADER_LEN,
        )?;
        reader.header =
            SegmentHeader::decode(head).map_err(|error| ReadError::Format { offset: 0, error })?;
        reader.pos = u64::from(reader.header.block_size);
        Ok(reader)
    }

    /// The segment's header.
    pub fn header(&self) -> &SegmentHeader {
        &self.header
    }

    /// The segment's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the file in bytes.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// The highest `durable_through` of the mark frames (format version 3)
    /// read since the last call, if any; marks are read past, never
    /// returned as frames.
    pub fn take_max_mark(&mut self) -> Option<u64> {
        self.max_mark.take()
    }

    /// Offset of the next read: after the last good frame once `next` has
    /// returned `Ok(None)`.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The next frame and its offset; `Ok(None)` at the end of the written
    /// data. A frame left by the earlier use of a reused file fails its CRC
    /// (see `FrameSalt`) or its generation check
    /// ([`SegmentHeader::decode_frame`]) like any damage. After an error, further calls
    /// return `Ok(None)` (the offset of the bad bytes is in the error;
    /// `position` stays at it).
    pub fn next_frame(&mut self) -> Result<Option<(u64, Frame<'_>)>, ReadError> {
        let Some((pos, len)) = self.next_frame_slot()? else {
            return Ok(None);
        };
        let bytes = fetch(&mut self.window, &self.file, self.file_len, pos, len)?;
        match self.header.decode_frame(bytes) {
            Ok(frame) => Ok(Some((pos, frame))),
            Err(error) => {
                self.pos = pos;
                self.stopped = true;
                Err(ReadError::Format { offset: pos, error })
            }
        }
    }

    /// The next frame, the damage at the reader's position, or the end of
    /// the segment's data (see [`Step`]); damage is judged by
    /// `segment::damage::judge_frames`.
    pub fn step(&mut self) -> Result<Step<'_>, ReadError> {
        let (pos, len) = match self.next_frame_slot() {
            Ok(Some(slot)) => slot,
            Ok(None) => {
                let end = self.pos;
                return Ok(match self.damage_after_end(end)? {
                    true => Step::Damaged {
                        offset: end,
                        reason: BYTES_AFTER_END.to_owned(),
                    },
                    false => Step::End,
                });
            }
            Err(ReadError::Format { offset, error }) => {
                return Ok(Step::Damaged {
                    offset,
                    reason: error.to_string(),
                });
            }
            Err(e) => return Err(e),
        };
        let bytes = fetch(&mut self.window, &self.file, self.file_len, pos, len)?;
        match self.header.decode_frame(bytes) {
            Ok(frame) => Ok(Step::Frame { offset: pos, frame }),
            Err(error) => {
                self.pos = pos;
                self.stopped = true;
                Ok(Step::Damaged {
                    offset: pos,
                    reason: error.to_string(),
                })
            }
        }
    }

    /// Finds the next frame's position and length, skipping filler; `None`
    /// at the end of the written data. The reader's position moves past the
    /// frame (its decoding may move it back).
    fn next_frame_slot(&mut self) -> Result<Option<(u64, usize)>, ReadError> {
        if self.stopped {
            return Ok(None);
        }
        let block = self.header.block_size;
        loop {
            if self.pos >= self.file_len {
                self.stopped = true;
                return Ok(None);
            }
            let pos = self.pos;
            let head = fetch(&mut self.window, &self.file, self.file_len, pos, 4)?;
            match classify(head, pos, block) {
                Ok(Slot::Unwritten) => {
                    self.stopped = true;
                    return Ok(None);
                }
                Ok(Slot::Filler) => {
                    self.pos = align_up(pos as usize + 1, block as usize) as u64;
                }
                Ok(Slot::Frame { len }) => {
                    let available = self.file_len - pos;
                    if (len as u64) > available {
                        self.stopped = true;
                        return Err(ReadError::Format {
                            offset: pos,
                            error: FormatError::Truncated {
                                needed: len,
                                available: available as usize,
                            },
                        });
                    }
                    self.pos = align_up(pos as usize + len, FRAME_ALIGN) as u64;
                    if !self.header.has_marks() {
                        return Ok(Some((pos, len)));
                    }
                    let head = fetch(&mut self.window, &self.file, self.file_len, pos, 9)?;
                    if !is_mark(head) {
                        return Ok(Some((pos, len)));
                    }
                    let bytes = fetch(&mut self.window, &self.file, self.file_len, pos, len)?;
                    match self.header.decode_mark(bytes) {
                        Ok(mark) => {
                            self.max_mark = Some(
                                self.max_mark
                                    .map_or(mark.durable_through, |m| m.max(mark.durable_through)),
                            );
                        }
                        Err(error) => {
                            self.pos = pos;
                            self.stopped = true;
                            return Err(ReadError::Format { offset: pos, error });
                        }
                    }
                }
                Err(error) => {
                    self.stopped = true;
                    return Err(ReadError::Format { offset: pos, error });
                }
            }
        }
    }
}

impl SegmentReader {
    /// After damage at `offset`: the first block boundary past it where a
    /// valid frame of this segment starts (every batch starts on a block
    /// boundary), if any. Moves the reader there and resumes reading when
    /// found.
    pub fn resync_after(&mut self, offset: u64) -> Result<Option<u64>, ReadError> {
        let block_size = self.header.block_size;
        let block = u64::from(block_size);
        let mut at = (offset / block + 1) * block;
        while at < self.file_len {
            let head = fetch(&mut self.window, &self.file, self.file_len, at, 4)?;
            if let Ok(Slot::Frame { len }) = classify(head, at, block_size) {
                if at + len as u64 <= self.file_len {
                    let bytes = fetch(&mut self.window, &self.file, self.file_len, at, len)?;
                    // A batch starts with its mark (version 3) or its
                    // first put.
                    let valid = match self.header.has_marks() && is_mark(bytes) {
                        true => self.header.decode_mark(bytes).is_ok(),
                        false => self.header.decode_frame(bytes).is_ok(),
                    };
                    if valid {
                        self.pos = at;
                        self.stopped = false;
                        return Ok(Some(at));
                    }
                }
            }
            at += block;
        }
        Ok(None)
    }

    /// Whether what follows the end of the written data at `end` is damage:
    /// any non-zero byte (a torn write past the end), except in a segment
    /// written over a reused file, where only a frame of this segment at a
    /// later block boundary is (the rest is the file's earlier use). When
    /// one is found the reader is moved to it.
    pub fn damage_after_end(&mut self, end: u64) -> Result<bool, ReadError> {
        match self.header.reused {
            true => Ok(self.resync_after(end)?.is_some()),
            false => self.has_bytes_after(end),
        }
    }

    /// Whether any byte in `[offset, file_len)` is non-zero (leftovers of a
    /// torn write past the end of the written data).
    pub fn has_bytes_after(&mut self, offset: u64) -> Result<bool, ReadError> {
        let mut at = offset;
        while at < self.file_len {
            let n = ((self.file_len - at) as usize).min(WINDOW_BYTES);
            if fetch(&mut self.window, &self.file, self.file_len, at, n)?
                .iter()
                .any(|&b| b != 0)
            {
                return Ok(true);
            }
            at += n as u64;
        }
        Ok(false)
    }
}

/// `len` bytes at `offset` (fewer only at the end of the file), read through
/// the window.
fn fetch<'w>(
    window: &'w mut Window,
    file: &File,
    file_len: u64,
    offset: u64,
    len: usize,
) -> Result<&'w [u8], ReadError> {
    let in_window =
        offset >= window.start && offset + len as u64 <= window.start + window.buf.len() as u64;
    if !in_window {
        let want = len.max(WINDOW_BYTES) as u64;
        let want = want.min(file_len.saturating_sub(offset)) as usize;
        window.buf.resize(want, 0);
        let filled = read_up_to(file, &mut window.buf, offset)?;
        window.buf.truncate(filled);
        window.start = offset;
    }
    let start = (offset - window.start) as usize;
    let end = (start + len).min(window.buf.len());
    Ok(window.buf.get(start..end).unwrap_or_default())
}

/// Fills `buf` from `offset`, stopping early only at the end of the file;
/// returns the bytes read.
fn read_up_to(file: &File, buf: &mut [u8], offset: u64) -> Result<usize, ReadError> {
    let mut filled = 0;
    while filled < buf.len() {
        let dst = buf.get_mut(filled..).unwrap_or_default();
        match file.read_at(dst, offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
    Ok(filled)
}

/// Reads and checks the header of a segment file.
pub fn header_of(file: &File) -> Result<SegmentHeader, ReadError> {
    let mut head = [0u8; HEADER_LEN];
    let n = read_up_to(file, &mut head, 0)?;
    SegmentHeader::decode(head.get(..n).unwrap_or_default())
        .map_err(|error| ReadError::Format { offset: 0, error })
}

/// Reads and checks the one frame of `len` bytes at `offset` of `file`,
/// a segment with `header` (a positional read of exactly that frame, for
/// recovery's winners).
pub fn frame_at<'b>(
    file: &File,
    header: &SegmentHeader,
    offset: u64,
    len: u32,
    buf: &'b mut Vec<u8>,
) -> Result<Frame<'b>, ReadError> {
    buf.resize(len as usize, 0);
    let n = read_up_to(file, buf, offset)?;
    buf.truncate(n);
    header
        .decode_frame(buf)
        .map_err(|error| ReadError::Format { offset, error })
}
