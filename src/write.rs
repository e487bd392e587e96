//! One write to a key as it travels from the caller to the log and the map:
//! a put's record, or a versioned delete's tombstone. Both win or lose by
//! (version, rank) alike; a tombstone holds no record, so after it wins the
//! key reads as absent while its version still makes older puts `Stale`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::record_ref::RecordRef;
use crate::segment::format::{DELETE_PAYLOAD_LEN, FrameKind};

/// A versioned delete of one key.
#[derive(Debug)]
pub(crate) struct Tombstone {
    key: Box<str>,
    version: i64,
    /// The deletion time, nanoseconds since the Unix epoch, little-endian:
    /// the delete frame's payload.
    deleted_at: [u8; DELETE_PAYLOAD_LEN],
}

impl Tombstone {
    /// A delete of `key` at `version`, made now.
    pub fn now(key: &str, version: i64) -> Self {
        let ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Self::at(key, version, ns)
    }

    /// A delete of `key` at `version` made at `unix_ns` (read from a frame).
    pub fn at(key: &str, version: i64, unix_ns: u64) -> Self {
        Tombstone {
            key: key.into(),
            version,
            deleted_at: unix_ns.to_le_bytes(),
        }
    }

    /// When the delete was made, nanoseconds since the Unix epoch.
    pub fn deleted_at_unix_ns(&self) -> u64 {
        u64::from_le_bytes(self.deleted_at)
    }
}

/// A put's record or a delete's tombstone.
#[derive(Debug, Clone)]
pub(crate) enum Write {
    /// A put.
    Put(RecordRef),
    /// A versioned delete.
    Delete(Arc<Tombstone>),
}

impl Write {
    /// The key written.
    pub fn key(&self) -> &str {
        match self {
            Write::Put(r) => r.key(),
            Write::Delete(t) => &t.key,
        }
    }

    /// Its version.
    pub fn version(&self) -> i64 {
        match self {
            Write::Put(r) => r.version(),
            Write::Delete(t) => t.version,
        }
    }

    /// The frame payload: the archived record, or the deletion time.
    pub fn payload(&self) -> &[u8] {
        match self {
            Write::Put(r) => r.as_bytes(),
            Write::Delete(t) => &t.deleted_at,
        }
    }

    /// The frame kind.
    pub fn kind(&self) -> FrameKind {
        match self {
            Write::Put(_) => FrameKind::Put,
            Write::Delete(_) => FrameKind::Delete,
        }
    }

    /// The record, unless this is a delete.
    pub fn record(&self) -> Option<&RecordRef> {
        match self {
            Write::Put(r) => Some(r),
            Write::Delete(_) => None,
        }
    }

    /// A delete's tombstone.
    pub fn tombstone(&self) -> Option<&Tombstone> {
        match self {
            Write::Put(_) => None,
            Write::Delete(t) => Some(t),
        }
    }
}
