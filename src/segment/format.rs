//! The on-disk format, byte by byte (see `docs/FORMAT.md`): the segment header
//! block and the frame. This module is the only place that encodes or decodes
//! them; the writer, recovery, the log tool and the tests all go through it.
//!
//! Every integer is fixed-width little-endian. Bytes read from disk are
//! untrusted: lengths are bounded before use and checksums are checked before
//! any field is believed.

use std::fmt;

/// First 8 bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"RINGSEG\0";
/// Version of this format, written into every new segment; bumped on any
/// incompatible change. Version 2 binds each frame to its segment (the CRC
/// continues over the segment's seq), so a segment may reuse the file of a
/// retired one. Version 3 starts every group commit with a mark frame that
/// records how much of the segment was durable when the batch was staged
/// ([`KIND_MARK`]). Version 4 adds deletes ([`KIND_DELETE`]). Versions 1 to
/// 3 are still read.
pub const FORMAT_VERSION: u32 = 4;
/// First format version whose batches start with a mark frame.
pub const MARKS_FROM_VERSION: u32 = 3;
/// Oldest format version this build reads.
pub const MIN_FORMAT_VERSION: u32 = 1;
/// Header flag (version 2 and later): the segment reuses a spare file.
const FLAG_REUSED: u32 = 1;
/// Smallest block size: every group commit starts on a multiple of the block
/// size, which is at least this and at least the device's direct-I/O
/// alignment. The header occupies the whole first block.
pub const MIN_BLOCK_SIZE: u32 = 4096;
/// Largest block size accepted from a header.
pub const MAX_BLOCK_SIZE: u32 = 1 << 20;
/// Bytes of the header that carry fields (the rest of the block is zero).
pub const HEADER_LEN: usize = 64;
/// Bytes of a frame before its key.
pub const FRAME_HEADER_LEN: usize = 40;
/// Frames start on multiples of this.
pub const FRAME_ALIGN: usize = 8;
/// Largest key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest serialized record the format accepts (`Config::max_record_bytes`
/// may only lower it).
pub const MAX_RECORD_BYTES_LIMIT: usize = 256 << 20;
/// Largest frame the format accepts.
pub const MAX_FRAME_LEN: usize = payload_offset(MAX_KEY_BYTES) + MAX_RECORD_BYTES_LIMIT;
/// Frame kind: one put.
pub const KIND_PUT: u8 = 1;
/// Frame kind (version 3): the mark that starts a group commit. No key; an
/// 8-byte payload, `durable_through`: the segment offset below which every
/// byte was durable (its write completed, then an fdatasync that started
/// after it completed, or an `O_DSYNC` write) when the batch was staged.
/// Recovery reads it to tell a power cut's torn tail from corruption.
pub const KIND_MARK: u8 = 2;
/// Frame kind (version 4): a versioned delete (a tombstone). Laid out like a
/// put whose payload is 8 bytes: the deletion time, nanoseconds since the
/// Unix epoch (little-endian), which decides when compaction may forget the
/// tombstone.
pub const KIND_DELETE: u8 = 3;
/// Payload bytes of a delete frame.
pub const DELETE_PAYLOAD_LEN: usize = 8;
/// Bytes of a mark frame (header and its 8-byte payload).
pub const MARK_LEN: usize = FRAME_HEADER_LEN + 8;
/// Frame flag (byte 9): the first frame of its group commit.
pub const FLAG_BATCH_START: u8 = 1;

const _: () = assert!(HEADER_LEN <= MIN_BLOCK_SIZE as usize);
const _: () = assert!(MIN_BLOCK_SIZE as usize % FRAME_ALIGN == 0);
const _: () = assert!(FRAME_HEADER_LEN % FRAME_ALIGN == 0);
const _: () = assert!(MAX_KEY_BYTES <= u16::MAX as usize);
const _: () = assert!(MAX_FRAME_LEN <= u32::MAX as usize);

/// Rounds `v` up to a multiple of `align` (a power of two).
pub const fn align_up(v: usize, align: usize) -> usize {
    (v + align - 1) & !(align - 1)
}

/// Offset of the payload inside a frame whose key has `key_len` bytes; it is
/// 8-aligned so an archived record can be read in place.
pub const fn payload_offset(key_len: usize) -> usize {
    align_up(FRAME_HEADER_LEN + key_len, FRAME_ALIGN)
}

/// Exact length of a frame (the `len` field).
pub const fn frame_len(key_len: usize, payload_len: usize) -> usize {
    payload_offset(key_len) + payload_len
}

