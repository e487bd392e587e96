//! `latest`: the newest record of every key exactly as `Store::open` would
//! recover it, as JSON Lines sorted by key. Recovery chooses the winners and
//! says where their frames are (`scan_latest_state`, read-only): it is the
//! one place that ranks frames, so the tool never reads the log for this
//! itself. A key whose newest frame is a delete has no record (`Store::get`
//! returns `None`): it is left out, or listed as a delete row on request.

use std::io::Write;
use std::path::Path;

use ringstore::inspect::{parse_segment_name, scan_latest_state};
use ringstore::{RecordRef, RecoveryMode, RecoveryReport};

use crate::error::ToolError;
use crate::export::{Row, RowOp, RowSink};
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

/// A key whose newest frame is a delete (a tombstone recovery remembers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedKey {
    /// The key.
    pub key: Box<str>,
    /// The delete's version.
    pub version: i64,
    /// When the delete was made, nanoseconds since the Unix epoch.
    pub deleted_at_unix_ns: u64,
}

/// The newest record of each key, sorted by key, with where its frame sits.
#[derive(Debug)]
pub struct Latest {
    /// Records and their locations, sorted by key.
    pub records: Vec<(RecordRef, Location)>,
    /// Keys whose newest frame is a delete, sorted by key: empty unless
    /// asked for (`include_deleted`).
    pub deletes: Vec<(DeletedKey, Location)>,
    /// Keys whose newest frame is a delete (listed in `deletes` or not).
    pub deleted_keys: usize,
    /// What the scan found (torn tails, skipped damage).
    pub report: RecoveryReport,
}

fn record_row<'a>(r: &'a RecordRef, loc: &Location) -> Row<'a> {
    Row {
        key: r.key(),
        version: r.version(),
        shard: Some(loc.shard),
        segment: loc.segment,
        offset: Some(loc.offset),
        op: RowOp::Put(r.archived()),
    }
}

fn delete_row<'a>(d: &'a DeletedKey, loc: &Location) -> Row<'a> {
    Row {
        key: &d.key,
        version: d.version,
        shard: Some(loc.shard),
        segment: loc.segment,
        offset: Some(loc.offset),
        op: RowOp::Delete {
            deleted_at_unix_ns: d.deleted_at_unix_ns,
        },
    }
}

impl Latest {
    /// Feeds the records (and the deletes, if listed) to `sink`, in key
    /// order.
    pub fn rows(&self, sink: &mut dyn RowSink) -> Result<(), ToolError> {
        let mut records = self.records.iter().peekable();
        let mut deletes = self.deletes.iter().peekable();
        loop {
            // Recovery yields each key once: as a record or as a delete.
            let row = match (records.peek(), deletes.peek()) {
                (Some((r, rl)), Some((d, dl))) => {
                    if r.key() <= &*d.key {
                        records.next();
                        record_row(r, rl)
                    } else {
                        deletes.next();
                        delete_row(d, dl)
                    }
                }
                (Some((r, rl)), None) => {
                    records.next();
                    record_row(r, rl)
                }
                (None, Some((d, dl))) => {
                    deletes.next();
                    delete_row(d, dl)
                }
                (None, None) => return Ok(()),
            };
            sink.row(&row)?;
        }
    }

    /// Notes on `warn` how many deleted keys were left out, if any (not a
    /// problem: the store holds no record for them).
    pub fn note_hidden_deletes(&self, warn: &mut dyn Write) -> Result<(), ToolError> {
        let hidden = self.deleted_keys.saturating_sub(self.deletes.len());
        if hidden > 0 {
            let keys = if hidden == 1 { "key" } else { "keys" };
            writeln!(
                warn,
                "ringstore-log: {hidden} deleted {keys} not listed (their newest frame is a delete; --include-deleted lists them)"
            )?;
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
/// the command line as `dir`), and with `include_deleted` the keys whose
/// newest frame is a delete.
pub fn latest(
    source: &Source,
    dir: &Path,
    mode: RecoveryMode,
    include_deleted: bool,
) -> Result<Latest, ToolError> {
    if source.kind != SourceKind::DataDir {
        return Err(ToolError::Usage(format!(
            "{} is not a data dir: the newest record per key needs every shard folder",
            dir.display()
        )));
    }
    let state = scan_latest_state(dir, mode).map_err(ToolError::Store)?;
    let location = |shard_dir: usize, segment: &Path, offset: u64| Location {
        shard: shard_dir as u64,
        segment: segment
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(parse_segment_name),
        offset,
    };
    let mut records: Vec<(RecordRef, Location)> = state
        .records
        .into_iter()
        .map(|l| {
            let loc = location(l.shard_dir, &l.segment, l.offset);
            (l.record, loc)
        })
        .collect();
    records.sort_unstable_by(|a, b| a.0.key().cmp(b.0.key()));
    let deleted_keys = state.deletes.len();
    let mut deletes: Vec<(DeletedKey, Location)> = if include_deleted {
        state
            .deletes
            .into_iter()
            .map(|d| {
                let loc = location(d.shard_dir, &d.segment, d.offset);
                let key = DeletedKey {
                    key: d.key,
                    version: d.version,
                    deleted_at_unix_ns: d.deleted_at_unix_ns,
                };
                (key, loc)
            })
            .collect()
    } else {
        Vec::new()
    };
    deletes.sort_unstable_by(|a, b| a.0.key.cmp(&b.0.key));
    Ok(Latest {
        records,
        deletes,
        deleted_keys,
        report: state.report,
    })
}

/// Writes `latest` as JSON Lines.
pub fn write_latest(latest: &Latest, out: &mut dyn Write) -> Result<(), ToolError> {
    let mut sink = JsonlSink::new(out);
    latest.rows(&mut sink)?;
    sink.finish()?;
    Ok(())
}
