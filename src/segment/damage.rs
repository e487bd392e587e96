//! What damaged bytes in a segment mean, judged once for everyone: recovery
//! (`Store::open`) acts on these verdicts and `ringstore-log verify` reports
//! them, so the tool's verdict on a data dir is the store's.
//!
//! A crash can leave exactly three kinds of damage: the end of a shard's
//! newest segment cut mid-write, followed only by batches staged before the
//! damaged bytes were durable (torn tail: in Sync mode nothing in it was
//! acknowledged; in Async mode it is within the documented loss window); a
//! newest segment whose header never became durable (torn tail); a spare
//! file a new segment was being created in whose rename never became
//! durable (set aside). Anything else is corruption, which the recovery
//! mode refuses or skips.

use std::fs;
use std::io;
use std::path::Path;

use crate::config::RecoveryMode;
use crate::segment::format::{FormatError, Frame, MAX_BLOCK_SIZE, MIN_BLOCK_SIZE, SegmentHeader};
use crate::segment::reader::{ReadError, SegmentReader};

/// What `Store::open` does with a damaged region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A torn tail: the end of the shard's newest segment that a crash cut
    /// (or that is still being written). Nothing in it was acknowledged;
    /// `open` truncates it (a segment whose header never completed is
    /// removed). Refused in `Strict` mode.
    TornTail,
    /// A spare file whose rename to a new segment's name never became
    /// durable: nothing in it was acknowledged; `open` renames it
    /// `.retired`.
    SetAside,
    /// `RecoveryMode::SkipCorrupt`: `open` skips the region, keeps every
    /// intact frame and lists the region in `RecoveryReport::skipped`.
    Skipped,
    /// `open` fails with `Error::Corrupt` in this recovery mode.
    Refused,
}

/// One damaged region of a segment and its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// What `open` does with it.
    pub verdict: Verdict,
    /// Offset of the first bad byte.
    pub offset: u64,
    /// Bytes affected: up to `resume`, or to the end of the file.
    pub bytes: u64,
    /// What is wrong and, when refused, what the user can do.
    pub reason: String,
    /// Where valid frames of the segment resume after the region, if they
    /// do; the reader is positioned there.
    pub resume: Option<u64>,
}

/// One step of reading a segment ([`SegmentReader::step`]): non-zero bytes
/// after the end of the written data are damage too, except the earlier
/// contents of a reused file (see [`SegmentReader::damage_after_end`]).
#[derive(Debug)]
pub enum Step<'a> {
    /// A valid frame of the segment.
    Frame {
        /// Its offset.
        offset: u64,
        /// The frame.
        frame: Frame<'a>,
    },
    /// Bad bytes at `offset`; judge them with [`judge_frames`].
    Damaged {
        /// Offset of the first bad byte.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The end of the segment's data, with nothing after it.
    End,
}

/// Judges damage at `offset` of a segment (found by [`SegmentReader::step`]), given the
/// log position `(generation, lsn)` of the last valid frame before it,
/// whether the segment is its shard folder's newest, and the recovery mode.
/// Afterwards the reader is positioned at the next valid frame, if any.
pub fn judge_frames(
    reader: &mut SegmentReader,
    offset: u64,
    reason: String,
    last_good: Option<(u64, u64)>,
    is_newest: bool,
    mode: RecoveryMode,
) -> Result<Damage, ReadError> {
    let resume = reader.resync_after(offset)?;
    let file_len = reader.file_len();
    let bytes = resume.unwrap_or(file_len) - offset;
    let damage = |verdict, reason| Damage {
        verdict,
        offset,
        bytes,
        reason,
        resume,
    };
    Ok(match (mode, resume) {
        (RecoveryMode::SkipCorrupt, _) if resume.is_some() || !is_newest => {
            damage(Verdict::Skipped, reason)
        }
        (RecoveryMode::TolerateTornTail | RecoveryMode::SkipCorrupt, None) if is_newest => {
            damage(Verdict::TornTail, reason)
        }
        (RecoveryMode::TolerateTornTail, Some(at)) if is_newest => {
            let in_flight = match reader.header().has_marks() {
                true => unsynced_tail(reader, offset, last_good)?,
                false => in_flight_tail(reader, last_good)?,
            };
            // `in_flight_tail` read on: back to where frames resume.
            reader.resync_after(offset)?;
            debug_assert_eq!(reader.position(), at);
            match in_flight {
                // Batches in flight at a crash (or a failed write followed
                // by a write already in flight) leave sectors that never
                // reached the disk, then later batches: none of it was
                // acknowledged (acknowledgements are in log order), so it is
                // a torn tail.
                true => Damage {
                    bytes: file_len - offset,
                    ..damage(
                        Verdict::TornTail,
                        format!(
                            "{reason}, then later batches that were in flight (never acknowledged)"
                        ),
                    )
                },
                false => damage(Verdict::Refused, not_torn(&reason)),
            }
        }
        (_, Some(_)) => damage(Verdict::Refused, not_torn(&reason)),
        (RecoveryMode::Strict, None) if is_newest => damage(
            Verdict::Refused,
            format!(
                "{reason}: a torn tail, refused in Strict mode (TolerateTornTail truncates it)"
            ),
        ),
        (_, None) => damage(
            Verdict::Refused,
            format!("{reason}, in a segment that is not its shard's newest (SkipCorrupt skips it)"),
        ),
    })
}