/// Bytes a frame occupies in a batch, including the zero padding that keeps
/// the next frame 8-aligned.
pub const fn frame_footprint(key_len: usize, payload_len: usize) -> usize {
    align_up(frame_len(key_len, payload_len), FRAME_ALIGN)
}

/// The header block at the start of every segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Block size of this segment: batches start on multiples of it and the
    /// header occupies the first block.
    pub block_size: u32,
    /// Shard that wrote the segment.
    pub shard: u32,
    /// Shard count of the store when the segment was created.
    pub shard_count: u32,
    /// Most group commits the writer kept in flight at once (0 in files
    /// written before the field existed means 1): bounds how many batches a
    /// crash can leave incomplete at the end of the segment.
    pub pipeline_depth: u32,
    /// Sequence number of the segment within its shard folder.
    pub seq: u64,
    /// Store generation (bumped at every open) that created the segment.
    pub generation: u64,
    /// Creation time, nanoseconds since the Unix epoch (informational only:
    /// never used to order anything).
    pub created_unix_ns: u64,
    /// Format version of the segment ([`MIN_FORMAT_VERSION`] ..=
    /// [`FORMAT_VERSION`]); new segments are written in [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The segment was written over a reused (spare) file: bytes after the
    /// end of its data that hold no frame of this segment are leftovers of
    /// the file's earlier use, not damage (version 2; always false in 1).
    pub reused: bool,
}

/// What binds a frame to its segment: from format version 2 on, a frame's
/// CRC continues over the seq of the segment it was written into. A reused
/// file still holds frames of its earlier use after the new data; under the
/// new seq their CRC fails, so a reader never takes them for this segment's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSalt(Option<u64>);

impl FrameSalt {
    /// Version 1 frames: the CRC covers the frame alone.
    pub const NONE: FrameSalt = FrameSalt(None);

    /// Frames of segment `seq` (format version 2 and later).
    pub const fn segment(seq: u64) -> FrameSalt {
        FrameSalt(Some(seq))
    }
}

/// What a frame with a key records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A put: the payload is the archived record.
    Put,
    /// A versioned delete: the payload is the deletion time
    /// ([`DELETE_PAYLOAD_LEN`] bytes, see [`Frame::deleted_at_unix_ns`]).
    Delete,
}

impl FrameKind {
    /// The kind byte written for it.
    pub const fn byte(self) -> u8 {
        match self {
            FrameKind::Put => KIND_PUT,
            FrameKind::Delete => KIND_DELETE,
        }
    }

    /// Its name in tools and exports (`put`, `delete`).
    pub const fn name(self) -> &'static str {
        match self {
            FrameKind::Put => "put",
            FrameKind::Delete => "delete",
        }
    }
}

/// One decoded frame, borrowing its key and payload from the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// A put or a delete.
    pub kind: FrameKind,
    /// The record's version (value of the version field).
    pub version: i64,
    /// Log sequence number within (shard, generation).
    pub lsn: u64,
    /// Store generation that wrote the frame.
    pub generation: u64,
    /// The key.
    pub key: &'a str,
    /// The rkyv-archived record (not validated here: see `crate::stored`).
    pub payload: &'a [u8],
    /// Exact frame length (`len` field).
    pub len: u32,
    /// Whether this frame starts a group commit (batch).
    pub batch_start: bool,
}

impl Frame<'_> {
    /// A delete's deletion time (nanoseconds since the Unix epoch); `None`
    /// for a put.
    pub fn deleted_at_unix_ns(&self) -> Option<u64> {
        match self.kind {
            FrameKind::Put => None,
            FrameKind::Delete => Some(le_u64(self.payload, 0)),
        }
    }
}

