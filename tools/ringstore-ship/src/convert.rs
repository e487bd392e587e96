//! One sealed segment into Arrow record batches, through the log tool's
//! walker (`ringstore_log::walk`), which reads frames with the library's one
//! decoder and judges damage exactly as recovery does.

use std::sync::Arc;

use arrow_array::builder::{Int32Builder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch, new_null_array};
use ringstore::inspect::SegmentReader;
use ringstore::inspect::format::{Frame, SegmentHeader};
use ringstore_log::source::SegmentFile;
use ringstore_log::walk::{
    Content, DamageKind, Finding, Flow, Visitor, WalkOptions, content_of, walk_segment,
};

use crate::error::ShipError;
use crate::schema::{Column, Layout};
use crate::segments::Sealed;

/// Rows per record batch (also bounded by `BATCH_BYTES`).
const BATCH_ROWS: usize = 64 * 1024;
/// Approximate bytes of keys and records buffered before a batch is sent.
const BATCH_BYTES: usize = 32 << 20;

/// The `record` of a delete's row: the JSON `null` (the column is required).
pub const DELETE_RECORD_JSON: &str = "null";

/// What converting one segment gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Converted {
    /// Every frame became a row.
    Rows(u64),
    /// The segment was retired (compaction) while it was read: its rows must
    /// not be shipped.
    Vanished,
}

/// Sends each batch on; returns `false` when the receiver is gone.
pub type BatchSink<'a> = dyn FnMut(RecordBatch) -> bool + 'a;

/// Converts `seg` into batches of `layout`'s schema, handed to `sink` in log
/// order. `progress` gets the bytes of the segment read so far.
pub fn convert_segment(
    seg: &Sealed,
    instance: &str,
    layout: &Layout,
    sink: &mut BatchSink<'_>,
    progress: &mut dyn FnMut(u64),
) -> Result<Converted, ShipError> {
    let mut v = Rows {
        instance,
        layout,
        sink,
        progress,
        b: Builders::default(),
        rows: 0,
        damage: None,
        closed: false,
        last_offset: 0,
    };
    walk_segment(&seg.file, WalkOptions::default(), &mut v)?;
    if let Some(f) = v.damage {
        return Err(ShipError::DamagedSegment {
            path: seg.file.path.clone(),
            offset: f.offset,
            frame: f.frame,
            reason: f.reason,
        });
    }
    v.flush()?;
    if v.closed {
        return Err(ShipError::Convert {
            path: seg.file.path.clone(),
            reason: "the data file writer stopped".to_owned(),
        });
    }
    // Compaction may have retired (renamed, reused) the file while it was
    // read: only a file still holding the same header counts.
    let same = match SegmentReader::open(&seg.file.path) {
        Ok(r) => {
            let h = r.header();
            h.seq == seg.id.seq
                && h.generation == seg.id.generation
                && h.created_unix_ns == seg.id.created_unix_ns
        }
        Err(_) => false,
    };
    Ok(if same {
        Converted::Rows(v.rows)
    } else {
        Converted::Vanished
    })
}

#[derive(Default)]
struct Builders {
    instance: StringBuilder,
    key: StringBuilder,
    version: Int64Builder,
    op: StringBuilder,
    shard: Int32Builder,
    segment: Int64Builder,
    offset: Int64Builder,
    lsn: Int64Builder,
    generation: Int64Builder,
    record: StringBuilder,
    rows: usize,
    bytes: usize,
}

struct Rows<'a, 's> {
    instance: &'a str,
    layout: &'a Layout,
    sink: &'a mut BatchSink<'s>,
    progress: &'a mut dyn FnMut(u64),
    b: Builders,
    rows: u64,
    damage: Option<Finding>,
    closed: bool,
    last_offset: u64,
}

fn to_i64(v: u64, what: &str, src: &SegmentFile) -> Result<i64, ShipError> {
    i64::try_from(v).map_err(|_| ShipError::Convert {
        path: src.path.clone(),
        reason: format!("{what} {v} does not fit a signed 64-bit column"),
    })
}

