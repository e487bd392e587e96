//! Walks the frames of segments through the library's one decoder
//! (`ringstore::inspect::SegmentReader`) and classifies damage exactly as
//! recovery does: damage followed by no valid frame, in the newest segment of
//! its folder, is a torn tail (a write in progress, or cut by a crash); any
//! other damage is a problem. Every command reads segments through here.

use std::fs;
use std::io::Write;

use ringstore::RecordRef;
use ringstore::inspect::format::{Frame, MAX_BLOCK_SIZE, SegmentHeader};
use ringstore::inspect::{BYTES_AFTER_END, ReadError, SegmentReader};

use crate::error::ToolError;
use crate::source::SegmentFile;

/// What a piece of damage is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DamageKind {
    /// Corruption: bad bytes that a crash cannot explain.
    Problem,
    /// The end of the newest segment of a folder: a write in progress while
    /// the store runs, or cut by a crash (recovery truncates it).
    TornTail,
}

impl DamageKind {
    /// Name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            DamageKind::Problem => "problem",
            DamageKind::TornTail => "torn_tail",
        }
    }
}

/// One finding in one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Problem or torn tail.
    pub kind: DamageKind,
    /// Byte offset of the bad header or frame.
    pub offset: u64,
    /// Number of the bad frame within its segment, counted from 1 (valid
    /// frames before it + 1); 0 for the segment header.
    pub frame: u64,
    /// Bytes skipped (up to the next valid frame, or to the end of the file).
    pub bytes: u64,
    /// What is wrong.
    pub reason: String,
}

/// Whether to go on walking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Next frame.
    Continue,
    /// Stop everything (e.g. `--limit` reached).
    Stop,
}

/// Receives what a walk finds.
pub trait Visitor {
    /// A segment whose header is valid, before its frames.
    fn segment(
        &mut self,
        _src: &SegmentFile,
        _header: &SegmentHeader,
        _file_len: u64,
    ) -> Result<Flow, ToolError> {
        Ok(Flow::Continue)
    }

    /// One valid frame (CRC checked; payload not yet validated) and its
    /// number within the segment, counted from 1.
    fn frame(
        &mut self,
        src: &SegmentFile,
        header: &SegmentHeader,
        offset: u64,
        number: u64,
        frame: &Frame<'_>,
    ) -> Result<Flow, ToolError>;

    /// Damage in a segment (after it, the walk resumes at the next valid
    /// frame if there is one).
    fn damage(
        &mut self,
        src: &SegmentFile,
        header: Option<&SegmentHeader>,
        finding: Finding,
    ) -> Result<Flow, ToolError>;

    /// The segment has been read to its end.
    fn segment_done(
        &mut self,
        _src: &SegmentFile,
        _frames: u64,
        _file_len: u64,
    ) -> Result<Flow, ToolError> {
        Ok(Flow::Continue)
    }
}

/// The record of a valid frame, its payload checked (rkyv validation); the
/// error is the reason to report.
pub fn record_of(frame: &Frame<'_>) -> Result<RecordRef, String> {
    RecordRef::from_untrusted(frame.key, frame.version, frame.payload)
        .map_err(|e| format!("invalid record payload: {}", e.0))
}

/// How the streaming commands (`dump`, `export`) meet damage: count it, say
/// so on the warning stream (when there is one), skip it and carry on.
pub struct Skips<'w> {
    warn: Option<&'w mut dyn Write>,
    /// Problems met (damaged bytes, invalid payloads).
    pub problems: u64,
    /// Torn tails met.
    pub torn_tails: u64,
}

impl<'w> Skips<'w> {
    /// Reports on `warn`, or only counts without it.
    pub fn new(warn: Option<&'w mut dyn Write>) -> Self {
        Skips {
            warn,
            problems: 0,
            torn_tails: 0,
        }
    }

    /// Counts and reports one finding.
    pub fn finding(&mut self, src: &SegmentFile, f: &Finding) -> Result<(), ToolError> {
        let what = match f.kind {
            DamageKind::Problem => {
                self.problems += 1;
                "skipped damaged bytes in"
            }
            DamageKind::TornTail => {
                self.torn_tails += 1;
                "end of written data (torn tail / in progress) in"
            }
        };
        if let Some(w) = self.warn.as_mut() {
            writeln!(
                w,
                "ringstore-log: {what} {}: offset {}, frame {}: {}",
                src.path.display(),
                f.offset,
                f.frame,
                f.reason
            )?;
        }
        Ok(())
    }

    /// The record of frame `number` at `offset`, or `None` once its invalid
    /// payload has been reported as a problem.
    pub fn record(
        &mut self,
        src: &SegmentFile,
        offset: u64,
        number: u64,
        frame: &Frame<'_>,
    ) -> Result<Option<RecordRef>, ToolError> {
        match record_of(frame) {
            Ok(record) => Ok(Some(record)),
            Err(reason) => {
                let f = Finding {
                    kind: DamageKind::Problem,
                    offset,
                    frame: number,
                    bytes: u64::from(frame.len),
                    reason,
                };
                self.finding(src, &f)?;
                Ok(None)
            }
        }
    }
}

