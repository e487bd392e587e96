//! Helpers for the fault-injection tests (feature `failpoints`): decoding
//! what a recorded write carried, and classifying put results.
#![allow(dead_code, reason = "each test file uses a different subset")]

use ringstore::Error;
use ringstore::failpoints::IoEvent;
use std::path::Path;

use ringstore::inspect::format::{
    FrameSalt, MIN_BLOCK_SIZE, Slot, align_up, classify, decode_frame, decode_mark, is_mark,
};
use ringstore::inspect::parse_segment_name;

/// The (key, version) of every frame in the buffer of one batch write to a
/// segment (the buffer starts on a block boundary), through the store's
/// decoder.
pub fn frames_in_write((path, bytes): (&Path, &[u8])) -> Vec<(String, i64)> {
    let block = MIN_BLOCK_SIZE;
    let Some(seq) = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(parse_segment_name)
    else {
        return Vec::new();
    };
    let salt = FrameSalt::segment(seq);
    let mut out = Vec::new();
    let mut pos = 0usize;
    while let Some(head) = bytes.get(pos..).filter(|h| h.len() >= 4) {
        match classify(head, pos as u64, block) {
            Ok(Slot::Unwritten) | Err(_) => break,
            Ok(Slot::Filler) => pos = align_up(pos + 1, block as usize),
            Ok(Slot::Frame { len }) => {
                // A batch starts with its mark (format version 3): no put.
                if bytes
                    .get(pos..pos + len)
                    .is_some_and(|b| is_mark(b) && decode_mark(b, salt).is_ok())
                {
                    pos = align_up(pos + len, 8);
                    continue;
                }
                let Some(Ok(f)) = bytes.get(pos..pos + len).map(|b| decode_frame(b, salt)) else {
                    break;
                };
                out.push((f.key.to_owned(), f.version));
                pos = align_up(pos + len, 8);
            }
        }
    }
    out
}

/// The file and bytes of the write with `id`.
pub fn write_bytes(events: &[IoEvent], id: u64) -> Option<(&Path, &[u8])> {
    events.iter().find_map(|e| match e {
        IoEvent::WriteStart {
            id: i, path, bytes, ..
        } if *i == id => Some((path.as_path(), &bytes[..])),
        _ => None,
    })
}

/// How a put ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledged.
    Acked,
    /// Failed by an I/O error of `op` with `errno`.
    Io {
        op: &'static str,
        errno: Option<i32>,
    },
    /// Failed because the device was full.
    NoSpace,
    /// Refused because the shard had already failed.
    ShardFailed,
    /// Anything else (a test failure).
    Other(String),
}

pub fn outcome<T>(r: &Result<T, Error>) -> Outcome {
    match r {
        Ok(_) => Outcome::Acked,
        Err(Error::Io { op, source, .. }) => Outcome::Io {
            op,
            errno: source.raw_os_error(),
        },
        Err(Error::NoSpace { .. }) => Outcome::NoSpace,
        Err(Error::ShardFailed { .. }) => Outcome::ShardFailed,
        Err(e) => Outcome::Other(format!("{e:?}")),
    }
}