/// Why bytes are not a valid header or frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    /// Fewer bytes than the structure needs (a torn or short file).
    Truncated {
        /// Bytes needed from the start of the structure.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// The segment does not start with the magic.
    BadMagic,
    /// A format version this build cannot read.
    UnsupportedVersion(u32),
    /// The stored checksum does not match the bytes.
    ChecksumMismatch {
        /// The checksum in the bytes.
        stored: u32,
        /// The checksum computed over them.
        computed: u32,
    },
    /// A field is out of its bounds.
    BadField {
        /// Which field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// The key is not UTF-8.
    KeyNotUtf8,
    /// A valid frame of another store generation than its segment's header
    /// (format version 2 and later): bytes of a reused file's earlier use,
    /// never a frame of this segment.
    ForeignGeneration {
        /// The frame's generation.
        frame: u64,
        /// The segment header's generation.
        segment: u64,
    },
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::Truncated { needed, available } => {
                write!(
                    f,
                    "truncated: needs {needed} bytes, only {available} present"
                )
            }
            FormatError::BadMagic => write!(f, "not a ringstore segment (bad magic)"),
            FormatError::UnsupportedVersion(v) => {
                write!(
                    f,
                    "format version {v} is not supported (this build reads {MIN_FORMAT_VERSION} to {FORMAT_VERSION}); open it with a newer ringstore"
                )
            }
            FormatError::ChecksumMismatch { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            FormatError::BadField { field, value } => {
                write!(f, "field `{field}` out of bounds: {value}")
            }
            FormatError::KeyNotUtf8 => write!(f, "key is not UTF-8"),
            FormatError::ForeignGeneration { frame, segment } => write!(
                f,
                "frame of generation {frame} in a segment of generation {segment} \
                 (left by the file's earlier use, not a frame of this segment)"
            ),
        }
    }
}

impl std::error::Error for FormatError {}

fn le_u16(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(at..at + 2) {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

fn put(out: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = out.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    } else {
        debug_assert!(false, "encode target too small");
    }
}

impl SegmentHeader {
    /// Whether a file named for segment `named_seq` that holds this header
    /// is a spare a later segment (this header's seq) was being created in,
    /// whose rename to that segment's name never became durable. Nothing in
    /// it was acknowledged: acknowledgements follow the folder sync that
    /// makes the rename durable. `Store::compact` makes a retirement durable
    /// before a shard can take the file, so this build never leaves one;
    /// recovery still sets such a file aside.
    pub fn is_unrenamed_spare(&self, named_seq: u64) -> bool {
        self.reused && named_seq < self.seq
    }

    /// Encodes the header into the first `HEADER_LEN` bytes of `out` (the
    /// caller zeroes the rest of the block). Fails, writing nothing, when
    /// `out` is shorter or a field is out of its bounds.
    pub fn encode(&self, out: &mut [u8]) -> Result<(), FormatError> {
        if out.len() < HEADER_LEN {
            return Err(FormatError::Truncated {
                needed: HEADER_LEN,
                available: out.len(),
            });
        }
        if !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&self.format_version) {
            return Err(FormatError::UnsupportedVersion(self.format_version));
        }
        if !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&self.block_size)
            || !self.block_size.is_power_of_two()
        {
            return Err(FormatError::BadField {
                field: "block_size",
                value: self.block_size.into(),
            });
        }
        put(out, 0, &SEGMENT_MAGIC);
        put(out, 8, &self.format_version.to_le_bytes());
        put(out, 12, &self.block_size.to_le_bytes());
        put(out, 16, &self.shard.to_le_bytes());
        put(out, 20, &self.shard_count.to_le_bytes());
        put(out, 24, &self.seq.to_le_bytes());
        put(out, 32, &self.generation.to_le_bytes());
        put(out, 40, &self.created_unix_ns.to_le_bytes());
        put(out, 48, &self.pipeline_depth.to_le_bytes());
        put(out, 52, &u32::from(self.reused).to_le_bytes());
        put(out, 56, &[0u8; 4]);
        let crc = out.get(..60).map_or(0, crc32c::crc32c);
        put(out, 60, &crc.to_le_bytes());
        debug_assert_eq!(SegmentHeader::decode(out).as_ref(), Ok(self));
        Ok(())
    }

    /// Decodes and checks a header from the start of a segment.
    pub fn decode(bytes: &[u8]) -> Result<SegmentHeader, FormatError> {
        let Some(head) = bytes.get(..HEADER_LEN) else {
            return Err(FormatError::Truncated {
                needed: HEADER_LEN,
                available: bytes.len(),
            });
        };
        if head.get(..8) != Some(&SEGMENT_MAGIC[..]) {
            return Err(FormatError::BadMagic);
        }
        let stored = le_u32(head, 60);
        let computed = head.get(..60).map_or(0, crc32c::crc32c);
        if stored != computed {
            return Err(FormatError::ChecksumMismatch { stored, computed });
        }
        let version = le_u32(head, 8);
        if !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(FormatError::UnsupportedVersion(version));
        }
        let block_size = le_u32(head, 12);
        if !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&block_size) || !block_size.is_power_of_two()
        {
            return Err(FormatError::BadField {
                field: "block_size",
                value: block_size.into(),
            });
        }
        // Version 1: reserved, zero. Version 2: flags, bit 0 = reused.
        let flags = le_u32(head, 52);
        if version >= 2 && flags & !FLAG_REUSED != 0 {
            return Err(FormatError::BadField {
                field: "header flags",
                value: flags.into(),
            });
        }
        Ok(SegmentHeader {
            block_size,
            shard: le_u32(head, 16),
            shard_count: le_u32(head, 20),
            pipeline_depth: le_u32(head, 48),
            seq: le_u64(head, 24),
            generation: le_u64(head, 32),
            created_unix_ns: le_u64(head, 40),
            format_version: version,
            reused: version >= 2 && flags & FLAG_REUSED != 0,
        })
    }

    /// Decodes and checks one frame of this segment (see [`decode_frame`]):
    /// from format version 2 on, a frame belongs to the segment only if its
    /// CRC holds under the segment's seq and its generation is the header's
    /// (a writer only ever writes frames of its own generation). Bytes of a
    /// reused file's earlier use fail one or the other.
    pub fn decode_frame<'b>(&self, bytes: &'b [u8]) -> Result<Frame<'b>, FormatError> {
        let frame = decode_frame(bytes, self.salt())?;
        if self.format_version >= 2 && frame.generation != self.generation {
            return Err(FormatError::ForeignGeneration {
                frame: frame.generation,
                segment: self.generation,
            });
        }
        Ok(frame)
    }

    /// Decodes and checks a mark frame of this segment (format version 3
    /// on; in earlier versions a mark is a bad frame).
    pub fn decode_mark(&self, bytes: &[u8]) -> Result<Mark, FormatError> {
        if self.format_version < MARKS_FROM_VERSION {
            return Err(FormatError::BadField {
                field: "kind",
                value: u64::from(KIND_MARK),
            });
        }
        let mark = decode_mark(bytes, self.salt())?;
        if mark.generation != self.generation {
            return Err(FormatError::ForeignGeneration {
                frame: mark.generation,
                segment: self.generation,
            });
        }
        Ok(mark)
    }

    /// Whether this segment's batches start with mark frames.
    pub fn has_marks(&self) -> bool {
        self.format_version >= MARKS_FROM_VERSION
    }

    /// The salt of this segment's frames.
    pub fn salt(&self) -> FrameSalt {
        match self.format_version {
            1 => FrameSalt::NONE,
            _ => FrameSalt::segment(self.seq),
        }
    }
}

