//! `RecordRef`: the cheap, ref-counted handle `get` returns. It owns (shares)
//! the archived bytes of one record; reading a field is a pointer walk into
//! them, never a copy.

use std::sync::Arc;

use rkyv::rancor;
use rkyv::util::AlignedVec;

use std::num::NonZeroUsize;

use rkyv::validation::Validator;
use rkyv::validation::archive::ArchiveValidator;
use rkyv::validation::shared::SharedValidator;

use crate::buffer_pool::BufferPool;
use crate::record::{ArchivedRecord, ArchivedValue, Record};

/// Deepest nesting of archived subtrees that validation follows. A stored
/// record nests at most `MAX_VALUE_DEPTH` (64) values, and each level is a
/// few subtrees (a map's B-tree adds about one per 4x entries): 64 levels of
/// maps with 150 000 entries each, the most a 256 MiB record can hold, need
/// under 600. The bound keeps validation's recursion far inside a 2 MiB
/// thread stack.
pub(crate) const MAX_VALIDATION_DEPTH: usize = 1024;

/// Whether an archived value nests deeper than `limit` levels (`limit` ≥ 1),
/// like `Value::deeper_than`; recursion stops at the limit.
fn archived_deeper_than(value: &ArchivedValue, limit: usize) -> bool {
    if limit == 0 {
        return true;
    }
    match value {
        ArchivedValue::List(items) => items.iter().any(|v| archived_deeper_than(v, limit - 1)),
        ArchivedValue::Map(map) => map.values().any(|v| archived_deeper_than(v, limit - 1)),
        _ => false,
    }
}

/// Archived bytes that are known to hold a valid `ArchivedRecord`: either
/// serialized by this process or checked with bytecheck when read from disk.
#[derive(Debug)]
struct Stored {
    key: Box<str>,
    version: i64,
    bytes: AlignedVec<16>,
    /// Where `bytes` go when the last handle drops (records serialized by
    /// `put`; records read from disk are freed).
    pool: Option<Arc<BufferPool>>,
}

impl Drop for Stored {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.give(std::mem::take(&mut self.bytes));
        }
    }
}

/// A shared handle to one stored record (the newest version of its key at the
/// time of the `get`). Cloning it is one atomic increment.
#[derive(Debug, Clone)]
pub struct RecordRef(Arc<Stored>);

/// Why archived bytes read from disk were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPayload(pub String);

impl RecordRef {
    /// Wraps bytes this process just serialized from a `Record`; they go
    /// back to `pool` when the last handle drops.
    pub(crate) fn from_serialized(
        key: Box<str>,
        version: i64,
        bytes: AlignedVec<16>,
        pool: &Arc<BufferPool>,
    ) -> Self {
        debug_assert!(rkyv::access::<ArchivedRecord, rancor::Error>(&bytes).is_ok());
        RecordRef(Arc::new(Stored {
            key,
            version,
            bytes,
            pool: Some(Arc::clone(pool)),
        }))
    }

    /// Copies untrusted payload bytes (from disk) into aligned memory and
    /// validates them; only then can they back a `RecordRef`.
    ///
    /// Validation recurses once per nested archived subtree, so it is bounded
    /// (1024 nested subtrees): a forged payload nesting lists a million
    /// levels deep is refused instead of overflowing the stack (an abort,
    /// not a panic). A record nesting values deeper than
    /// [`MAX_VALUE_DEPTH`](crate::MAX_VALUE_DEPTH), which no put can store,
    /// is refused too.
    pub fn from_untrusted(key: &str, version: i64, payload: &[u8]) -> Result<Self, InvalidPayload> {
        let mut bytes = AlignedVec::<16>::with_capacity(payload.len());
        bytes.extend_from_slice(payload);
        let mut validator = Validator::new(
            ArchiveValidator::with_max_depth(&bytes, NonZeroUsize::new(MAX_VALIDATION_DEPTH)),
            SharedValidator::new(),
        );
        let archived = rkyv::api::access_with_context::<ArchivedRecord, _, rancor::Error>(
            &bytes,
            &mut validator,
        )
        .map_err(|e| InvalidPayload(e.to_string()))?;
        if archived
            .iter()
            .any(|(_, v)| archived_deeper_than(v, crate::record::MAX_VALUE_DEPTH))
        {
            return Err(InvalidPayload(format!(
                "values nest deeper than {} levels",
                crate::record::MAX_VALUE_DEPTH
            )));
        }
        Ok(RecordRef(Arc::new(Stored {
            key: key.into(),
            version,
            bytes,
            pool: None,
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
        self.archived().to_record()
    }

    /// The record as one JSON object.
    pub fn to_json(&self) -> String {
        self.archived().to_json()
    }
}
