//! `ls`: shards and segments (seq, size, records, deletes, version range, sealed or
//! active, written over a reused file), the spare files kept for reuse, and
//! totals. Reads frame headers only; payloads are not validated (that is
//! `verify`'s job).

use std::collections::BTreeSet;
use std::io::Write;

use ringstore::inspect::format::{Frame, FrameKind, SegmentHeader};

use crate::error::ToolError;
use crate::source::{SegmentFile, Source, seq_of, shard_of};
use crate::walk::{DamageKind, Finding, Flow, Visitor, WalkOptions, walk};

/// One segment as `ls` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentStats {
    /// Shard folder (or the header's shard).
    pub shard: Option<u64>,
    /// Seq (file name, or header).
    pub seq: Option<u64>,
    /// File size in bytes.
    pub bytes: u64,
    /// Valid put frames.
    pub records: u64,
    /// Valid delete frames.
    pub deletes: u64,
    /// Version of the first frame.
    pub first_version: Option<i64>,
    /// Version of the last frame.
    pub last_version: Option<i64>,
    /// Smallest version.
    pub min_version: Option<i64>,
    /// Largest version.
    pub max_version: Option<i64>,
    /// Store generation that created the segment.
    pub generation: Option<u64>,
    /// The newest segment of its folder (the one a running store appends to).
    pub active: bool,
    /// Problems met (see `verify` for details).
    pub problems: u64,
    /// Whether it ends in a torn tail.
    pub torn_tail: bool,
    /// Written over a reused (spare) file: its size includes the file's
    /// earlier bytes after the data.
    pub reused: bool,
}

impl SegmentStats {
    /// `sealed` or `active`, with damage noted.
    pub fn state(&self) -> String {
        let mut s = if self.active { "active" } else { "sealed" }.to_owned();
        if self.reused {
            s.push_str(",reused");
        }
        if self.torn_tail {
            s.push_str(",torn-tail");
        }
        if self.problems > 0 {
            s.push_str(",damaged");
        }
        s
    }
}

/// Collects the stats of every segment of `source`.
pub fn stats(source: &Source) -> Result<Vec<SegmentStats>, ToolError> {
    let mut v = LsVisitor {
        cur: None,
        out: Vec::new(),
    };
    walk(&source.segments, WalkOptions::default(), &mut v)?;
    Ok(v.out)
}

/// Prints the listing of `source` (text table or JSON Lines).
pub fn ls(source: &Source, json: bool, out: &mut dyn Write) -> Result<(), ToolError> {
    let all = stats(source)?;
    let shards: BTreeSet<u64> = all.iter().filter_map(|s| s.shard).collect();
    let bytes: u64 = all.iter().map(|s| s.bytes).sum();
    let records: u64 = all.iter().map(|s| s.records).sum();
    let deletes: u64 = all.iter().map(|s| s.deletes).sum();
    let damaged = all.iter().filter(|s| s.problems > 0).count();
    let spares = spare_files(source);
    let spare_bytes: u64 = spares.iter().map(|(_, _, b)| b).sum();
    let opt = |v: Option<i64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    if json {
        for s in &all {
            let line = serde_json::json!({
                "kind": "segment",
                "shard": s.shard,
                "segment": s.seq,
                "bytes": s.bytes,
                "records": s.records,
                "deletes": s.deletes,
                "first_version": s.first_version,
                "last_version": s.last_version,
                "min_version": s.min_version,
                "max_version": s.max_version,
                "generation": s.generation,
                "state": if s.active { "active" } else { "sealed" },
                "torn_tail": s.torn_tail,
                "problems": s.problems,
                "reused": s.reused,
            });
            writeln!(out, "{line}")?;
        }
        for (shard, files, bytes) in &spares {
            let line = serde_json::json!({
                "kind": "spares",
                "shard": shard,
                "files": files,
                "bytes": bytes,
            });
            writeln!(out, "{line}")?;
        }
        let line = serde_json::json!({
            "kind": "total",
            "shards": shards.len(),
            "segments": all.len(),
            "bytes": bytes,
            "records": records,
            "deletes": deletes,
            "damaged_segments": damaged,
            "spare_files": spares.iter().map(|(_, n, _)| n).sum::<usize>(),
            "spare_bytes": spare_bytes,
        });
        writeln!(out, "{line}")?;
    } else {
        writeln!(
            out,
            "{:>5} {:>20} {:>14} {:>10} {:>8} {:>20} {:>20}  state",
            "shard", "segment", "bytes", "records", "deletes", "first_version", "last_version"
        )?;
        for s in &all {
            writeln!(
                out,
                "{:>5} {:>20} {:>14} {:>10} {:>8} {:>20} {:>20}  {}",
                s.shard.map_or_else(|| "-".to_owned(), |v| v.to_string()),
                s.seq.map_or_else(|| "-".to_owned(), |v| v.to_string()),
                s.bytes,
                s.records,
                s.deletes,
                opt(s.first_version),
                opt(s.last_version),
                s.state()
            )?;
        }
        writeln!(
            out,
            "total: {} shards, {} segments, {bytes} bytes, {records} records, {deletes} deletes",
            shards.len(),
            all.len()
        )?;
        if !spares.is_empty() {
            writeln!(
                out,
                "spares: {} files, {spare_bytes} bytes (retired segments kept for new segments to overwrite; never read)",
                spares.iter().map(|(_, n, _)| n).sum::<usize>()
            )?;
        }
        if damaged > 0 {
            writeln!(
                out,
                "{damaged} damaged segments: run `ringstore-log verify` for details"
            )?;
        }
    }
    out.flush()?;
    Ok(())
}