/// The frame checksum: CRC32C over the payload, continued over the frame's
/// bytes `[8, payload offset)` (header fields after the checksum, key and
/// padding), then over the salt (the segment's seq, 8 bytes little-endian,
/// from format version 2 on). `payload_crc` is CRC32C of the payload alone.
pub fn frame_crc(payload_crc: u32, header_and_key: &[u8], salt: FrameSalt) -> u32 {
    let crc = crc32c::crc32c_append(payload_crc, header_and_key);
    match salt.0 {
        Some(seq) => crc32c::crc32c_append(crc, &seq.to_le_bytes()),
        None => crc,
    }
}

/// The fields of a frame to encode.
#[derive(Debug, Clone, Copy)]
pub struct FrameFields<'a> {
    /// A put or a delete.
    pub kind: FrameKind,
    /// The record's version.
    pub version: i64,
    /// Log sequence number.
    pub lsn: u64,
    /// Store generation.
    pub generation: u64,
    /// The key (1..=MAX_KEY_BYTES bytes).
    pub key: &'a str,
    /// The archived record (a put) or the deletion time (a delete).
    pub payload: &'a [u8],
    /// CRC32C of `payload` alone (computed on the caller's thread).
    pub payload_crc: u32,
}

/// Encodes one frame at the start of `out`, which must hold at least
/// `frame_footprint(key.len(), payload.len())` bytes; the padding bytes are
/// zeroed. Returns the footprint. Fails, writing nothing, when `out` is
/// shorter or the key or frame is out of the format's bounds: a caller on
/// the durability path treats that as a broken invariant, never writes the
/// buffer and stops.
pub fn encode_frame(
    f: &FrameFields<'_>,
    salt: FrameSalt,
    out: &mut [u8],
) -> Result<usize, FormatError> {
    encode_frame_flagged(f, salt, false, out)
}

