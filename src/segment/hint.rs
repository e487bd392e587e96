//! Hint files: a small index written next to a segment when it is sealed,
//! `<seq:020>.hint`, holding the newest frame of each key in that segment
//! (key, version, generation, lsn, offset, length, and whether it is a
//! delete) plus the segment's totals.
//! Recovery ranks keys from hints without reading payloads, then reads only
//! the winning frames. A hint is checked as a whole (CRC32C); a missing,
//! damaged or mismatched hint just means the segment is scanned instead.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use crate::layout::hint_path;

use crate::segment::format::{FormatError, MAX_FRAME_LEN, MAX_KEY_BYTES, align_up};

/// First 8 bytes of every hint file.
pub const HINT_MAGIC: [u8; 8] = *b"RINGHINT";
/// Version of the hint format: version 2 adds the entry flags (a delete).
/// Version 1 hints are still read.
pub const HINT_VERSION: u32 = 2;
/// Entry flag (version 2): the newest frame of the key is a delete.
const ENTRY_DELETE: u8 = 1;
const HEADER_LEN: usize = 56;
const ENTRY_FIXED_LEN: usize = 40;
/// Largest hint accepted from disk (bounds the allocation before the CRC).
const MAX_HINT_BYTES: u64 = 1 << 30;

/// Where the newest frame of one key sits in the segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HintEntry {
    /// The key.
    pub key: Box<str>,
    /// The frame's version.
    pub version: i64,
    /// The frame's generation.
    pub generation: u64,
    /// The frame's lsn.
    pub lsn: u64,
    /// Byte offset of the frame in the segment.
    pub offset: u64,
    /// Frame length (`len` field).
    pub len: u32,
    /// Whether the frame is a delete.
    pub deleted: bool,
}

impl HintEntry {
    fn rank(&self) -> (i64, u64, u64) {
        (self.version, self.generation, self.lsn)
    }
}

/// A segment's summary: totals plus the newest frame of each key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hint {
    /// Length of the segment file the hint describes; a hint whose segment
    /// has another length is stale and ignored.
    pub segment_len: u64,
    /// Frames in the segment (every put, stale ones too).
    pub frames: u64,
    /// Lowest version in the segment (`i64::MAX` when empty).
    pub min_version: i64,
    /// Highest version in the segment (`i64::MIN` when empty).
    pub max_version: i64,
    /// Newest frame of each key.
    pub entries: Vec<HintEntry>,
}

/// Collects a hint while a segment is written.
#[derive(Debug)]
pub(crate) struct HintBuilder {
    newest: HashMap<Box<str>, HintEntry>,
    frames: u64,
    min_version: i64,
    max_version: i64,
}

impl Default for HintBuilder {
    fn default() -> Self {
        HintBuilder {
            newest: HashMap::new(),
            frames: 0,
            min_version: i64::MAX,
            max_version: i64::MIN,
        }
    }
}

impl HintBuilder {
    /// Notes one appended frame (a delete when `deleted`).
    #[expect(clippy::too_many_arguments, reason = "one frame's fields, named")]
    pub fn add(
        &mut self,
        deleted: bool,
        key: &str,
        version: i64,
        generation: u64,
        lsn: u64,
        offset: u64,
        len: u32,
    ) {
        self.frames += 1;
        self.min_version = self.min_version.min(version);
        self.max_version = self.max_version.max(version);
        let entry = HintEntry {
            key: key.into(),
            version,
            generation,
            lsn,
            offset,
            len,
            deleted,
        };
        match self.newest.get_mut(key) {
            Some(e) if e.rank() > entry.rank() => {}
            Some(e) => *e = entry,
            None => {
                self.newest.insert(key.into(), entry);
            }
        }
    }

    /// The finished hint for a segment of `segment_len` bytes.
    pub fn finish(self, segment_len: u64) -> Hint {
        let mut entries: Vec<HintEntry> = self.newest.into_values().collect();
        entries.sort_by_key(|e| e.offset);
        Hint {
            segment_len,
            frames: self.frames,
            min_version: self.min_version,
            max_version: self.max_version,
            entries,
        }
    }
}

