//! `export`: the full history (or only the newest record per key) to a file
//! for analytics engines, as JSON Lines or Parquet. Every row has an `op`,
//! `put` or `delete`; a delete has no record and a deletion time. The history streams
//! (Parquet reads it twice: once for the union of fields, once for the rows),
//! so memory stays bounded by one row group whatever the log size.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ringstore::inspect::format::{Frame, FrameKind, SegmentHeader};
use ringstore::{ArchivedRecord, RecoveryMode};

use crate::error::{ToolError, exit_code};
use crate::json::JsonlSink;
use crate::latest::latest;
use crate::progress::Progress;
use crate::source::{SegmentFile, Source, parent_dir, seq_of, shard_of};
use crate::walk::{Content, Finding, Flow, Skips, Visitor, walk_intact};

/// Output file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// JSON Lines, the same lines as `dump`.
    Jsonl,
    /// Apache Parquet: one row per frame (put or delete), top-level fields
    /// of the records as typed columns.
    Parquet,
}

/// What to export and where.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Output format.
    pub format: ExportFormat,
    /// Output file (created or truncated; never inside the data dir).
    pub out: PathBuf,
    /// Only the newest record of each key (as recovery chooses it).
    pub latest: bool,
    /// With `latest`: also the keys whose newest frame is a delete, as
    /// delete rows (without it they are left out, as `Store::get` has
    /// nothing for them).
    pub include_deleted: bool,
    /// Recovery mode for `latest`.
    pub mode: RecoveryMode,
    /// Progress on stderr when it is a terminal.
    pub progress: bool,
}

/// What `export` did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportSummary {
    /// Rows written.
    pub rows: u64,
    /// Bytes of segment files read (per pass).
    pub bytes_read: u64,
    /// Bytes of the output file.
    pub bytes_written: u64,
    /// Damaged frames skipped.
    pub problems: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl ExportSummary {
    /// 0 when no damaged frame was skipped, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        exit_code(self.problems)
    }
}

/// What a row records: a put's record or a delete.
#[derive(Clone, Copy)]
pub enum RowOp<'a> {
    /// A put and its validated record.
    Put(&'a ArchivedRecord),
    /// A versioned delete (no record).
    Delete {
        /// When the delete was made, nanoseconds since the Unix epoch.
        deleted_at_unix_ns: u64,
    },
}

impl<'a> RowOp<'a> {
    /// The row's content, borrowed from a walked frame's.
    pub fn of(content: &'a Content) -> Self {
        match content {
            Content::Record(r) => RowOp::Put(r.archived()),
            Content::Deleted { at_unix_ns } => RowOp::Delete {
                deleted_at_unix_ns: *at_unix_ns,
            },
        }
    }

    /// `put` or `delete`, as the `op` column says it.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// The frame kind.
    pub fn kind(&self) -> FrameKind {
        match self {
            RowOp::Put(_) => FrameKind::Put,
            RowOp::Delete { .. } => FrameKind::Delete,
        }
    }

    /// A put's record; `None` for a delete.
    pub fn record(&self) -> Option<&'a ArchivedRecord> {
        match *self {
            RowOp::Put(r) => Some(r),
            RowOp::Delete { .. } => None,
        }
    }

    /// A delete's deletion time; `None` for a put.
    pub fn deleted_at_unix_ns(&self) -> Option<u64> {
        match *self {
            RowOp::Put(_) => None,
            RowOp::Delete { deleted_at_unix_ns } => Some(deleted_at_unix_ns),
        }
    }
}

/// One frame to export: a put's record or a delete.
#[derive(Clone, Copy)]
pub struct Row<'a> {
    /// The key.
    pub key: &'a str,
    /// The version.
    pub version: i64,
    /// Shard folder.
    pub shard: Option<u64>,
    /// Segment seq.
    pub segment: Option<u64>,
    /// Frame offset.
    pub offset: Option<u64>,
    /// The put's record, or the delete.
    pub op: RowOp<'a>,
}