/// How to judge damage at the end of a newest segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WalkOptions {
    /// Report torn tails as problems too (like `RecoveryMode::Strict`).
    pub strict: bool,
}

/// Walks `segments` in order; returns `Flow::Stop` if a visitor stopped it.
pub fn walk(
    segments: &[SegmentFile],
    opts: WalkOptions,
    visitor: &mut dyn Visitor,
) -> Result<Flow, ToolError> {
    for src in segments {
        if walk_segment(src, opts, visitor)? == Flow::Stop {
            return Ok(Flow::Stop);
        }
    }
    Ok(Flow::Continue)
}

fn read_err(src: &SegmentFile, e: ReadError) -> ToolError {
    match e {
        ReadError::Io(e) => ToolError::io("reading segment", &src.path, e),
        // Only `Io` reaches here: format errors are findings.
        other => ToolError::io(
            "reading segment",
            &src.path,
            std::io::Error::other(other.to_string()),
        ),
    }
}

/// Walks one segment.
pub fn walk_segment(
    src: &SegmentFile,
    opts: WalkOptions,
    visitor: &mut dyn Visitor,
) -> Result<Flow, ToolError> {
    let mut reader = match SegmentReader::open(&src.path) {
        Ok(r) => r,
        Err(ReadError::Format { offset, error }) => {
            let len = fs::metadata(&src.path)
                .map_err(|e| ToolError::io("reading", &src.path, e))?
                .len();
            // Recovery's rule: a crash while creating the newest segment
            // leaves a header that never became durable.
            let torn = src.newest_in_folder && len <= u64::from(MAX_BLOCK_SIZE);
            let finding = if torn && !opts.strict {
                Finding {
                    kind: DamageKind::TornTail,
                    offset,
                    frame: 0,
                    bytes: len,
                    reason: format!("segment header never completed ({error})"),
                }
            } else {
                Finding {
                    kind: DamageKind::Problem,
                    offset,
                    frame: 0,
                    bytes: len,
                    reason: format!("bad segment header: {error}"),
                }
            };
            if visitor.damage(src, None, finding)? == Flow::Stop {
                return Ok(Flow::Stop);
            }
            return visitor.segment_done(src, 0, len);
        }
        Err(e) => return Err(read_err(src, e)),
    };
    let header = *reader.header();
    let file_len = reader.file_len();
    if visitor.segment(src, &header, file_len)? == Flow::Stop {
        return Ok(Flow::Stop);
    }
    let mut frames = 0u64;
    loop {
        let (offset, reason) = match reader.next_frame() {
            Ok(Some((offset, frame))) => {
                frames += 1;
                if visitor.frame(src, &header, offset, frames, &frame)? == Flow::Stop {
                    return Ok(Flow::Stop);
                }
                continue;
            }
            Ok(None) => {
                let end = reader.position();
                if !reader.damage_after_end(end).map_err(|e| read_err(src, e))? {
                    break;
                }
                (end, BYTES_AFTER_END.to_owned())
            }
            Err(ReadError::Format { offset, error }) => (offset, error.to_string()),
            Err(e) => return Err(read_err(src, e)),
        };
        let resume = reader.resync_after(offset).map_err(|e| read_err(src, e))?;
        let (finding, go_on) = match resume {
            Some(at) => (
                Finding {
                    kind: DamageKind::Problem,
                    offset,
                    frame: frames + 1,
                    bytes: at - offset,
                    reason: format!(
                        "{reason}; valid frames resume at offset {at}, so this is not a torn tail"
                    ),
                },
                true,
            ),
            None if src.newest_in_folder && !opts.strict => (
                Finding {
                    kind: DamageKind::TornTail,
                    offset,
                    frame: frames + 1,
                    bytes: file_len - offset,
                    reason: format!("in progress or torn tail: {reason}"),
                },
                false,
            ),
            None if src.newest_in_folder => (
                Finding {
                    kind: DamageKind::Problem,
                    offset,
                    frame: frames + 1,
                    bytes: file_len - offset,
                    reason: format!("{reason} (a torn tail, reported as a problem under --strict)"),
                },
                false,
            ),
            None => (
                Finding {
                    kind: DamageKind::Problem,
                    offset,
                    frame: frames + 1,
                    bytes: file_len - offset,
                    reason: format!(
                        "{reason}, in a segment that is not its folder's newest, so not a torn tail"
                    ),
                },
                false,
            ),
        };
        if visitor.damage(src, Some(&header), finding)? == Flow::Stop {
            return Ok(Flow::Stop);
        }
        if !go_on {
            break;
        }
    }
    visitor.segment_done(src, frames, file_len)
}