impl Hint {
    /// Encodes the whole hint file.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.entries.len() * 64 + 8);
        out.extend_from_slice(&HINT_MAGIC);
        out.extend_from_slice(&HINT_VERSION.to_le_bytes());
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.segment_len.to_le_bytes());
        out.extend_from_slice(&self.frames.to_le_bytes());
        out.extend_from_slice(&self.min_version.to_le_bytes());
        out.extend_from_slice(&self.max_version.to_le_bytes());
        out.extend_from_slice(&[0u8; 8]);
        debug_assert_eq!(out.len(), HEADER_LEN);
        for e in &self.entries {
            out.extend_from_slice(&(e.key.len() as u16).to_le_bytes());
            let flags = if e.deleted { ENTRY_DELETE } else { 0 };
            out.extend_from_slice(&[flags, 0]);
            out.extend_from_slice(&e.len.to_le_bytes());
            out.extend_from_slice(&e.offset.to_le_bytes());
            out.extend_from_slice(&e.version.to_le_bytes());
            out.extend_from_slice(&e.generation.to_le_bytes());
            out.extend_from_slice(&e.lsn.to_le_bytes());
            out.extend_from_slice(e.key.as_bytes());
            out.resize(align_up(out.len(), 8), 0);
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        debug_assert_eq!(Hint::decode(&out).as_ref(), Ok(self));
        out
    }

    /// Decodes and checks a hint file.
    pub fn decode(bytes: &[u8]) -> Result<Hint, FormatError> {
        let truncated = |needed: usize| FormatError::Truncated {
            needed,
            available: bytes.len(),
        };
        if bytes.len() < HEADER_LEN + 4 {
            return Err(truncated(HEADER_LEN + 4));
        }
        let body_len = bytes.len() - 4;
        let body = bytes.get(..body_len).ok_or(truncated(body_len))?;
        let stored = u32_at(bytes, body_len);
        let computed = crc32c::crc32c(body);
        if stored != computed {
            return Err(FormatError::ChecksumMismatch { stored, computed });
        }
        if body.get(..8) != Some(&HINT_MAGIC[..]) {
            return Err(FormatError::BadMagic);
        }
        let version = u32_at(body, 8);
        if !(1..=HINT_VERSION).contains(&version) {
            return Err(FormatError::UnsupportedVersion(version));
        }
        let count = u32_at(body, 12) as usize;
        let mut hint = Hint {
            segment_len: u64_at(body, 16),
            frames: u64_at(body, 24),
            min_version: u64_at(body, 32) as i64,
            max_version: u64_at(body, 40) as i64,
            entries: Vec::with_capacity(count.min(body_len / ENTRY_FIXED_LEN)),
        };
        let mut at = HEADER_LEN;
        for _ in 0..count {
            let key_len = u16_at(body, at) as usize;
            if key_len == 0 || key_len > MAX_KEY_BYTES {
                return Err(FormatError::BadField {
                    field: "hint key_len",
                    value: key_len as u64,
                });
            }
            let flags = body.get(at + 2).copied().unwrap_or(0);
            let known = if version >= 2 { ENTRY_DELETE } else { 0 };
            if flags & !known != 0 {
                return Err(FormatError::BadField {
                    field: "hint flags",
                    value: flags.into(),
                });
            }
            let len = u32_at(body, at + 4);
            if (len as usize) > MAX_FRAME_LEN {
                return Err(FormatError::BadField {
                    field: "hint len",
                    value: len.into(),
                });
            }
            let key_at = at + ENTRY_FIXED_LEN;
            let key = body
                .get(key_at..key_at + key_len)
                .ok_or(truncated(key_at + key_len))?;
            let key = std::str::from_utf8(key).map_err(|_| FormatError::KeyNotUtf8)?;
            hint.entries.push(HintEntry {
                key: key.into(),
                version: u64_at(body, at + 16) as i64,
                generation: u64_at(body, at + 24),
                lsn: u64_at(body, at + 32),
                offset: u64_at(body, at + 8),
                len,
                deleted: flags & ENTRY_DELETE != 0,
            });
            at = align_up(key_at + key_len, 8);
        }
        if at != body_len {
            return Err(FormatError::BadField {
                field: "hint length",
                value: body_len as u64,
            });
        }
        Ok(hint)
    }

    /// Reads the hint of `segment`, if there is a valid one for a segment of
    /// `segment_len` bytes. Any problem means "no hint": the caller scans.
    pub fn load(segment: &Path, segment_len: u64) -> Option<Hint> {
        let path = hint_path(segment);
        let len = fs::metadata(&path).ok()?.len();
        if len > MAX_HINT_BYTES {
            return None;
        }
        let bytes = fs::read(&path).ok()?;
        match Hint::decode(&bytes) {
            Ok(h) if h.segment_len == segment_len => Some(h),
            Ok(_) => {
                log::warn!(
                    "{}: hint describes another segment length; scanning instead",
                    path.display()
                );
                None
            }
            Err(e) => {
                log::warn!("{}: unusable hint ({e}); scanning instead", path.display());
                None
            }
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(at..at + 2) {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hint_round_trips_and_keeps_the_newest_per_key() {
        let mut b = HintBuilder::default();
        b.add(false, "a", 5, 1, 1, 4096, 100);
        b.add(false, "b", 7, 1, 2, 8192, 100);
        b.add(true, "a", 5, 1, 3, 12288, 100);
        b.add(false, "a", 4, 1, 4, 16384, 100);
        let h = b.finish(20480);
        assert_eq!(h.frames, 4);
        assert_eq!((h.min_version, h.max_version), (4, 7));
        let a = h.entries.iter().find(|e| &*e.key == "a").unwrap();
        assert_eq!(a.offset, 12288, "tie on version goes to the later lsn");
        assert!(a.deleted, "the newest frame of `a` is its delete");
        let bytes = h.encode();
        assert_eq!(Hint::decode(&bytes).unwrap(), h);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(Hint::decode(&bad).is_err(), "flip at {i} unnoticed");
        }
        assert!(Hint::decode(&bytes[..bytes.len() - 3]).is_err());
    }
}
