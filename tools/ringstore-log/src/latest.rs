//! `latest`: the newest record of every key exactly as `Store::open` would
//! recover it (through the library's `scan_latest`, read-only), as JSON Lines
//! sorted by key.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use ringstore::inspect::format::{Frame, SegmentHeader};
use ringstore::inspect::scan_latest;
use ringstore::{RecordRef, RecoveryMode, RecoveryReport};

use crate::dump::push_record_line;
use crate::error::ToolError;
use crate::source::{SegmentFile, Source, SourceKind};
use crate::verify::{seq_of, shard_of};
use crate::walk::{Finding, Flow, Visitor, WalkOptions, walk};

/// Where a record sits in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Shard folder.
    pub shard: Option<u64>,
    /// Segment seq.
    pub segment: Option<u64>,
    /// Byte offset of the frame.
    pub offset: u64,
}

/// The newest record of each key, sorted by key, with where it sits in the
/// log when `locate` (an extra pass over frame headers) is asked for.
#[derive(Debug)]
pub struct Latest {
    /// Records and their locations.
    pub records: Vec<(RecordRef, Option<Location>)>,
    /// What the scan found (torn tails, skipped damage).
    pub report: RecoveryReport,
}

/// Reads the newest record of each key of the data dir `source`.
pub fn latest(
    source: &Source,
    dir: &Path,
    mode: RecoveryMode,
    locate: bool,
) -> Result<Latest, ToolError> {
    if source.kind != SourceKind::DataDir {
        return Err(ToolError::Usage(format!(
            "{} is not a data dir: the newest record per key needs every shard folder",
            dir.display()
        )));
    }
    let (mut records, report) = scan_latest(dir, mode).map_err(ToolError::Store)?;
    records.sort_unstable_by(|a, b| a.key().cmp(b.key()));
    let locations = if locate {
        Some(locations(source)?)
    } else {
        None
    };
    let records = records
        .into_iter()
        .map(|r| {
            let loc = locations
                .as_ref()
                .and_then(|l| l.get(r.key()))
                .filter(|(rank, _)| rank.0 == r.version())
                .map(|(_, loc)| *loc);
            (r, loc)
        })
        .collect();
    Ok(Latest { records, report })
}

/// Writes `latest` as JSON Lines.
pub fn write_latest(latest: &Latest, out: &mut dyn Write) -> Result<(), ToolError> {
    let mut line = String::new();
    for (r, loc) in &latest.records {
        line.clear();
        push_record_line(
            r.key(),
            r.version(),
            loc.and_then(|l| l.shard),
            loc.and_then(|l| l.segment),
            loc.map(|l| l.offset),
            r.archived(),
            &mut line,
        );
        out.write_all(line.as_bytes())?;
    }
    out.flush()?;
    Ok(())
}

/// Ordering of frames, recovery's: version, then the later write.
type Rank = (i64, u64, u64);

/// Where the winning frame of each key sits, by recovery's rank (frame
/// headers only; `scan_latest` does not return locations).
fn locations(source: &Source) -> Result<HashMap<Box<str>, (Rank, Location)>, ToolError> {
    let mut v = LocateVisitor {
        best: HashMap::new(),
    };
    walk(&source.segments, WalkOptions::default(), &mut v)?;
    Ok(v.best)
}

struct LocateVisitor {
    best: HashMap<Box<str>, (Rank, Location)>,
}

impl Visitor for LocateVisitor {
    fn frame(
        &mut self,
        src: &SegmentFile,
        header: &SegmentHeader,
        offset: u64,
        _number: u64,
        frame: &Frame<'_>,
    ) -> Result<Flow, ToolError> {
        let rank = (frame.version, frame.generation, frame.lsn);
        let loc = Location {
            shard: shard_of(src, Some(header)),
            segment: seq_of(src, Some(header)),
            offset,
        };
        match self.best.get_mut(frame.key) {
            Some(slot) if rank > slot.0 => *slot = (rank, loc),
            Some(_) => {}
            None => {
                self.best.insert(frame.key.into(), (rank, loc));
            }
        }
        Ok(Flow::Continue)
    }

    fn damage(
        &mut self,
        _src: &SegmentFile,
        _header: Option<&SegmentHeader>,
        _f: Finding,
    ) -> Result<Flow, ToolError> {
        Ok(Flow::Continue)
    }
}
