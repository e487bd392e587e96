//! `dump`: every put and delete of the log as JSON Lines (or frame headers
//! as a table), filtered by key and version range. Streaming: one frame in
//! memory at a time.

use std::fmt::Write as _;
use std::io::Write;

use ringstore::inspect::format::{Frame, FrameKind, SegmentHeader};
use ringstore::inspect::write_json_str;

use crate::error::{ToolError, exit_code};
use crate::export::{Row, RowOp};
use crate::json;
use crate::source::{SegmentFile, Source, seq_of, shard_of};

use crate::walk::{Finding, Flow, Skips, Visitor, walk_intact};

/// Which frames to show.
#[derive(Debug, Clone, Default)]
pub struct DumpFilter {
    /// Only this key.
    pub key: Option<String>,
    /// Only versions >= this.
    pub since_version: Option<i64>,
    /// Only versions <= this.
    pub until_version: Option<i64>,
    /// Stop after this many lines (puts and deletes).
    pub limit: Option<u64>,
}

impl DumpFilter {
    /// Whether a frame with this key and version passes (read from the frame
    /// header, before the payload is touched).
    pub fn matches(&self, key: &str, version: i64) -> bool {
        self.key.as_deref().is_none_or(|k| k == key)
            && self.since_version.is_none_or(|v| version >= v)
            && self.until_version.is_none_or(|v| version <= v)
    }
}

/// Output shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DumpFormat {
    /// One JSON object per put or delete.
    #[default]
    Json,
    /// Frame headers only, as an aligned text table.
    Table,
}

/// What `dump` saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DumpSummary {
    /// Lines written (puts and deletes).
    pub records: u64,
    /// Of them, deletes.
    pub deletes: u64,
    /// Valid frames read (filtered out or not).
    pub frames: u64,
    /// Problems met (reported on the warning stream, skipped).
    pub problems: u64,
    /// Torn tails met.
    pub torn_tails: u64,
}

impl DumpSummary {
    /// 0 when no problem was met, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        exit_code(self.problems)
    }
}

/// Writes the records of `source` that pass `filter` to `out`; problems and
/// torn tails are reported on `warn` and skipped.
pub fn dump(
    source: &Source,
    filter: &DumpFilter,
    format: DumpFormat,
    out: &mut dyn Write,
    warn: &mut dyn Write,
) -> Result<DumpSummary, ToolError> {
    let mut v = DumpVisitor {
        filter,
        format,
        out,
        skips: Skips::new(Some(warn)),
        line: String::new(),
        summary: DumpSummary::default(),
    };
    if format == DumpFormat::Table {
        writeln!(
            v.out,
            "{:>5} {:>20} {:>12} {:>9} {:>12} {:>6} {:>20} {:>6}  key",
            "shard", "segment", "offset", "len", "lsn", "gen", "version", "op"
        )?;
    }
    if filter.limit != Some(0) {
        walk_intact(&source.segments, &mut v)?;
    }
    v.out.flush()?;
    v.summary.problems = v.skips.problems;
    v.summary.torn_tails = v.skips.torn_tails;
    Ok(v.summary)
}

struct DumpVisitor<'a> {
    filter: &'a DumpFilter,
    format: DumpFormat,
    out: &'a mut dyn Write,
    skips: Skips<'a>,
    line: String,
    summary: DumpSummary,
}

impl Visitor for DumpVisitor<'_> {
    fn frame(
        &mut self,
        src: &SegmentFile,
        header: &SegmentHeader,
        offset: u64,
        number: u64,
        frame: &Frame<'_>,
    ) -> Result<Flow, ToolError> {
        self.summary.frames += 1;
        if !self.filter.matches(frame.key, frame.version) {
            return Ok(Flow::Continue);
        }
        let shard = shard_of(src, Some(header));
        let seq = seq_of(src, Some(header));
        self.line.clear();
        match self.format {
            DumpFormat::Table => {
                let _ = write!(
                    self.line,
                    "{:>5} {:>20} {offset:>12} {:>9} {:>12} {:>6} {:>20} {:>6}  ",
                    shard.unwrap_or_default(),
                    seq.unwrap_or_default(),
                    frame.len,
                    frame.lsn,
                    frame.generation,
                    frame.version,
                    frame.kind.name()
                );
                write_json_str(frame.key, &mut self.line);
                self.line.push('\n');
            }
            DumpFormat::Json => {
                let Some(content) = self.skips.content(src, offset, number, frame)? else {
                    return Ok(Flow::Continue);
                };
                let row = Row {
                    key: frame.key,
                    version: frame.version,
                    shard,
                    segment: seq,
                    offset: Some(offset),
                    op: RowOp::of(&content),
                };
                json::push_row(&row, &mut self.line);
            }
        }
        self.out.write_all(self.line.as_bytes())?;
        self.summary.records += 1;
        if frame.kind == FrameKind::Delete {
            self.summary.deletes += 1;
        }
        if self.filter.limit.is_some_and(|l| self.summary.records >= l) {
            return Ok(Flow::Stop);
        }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_bounds_are_inclusive() {
        let f = DumpFilter {
            key: Some("k".into()),
            since_version: Some(-2),
            until_version: Some(5),
            limit: None,
        };
        assert!(f.matches("k", -2) && f.matches("k", 5));
        assert!(!f.matches("k", 6) && !f.matches("k", -3) && !f.matches("j", 0));
        assert!(DumpFilter::default().matches("anything", i64::MIN));
    }
}