/// [`encode_frame`], marking the frame as the first of its batch when
/// `batch_start` is set.
pub fn encode_frame_flagged(
    f: &FrameFields<'_>,
    salt: FrameSalt,
    batch_start: bool,
    out: &mut [u8],
) -> Result<usize, FormatError> {
    let key = f.key.as_bytes();
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(FormatError::BadField {
            field: "key_len",
            value: key.len() as u64,
        });
    }
    let payload_ok = match f.kind {
        FrameKind::Put => f.payload.len() <= MAX_RECORD_BYTES_LIMIT,
        FrameKind::Delete => f.payload.len() == DELETE_PAYLOAD_LEN,
    };
    if !payload_ok {
        return Err(FormatError::BadField {
            field: "payload_len",
            value: f.payload.len() as u64,
        });
    }
    let p_off = payload_offset(key.len());
    let len = frame_len(key.len(), f.payload.len());
    let footprint = align_up(len, FRAME_ALIGN);
    if out.len() < footprint {
        return Err(FormatError::Truncated {
            needed: footprint,
            available: out.len(),
        });
    }
    // Every write below lies inside `out[..footprint]`.
    put(out, 0, &(len as u32).to_le_bytes());
    let flags = if batch_start { FLAG_BATCH_START } else { 0 };
    put(out, 8, &[f.kind.byte(), flags]);
    put(out, 10, &(key.len() as u16).to_le_bytes());
    put(out, 12, &(f.payload.len() as u32).to_le_bytes());
    put(out, 16, &f.version.to_le_bytes());
    put(out, 24, &f.lsn.to_le_bytes());
    put(out, 32, &f.generation.to_le_bytes());
    put(out, FRAME_HEADER_LEN, key);
    if let Some(pad) = out.get_mut(FRAME_HEADER_LEN + key.len()..p_off) {
        pad.fill(0);
    }
    put(out, p_off, f.payload);
    if let Some(pad) = out.get_mut(len..footprint) {
        pad.fill(0);
    }
    // The CRC runs over the payload first (its CRC was computed on the
    // caller's thread), then over bytes [8, payload offset): header fields,
    // key and padding. Extending it costs only those few bytes here.
    let crc = frame_crc(f.payload_crc, out.get(8..p_off).unwrap_or_default(), salt);
    put(out, 4, &crc.to_le_bytes());
    debug_assert!(matches!(
        decode_frame(out.get(..len).unwrap_or_default(), salt),
        Ok(fr) if fr.kind == f.kind && fr.key == f.key && fr.payload == f.payload && fr.version == f.version && fr.lsn == f.lsn
    ));
    Ok(footprint)
}

/// Encodes the mark frame that starts a batch (format version 3) at the
/// start of `out`: kind [`KIND_MARK`], no key, `durable_through` as its
/// payload, the segment's `generation`, CRC salted like every frame.
/// Returns its length ([`MARK_LEN`], a multiple of 8).
pub fn encode_mark(
    durable_through: u64,
    generation: u64,
    salt: FrameSalt,
    out: &mut [u8],
) -> Result<usize, FormatError> {
    if out.len() < MARK_LEN {
        return Err(FormatError::Truncated {
            needed: MARK_LEN,
            available: out.len(),
        });
    }
    let payload = durable_through.to_le_bytes();
    put(out, 0, &(MARK_LEN as u32).to_le_bytes());
    put(out, 8, &[KIND_MARK, 0]);
    put(out, 10, &0u16.to_le_bytes());
    put(out, 12, &(payload.len() as u32).to_le_bytes());
    put(out, 16, &0i64.to_le_bytes());
    put(out, 24, &0u64.to_le_bytes());
    put(out, 32, &generation.to_le_bytes());
    put(out, FRAME_HEADER_LEN, &payload);
    let crc = frame_crc(
        crc32c::crc32c(&payload),
        out.get(8..FRAME_HEADER_LEN).unwrap_or_default(),
        salt,
    );
    put(out, 4, &crc.to_le_bytes());
    debug_assert_eq!(
        decode_mark(out.get(..MARK_LEN).unwrap_or_default(), salt),
        Ok(Mark {
            durable_through,
            generation
        })
    );
    const _: () = assert!(MARK_LEN % FRAME_ALIGN == 0);
    Ok(MARK_LEN)
}

/// A decoded mark frame (format version 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// Offset below which the segment was durable when the batch was staged.
    pub durable_through: u64,
    /// Store generation that wrote it.
    pub generation: u64,
}

/// Whether the bytes at a frame position claim to be a mark (kind byte);
/// `bytes` needs at least 9 bytes.
pub fn is_mark(bytes: &[u8]) -> bool {
    bytes.get(8) == Some(&KIND_MARK)
}

