//! Parquet export through the parquet crate's low-level column writers (no
//! Arrow). One row per frame: `key`, `version`, `op` (`put` or `delete`),
//! `shard`, `segment`, `offset`, `deleted_at_unix_ns` (a delete's deletion
//! time, nanoseconds since the Unix epoch; null for a put), then one typed
//! column per top-level field seen in any record (the union; all null in a
//! delete's row):
//!
//! | values of the field | column |
//! |---|---|
//! | only `Int` | INT64 |
//! | only `Float`, or `Int` and `Float` | DOUBLE |
//! | only `Bool` | BOOLEAN |
//! | only `Str` | BYTE_ARRAY (STRING) |
//! | only `Bytes` | BYTE_ARRAY |
//! | `List`, `Map`, or a mix of kinds | BYTE_ARRAY (STRING) holding JSON |
//!
//! Every field column is optional: a record without the field (or with
//! `Null`) gets a null. A field whose name is taken by a fixed column (e.g. a
//! field called `key`) is exported as `field_<name>`.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use parquet::basic::{Compression, LogicalType, Repetition, Type as PhysicalType};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::{SerializedColumnWriter, SerializedFileWriter};
use parquet::schema::types::Type;
use ringstore::ArchivedValue;

use crate::error::ToolError;
use crate::export::{Row, RowSink, history_rows};
use crate::latest::Latest;
use crate::progress::Progress;
use crate::source::Source;

/// Rows per row group (also bounded by `ROW_GROUP_BYTES`).
const ROW_GROUP_ROWS: usize = 128 * 1024;
/// Approximate bytes buffered before a row group is written.
const ROW_GROUP_BYTES: usize = 64 << 20;

impl From<parquet::errors::ParquetError> for ToolError {
    fn from(e: parquet::errors::ParquetError) -> Self {
        ToolError::Parquet(e.to_string())
    }
}

/// The column type chosen for a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Bool,
    Int,
    Float,
    Str,
    Bytes,
    Json,
}

fn kind_of(v: &ArchivedValue) -> Kind {
    match v {
        ArchivedValue::Null => Kind::Null,
        ArchivedValue::Bool(_) => Kind::Bool,
        ArchivedValue::Int(_) => Kind::Int,
        ArchivedValue::Float(_) => Kind::Float,
        ArchivedValue::Str(_) => Kind::Str,
        ArchivedValue::Bytes(_) => Kind::Bytes,
        ArchivedValue::List(_) | ArchivedValue::Map(_) => Kind::Json,
    }
}

fn merge(a: Kind, b: Kind) -> Kind {
    match (a, b) {
        (Kind::Null, k) | (k, Kind::Null) => k,
        (a, b) if a == b => a,
        (Kind::Int, Kind::Float) | (Kind::Float, Kind::Int) => Kind::Float,
        _ => Kind::Json,
    }
}

/// Pass 1: the union of top-level fields and their kinds.
#[derive(Default)]
struct SchemaPass {
    fields: BTreeMap<String, Kind>,
}

impl RowSink for SchemaPass {
    fn row(&mut self, row: &Row<'_>) -> Result<(), ToolError> {
        let Some(record) = row.op.record() else {
            return Ok(());
        };
        for (name, v) in record.iter() {
            let k = kind_of(v);
            match self.fields.get_mut(name) {
                Some(have) => *have = merge(*have, k),
                None => {
                    self.fields.insert(name.to_owned(), k);
                }
            }
        }
        Ok(())
    }
}

/// One output column of a record field.
struct FieldColumn {
    /// The record's field name.
    field: String,
    kind: Kind,
    buf: ColumnBuf,
}

/// Buffered values of one column for the current row group.
#[derive(Default)]
struct ColumnBuf {
    def: Vec<i16>,
    bools: Vec<bool>,
    ints: Vec<i64>,
    floats: Vec<f64>,
    bytes: Vec<ByteArray>,
}

impl ColumnBuf {
    fn clear(&mut self) {
        self.def.clear();
        self.bools.clear();
        self.ints.clear();
        self.floats.clear();
        self.bytes.clear();
    }

    fn null(&mut self) {
        self.def.push(0);
    }

