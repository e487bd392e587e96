//! `verify`: checks every header, frame, CRC and payload, streaming (one
//! bounded read window at a time), and reports each problem with its file,
//! byte offset, frame number and reason. A put's payload must be a valid
//! record; a delete's is its deletion time (counted, never read as a
//! record, and not damage). Damage is judged by the library's
//! classifier, as `Store::open` judges it in the chosen recovery mode: the
//! exit code is 1 exactly when `open` would refuse the dir, or when a frame
//! whose CRC holds carries an invalid record (which no crash produces).

use std::io::Write;
use std::time::{Duration, Instant};

use ringstore::inspect::format::{Frame, SegmentHeader};
use ringstore::{ArchivedValue, RecoveryMode};

use crate::error::{ToolError, exit_code};
use crate::progress::Progress;
use crate::source::{SegmentFile, Source, seq_of, shard_of};
use crate::walk::{Content, DamageKind, Finding, Flow, Visitor, WalkOptions, content_of, walk};

/// How to verify.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// JSON Lines output instead of text.
    pub json: bool,
    /// Judge damage as `Store::open` does in this mode: `Strict` counts
    /// torn tails as problems, `SkipCorrupt` counts corruption it would skip
    /// as skipped, not as problems.
    pub mode: RecoveryMode,
    /// Top-level field holding the version; when a record has it as an
    /// integer, it must equal the frame's version. `None`: no such check.
    pub version_field: Option<String>,
    /// Show a progress bar on stderr (only when it is a terminal).
    pub progress: bool,
}

/// What `verify` saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifySummary {
    /// Segment files read.
    pub segments: u64,
    /// Valid frames (puts and deletes).
    pub frames: u64,
    /// Of them, deletes (tombstones: not damage).
    pub deletes: u64,
    /// Bytes of segment files.
    pub bytes: u64,
    /// Problems: damage `Store::open` refuses in the chosen mode, and
    /// invalid records.
    pub problems: u64,
    /// Torn tails (writes in progress or cut by a crash) and other crash
    /// leftovers `open` repairs.
    pub torn_tails: u64,
    /// Damaged regions `open` skips (`RecoveryMode::SkipCorrupt` only).
    pub skipped: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl VerifySummary {
    /// 0 when `Store::open` in the chosen mode opens the dir (torn tails and
    /// skipped regions included) and every record is valid, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        exit_code(self.problems)
    }

    /// Read throughput in MB/s (10^6 bytes).
    pub fn mb_per_s(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.bytes as f64 / 1e6 / secs
        } else {
            0.0
        }
    }
}

/// Verifies every segment of `source`, writing findings and a summary to `out`.
pub fn verify(
    source: &Source,
    opts: &VerifyOptions,
    out: &mut dyn Write,
) -> Result<VerifySummary, ToolError> {
    let started = Instant::now();
    let total = source.total_bytes();
    let mut v = VerifyVisitor {
        out,
        opts,
        summary: VerifySummary::default(),
        progress: Progress::new(opts.progress, total, "verifying"),
    };
    walk(&source.segments, WalkOptions { mode: opts.mode }, &mut v)?;
    v.progress.finish();
    let mut summary = v.summary;
    summary.elapsed = started.elapsed();
    write_summary(&summary, opts.json, v.out)?;
    Ok(summary)
}

struct VerifyVisitor<'a> {
    out: &'a mut dyn Write,
    opts: &'a VerifyOptions,
    summary: VerifySummary,
    progress: Progress,
}

impl VerifyVisitor<'_> {
    fn report(
        &mut self,
        src: &SegmentFile,
        header: Option<&SegmentHeader>,
        f: &Finding,
    ) -> Result<(), ToolError> {
        match f.kind {
            DamageKind::Problem => self.summary.problems += 1,
            DamageKind::TornTail => self.summary.torn_tails += 1,
            DamageKind::Skipped => self.summary.skipped += 1,
        }
        self.progress
            .suspend(|| write_finding(src, header, f, self.opts.json, self.out))
    }

    fn problem(
        &mut self,
        src: &SegmentFile,
        header: &SegmentHeader,
        offset: u64,
        frame: u64,
        reason: String,
    ) -> Result<(), ToolError> {
        let f = Finding {
            kind: DamageKind::Problem,
            offset,
            frame,
            bytes: 0,
            reason,
        };
        self.report(src, Some(header), &f)
    }
}

