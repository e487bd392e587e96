//! The table's schema: one row per frame of the log.
//!
//! | id | column | type | |
//! |---:|---|---|---|
//! | 1 | `instance` | string | the shipper's `--instance` |
//! | 2 | `key` | string | the record's key |
//! | 3 | `version` | long | the record's version (its `version_field`) |
//! | 4 | `op` | string | `put` or `delete` (a versioned delete, format version 4) |
//! | 5 | `shard` | int | index of the `shard-<i>` folder |
//! | 6 | `segment` | long | the segment's seq |
//! | 7 | `offset` | long | the frame's byte offset in the segment |
//! | 8 | `lsn` | long | the frame's log sequence number |
//! | 9 | `generation` | long | the store generation that wrote the frame |
//! | 10 | `record` | string | the whole record as JSON (`Record::to_json`); a delete's is the JSON `null` |
//!
//! All columns are required (so a delete's `record` is the text `null`, not
//! a SQL null: tables created before deletes existed keep their schema). A table created elsewhere is accepted when it
//! has each of these columns, by name, with this type (required or
//! optional), and every other column is optional (written as null).

use std::sync::Arc;

use arrow_schema::SchemaRef as ArrowSchemaRef;
use iceberg::spec::{NestedField, PrimitiveType, Schema, Type};

use crate::error::ShipError;

/// One column the shipper writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// `instance`
    Instance,
    /// `key`
    Key,
    /// `version`
    Version,
    /// `op`
    Op,
    /// `shard`
    Shard,
    /// `segment`
    Segment,
    /// `offset`
    Offset,
    /// `lsn`
    Lsn,
    /// `generation`
    Generation,
    /// `record`
    Record,
}

/// Every column, in schema order, with its name and type.
pub const COLUMNS: [(Column, &str, PrimitiveType); 10] = [
    (Column::Instance, "instance", PrimitiveType::String),
    (Column::Key, "key", PrimitiveType::String),
    (Column::Version, "version", PrimitiveType::Long),
    (Column::Op, "op", PrimitiveType::String),
    (Column::Shard, "shard", PrimitiveType::Int),
    (Column::Segment, "segment", PrimitiveType::Long),
    (Column::Offset, "offset", PrimitiveType::Long),
    (Column::Lsn, "lsn", PrimitiveType::Long),
    (Column::Generation, "generation", PrimitiveType::Long),
    (Column::Record, "record", PrimitiveType::String),
];

/// The schema of a table the shipper creates.
pub fn table_schema() -> Result<Schema, iceberg::Error> {
    let fields = COLUMNS
        .iter()
        .zip(1..)
        .map(|((_, name, t), id)| {
            Arc::new(NestedField::required(id, *name, Type::Primitive(t.clone())))
        })
        .collect::<Vec<_>>();
    Schema::builder().with_fields(fields).build()
}

/// How to fill each column of an existing table: ours, or null.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The Arrow schema of the table's current schema (with field ids).
    pub arrow: ArrowSchemaRef,
    /// For each of its columns, in order: ours, or `None` (null).
    pub columns: Vec<Option<Column>>,
}

/// Checks that `schema` (a table's current schema) can take the shipper's
/// rows; returns how to fill it.
pub fn layout(table: &str, schema: &Schema) -> Result<Layout, ShipError> {
    let incompatible = |reason: String| ShipError::IncompatibleSchema {
        table: table.to_owned(),
        reason,
    };
    let mut columns = Vec::new();
    for field in schema.as_struct().fields() {
        match COLUMNS.iter().find(|(_, name, _)| *name == field.name) {
            Some((col, name, t)) => {
                if *field.field_type != Type::Primitive(t.clone()) {
                    return Err(incompatible(format!(
                        "column {name:?} is {} where the shipper writes {t}",
                        field.field_type
                    )));
                }
                columns.push(Some(*col));
            }
            None if field.required => {
                return Err(incompatible(format!(
                    "required column {:?} is not one the shipper writes",
                    field.name
                )));
            }
            None => columns.push(None),
        }
    }
    for (_, name, _) in COLUMNS {
        if schema.field_by_name(name).is_none() {
            return Err(incompatible(format!("column {name:?} is missing")));
        }
    }
    let arrow = iceberg::arrow::schema_to_arrow_schema(schema)
        .map_err(|e| incompatible(format!("no Arrow form: {e}")))?;
    Ok(Layout {
        arrow: Arc::new(arrow),
        columns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_created_schema_is_compatible_with_itself() {
        let s = table_schema().unwrap();
        let l = layout("ns.t", &s).unwrap();
        assert_eq!(l.columns.len(), COLUMNS.len());
        assert!(l.columns.iter().all(Option::is_some));
    }

    #[test]
    fn a_wrong_type_or_a_missing_column_is_refused() {
        let wrong = Schema::builder()
            .with_fields(vec![Arc::new(NestedField::required(
                1,
                "key",
                Type::Primitive(PrimitiveType::Long),
            ))])
            .build()
            .unwrap();
        let e = layout("ns.t", &wrong).unwrap_err();
        assert!(e.to_string().contains("\"key\" is long"), "{e}");
        let missing = Schema::builder()
            .with_fields(vec![Arc::new(NestedField::required(
                1,
                "key",
                Type::Primitive(PrimitiveType::String),
            ))])
            .build()
            .unwrap();
        let e = layout("ns.t", &missing).unwrap_err();
        assert!(matches!(e, ShipError::IncompatibleSchema { .. }), "{e}");
    }

    #[test]
    fn extra_optional_columns_are_filled_with_nulls() {
        let mut fields: Vec<_> = table_schema().unwrap().as_struct().fields().to_vec();
        fields.push(Arc::new(NestedField::optional(
            11,
            "collection_time",
            Type::Primitive(PrimitiveType::Long),
        )));
        let s = Schema::builder().with_fields(fields).build().unwrap();
        let l = layout("ns.t", &s).unwrap();
        assert_eq!(l.columns.last(), Some(&None));
    }
}