    fn int(&mut self, v: Option<u64>) {
        match v {
            Some(v) => {
                self.def.push(1);
                self.ints.push(v as i64);
            }
            None => self.null(),
        }
    }
}

const FIXED: [&str; 7] = [
    "key",
    "version",
    "op",
    "shard",
    "segment",
    "offset",
    "deleted_at_unix_ns",
];

/// Pass 2: rows into column buffers, row groups into the file.
struct WritePass {
    writer: SerializedFileWriter<BufWriter<File>>,
    key: ColumnBuf,
    version: ColumnBuf,
    op: ColumnBuf,
    shard: ColumnBuf,
    segment: ColumnBuf,
    offset: ColumnBuf,
    deleted_at: ColumnBuf,
    fields: Vec<FieldColumn>,
    by_name: BTreeMap<String, usize>,
    rows_in_group: usize,
    bytes_in_group: usize,
    rows: u64,
    scratch: String,
}

fn column_types(fields: &[FieldColumn]) -> Result<Vec<Arc<Type>>, ToolError> {
    let prim = |name: &str, t: PhysicalType, rep: Repetition, logical: Option<LogicalType>| {
        Type::primitive_type_builder(name, t)
            .with_repetition(rep)
            .with_logical_type(logical)
            .build()
            .map(Arc::new)
    };
    let mut out = vec![
        prim(
            "key",
            PhysicalType::BYTE_ARRAY,
            Repetition::REQUIRED,
            Some(LogicalType::String),
        )?,
        prim("version", PhysicalType::INT64, Repetition::REQUIRED, None)?,
        prim(
            "op",
            PhysicalType::BYTE_ARRAY,
            Repetition::REQUIRED,
            Some(LogicalType::String),
        )?,
        prim("shard", PhysicalType::INT64, Repetition::OPTIONAL, None)?,
        prim("segment", PhysicalType::INT64, Repetition::OPTIONAL, None)?,
        prim("offset", PhysicalType::INT64, Repetition::OPTIONAL, None)?,
        prim(
            "deleted_at_unix_ns",
            PhysicalType::INT64,
            Repetition::OPTIONAL,
            None,
        )?,
    ];
    let mut taken: HashSet<String> = FIXED.iter().map(|s| (*s).to_owned()).collect();
    for f in fields {
        let mut name = if f.field.is_empty() {
            "field_".to_owned()
        } else {
            f.field.clone()
        };
        while taken.contains(&name) {
            name.insert_str(0, "field_");
        }
        taken.insert(name.clone());
        let (t, logical) = match f.kind {
            Kind::Bool => (PhysicalType::BOOLEAN, None),
            Kind::Int => (PhysicalType::INT64, None),
            Kind::Float => (PhysicalType::DOUBLE, None),
            Kind::Bytes => (PhysicalType::BYTE_ARRAY, None),
            Kind::Null | Kind::Str | Kind::Json => {
                (PhysicalType::BYTE_ARRAY, Some(LogicalType::String))
            }
        };
        out.push(prim(&name, t, Repetition::OPTIONAL, logical)?);
    }
    Ok(out)
}

