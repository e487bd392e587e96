//! JSON text for output lines: string literals and archived values (the same
//! rendering as `ArchivedRecord::write_json`: non-finite floats are `null`,
//! bytes are lowercase hex).

use std::fmt::Write as _;

use ringstore::ArchivedValue;

/// Appends `s` as a JSON string literal (the library's own escaping).
pub fn push_str(s: &str, out: &mut String) {
    ringstore::inspect::write_json_str(s, out);
}

/// Appends one archived value as JSON.
pub fn push_value(value: &ArchivedValue, out: &mut String) {
    match value {
        ArchivedValue::Null => out.push_str("null"),
        ArchivedValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        ArchivedValue::Int(i) => {
            let _ = write!(out, "{}", i.to_native());
        }
        ArchivedValue::Float(f) => {
            let f = f.to_native();
            if f.is_finite() {
                let _ = write!(out, "{f:?}");
            } else {
                out.push_str("null");
            }
        }
        ArchivedValue::Str(s) => push_str(s.as_str(), out),
        ArchivedValue::Bytes(b) => {
            out.push('"');
            push_hex(b.as_slice(), out);
            out.push('"');
        }
        ArchivedValue::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_value(item, out);
            }
            out.push(']');
        }
        ArchivedValue::Map(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_str(k.as_str(), out);
                out.push(':');
                push_value(v, out);
            }
            out.push('}');
        }
    }
}

/// Appends `bytes` as lowercase hex.
pub fn push_hex(bytes: &[u8], out: &mut String) {
    out.reserve(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
}
