//! The record model: the seed's `map[string]interface{}` as an ordered map of
//! field name → [`Value`], archived with rkyv so a stored record is read in
//! place, without deserializing.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rkyv::{Archive, Deserialize, Serialize};

/// A dynamic value: what one field of a record holds.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(serialize_bounds(
    __S: rkyv::ser::Writer + rkyv::ser::Allocator,
    __S::Error: rkyv::rancor::Source,
))]
#[rkyv(deserialize_bounds(__D::Error: rkyv::rancor::Source))]
#[rkyv(bytecheck(bounds(__C: rkyv::validation::ArchiveContext)))]
#[rkyv(derive(Debug))]
pub enum Value {
    /// No value (JSON `null`).
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A UTF-8 string.
    Str(String),
    /// Raw bytes (JSON: a lowercase hex string).
    Bytes(Vec<u8>),
    /// An ordered list of values.
    List(#[rkyv(omit_bounds)] Vec<Value>),
    /// A nested map.
    Map(#[rkyv(omit_bounds)] BTreeMap<String, Value>),
}

impl Value {
    /// The name of this value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "Null",
            Value::Bool(_) => "Bool",
            Value::Int(_) => "Int",
            Value::Float(_) => "Float",
            Value::Str(_) => "Str",
            Value::Bytes(_) => "Bytes",
            Value::List(_) => "List",
            Value::Map(_) => "Map",
        }
    }
}

macro_rules! value_from {
    ($($t:ty => $variant:ident($conv:expr)),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$variant($conv(v))
            }
        })*
    };
}

value_from! {
    bool => Bool(|v| v),
    i64 => Int(|v| v),
    i32 => Int(i64::from),
    u32 => Int(i64::from),
    f64 => Float(|v| v),
    String => Str(|v| v),
    &str => Str(str::to_owned),
    Vec<u8> => Bytes(|v| v),
    Vec<Value> => List(|v| v),
}

/// Deepest nesting of `List`/`Map` values a record may hold (a top-level
/// scalar field is depth 1). Bounds the recursion of serialization,
/// validation and JSON rendering.
pub const MAX_VALUE_DEPTH: usize = 64;

impl Value {
    /// Whether this value nests deeper than `limit` levels (`limit` ≥ 1).
    /// Recursion stops at the limit, so the check itself is bounded.
    /// A close upper estimate of this value's archived bytes (see
    /// [`Record::archived_size_hint`]). Recursion depth is the value's
    /// nesting depth: call it only on records that passed `too_deep`.
    fn archived_size_hint(&self) -> usize {
        match self {
            Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => 0,
            // Strings of up to 8 bytes are stored inline.
            Value::Str(s) if s.len() <= 8 => 0,
            Value::Str(s) => s.len() + 4,
            Value::Bytes(b) => b.len() + 8,
            Value::List(items) => {
                items
                    .iter()
                    .map(|v| v.archived_size_hint() + 16)
                    .sum::<usize>()
                    + 8
            }
            Value::Map(map) => map_size_hint(map),
        }
    }

    fn deeper_than(&self, limit: usize) -> bool {
        if limit == 0 {
            return true;
        }
        match self {
            Value::List(items) => items.iter().any(|v| v.deeper_than(limit - 1)),
            Value::Map(map) => map.values().any(|v| v.deeper_than(limit - 1)),
            _ => false,
        }
    }
}

/// Archived bytes of a map: per entry the name, the inline value and a
/// share of the B-tree node, plus out-of-line data.
fn map_size_hint(map: &BTreeMap<String, Value>) -> usize {
    map.iter()
        .map(|(name, value)| name.len() + 28 + value.archived_size_hint())
        .sum::<usize>()
        + 32
}

/// A record: field name → value, ordered by field name. One top-level field
/// (by default `collection_time`, see `Config::version_field`) holds the
/// record's integer version.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[rkyv(derive(Debug))]
pub struct Record {
    fields: BTreeMap<String, Value>,
}

impl Record {
    /// An empty record.
    pub fn new() -> Self {
        Record::default()
    }