/// (shard, files, bytes) of the spare files in each shard folder that holds
/// one of `source`'s segments, where it has any.
fn spare_files(source: &Source) -> Vec<(Option<u64>, usize, u64)> {
    let folders: BTreeSet<(Option<u64>, &std::path::Path)> = source
        .segments
        .iter()
        .filter_map(|s| {
            s.path
                .parent()
                .map(|p| (s.shard_folder.map(|i| i as u64), p))
        })
        .collect();
    folders
        .into_iter()
        .filter_map(|(shard, dir)| {
            // A `.retired` file (left by a compaction cut short) becomes a
            // spare at the next compaction: counted with them.
            let mut files = ringstore::inspect::spares(dir).ok()?;
            files.extend(ringstore::inspect::retired(dir).ok()?);
            let bytes = files
                .iter()
                .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
                .sum();
            (!files.is_empty()).then_some((shard, files.len(), bytes))
        })
        .collect()
}

struct LsVisitor {
    cur: Option<SegmentStats>,
    out: Vec<SegmentStats>,
}

fn new_stats(src: &SegmentFile, header: Option<&SegmentHeader>, file_len: u64) -> SegmentStats {
    SegmentStats {
        shard: shard_of(src, header),
        seq: seq_of(src, header),
        bytes: file_len,
        generation: header.map(|h| h.generation),
        active: src.newest_in_folder,
        reused: header.is_some_and(|h| h.reused),
        ..SegmentStats::default()
    }
}

impl Visitor for LsVisitor {
    fn segment(
        &mut self,
        src: &SegmentFile,
        header: &SegmentHeader,
        file_len: u64,
    ) -> Result<Flow, ToolError> {
        self.cur = Some(new_stats(src, Some(header), file_len));
        Ok(Flow::Continue)
    }

    fn frame(
        &mut self,
        _src: &SegmentFile,
        _header: &SegmentHeader,
        _offset: u64,
        _number: u64,
        frame: &Frame<'_>,
    ) -> Result<Flow, ToolError> {
        if let Some(s) = self.cur.as_mut() {
            let v = frame.version;
            match frame.kind {
                FrameKind::Put => s.records += 1,
                FrameKind::Delete => s.deletes += 1,
            }
            s.first_version.get_or_insert(v);
            s.last_version = Some(v);
            s.min_version = Some(s.min_version.map_or(v, |m| m.min(v)));
            s.max_version = Some(s.max_version.map_or(v, |m| m.max(v)));
        }
        Ok(Flow::Continue)
    }

    fn damage(
        &mut self,
        src: &SegmentFile,
        header: Option<&SegmentHeader>,
        f: Finding,
    ) -> Result<Flow, ToolError> {
        // A bad header: `segment` was never called for this file.
        let s = self
            .cur
            .get_or_insert_with(|| new_stats(src, header, f.bytes));
        match f.kind {
            DamageKind::Problem | DamageKind::Skipped => s.problems += 1,
            DamageKind::TornTail => s.torn_tail = true,
        }
        Ok(Flow::Continue)
    }

    fn segment_done(
        &mut self,
        src: &SegmentFile,
        _frames: u64,
        file_len: u64,
    ) -> Result<Flow, ToolError> {
        let s = self
            .cur
            .take()
            .unwrap_or_else(|| new_stats(src, None, file_len));
        self.out.push(s);
        Ok(Flow::Continue)
    }
}