fn not_torn(reason: &str) -> String {
    format!(
        "{reason}; valid frames follow, so this is not a torn tail (open with \
         RecoveryMode::SkipCorrupt to skip it)"
    )
}

/// Judges a segment file whose header is bad (`error` at `offset`): a crash
/// while creating the shard's newest segment leaves a file whose header
/// never became durable, which holds nothing past its first block (frames
/// are written only after the header is durable); anything else is refused.
pub fn judge_header(
    path: &Path,
    offset: u64,
    error: &FormatError,
    is_newest: bool,
    mode: RecoveryMode,
) -> io::Result<Damage> {
    let len = fs::metadata(path)?.len();
    let torn = is_newest && mode != RecoveryMode::Strict && header_never_completed(path, len)?;
    Ok(match torn {
        true => Damage {
            verdict: Verdict::TornTail,
            offset,
            bytes: len,
            reason: format!("segment header never completed ({error})"),
            resume: None,
        },
        false => Damage {
            verdict: Verdict::Refused,
            offset,
            bytes: len,
            reason: format!("bad segment header: {error}"),
            resume: None,
        },
    })
}

/// Judges a segment named for `named_seq` whose header is `header`: a spare
/// taken for a later segment whose rename never became durable is set aside
/// (outside `Strict` mode, which reads it as a segment like any other).
/// `None` when the file is what its name says.
pub fn judge_name(
    header: &SegmentHeader,
    named_seq: u64,
    file_len: u64,
    mode: RecoveryMode,
) -> Option<Damage> {
    (header.is_unrenamed_spare(named_seq) && mode != RecoveryMode::Strict).then(|| Damage {
        verdict: Verdict::SetAside,
        offset: 0,
        bytes: file_len,
        reason: format!(
            "a spare file taken for segment {} whose rename never became durable \
             (nothing in it was acknowledged); set aside as .retired",
            header.seq
        ),
        resume: None,
    })
}

/// Whether damage at `damage_at` of the newest segment (format version 3),
/// with valid frames again from the reader's position on, is what a power
/// cut can leave: every frame after the damage comes later in the log than
/// every frame before it, and no batch after it was staged once the damaged
/// bytes were durable (every later mark's `durable_through` is at most
/// `damage_at`). Writes not yet covered by a completed flush may reach the
/// disk in any subset, in Sync mode (the batches in flight) and in Async
/// mode (every write since the last background flush) alike; none of them
/// can be followed by a batch that saw them durable.
fn unsynced_tail(
    reader: &mut SegmentReader,
    damage_at: u64,
    last_good: Option<(u64, u64)>,
) -> Result<bool, ReadError> {
    // Marks read before the damage say nothing about it.
    let _ = reader.take_max_mark();
    let saw_it_durable = |reader: &mut SegmentReader| {
        reader
            .take_max_mark()
            .is_some_and(|durable_through| durable_through > damage_at)
    };
    loop {
        match reader.next_frame() {
            Ok(Some((_, frame))) => {
                if last_good.is_some_and(|g| (frame.generation, frame.lsn) <= g) {
                    return Ok(false);
                }
            }
            Ok(None) => return Ok(!saw_it_durable(reader)),
            Err(ReadError::Format { offset, .. }) => {
                if saw_it_durable(reader) {
                    return Ok(false);
                }
                if reader.resync_after(offset)?.is_none() {
                    return Ok(true);
                }
                continue;
            }
            Err(e) => return Err(e),
        }
        if saw_it_durable(reader) {
            return Ok(false);
        }
    }
}

/// Whether the damage at the newest segment's reader position, with valid
/// frames again from there on, is what a crash with batches in flight
/// leaves: every frame after the damage comes later in the log than every
/// frame before it, and the damaged batch plus the batches that start after
/// it are no more than the writer's pipeline depth (from the segment
/// header). Only that many batches can be in flight, and none of them was
/// acknowledged (acknowledgements follow log order and need the batch's own
/// flush). With depth 1, a valid batch after the damage means corruption.
fn in_flight_tail(
    reader: &mut SegmentReader,
    last_good: Option<(u64, u64)>,
) -> Result<bool, ReadError> {
    let depth = u64::from(reader.header().pipeline_depth.max(1));
    // The batch holding the damage counts as one in flight.
    let mut batches = 1u64;
    loop {
        match reader.next_frame() {
            Ok(Some((_, frame))) => {
                if last_good.is_some_and(|g| (frame.generation, frame.lsn) <= g) {
                    return Ok(false);
                }
                // Frames that do not start a batch are the rest of the
                // damaged batch (a write torn in its middle) or of a batch
                // already counted.
                if frame.batch_start {
                    batches += 1;
                }
                if batches > depth {
                    return Ok(false);
                }
            }
            Ok(None) => return Ok(true),
            Err(ReadError::Format { offset, .. }) => {
                if reader.resync_after(offset)?.is_none() {
                    return Ok(true);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether a segment with an unreadable header is one whose creation was
/// cut by a crash: frames are written only after the header block is
/// durable, so such a file is small and holds nothing past its first block.
fn header_never_completed(path: &Path, len: u64) -> io::Result<bool> {
    if len > u64::from(MAX_BLOCK_SIZE) {
        return Ok(false);
    }
    let bytes = fs::read(path)?;
    Ok(bytes
        .get(MIN_BLOCK_SIZE as usize..)
        .is_none_or(|rest| rest.iter().all(|&b| b == 0)))
}
