//! `latest`: the newest record of every key exactly as `Store::open` would
//! recover it, as JSON Lines sorted by key. Recovery chooses the winners and
//! says where their frames are (`scan_latest`, read-only): it is the one
//! place that ranks frames, so the tool never reads the log for this itself.

use std::io::Write;
use std::path::Path;

use ringstore::inspect::{parse_segment_name, scan_latest};
use ringstore::{RecordRef, RecoveryMode, RecoveryReport};

use crate::error::ToolError;
use crate::export::{Row, RowSink};
use crate::json::JsonlSink;
use crate::source::{Source, SourceKind};

/// Where a winning frame sits in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Shard folder.
    pub shard: u64,
    /// Segment seq, from the file name (`None` only if recovery read a file
    /// whose name is not a segment name, which it does not do).
    pub segment: Option<u64>,
    /// Byte offset of the frame.
    pub offset: u64,
}

/// The newest record of each key, sorted by key, with where its frame sits.
#[derive(Debug)]
pub struct Latest {
    /// Records and their locations.
    pub records: Vec<(RecordRef, Location)>,
    /// What the scan found (torn tails, skipped damage).
    pub report: RecoveryReport,
}

impl Latest {
    /// Feeds the records to `sink`, in key order.
    pub fn rows(&self, sink: &mut dyn RowSink) -> Result<(), ToolError> {
        for (r, loc) in &self.records {
            sink.row(&Row {
                key: r.key(),
                version: r.version(),
                shard: Some(loc.shard),
                segment: loc.segment,
                offset: Some(loc.offset),
                record: r.archived(),
            })?;
        }
        Ok(())
    }

    /// Notes on `warn` each torn tail recovery would drop (not a problem).
    pub fn warn_torn_tails(&self, warn: &mut dyn Write) -> Result<(), ToolError> {
        for t in &self.report.torn_tails {
            writeln!(
                warn,
                "ringstore-log: torn tail (in progress) in {}: offset {}: {}",
                t.path.display(),
                t.offset,
                t.reason
            )?;
        }
        Ok(())
    }
}

/// Reads the newest record of each key of the data dir `source` (named on
/// the command line as `dir`).
pub fn latest(source: &Source, dir: &Path, mode: RecoveryMode) -> Result<Latest, ToolError> {
    if source.kind != SourceKind::DataDir {
        return Err(ToolError::Usage(format!(
            "{} is not a data dir: the newest record per key needs every shard folder",
            dir.display()
        )));
    }
    let (found, report) = scan_latest(dir, mode).map_err(ToolError::Store)?;
    let mut records: Vec<(RecordRef, Location)> = found
        .into_iter()
        .map(|l| {
            let segment = l
                .segment
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(parse_segment_name);
            let loc = Location {
                shard: l.shard_dir as u64,
                segment,
                offset: l.offset,
            };
            (l.record, loc)
        })
        .collect();
    records.sort_unstable_by(|a, b| a.0.key().cmp(b.0.key()));
    Ok(Latest { records, report })
}

/// Writes `latest` as JSON Lines.
pub fn write_latest(latest: &Latest, out: &mut dyn Write) -> Result<(), ToolError> {
    let mut sink = JsonlSink::new(out);
    latest.rows(&mut sink)?;
    sink.finish()?;
    Ok(())
}