/// Decodes and checks a mark frame of a segment whose frames carry `salt`:
/// `bytes` must be exactly the `len` bytes `classify` reported.
pub fn decode_mark(bytes: &[u8], salt: FrameSalt) -> Result<Mark, FormatError> {
    let Some(frame) = bytes.get(..MARK_LEN) else {
        return Err(FormatError::Truncated {
            needed: MARK_LEN,
            available: bytes.len(),
        });
    };
    let len = le_u32(frame, 0) as usize;
    if len != MARK_LEN || bytes.len() != MARK_LEN {
        return Err(FormatError::BadField {
            field: "len",
            value: len as u64,
        });
    }
    let payload = frame.get(FRAME_HEADER_LEN..).unwrap_or_default();
    let stored = le_u32(frame, 4);
    let computed = frame_crc(
        crc32c::crc32c(payload),
        frame.get(8..FRAME_HEADER_LEN).unwrap_or_default(),
        salt,
    );
    if stored != computed {
        return Err(FormatError::ChecksumMismatch { stored, computed });
    }
    let kind = frame.get(8).copied().unwrap_or(0);
    let flags = frame.get(9).copied().unwrap_or(0);
    let (key_len, payload_len) = (le_u16(frame, 10), le_u32(frame, 12));
    if kind != KIND_MARK || flags != 0 || key_len != 0 || payload_len != 8 {
        return Err(FormatError::BadField {
            field: "mark",
            value: u64::from(kind),
        });
    }
    Ok(Mark {
        durable_through: le_u64(frame, FRAME_HEADER_LEN),
        generation: le_u64(frame, 32),
    })
}

/// What the bytes at a frame position hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// A frame header begins here, claiming `len` bytes.
    Frame {
        /// The claimed frame length (bounded, at least `FRAME_HEADER_LEN`).
        len: usize,
    },
    /// Filler after a batch: skip to the next block boundary.
    Filler,
    /// Zeros at a block boundary: nothing was written here (end of data).
    Unwritten,
}

/// Classifies the 8-aligned position `pos` of a segment from the first bytes
/// found there (`head` needs at least 4 bytes; fewer means end of file).
pub fn classify(head: &[u8], pos: u64, block_size: u32) -> Result<Slot, FormatError> {
    if head.len() < 4 {
        return Err(FormatError::Truncated {
            needed: 4,
            available: head.len(),
        });
    }
    let len = le_u32(head, 0) as usize;
    if len == 0 {
        return Ok(if pos % u64::from(block_size) == 0 {
            Slot::Unwritten
        } else {
            Slot::Filler
        });
    }
    if !(FRAME_HEADER_LEN..=MAX_FRAME_LEN).contains(&len) {
        return Err(FormatError::BadField {
            field: "len",
            value: len as u64,
        });
    }
    Ok(Slot::Frame { len })
}

