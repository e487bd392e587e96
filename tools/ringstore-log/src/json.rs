//! The JSON Lines shape of a record, shared by `dump`, `latest` and
//! `export --format jsonl`:
//! `{"key","version","op","shard","segment","offset","deleted_at_unix_ns","record"}`,
//! with `op` `"put"` (a record, `deleted_at_unix_ns` null) or `"delete"`
//! (`record` null, `deleted_at_unix_ns` the deletion time in nanoseconds
//! since the Unix epoch). Every line has every field, so engines that infer
//! a schema from JSON see one. Keys and records are rendered by the library
//! (`write_json_str`, `ArchivedRecord::write_json`), so the tool and
//! `Record::to_json` agree.

use std::fmt::Write as _;
use std::io::Write;

use ringstore::inspect::write_json_str;

use crate::error::ToolError;
use crate::export::{Row, RowSink};

/// Appends `row` as one JSON Lines record (with its trailing newline) to
/// `out`. Location fields that are unknown are `null`.
pub fn push_row(row: &Row<'_>, out: &mut String) {
    out.push_str("{\"key\":");
    write_json_str(row.key, out);
    let _ = write!(
        out,
        ",\"version\":{},\"op\":\"{}\"",
        row.version,
        row.op.name()
    );
    for (name, v) in [
        ("shard", row.shard),
        ("segment", row.segment),
        ("offset", row.offset),
        ("deleted_at_unix_ns", row.op.deleted_at_unix_ns()),
    ] {
        match v {
            Some(v) => {
                let _ = write!(out, ",\"{name}\":{v}");
            }
            None => {
                let _ = write!(out, ",\"{name}\":null");
            }
        }
    }
    out.push_str(",\"record\":");
    match row.op.record() {
        Some(r) => r.write_json(out),
        None => out.push_str("null"),
    }
    out.push_str("}\n");
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
    fn row(&mut self, row: &Row<'_>) -> Result<(), ToolError> {
        self.line.clear();
        push_row(row, &mut self.line);
        self.out.write_all(self.line.as_bytes())?;
        self.rows += 1;
        Ok(())
    }
}