impl Rows<'_, '_> {
    fn flush(&mut self) -> Result<(), ShipError> {
        if self.b.rows == 0 {
            return Ok(());
        }
        let b = &mut self.b;
        let n = b.rows;
        let arrays: Vec<ArrayRef> = self
            .layout
            .columns
            .iter()
            .zip(self.layout.arrow.fields())
            .map(|(col, field)| -> ArrayRef {
                match col {
                    Some(Column::Instance) => Arc::new(b.instance.finish()),
                    Some(Column::Key) => Arc::new(b.key.finish()),
                    Some(Column::Version) => Arc::new(b.version.finish()),
                    Some(Column::Op) => Arc::new(b.op.finish()),
                    Some(Column::Shard) => Arc::new(b.shard.finish()),
                    Some(Column::Segment) => Arc::new(b.segment.finish()),
                    Some(Column::Offset) => Arc::new(b.offset.finish()),
                    Some(Column::Lsn) => Arc::new(b.lsn.finish()),
                    Some(Column::Generation) => Arc::new(b.generation.finish()),
                    Some(Column::Record) => Arc::new(b.record.finish()),
                    None => new_null_array(field.data_type(), n),
                }
            })
            .collect();
        b.rows = 0;
        b.bytes = 0;
        let batch = RecordBatch::try_new(self.layout.arrow.clone(), arrays).map_err(|e| {
            ShipError::Convert {
                path: std::path::PathBuf::new(),
                reason: format!("building a record batch: {e}"),
            }
        })?;
        if !(self.sink)(batch) {
            self.closed = true;
        }
        Ok(())
    }
}

impl Visitor for Rows<'_, '_> {
    fn frame(
        &mut self,
        src: &SegmentFile,
        header: &SegmentHeader,
        offset: u64,
        number: u64,
        frame: &Frame<'_>,
    ) -> Result<Flow, ringstore_log::ToolError> {
        let content = match content_of(frame) {
            Ok(c) => c,
            Err(reason) => {
                self.damage = Some(Finding {
                    kind: DamageKind::Problem,
                    offset,
                    frame: number,
                    bytes: u64::from(frame.len),
                    reason,
                });
                return Ok(Flow::Stop);
            }
        };
        let row = (|| -> Result<(), ShipError> {
            let b = &mut self.b;
            b.instance.append_value(self.instance);
            b.key.append_value(frame.key);
            b.version.append_value(frame.version);
            b.op.append_value(frame.kind.name());
            b.shard.append_value(
                i32::try_from(src.shard_folder.unwrap_or(header.shard as usize))
                    .unwrap_or(i32::MAX),
            );
            b.segment.append_value(to_i64(header.seq, "seq", src)?);
            b.offset.append_value(to_i64(offset, "offset", src)?);
            b.lsn.append_value(to_i64(frame.lsn, "lsn", src)?);
            b.generation
                .append_value(to_i64(frame.generation, "generation", src)?);
            // `record` is a required column (tables created before deletes
            // existed have it so): a delete's is the JSON `null`.
            let mut json = String::with_capacity(frame.payload.len() + 16);
            match &content {
                Content::Record(record) => record.archived().write_json(&mut json),
                Content::Deleted { .. } => json.push_str(DELETE_RECORD_JSON),
            }
            b.bytes += json.len() + frame.key.len() + 64;
            b.record.append_value(&json);
            b.rows += 1;
            Ok(())
        })();
        if let Err(e) = row {
            // The walker's error type carries no ShipError: keep it as damage.
            self.damage = Some(Finding {
                kind: DamageKind::Problem,
                offset,
                frame: number,
                bytes: u64::from(frame.len),
                reason: e.to_string(),
            });
            return Ok(Flow::Stop);
        }
        self.rows += 1;
        self.last_offset = offset;
        (self.progress)(offset);
        if self.b.rows >= BATCH_ROWS || self.b.bytes >= BATCH_BYTES {
            if let Err(e) = self.flush() {
                self.damage = Some(Finding {
                    kind: DamageKind::Problem,
                    offset,
                    frame: number,
                    bytes: 0,
                    reason: e.to_string(),
                });
                return Ok(Flow::Stop);
            }
            if self.closed {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Continue)
    }

    fn damage(
        &mut self,
        _src: &SegmentFile,
        _header: Option<&SegmentHeader>,
        finding: Finding,
    ) -> Result<Flow, ringstore_log::ToolError> {
        match finding.kind {
            // The end of the newest segment of a folder whose store is not
            // running: recovery drops it, so does the history.
            DamageKind::TornTail => Ok(Flow::Continue),
            // The walk runs in the default mode, where nothing is skipped;
            // were it, the rows would have a hole: report it.
            DamageKind::Problem | DamageKind::Skipped => {
                self.damage = Some(finding);
                Ok(Flow::Stop)
            }
        }
    }
}