impl Visitor for VerifyVisitor<'_> {
    fn segment(
        &mut self,
        src: &SegmentFile,
        header: &SegmentHeader,
        _file_len: u64,
    ) -> Result<Flow, ToolError> {
        // (A spare whose rename was lost never gets here: the walk reports
        // it as a torn tail, or under Strict reads it as a segment.)
        if let Some(seq) = src.seq.filter(|&s| s != header.seq) {
            let why = if header.is_unrenamed_spare(seq) {
                ": a spare file taken for that segment whose rename never became durable \
                 (Strict mode refuses it; the default mode sets it aside)"
            } else {
                ""
            };
            self.problem(
                src,
                header,
                0,
                0,
                format!(
                    "header says seq {} but the file name says {seq}{why}",
                    header.seq
                ),
            )?;
        }
        if let Some(folder) = src
            .shard_folder
            .filter(|&i| i as u64 != u64::from(header.shard))
        {
            self.problem(
                src,
                header,
                0,
                0,
                format!(
                    "header says shard {} but the file is in folder shard-{folder}",
                    header.shard
                ),
            )?;
        }
        Ok(Flow::Continue)
    }

    fn frame(
        &mut self,
        src: &SegmentFile,
        header: &SegmentHeader,
        offset: u64,
        number: u64,
        frame: &Frame<'_>,
    ) -> Result<Flow, ToolError> {
        self.summary.frames += 1;
        match content_of(frame) {
            Err(reason) => self.problem(src, header, offset, number, reason)?,
            // A delete carries its deletion time, no record: nothing more to
            // check (the decoder admits it only with its 8-byte payload).
            Ok(Content::Deleted { .. }) => self.summary.deletes += 1,
            Ok(Content::Record(record)) => {
                let field = self.opts.version_field.as_deref();
                if let Some((name, ArchivedValue::Int(v))) =
                    field.and_then(|n| Some((n, record.archived().get(n)?)))
                {
                    let v = v.to_native();
                    if v != frame.version {
                        self.problem(
                            src,
                            header,
                            offset,
                            number,
                            format!(
                                "frame version {} differs from the record's `{name}` = {v}",
                                frame.version
                            ),
                        )?;
                    }
                }
            }
        }
        self.progress.at(offset);
        Ok(Flow::Continue)
    }

    fn damage(
        &mut self,
        src: &SegmentFile,
        header: Option<&SegmentHeader>,
        finding: Finding,
    ) -> Result<Flow, ToolError> {
        self.report(src, header, &finding)?;
        Ok(Flow::Continue)
    }

    fn segment_done(
        &mut self,
        _src: &SegmentFile,
        _frames: u64,
        file_len: u64,
    ) -> Result<Flow, ToolError> {
        self.summary.segments += 1;
        self.summary.bytes += file_len;
        self.progress.segment_done(file_len);
        Ok(Flow::Continue)
    }
}

fn write_finding(
    src: &SegmentFile,
    header: Option<&SegmentHeader>,
    f: &Finding,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), ToolError> {
    if json {
        let line = serde_json::json!({
            "kind": f.kind.as_str(),
            "path": src.path.display().to_string(),
            "shard": shard_of(src, header),
            "segment": seq_of(src, header),
            "offset": f.offset,
            "frame": f.frame,
            "bytes": f.bytes,
            "reason": f.reason,
        });
        writeln!(out, "{line}")?;
    } else {
        let what = match f.kind {
            DamageKind::Problem => "PROBLEM",
            DamageKind::TornTail => "TORN TAIL (in progress, not corruption)",
            DamageKind::Skipped => "SKIPPED (corruption SkipCorrupt skips)",
        };
        writeln!(
            out,
            "{what}: {}: offset {}, frame {}: {} ({} bytes affected)",
            src.path.display(),
            f.offset,
            f.frame,
            f.reason,
            f.bytes
        )?;
    }
    Ok(())
}

fn write_summary(s: &VerifySummary, json: bool, out: &mut dyn Write) -> Result<(), ToolError> {
    if json {
        let line = serde_json::json!({
            "kind": "summary",
            "segments": s.segments,
            "frames": s.frames,
            "deletes": s.deletes,
            "bytes": s.bytes,
            "problems": s.problems,
            "torn_tails": s.torn_tails,
            "skipped": s.skipped,
            "elapsed_ms": s.elapsed.as_millis() as u64,
            "mb_per_s": s.mb_per_s(),
            "clean": s.problems == 0,
        });
        writeln!(out, "{line}")?;
    } else {
        let verdict = if s.problems == 0 {
            "clean"
        } else {
            "PROBLEMS FOUND"
        };
        writeln!(
            out,
            "{verdict}: {} segments, {} frames ({} deletes), {} bytes in {:.3} s ({:.1} MB/s); {} problems, {} torn tails, {} skipped",
            s.segments,
            s.frames,
            s.deletes,
            s.bytes,
            s.elapsed.as_secs_f64(),
            s.mb_per_s(),
            s.problems,
            s.torn_tails,
            s.skipped
        )?;
    }
    out.flush()?;
    Ok(())
}