impl WritePass {
    fn new(path: &Path, fields: BTreeMap<String, Kind>) -> Result<Self, ToolError> {
        let fields: Vec<FieldColumn> = fields
            .into_iter()
            .map(|(field, kind)| FieldColumn {
                field,
                kind,
                buf: ColumnBuf::default(),
            })
            .collect();
        let schema = Type::group_type_builder("ringstore_record")
            .with_fields(column_types(&fields)?)
            .build()?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("ringstore-log {}", env!("CARGO_PKG_VERSION")))
            .build();
        let file = File::create(path).map_err(|e| ToolError::io("creating", path, e))?;
        let writer = SerializedFileWriter::new(
            BufWriter::with_capacity(1 << 20, file),
            Arc::new(schema),
            Arc::new(props),
        )?;
        let by_name = fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.field.clone(), i))
            .collect();
        Ok(WritePass {
            writer,
            key: ColumnBuf::default(),
            version: ColumnBuf::default(),
            op: ColumnBuf::default(),
            shard: ColumnBuf::default(),
            segment: ColumnBuf::default(),
            offset: ColumnBuf::default(),
            deleted_at: ColumnBuf::default(),
            fields,
            by_name,
            rows_in_group: 0,
            bytes_in_group: 0,
            rows: 0,
            scratch: String::new(),
        })
    }

    fn flush_group(&mut self) -> Result<(), ToolError> {
        if self.rows_in_group == 0 {
            return Ok(());
        }
        let mut rg = self.writer.next_row_group()?;
        let fixed = [
            (&self.key, Kind::Str, false),
            (&self.version, Kind::Int, false),
            (&self.op, Kind::Str, false),
            (&self.shard, Kind::Int, true),
            (&self.segment, Kind::Int, true),
            (&self.offset, Kind::Int, true),
            (&self.deleted_at, Kind::Int, true),
        ];
        let all = fixed
            .into_iter()
            .chain(self.fields.iter().map(|f| (&f.buf, f.kind, true)));
        for (buf, kind, optional) in all {
            let Some(mut col) = rg.next_column()? else {
                return Err(ToolError::Parquet(
                    "schema has fewer columns than the data".to_owned(),
                ));
            };
            write_column(&mut col, buf, kind, optional)?;
            col.close()?;
        }
        rg.close()?;
        for b in [
            &mut self.key,
            &mut self.version,
            &mut self.op,
            &mut self.shard,
            &mut self.segment,
            &mut self.offset,
            &mut self.deleted_at,
        ] {
            b.clear();
        }
        for f in &mut self.fields {
            f.buf.clear();
        }
        self.rows_in_group = 0;
        self.bytes_in_group = 0;
        Ok(())
    }

    fn close(mut self) -> Result<u64, ToolError> {
        self.flush_group()?;
        let rows = self.rows;
        let inner = self.writer.into_inner()?;
        let file = inner
            .into_inner()
            .map_err(|e| ToolError::Output(e.into_error()))?;
        file.sync_all().map_err(ToolError::Output)?;
        Ok(rows)
    }
}

fn write_column(
    col: &mut SerializedColumnWriter<'_>,
    buf: &ColumnBuf,
    kind: Kind,
    optional: bool,
) -> Result<(), ToolError> {
    let def = optional.then_some(buf.def.as_slice());
    match kind {
        Kind::Bool => {
            col.typed::<BoolType>().write_batch(&buf.bools, def, None)?;
        }
        Kind::Int => {
            col.typed::<Int64Type>().write_batch(&buf.ints, def, None)?;
        }
        Kind::Float => {
            col.typed::<DoubleType>()
                .write_batch(&buf.floats, def, None)?;
        }
        Kind::Null | Kind::Str | Kind::Bytes | Kind::Json => {
            col.typed::<ByteArrayType>()
                .write_batch(&buf.bytes, def, None)?;
        }
    }
    Ok(())
}

impl RowSink for WritePass {
    fn row(&mut self, row: &Row<'_>) -> Result<(), ToolError> {
        self.key.def.push(1);
        self.key
            .bytes
            .push(ByteArray::from(row.key.as_bytes().to_vec()));
        self.version.def.push(1);
        self.version.ints.push(row.version);
        self.op.def.push(1);
        self.op
            .bytes
            .push(ByteArray::from(row.op.name().as_bytes().to_vec()));
        self.shard.int(row.shard);
        self.segment.int(row.segment);
        self.offset.int(row.offset);
        self.deleted_at.int(row.op.deleted_at_unix_ns());
        let mut bytes = row.key.len() + 56;
        // Fields of the record not in the schema (a record appended between
        // the two passes while a store runs) are left out; a delete has none.
        let mut seen = 0usize;
        let fields = row.op.record().map(|r| r.iter());
        for (name, v) in fields.into_iter().flatten() {
            let Some(&i) = self.by_name.get(name) else {
                continue;
            };
            let Some(col) = self.fields.get_mut(i) else {
                continue;
            };
            if col.buf.def.len() > self.rows_in_group {
                continue; // duplicate field name: keep the first
            }
            bytes += push_value(col, v, &mut self.scratch);
            seen += 1;
        }
        if seen < self.fields.len() {
            for col in &mut self.fields {
                if col.buf.def.len() == self.rows_in_group {
                    col.buf.null();
                }
            }
        }
        self.rows_in_group += 1;
        self.rows += 1;
        self.bytes_in_group += bytes;
        if self.rows_in_group >= ROW_GROUP_ROWS || self.bytes_in_group >= ROW_GROUP_BYTES {
            self.flush_group()?;
        }
        Ok(())
    }
}

