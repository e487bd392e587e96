//! `RecordRef`: the cheap, ref-counted handle `get` returns. It owns (shares)
//! the archived bytes of one record; reading a field is a pointer walk into
//! them, never a copy.

use std::sync::Arc;

use rkyv::rancor;
use rkyv::util::AlignedVec;

use crate::record::{ArchivedRecord, Record};

/// Archived bytes that are known to hold a valid `ArchivedRecord`: either
/// serialized by this process or checked with bytecheck when read from disk.
#[derive(Debug)]
struct Stored {
    key: Box<str>,
    version: i64,
    bytes: AlignedVec<16>,
}

/// A shared handle to one stored record (the newest version of its key at the
/// time of the `get`). Cloning it is one atomic increment.
#[derive(Debug, Clone)]
pub struct RecordRef(Arc<Stored>);

/// Why archived bytes read from disk were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPayload(pub String);

impl RecordRef {
    /// Wraps bytes this process just serialized from a `Record`.
    pub(crate) fn from_serialized(key: Box<str>, version: i64, bytes: AlignedVec<16>) -> Self {
        debug_assert!(rkyv::access::<ArchivedRecord, rancor::Error>(&bytes).is_ok());
        RecordRef(Arc::new(Stored {
            key,
            version,
            bytes,
        }))
    }

    /// Copies untrusted payload bytes (from disk) into aligned memory and
    /// validates them; only then can they back a `RecordRef`.
    pub fn from_untrusted(key: &str, version: i64, payload: &[u8]) -> Result<Self, InvalidPayload> {
        let mut bytes = AlignedVec::<16>::with_capacity(payload.len());
        bytes.extend_from_slice(payload);
        rkyv::access::<ArchivedRecord, rancor::Error>(&bytes)
            .map_err(|e| InvalidPayload(e.to_string()))?;
        Ok(RecordRef(Arc::new(Stored {
            key: key.into(),
            version,
            bytes,
        })))
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.0.key
    }

    /// The record's version (the value of its version field).
    pub fn version(&self) -> i64 {
        self.0.version
    }

    /// The archived bytes (as written in the frame payload).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0.bytes
    }

    /// The archived record, read in place (zero-copy).
    #[expect(
        unsafe_code,
        reason = "validated once at construction; re-validating each read costs O(record size)"
    )]
    pub fn archived(&self) -> &ArchivedRecord {
        // SAFETY: `Stored` is only built by `from_serialized` (bytes produced by
        // rkyv from a `Record` in this process) or `from_untrusted` (bytes that
        // passed `rkyv::access` validation). The bytes are never mutated after
        // construction and stay 16-aligned in their `AlignedVec`, so they are a
        // valid `ArchivedRecord` for as long as `self` lives.
        unsafe { rkyv::access_unchecked::<ArchivedRecord>(&self.0.bytes) }
    }

    /// An owned copy of the record.
    pub fn to_record(&self) -> Record {
        // Deserializing a validated archive into owned types cannot fail; the
        // fallback keeps this path free of panics all the same.
        rkyv::deserialize::<Record, rancor::Error>(self.archived()).unwrap_or_default()
    }

    /// The record as one JSON object.
    pub fn to_json(&self) -> String {
        self.archived().to_json()
    }
}