/// Decodes and checks one whole frame of a segment whose frames carry
/// `salt`: `bytes` must be exactly the `len` bytes that `classify` reported
/// (fewer is `Truncated`). A frame of another segment fails its CRC.
pub fn decode_frame(bytes: &[u8], salt: FrameSalt) -> Result<Frame<'_>, FormatError> {
    if bytes.len() < FRAME_HEADER_LEN {
        return Err(FormatError::Truncated {
            needed: FRAME_HEADER_LEN,
            available: bytes.len(),
        });
    }
    let len = le_u32(bytes, 0) as usize;
    if !(FRAME_HEADER_LEN..=MAX_FRAME_LEN).contains(&len) {
        return Err(FormatError::BadField {
            field: "len",
            value: len as u64,
        });
    }
    let Some(frame) = bytes.get(..len) else {
        return Err(FormatError::Truncated {
            needed: len,
            available: bytes.len(),
        });
    };
    // Lengths first (bounded, and they must agree with `len`), so the CRC
    // can be computed in its order: payload, then header fields and key.
    let key_len = le_u16(frame, 10) as usize;
    if key_len == 0 || key_len > MAX_KEY_BYTES {
        return Err(FormatError::BadField {
            field: "key_len",
            value: key_len as u64,
        });
    }
    let payload_len = le_u32(frame, 12) as usize;
    if frame_len(key_len, payload_len) != len {
        return Err(FormatError::BadField {
            field: "payload_len",
            value: payload_len as u64,
        });
    }
    let p_off = payload_offset(key_len);
    let payload = frame.get(p_off..).unwrap_or_default();
    let stored = le_u32(frame, 4);
    let computed = frame_crc(
        crc32c::crc32c(payload),
        frame.get(8..p_off).unwrap_or_default(),
        salt,
    );
    if stored != computed {
        return Err(FormatError::ChecksumMismatch { stored, computed });
    }
    let kind = match frame.get(8).copied().unwrap_or(0) {
        KIND_PUT => FrameKind::Put,
        KIND_DELETE if payload_len == DELETE_PAYLOAD_LEN => FrameKind::Delete,
        KIND_DELETE => {
            return Err(FormatError::BadField {
                field: "delete payload_len",
                value: payload_len as u64,
            });
        }
        other => {
            return Err(FormatError::BadField {
                field: "kind",
                value: other.into(),
            });
        }
    };
    let flags = frame.get(9).copied().unwrap_or(0);
    if flags & !FLAG_BATCH_START != 0 {
        return Err(FormatError::BadField {
            field: "flags",
            value: flags.into(),
        });
    }
    let key = frame
        .get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + key_len)
        .ok_or(FormatError::Truncated {
            needed: FRAME_HEADER_LEN + key_len,
            available: len,
        })?;
    let key = std::str::from_utf8(key).map_err(|_| FormatError::KeyNotUtf8)?;
    Ok(Frame {
        kind,
        version: le_u64(frame, 16) as i64,
        lsn: le_u64(frame, 24),
        generation: le_u64(frame, 32),
        key,
        payload,
        len: len as u32,
        batch_start: flags & FLAG_BATCH_START != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: FrameSalt = FrameSalt::segment(5);

    fn frame_bytes(key: &str, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0xAA; frame_footprint(key.len(), payload.len())];
        let n = encode_frame(
            &FrameFields {
                kind: FrameKind::Put,
                version: -7,
                lsn: 42,
                generation: 3,
                key,
                payload,
                payload_crc: crc32c::crc32c(payload),
            },
            SALT,
            &mut out,
        )
        .unwrap();
        assert_eq!(n, out.len());
        out
    }

    #[test]
    fn frame_round_trips() {
        let bytes = frame_bytes("sensor1", b"hello payload");
        let f = decode_frame(&bytes, SALT).expect("valid frame");
        assert_eq!(
            (f.key, f.payload, f.version, f.lsn, f.generation),
            ("sensor1", &b"hello payload"[..], -7, 42, 3)
        );
        assert_eq!(
            classify(&bytes, 8, 4096),
            Ok(Slot::Frame {
                len: f.len as usize
            })
        );
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let bytes = frame_bytes("k", b"0123456789");
        let len = decode_frame(&bytes, SALT).expect("valid").len as usize;
        for i in 0..len * 8 {
            let mut b = bytes.clone();
            if let Some(x) = b.get_mut(i / 8) {
                *x ^= 1 << (i % 8);
            }
            assert!(
                decode_frame(&b, SALT).is_err(),
                "flip of bit {i} went unnoticed"
            );
        }
    }

    #[test]
    fn a_frame_belongs_to_the_segment_it_was_written_for() {
        let bytes = frame_bytes("k", b"0123456789");
        assert!(decode_frame(&bytes, SALT).is_ok());
        for other in [
            FrameSalt::segment(4),
            FrameSalt::segment(6),
            FrameSalt::NONE,
        ] {
            assert!(
                matches!(
                    decode_frame(&bytes, other),
                    Err(FormatError::ChecksumMismatch { .. })
                ),
                "{other:?}"
            );
        }
    }

    #[test]
    fn a_frame_of_another_generation_is_not_the_segments() {
        // `frame_bytes` writes generation 3 under salt 5.
        let bytes = frame_bytes("k", b"0123456789");
        let header = |generation, format_version| SegmentHeader {
            block_size: 4096,
            shard: 0,
            shard_count: 1,
            pipeline_depth: 1,
            seq: 5,
            generation,
            created_unix_ns: 0,
            format_version,
            reused: true,
        };
        assert!(header(3, FORMAT_VERSION).decode_frame(&bytes).is_ok());
        assert_eq!(
            header(4, FORMAT_VERSION).decode_frame(&bytes),
            Err(FormatError::ForeignGeneration {
                frame: 3,
                segment: 4
            })
        );
    }

    #[test]
    fn header_round_trips_and_rejects_damage() {
        let h = SegmentHeader {
            block_size: 4096,
            shard: 1,
            shard_count: 2,
            pipeline_depth: 2,
            seq: 9,
            generation: 4,
            created_unix_ns: 123,
            format_version: FORMAT_VERSION,
            reused: true,
        };
        let mut block = vec![0u8; 4096];
        h.encode(&mut block).unwrap();
        assert_eq!(SegmentHeader::decode(&block), Ok(h));
        assert_eq!(h.salt(), FrameSalt::segment(9));
        let v1 = SegmentHeader {
            format_version: 1,
            reused: false,
            ..h
        };
        v1.encode(&mut block).unwrap();
        assert_eq!(
            SegmentHeader::decode(&block).map(|h| h.salt()),
            Ok(FrameSalt::NONE)
        );
        block[30] ^= 1;
        assert!(matches!(
            SegmentHeader::decode(&block),
            Err(FormatError::ChecksumMismatch { .. })
        ));
        assert!(matches!(
            SegmentHeader::decode(&block[..10]),
            Err(FormatError::Truncated { .. })
        ));
    }

    #[test]
    fn encoding_into_too_small_a_buffer_fails_and_writes_nothing() {
        let payload = b"0123456789";
        let fields = FrameFields {
            kind: FrameKind::Put,
            version: 1,
            lsn: 1,
            generation: 1,
            key: "k",
            payload,
            payload_crc: crc32c::crc32c(payload),
        };
        let footprint = frame_footprint(1, payload.len());
        let mut out = vec![0xAA; footprint - 1];
        assert_eq!(
            encode_frame(&fields, SALT, &mut out),
            Err(FormatError::Truncated {
                needed: footprint,
                available: footprint - 1
            })
        );
        assert!(out.iter().all(|&b| b == 0xAA), "nothing written");
        let empty_key = FrameFields { key: "", ..fields };
        assert!(encode_frame(&empty_key, SALT, &mut [0; 64]).is_err());
        let header = SegmentHeader {
            block_size: 4096,
            shard: 0,
            shard_count: 1,
            pipeline_depth: 1,
            seq: 1,
            generation: 1,
            created_unix_ns: 0,
            format_version: FORMAT_VERSION,
            reused: false,
        };
        let mut short = vec![0xAA; HEADER_LEN - 1];
        assert!(header.encode(&mut short).is_err());
        assert!(short.iter().all(|&b| b == 0xAA), "nothing written");
    }

    #[test]
    fn a_mark_round_trips_and_is_no_put() {
        let mut out = [0xAAu8; MARK_LEN];
        assert_eq!(encode_mark(8192, 3, SALT, &mut out), Ok(MARK_LEN));
        assert!(is_mark(&out));
        assert_eq!(
            decode_mark(&out, SALT),
            Ok(Mark {
                durable_through: 8192,
                generation: 3
            })
        );
        assert!(decode_frame(&out, SALT).is_err(), "a mark is not a put");
        assert!(decode_mark(&out, FrameSalt::segment(6)).is_err());
        assert!(encode_mark(1, 1, SALT, &mut [0; MARK_LEN - 1]).is_err());
    }

    #[test]
    fn a_delete_round_trips_with_its_time_and_needs_an_8_byte_payload() {
        let when = 1_700_000_000_123_456_789u64.to_le_bytes();
        let fields = FrameFields {
            kind: FrameKind::Delete,
            version: 9,
            lsn: 4,
            generation: 2,
            key: "gone",
            payload: &when,
            payload_crc: crc32c::crc32c(&when),
        };
        let mut out = vec![0xAA; frame_footprint(4, when.len())];
        encode_frame(&fields, SALT, &mut out).unwrap();
        let f = decode_frame(&out[..frame_len(4, 8)], SALT).unwrap();
        assert_eq!((f.kind, f.key, f.version), (FrameKind::Delete, "gone", 9));
        assert_eq!(f.deleted_at_unix_ns(), Some(1_700_000_000_123_456_789));
        let long = [0u8; 9];
        let bad = FrameFields {
            payload: &long,
            payload_crc: crc32c::crc32c(&long),
            ..fields
        };
        assert!(encode_frame(&bad, SALT, &mut [0; 128]).is_err());
        // A put frame relabelled as a delete (CRC recomputed) is refused
        // unless its payload is exactly the 8-byte time.
        let put = frame_bytes("k", b"0123456789");
        let mut forged = put.clone();
        forged[8] = KIND_DELETE;
        let p_off = payload_offset(1);
        let len = frame_len(1, 10);
        let crc = frame_crc(crc32c::crc32c(&forged[p_off..len]), &forged[8..p_off], SALT);
        forged[4..8].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            decode_frame(&forged[..len], SALT),
            Err(FormatError::BadField {
                field: "delete payload_len",
                ..
            })
        ));
    }

    #[test]
    fn zeros_are_filler_or_end() {
        assert_eq!(classify(&[0; 8], 4096, 4096), Ok(Slot::Unwritten));
        assert_eq!(classify(&[0; 8], 4104, 4096), Ok(Slot::Filler));
        assert!(classify(&[1, 0, 0, 0], 0, 4096).is_err());
    }
}