    /// Sets `field` to `value`, returning the record (builder style).
    pub fn with(mut self, field: impl Into<String>, value: impl Into<Value>) -> Self {
        self.insert(field, value);
        self
    }

    /// Sets `field` to `value`, returning the previous value.
    pub fn insert(&mut self, field: impl Into<String>, value: impl Into<Value>) -> Option<Value> {
        self.fields.insert(field.into(), value.into())
    }

    /// The value of `field`.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.fields.get(field)
    }

    /// Number of top-level fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the record has no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The fields in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.fields.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Whether some value nests deeper than [`MAX_VALUE_DEPTH`].
    pub fn too_deep(&self) -> bool {
        self.fields.values().any(|v| v.deeper_than(MAX_VALUE_DEPTH))
    }

    /// A close upper estimate of the archived size, so `put` serializes into
    /// a buffer of the right size at once: no regrowth (each regrowth is a
    /// copy of everything serialized so far) and no slack kept alive in the
    /// map (doubling would leave up to half of each stored record unused).
    /// Only for records that passed `too_deep` (the estimate recurses).
    pub(crate) fn archived_size_hint(&self) -> usize {
        // A margin: falling short by one byte would double the buffer.
        let estimate = map_size_hint(&self.fields) + 128;
        estimate + estimate / 32
    }
}

impl FromIterator<(String, Value)> for Record {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        Record {
            fields: iter.into_iter().collect(),
        }
    }
}

impl ArchivedRecord {
    /// The archived value of `field`, read in place.
    pub fn get(&self, field: &str) -> Option<&ArchivedValue> {
        self.fields.get(field)
    }

    /// The archived fields in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ArchivedValue)> {
        self.fields.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of top-level fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the record has no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Appends the record as one JSON object to `out` (no trailing newline).
    /// Non-finite floats become `null`; bytes become a lowercase hex string.
    pub fn write_json(&self, out: &mut String) {
        write_json_map(self.fields.iter().map(|(k, v)| (k.as_str(), v)), out);
    }

    /// The record as one JSON object.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out);
        out
    }
    /// An owned copy of the record. A plain walk over the archive: it cannot
    /// fail, so no fallback value exists that could stand in for a record.
    pub fn to_record(&self) -> Record {
        self.fields
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_value()))
            .collect()
    }
}

fn write_json_map<'a>(
    entries: impl Iterator<Item = (&'a str, &'a ArchivedValue)>,
    out: &mut String,
) {
    out.push('{');
    for (i, (k, v)) in entries.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_str(k, out);
        out.push(':');
        write_json_value(v, out);
    }
    out.push('}');
}

impl ArchivedValue {
    /// Appends the value as JSON to `out` (same rules as
    /// [`ArchivedRecord::write_json`]).
    pub fn write_json(&self, out: &mut String) {
        write_json_value(self, out);
    }
}

impl ArchivedValue {
    /// An owned copy of the value.
    pub fn to_value(&self) -> Value {
        match self {
            ArchivedValue::Null => Value::Null,
            ArchivedValue::Bool(b) => Value::Bool(*b),
            ArchivedValue::Int(i) => Value::Int(i.to_native()),
            ArchivedValue::Float(f) => Value::Float(f.to_native()),
            ArchivedValue::Str(s) => Value::Str(s.as_str().to_owned()),
            ArchivedValue::Bytes(b) => Value::Bytes(b.as_slice().to_vec()),
            ArchivedValue::List(items) => {
                Value::List(items.iter().map(ArchivedValue::to_value).collect())
            }
            ArchivedValue::Map(map) => Value::Map(
                map.iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.to_value()))
                    .collect(),
            ),
        }
    }
}