/// Receives rows.
pub trait RowSink {
    /// One row.
    fn row(&mut self, row: &Row<'_>) -> Result<(), ToolError>;
}

/// Feeds every valid frame of `source` (puts and deletes) to `sink`, in log
/// order. Damage is
/// reported on `warn` (if given) and skipped; returns the number of problems.
pub fn history_rows(
    source: &Source,
    sink: &mut dyn RowSink,
    warn: Option<&mut dyn Write>,
    progress: &mut Progress,
) -> Result<u64, ToolError> {
    let mut v = HistoryVisitor {
        sink,
        skips: Skips::new(warn),
        progress,
    };
    walk_intact(&source.segments, &mut v)?;
    Ok(v.skips.problems)
}

struct HistoryVisitor<'a, 'w> {
    sink: &'a mut dyn RowSink,
    skips: Skips<'w>,
    progress: &'a mut Progress,
}

impl Visitor for HistoryVisitor<'_, '_> {
    fn frame(
        &mut self,
        src: &SegmentFile,
        header: &SegmentHeader,
        offset: u64,
        number: u64,
        frame: &Frame<'_>,
    ) -> Result<Flow, ToolError> {
        if let Some(content) = self.skips.content(src, offset, number, frame)? {
            self.sink.row(&Row {
                key: frame.key,
                version: frame.version,
                shard: shard_of(src, Some(header)),
                segment: seq_of(src, Some(header)),
                offset: Some(offset),
                op: RowOp::of(&content),
            })?;
        }
        self.progress.at(offset);
        Ok(Flow::Continue)
    }

    fn damage(
        &mut self,
        src: &SegmentFile,
        _header: Option<&SegmentHeader>,
        f: Finding,
    ) -> Result<Flow, ToolError> {
        self.skips.finding(src, &f)?;
        Ok(Flow::Continue)
    }

    fn segment_done(
        &mut self,
        _src: &SegmentFile,
        _frames: u64,
        file_len: u64,
    ) -> Result<Flow, ToolError> {
        self.progress.segment_done(file_len);
        Ok(Flow::Continue)
    }
}

/// Refuses an output path inside the data dir: the tool never writes there.
fn check_out_path(data: &Path, out: &Path) -> Result<(), ToolError> {
    let data = data
        .canonicalize()
        .map_err(|e| ToolError::io("resolving", data, e))?;
    let parent = parent_dir(out)
        .canonicalize()
        .map_err(|e| ToolError::io("resolving the folder of", out, e))?;
    let data_root = if data.is_file() {
        data.parent().map(Path::to_path_buf)
    } else {
        Some(data)
    };
    if data_root.is_some_and(|d| parent.starts_with(d)) {
        return Err(ToolError::Usage(format!(
            "--out {} is inside the data dir; write the export elsewhere (this tool never modifies a data dir)",
            out.display()
        )));
    }
    Ok(())
}

fn create_out(path: &Path) -> Result<File, ToolError> {
    File::create(path).map_err(|e| ToolError::io("creating", path, e))
}

/// Runs an export of `source` (named on the command line as `path`).
pub fn export(
    source: &Source,
    path: &Path,
    opts: &ExportOptions,
    warn: &mut dyn Write,
) -> Result<ExportSummary, ToolError> {
    let started = Instant::now();
    check_out_path(path, &opts.out)?;
    let bytes_read = source.total_bytes();
    let latest_records = if opts.latest {
        let l = latest(source, path, opts.mode, opts.include_deleted)?;
        l.warn_torn_tails(warn)?;
        l.note_hidden_deletes(warn)?;
        Some(l)
    } else {
        None
    };
    let mut summary = ExportSummary {
        bytes_read,
        ..ExportSummary::default()
    };
    match opts.format {
        ExportFormat::Jsonl => {
            let mut sink =
                JsonlSink::new(BufWriter::with_capacity(1 << 20, create_out(&opts.out)?));
            match &latest_records {
                Some(l) => l.rows(&mut sink)?,
                None => {
                    let mut progress = Progress::new(opts.progress, bytes_read, "exporting");
                    summary.problems = history_rows(source, &mut sink, Some(warn), &mut progress)?;
                    progress.finish();
                }
            }
            summary.rows = sink.rows;
            sink.finish()?
                .into_inner()
                .map_err(|e| ToolError::Output(e.into_error()))?
                .sync_all()
                .map_err(|e| ToolError::io("syncing", &opts.out, e))?;
        }
        ExportFormat::Parquet => {
            #[cfg(feature = "parquet")]
            {
                let (rows, problems) = crate::parquet_out::write(
                    source,
                    latest_records.as_ref(),
                    &opts.out,
                    opts.progress,
                    warn,
                )?;
                summary.rows = rows;
                summary.problems = problems;
            }
            #[cfg(not(feature = "parquet"))]
            {
                return Err(ToolError::Usage(
                    "this build has no Parquet support (rebuild with the `parquet` feature)"
                        .to_owned(),
                ));
            }
        }
    }
    summary.bytes_written = std::fs::metadata(&opts.out).map_or(0, |m| m.len());
    summary.elapsed = started.elapsed();
    Ok(summary)
}
