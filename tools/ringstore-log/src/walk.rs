//! Walks the frames of segments through the library's one decoder
//! (`ringstore::inspect::SegmentReader`) and judges damage with the
//! library's one classifier (`ringstore::inspect::damage`), the same calls
//! `Store::open` makes: what recovery would truncate or set aside is a torn
//! tail, what it would skip (`SkipCorrupt`) is skipped, what it would refuse
//! is a problem. Every command reads segments through here.

use std::io::Write;

use ringstore::inspect::damage::{self, Damage, Step, Verdict};
use ringstore::inspect::format::{Frame, FrameKind, SegmentHeader};
use ringstore::inspect::{ReadError, SegmentReader};
use ringstore::{RecordRef, RecoveryMode};

use crate::error::ToolError;
use crate::source::SegmentFile;

/// What a piece of damage is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DamageKind {
    /// Corruption that `Store::open` refuses in the walk's recovery mode.
    Problem,
    /// What a crash (or a write in progress) leaves and `Store::open`
    /// repairs: the end of the newest segment of a folder (truncated), a
    /// newest segment whose header never completed (removed), a spare whose
    /// rename never became durable (set aside).
    TornTail,
    /// Damage `Store::open` skips in `RecoveryMode::SkipCorrupt`.
    Skipped,
}

impl DamageKind {
    /// Name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            DamageKind::Problem => "problem",
            DamageKind::TornTail => "torn_tail",
            DamageKind::Skipped => "skipped",
        }
    }

    fn of(verdict: Verdict) -> DamageKind {
        match verdict {
            Verdict::TornTail | Verdict::SetAside => DamageKind::TornTail,
            Verdict::Skipped => DamageKind::Skipped,
            Verdict::Refused => DamageKind::Problem,
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

/// What a valid frame holds, its payload checked.
#[derive(Debug, Clone)]
pub enum Content {
    /// A put: its record (validated rkyv access).
    Record(RecordRef),
    /// A versioned delete: its payload is the deletion time, never a record.
    Deleted {
        /// When the delete was made, nanoseconds since the Unix epoch.
        at_unix_ns: u64,
    },
}

/// The content of a valid frame: a put's record (rkyv validation), or a
/// delete's deletion time (a delete's payload is never read as a record);
/// the error is the reason to report.
pub fn content_of(frame: &Frame<'_>) -> Result<Content, String> {
    match frame.kind {
        FrameKind::Put => RecordRef::from_untrusted(frame.key, frame.version, frame.payload)
            .map(Content::Record)
            .map_err(|e| format!("invalid record payload: {}", e.0)),
        // The decoder admits a delete only with its 8-byte payload.
        FrameKind::Delete => frame
            .deleted_at_unix_ns()
            .map(|at_unix_ns| Content::Deleted { at_unix_ns })
            .ok_or_else(|| "delete frame without a deletion time".to_owned()),
    }
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
            DamageKind::Skipped => {
                self.problems += 1;
                "skipped damaged bytes in"
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

    /// The content of frame `number` at `offset` (a record or a delete),
    /// or `None` once its invalid payload has been reported as a problem.
    pub fn content(
        &mut self,
        src: &SegmentFile,
        offset: u64,
        number: u64,
        frame: &Frame<'_>,
    ) -> Result<Option<Content>, ToolError> {
        match content_of(frame) {
            Ok(content) => Ok(Some(content)),
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

/// How to judge damage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WalkOptions {
    /// Judge damage as `Store::open` does in this recovery mode.
    pub mode: RecoveryMode,
}

/// Walks every intact frame of `segments`, as `RecoveryMode::SkipCorrupt`
/// keeps them: damage is reported to the visitor and skipped (what `dump`
/// and `export` show).
pub fn walk_intact(segments: &[SegmentFile], visitor: &mut dyn Visitor) -> Result<Flow, ToolError> {
    walk(
        segments,
        WalkOptions {
            mode: RecoveryMode::SkipCorrupt,
        },
        visitor,
    )
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

fn finding(d: &Damage, frame: u64) -> Finding {
    Finding {
        kind: DamageKind::of(d.verdict),
        offset: d.offset,
        frame,
        bytes: d.bytes,
        reason: d.reason.clone(),
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
            let d =
                damage::judge_header(&src.path, offset, &error, src.newest_in_folder, opts.mode)
                    .map_err(|e| ToolError::io("reading", &src.path, e))?;
            if visitor.damage(src, None, finding(&d, 0))? == Flow::Stop {
                return Ok(Flow::Stop);
            }
            return visitor.segment_done(src, 0, d.bytes);
        }
        Err(e) => return Err(read_err(src, e)),
    };
    let header = *reader.header();
    let file_len = reader.file_len();
    if let Some(d) = src
        .seq
        .and_then(|seq| damage::judge_name(&header, seq, file_len, opts.mode))
    {
        if visitor.damage(src, Some(&header), finding(&d, 0))? == Flow::Stop {
            return Ok(Flow::Stop);
        }
        return visitor.segment_done(src, 0, file_len);
    }
    if visitor.segment(src, &header, file_len)? == Flow::Stop {
        return Ok(Flow::Stop);
    }
    let mut frames = 0u64;
    let mut last_good = None;
    loop {
        let (offset, reason) = match reader.step().map_err(|e| read_err(src, e))? {
            Step::Frame { offset, frame } => {
                frames += 1;
                last_good = Some((frame.generation, frame.lsn));
                if visitor.frame(src, &header, offset, frames, &frame)? == Flow::Stop {
                    return Ok(Flow::Stop);
                }
                continue;
            }
            Step::End => break,
            Step::Damaged { offset, reason } => (offset, reason),
        };
        let d = damage::judge_frames(
            &mut reader,
            offset,
            reason,
            last_good,
            src.newest_in_folder,
            opts.mode,
        )
        .map_err(|e| read_err(src, e))?;
        if visitor.damage(src, Some(&header), finding(&d, frames + 1))? == Flow::Stop {
            return Ok(Flow::Stop);
        }
        // A torn tail ends the segment's data; other damage is reported
        // and the walk goes on at the next valid frame, if any.
        if d.verdict == Verdict::TornTail || d.resume.is_none() {
            break;
        }
    }
    visitor.segment_done(src, frames, file_len)
}