/// Appends one value to its column; returns the bytes buffered.
fn push_value(col: &mut FieldColumn, v: &ArchivedValue, scratch: &mut String) -> usize {
    let b = &mut col.buf;
    match (col.kind, v) {
        (_, ArchivedValue::Null) => {
            b.null();
            0
        }
        (Kind::Bool, ArchivedValue::Bool(x)) => {
            b.def.push(1);
            b.bools.push(*x);
            1
        }
        (Kind::Int, ArchivedValue::Int(x)) => {
            b.def.push(1);
            b.ints.push(x.to_native());
            8
        }
        (Kind::Float, ArchivedValue::Float(x)) => {
            b.def.push(1);
            b.floats.push(x.to_native());
            8
        }
        (Kind::Float, ArchivedValue::Int(x)) => {
            b.def.push(1);
            b.floats.push(x.to_native() as f64);
            8
        }
        (Kind::Str | Kind::Null, ArchivedValue::Str(s)) => {
            b.def.push(1);
            b.bytes.push(ByteArray::from(s.as_bytes().to_vec()));
            s.len()
        }
        (Kind::Bytes, ArchivedValue::Bytes(x)) => {
            b.def.push(1);
            b.bytes.push(ByteArray::from(x.as_slice().to_vec()));
            x.len()
        }
        (Kind::Json, v) => {
            scratch.clear();
            v.write_json(scratch);
            b.def.push(1);
            b.bytes.push(ByteArray::from(scratch.as_bytes().to_vec()));
            scratch.len()
        }
        // A kind the schema pass did not see (the log grew between passes).
        _ => {
            b.null();
            0
        }
    }
}

/// Writes the Parquet export; returns (rows, problems skipped).
pub fn write(
    source: &Source,
    latest: Option<&Latest>,
    out: &Path,
    progress: bool,
    warn: &mut dyn Write,
) -> Result<(u64, u64), ToolError> {
    let total: u64 = source
        .segments
        .iter()
        .map(|s| std::fs::metadata(&s.path).map_or(0, |m| m.len()))
        .sum();
    let mut schema = SchemaPass::default();
    let problems = match latest {
        Some(l) => {
            l.rows(&mut schema)?;
            0
        }
        None => {
            let mut p = Progress::new(progress, total, "export pass 1/2 (schema)");
            let n = history_rows(source, &mut schema, Some(warn), &mut p)?;
            p.finish();
            n
        }
    };
    let mut pass = WritePass::new(out, schema.fields)?;
    match latest {
        Some(l) => l.rows(&mut pass)?,
        None => {
            let mut p = Progress::new(progress, total, "export pass 2/2 (rows)");
            history_rows(source, &mut pass, None, &mut p)?;
            p.finish();
        }
    }
    Ok((pass.close()?, problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_merge_to_the_narrowest_common_column() {
        assert_eq!(merge(Kind::Null, Kind::Int), Kind::Int);
        assert_eq!(merge(Kind::Int, Kind::Int), Kind::Int);
        assert_eq!(merge(Kind::Int, Kind::Float), Kind::Float);
        assert_eq!(merge(Kind::Float, Kind::Int), Kind::Float);
        assert_eq!(merge(Kind::Str, Kind::Int), Kind::Json);
        assert_eq!(merge(Kind::Bytes, Kind::Str), Kind::Json);
        assert_eq!(merge(Kind::Json, Kind::Null), Kind::Json);
    }

    #[test]
    fn field_names_never_collide_with_fixed_columns() {
        let cols: Vec<FieldColumn> = ["key", "field_key", "", "x"]
            .iter()
            .map(|n| FieldColumn {
                field: (*n).to_owned(),
                kind: Kind::Int,
                buf: ColumnBuf::default(),
            })
            .collect();
        let names: Vec<String> = column_types(&cols)
            .unwrap()
            .iter()
            .map(|t| t.name().to_owned())
            .collect();
        let unique: HashSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert_eq!(&names[7..], ["field_key", "field_field_key", "field_", "x"]);
    }
}