fn write_json_value(value: &ArchivedValue, out: &mut String) {
    match value {
        ArchivedValue::Null => out.push_str("null"),
        ArchivedValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        ArchivedValue::Int(i) => {
            let _ = write!(out, "{}", i.to_native());
        }
        ArchivedValue::Float(f) => {
            let f = f.to_native();
            if f.is_finite() {
                // `{:?}` keeps a `.0` on integral floats so readers see a float.
                let _ = write!(out, "{f:?}");
            } else {
                out.push_str("null");
            }
        }
        ArchivedValue::Str(s) => write_json_str(s.as_str(), out),
        ArchivedValue::Bytes(b) => {
            out.push('"');
            for byte in b.iter() {
                let _ = write!(out, "{byte:02x}");
            }
            out.push('"');
        }
        ArchivedValue::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_value(item, out);
            }
            out.push(']');
        }
        ArchivedValue::Map(map) => write_json_map(map.iter().map(|(k, v)| (k.as_str(), v)), out),
    }
}

/// Appends `s` as a JSON string literal.
pub fn write_json_str(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shapes whose archived size the estimate must cover (and not
    /// overshoot by much for the seed's record).
    fn shaped_records() -> Vec<(&'static str, Record)> {
        let seed = (0..50)
            .map(|i| (format!("double_{i:02}"), Value::Float(f64::from(i) * 0.5)))
            .chain((0..50).map(|i| (format!("string_{i:02}"), Value::Str("s".repeat(2048)))))
            .chain([("collection_time".to_owned(), Value::Int(7))])
            .collect::<Record>();
        let tiny = Record::new().with("collection_time", 1i64);
        let many_small = (0..500)
            .map(|i| (format!("f{i}"), Value::Int(i64::from(i))))
            .collect::<Record>();
        let short_strings = (0..300)
            .map(|i| (format!("k{i}"), Value::Str(format!("v{i}"))))
            .collect::<Record>();
        let nested = Record::new()
            .with("collection_time", 1i64)
            .with(
                "list",
                (0..200)
                    .map(|i| Value::List(vec![Value::Int(i), Value::Str("xyz".repeat(20))]))
                    .collect::<Vec<_>>(),
            )
            .with(
                "map",
                Value::Map(
                    (0..100)
                        .map(|i| (format!("m{i}"), Value::Bytes(vec![1; 40])))
                        .collect(),
                ),
            );
        vec![
            ("seed", seed),
            ("tiny", tiny),
            ("many_small", many_small),
            ("short_strings", short_strings),
            ("nested", nested),
        ]
    }

    #[test]
    fn archived_size_hint_covers_the_archived_bytes() {
        for (name, record) in shaped_records() {
            let actual = rkyv::to_bytes::<rkyv::rancor::Error>(&record)
                .expect("serialize")
                .len();
            let hint = record.archived_size_hint();
            eprintln!("{name}: archived {actual}, hint {hint}");
            assert!(hint >= actual, "{name}: hint {hint} < archived {actual}");
            if name == "seed" {
                assert!(
                    hint <= actual + actual / 20,
                    "{name}: hint {hint} vs {actual}"
                );
                // The margin covers strings whose lengths need padding.
                let mut odd = record.clone();
                odd.insert("string_00", "t".repeat(2047));
                odd.insert("string_01", "u".repeat(2045));
                let odd_actual = rkyv::to_bytes::<rkyv::rancor::Error>(&odd)
                    .expect("serialize")
                    .len();
                assert!(odd.archived_size_hint() >= odd_actual);
            }
        }
    }

    #[test]
    fn an_archived_record_converts_back_whole() {
        for (name, record) in shaped_records() {
            let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&record).expect("serialize");
            let archived =
                rkyv::access::<ArchivedRecord, rkyv::rancor::Error>(&bytes).expect("valid archive");
            assert_eq!(archived.to_record(), record, "{name}");
        }
    }

    #[test]
    fn archived_record_renders_as_json() {
        let r = Record::new()
            .with("collection_time", 5i64)
            .with("name", "a\"b\n")
            .with("x", 1.0)
            .with("bad", f64::NAN)
            .with("raw", vec![0u8, 255])
            .with("list", vec![Value::Null, Value::Bool(true)]);
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&r).expect("serialize");
        let archived =
            rkyv::access::<ArchivedRecord, rkyv::rancor::Error>(&bytes).expect("valid archive");
        assert_eq!(
            archived.to_json(),
            r#"{"bad":null,"collection_time":5,"list":[null,true],"name":"a\"b\n","raw":"00ff","x":1.0}"#
        );
    }
}
