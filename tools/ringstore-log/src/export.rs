//! `export`: the full history (or only the newest record per key) to a file
//! for analytics engines, as JSON Lines or Parquet. The history streams
//! (Parquet reads it twice: once for the union of fields, once for the rows),
//! so memory stays bounded by one row group whatever the log size.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ringstore::inspect::format::{Frame, SegmentHeader};
use ringstore::{ArchivedRecord, RecordRef, RecoveryMode};

use crate::dump::push_record_line;
use crate::error::{EXIT_OK, EXIT_PROBLEMS, ToolError};
use crate::latest::{Latest, latest};
use crate::progress::Progress;
use crate::source::{SegmentFile, Source};
use crate::verify::{seq_of, shard_of};
use crate::walk::{DamageKind, Finding, Flow, Visitor, WalkOptions, walk};

/// Output file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// JSON Lines, the same lines as `dump`.
    Jsonl,
    /// Apache Parquet: one row per record, top-level fields as typed columns.
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
        if self.problems == 0 {
            EXIT_OK
        } else {
            EXIT_PROBLEMS
        }
    }
}

/// One record to export.
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
    /// The validated record.
    pub record: &'a ArchivedRecord,
}

/// Receives rows.
pub trait RowSink {
    /// One row.
    fn row(&mut self, row: &Row<'_>) -> Result<(), ToolError>;
}

/// Feeds every valid record of `source` to `sink`, in log order. Damage is
/// reported on `warn` (if given) and skipped; returns the number of problems.
pub fn history_rows(
    source: &Source,
    sink: &mut dyn RowSink,
    warn: Option<&mut dyn Write>,
    progress: &mut Progress,
) -> Result<u64, ToolError> {
    let mut v = HistoryVisitor {
        sink,
        warn,
        problems: 0,
        progress,
        done: 0,
    };
    walk(&source.segments, WalkOptions::default(), &mut v)?;
    Ok(v.problems)
}

/// Feeds the records of `latest` to `sink`.
pub fn latest_rows(latest: &Latest, sink: &mut dyn RowSink) -> Result<(), ToolError> {
    for (r, loc) in &latest.records {
        sink.row(&Row {
            key: r.key(),
            version: r.version(),
            shard: loc.and_then(|l| l.shard),
            segment: loc.and_then(|l| l.segment),
            offset: loc.map(|l| l.offset),
            record: r.archived(),
        })?;
    }
    Ok(())
}

struct HistoryVisitor<'a, 'w> {
    sink: &'a mut dyn RowSink,
    warn: Option<&'w mut dyn Write>,
    problems: u64,
    progress: &'a mut Progress,
    done: u64,
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
        match RecordRef::from_untrusted(frame.key, frame.version, frame.payload) {
            Ok(record) => {
                self.sink.row(&Row {
                    key: frame.key,
                    version: frame.version,
                    shard: shard_of(src, Some(header)),
                    segment: seq_of(src, Some(header)),
                    offset: Some(offset),
                    record: record.archived(),
                })?;
            }
            Err(e) => {
                self.problems += 1;
                if let Some(w) = self.warn.as_mut() {
                    writeln!(
                        w,
                        "ringstore-log: skipped {}: offset {offset}, frame {number}: invalid record payload: {}",
                        src.path.display(),
                        e.0
                    )?;
                }
            }
        }
        self.progress.set(self.done + offset);
        Ok(Flow::Continue)
    }

    fn damage(
        &mut self,
        src: &SegmentFile,
        _header: Option<&SegmentHeader>,
        f: Finding,
    ) -> Result<Flow, ToolError> {
        if f.kind == DamageKind::Problem {
            self.problems += 1;
        }
        if let Some(w) = self.warn.as_mut() {
            let what = match f.kind {
                DamageKind::Problem => "skipped damaged bytes in",
                DamageKind::TornTail => "end of written data (torn tail / in progress) in",
            };
            writeln!(
                w,
                "ringstore-log: {what} {}: offset {}, frame {}: {}",
                src.path.display(),
                f.offset,
                f.frame,
                f.reason
            )?;
        }
        Ok(Flow::Continue)
    }

    fn segment_done(
        &mut self,
        _src: &SegmentFile,
        _frames: u64,
        file_len: u64,
    ) -> Result<Flow, ToolError> {
        self.done += file_len;
        self.progress.set(self.done);
        Ok(Flow::Continue)
    }
}

/// Writes rows as JSON Lines.
pub struct JsonlSink<W: Write> {
    out: W,
    line: String,
    /// Rows written.
    pub rows: u64,
}

impl<W: Write> JsonlSink<W> {
    /// A sink writing to `out`.
    pub fn new(out: W) -> Self {
        JsonlSink {
            out,
            line: String::new(),
            rows: 0,
        }
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> Result<W, ToolError> {
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> RowSink for JsonlSink<W> {
    fn row(&mut self, r: &Row<'_>) -> Result<(), ToolError> {
        self.line.clear();
        push_record_line(
            r.key,
            r.version,
            r.shard,
            r.segment,
            r.offset,
            r.record,
            &mut self.line,
        );
        self.out.write_all(self.line.as_bytes())?;
        self.rows += 1;
        Ok(())
    }
}

/// Refuses an output path inside the data dir: the tool never writes there.
fn check_out_path(data: &Path, out: &Path) -> Result<(), ToolError> {
    let data = data
        .canonicalize()
        .map_err(|e| ToolError::io("resolving", data, e))?;
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let parent = parent
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
    let bytes_read: u64 = source
        .segments
        .iter()
        .map(|s| std::fs::metadata(&s.path).map_or(0, |m| m.len()))
        .sum();
    let latest_records = if opts.latest {
        let l = latest(source, path, opts.mode, true)?;
        for t in &l.report.torn_tails {
            writeln!(
                warn,
                "ringstore-log: torn tail (in progress) in {}: offset {}: {}",
                t.path.display(),
                t.offset,
                t.reason
            )?;
        }
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
                Some(l) => latest_rows(l, &mut sink)?,
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
