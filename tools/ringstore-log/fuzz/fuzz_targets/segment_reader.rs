//! Fuzzes the shared decoder the way `ringstore-log verify` and recovery drive
//! it: arbitrary bytes as a segment file, read frame by frame with resync
//! after every error, payloads validated with bytecheck; plus the slice-level
//! decoders. Must never panic, hang or allocate without bound.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use ringstore::RecordRef;
use ringstore::inspect::format::{
    FORMAT_VERSION, FrameSalt, SEGMENT_MAGIC, SegmentHeader, classify, decode_frame,
};
use ringstore::inspect::{ReadError, SegmentReader};

fn scratch_path() -> std::path::PathBuf {
    let dir = std::env::var_os("RINGSTORE_FUZZ_DIR").map_or_else(std::env::temp_dir, Into::into);
    dir.join(format!("ringstore-fuzz-{}.seg", std::process::id()))
}

fuzz_target!(|data: &[u8]| {
    // Slice decoders, on the raw input.
    let _ = SegmentHeader::decode(data);
    let _ = classify(data, 8, 4096);
    if let Ok(f) = decode_frame(data, FrameSalt::NONE) {
        let _ = RecordRef::from_untrusted(f.key, f.version, f.payload);
    }
    // A frame region behind a valid header: the input is the frames.
    let mut file = vec![0u8; 4096];
    SegmentHeader {
        block_size: 4096,
        shard: 0,
        shard_count: 1,
        pipeline_depth: 1,
        seq: 1,
        generation: 1,
        created_unix_ns: 0,
        format_version: FORMAT_VERSION,
        reused: false,
    }
    .encode(&mut file)
    .unwrap();
    // Input that starts like a segment is the whole file; anything else is
    // the frame region behind a valid header.
    if data.starts_with(&SEGMENT_MAGIC) {
        file.clear();
    }
    file.extend_from_slice(data);
    let path = scratch_path();
    let Ok(mut f) = std::fs::File::create(&path) else {
        return;
    };
    if f.write_all(&file).is_err() {
        return;
    }
    drop(f);
    let Ok(mut r) = SegmentReader::open(&path) else {
        return;
    };
    let bound = r.file_len() / 8 + 16;
    let mut steps = 0u64;
    loop {
        steps += 1;
        assert!(steps <= bound, "reader did not terminate");
        let damage = match r.next_frame() {
            Ok(Some((_, frame))) => {
                if let Ok(rec) = RecordRef::from_untrusted(frame.key, frame.version, frame.payload)
                {
                    let _ = rec.to_json();
                }
                continue;
            }
            Ok(None) => {
                let end = r.position();
                match r.has_bytes_after(end) {
                    Ok(true) => end,
                    _ => break,
                }
            }
            Err(ReadError::Format { offset, .. }) => offset,
            Err(_) => break,
        };
        match r.resync_after(damage) {
            Ok(Some(at)) => assert!(at > damage),
            _ => break,
        }
    }
});
