//! Start-up recovery: read every segment of every `shard-*` folder through the
//! shared decoder and rebuild the newest record per key. Recency is the
//! record's version; ties go to the later write by (generation, lsn) — never
//! file order or clocks. The recovery mode decides what damaged bytes cost.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::RecoveryMode;
use crate::error::Error;
use crate::layout::{self, FileKind};
use crate::record_ref::RecordRef;
use crate::segment::damage::{self, Damage, Step, Verdict};
use crate::segment::format::SegmentHeader;
use crate::segment::hint::Hint;
use crate::segment::reader::{ReadError, SegmentReader, frame_at, header_of};
use crate::segment::writer::SealedSegment;

/// What recovery found and did at `open`.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    /// Segment files read.
    pub segments: usize,
    /// Valid frames read.
    pub frames: u64,
    /// Bytes of segment files read.
    pub bytes: u64,
    /// Distinct keys recovered holding a record.
    pub keys: usize,
    /// Keys whose newest frame is a delete (remembered as tombstones).
    pub deleted_keys: usize,
    /// Generation of the run that wrote last (0 for a new dir).
    pub previous_generation: u64,
    /// Torn tails found (a crash mid-write) and truncated away.
    pub torn_tails: Vec<DamageReport>,
    /// Segments ranked from their hint file instead of a scan.
    pub hinted_segments: usize,
    /// Damaged regions skipped (`RecoveryMode::SkipCorrupt` only).
    pub skipped: Vec<DamageReport>,
    /// Wall time spent.
    pub elapsed: Duration,
}

/// One damaged region of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamageReport {
    /// The segment file.
    pub path: PathBuf,
    /// Offset of the first bad byte (a frame or header position).
    pub offset: u64,
    /// Bytes dropped (truncated or skipped).
    pub bytes: u64,
    /// What was wrong.
    pub reason: String,
}

/// The newest record of a key and where its frame is.
#[derive(Debug, Clone)]
pub struct LatestRecord {
    /// The record.
    pub record: RecordRef,
    /// Shard folder index of the winning frame.
    pub shard_dir: usize,
    /// The segment file holding it.
    pub segment: PathBuf,
    /// Byte offset of the frame.
    pub offset: u64,
    /// Store generation of the winning frame (breaks version ties, with `lsn`).
    pub generation: u64,
    /// Log sequence number of the winning frame.
    pub lsn: u64,
}

/// A key whose newest frame is a delete, and where that frame is.
#[derive(Debug, Clone)]
pub struct LatestDelete {
    /// The key.
    pub key: Box<str>,
    /// The delete's version.
    pub version: i64,
    /// When the delete was made, nanoseconds since the Unix epoch.
    pub deleted_at_unix_ns: u64,
    /// Shard folder index of the frame.
    pub shard_dir: usize,
    /// The segment file holding it.
    pub segment: PathBuf,
    /// Byte offset of the frame.
    pub offset: u64,
    /// Store generation of the frame.
    pub generation: u64,
    /// Log sequence number of the frame.
    pub lsn: u64,
}

/// What a data dir holds, read as `Store::open` would read it.
#[derive(Debug, Clone)]
pub struct LatestState {
    /// Newest record of each key whose newest frame is a put.
    pub records: Vec<LatestRecord>,
    /// Keys whose newest frame is a delete.
    pub deletes: Vec<LatestDelete>,
    /// What recovery found.
    pub report: RecoveryReport,
}

/// The result of reading a data dir.
pub(crate) struct Recovered {
    /// Newest record of each key.
    pub records: Vec<LatestRecord>,
    /// Keys whose newest frame is a delete.
    pub deletes: Vec<LatestDelete>,
    /// Seq of the next segment of each existing shard folder: one past every
    /// seq its file names carry (`layout::next_seq`, after repairs); a shard
    /// without a folder starts at 1.
    pub next_seq: HashMap<usize, u64>,
    pub report: RecoveryReport,
}

/// Ordering key of a frame: version first, then the later write.
type Rank = (i64, u64, u64);

fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

fn read_error(path: &Path, e: ReadError) -> Error {
    match e {
        ReadError::Io(e) => Error::io("reading segment", path, e),
        ReadError::Format { offset, error } => corrupt(path, offset, error.to_string()),
    }
}

/// Whether recovery may repair what it finds (truncate torn tails, remove
/// segments whose header never completed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repair {
    /// `Store::open`: make the dir clean for the next run.
    Allowed,
    /// Tools: report only, never modify the dir.
    ReadOnly,
}

/// Reads the newest record of every key of a data dir exactly as
/// `Store::open` would, without modifying anything (torn tails are reported,
/// not truncated). For tools and tests.
pub fn scan_latest(
    dir: &Path,
    mode: RecoveryMode,
) -> Result<(Vec<LatestRecord>, RecoveryReport), Error> {
    let r = recover(dir, mode, Repair::ReadOnly)?;
    Ok((r.records, r.report))
}

/// [`scan_latest`], with the keys whose newest frame is a delete.
pub fn scan_latest_state(dir: &Path, mode: RecoveryMode) -> Result<LatestState, Error> {
    let r = recover(dir, mode, Repair::ReadOnly)?;
    Ok(LatestState {
        records: r.records,
        deletes: r.deletes,
        report: r.report,
    })
}

/// Where the best-ranked frame of a key is.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    rank: Rank,
    /// Index into the folder's segment list.
    segment: usize,
    offset: u64,
    len: u32,
}

/// What one shard folder holds.
struct FolderScan {
    shard: usize,
    segments: Vec<PathBuf>,
    best: HashMap<Box<str>, Candidate>,
    /// Seq of the folder's next segment, after repairs.
    next_seq: u64,
    report: RecoveryReport,
}

/// Reads the whole data dir: every shard folder in parallel (one thread
/// each), ranking keys from hints where segments have them and by scanning
/// frame headers where not, then reading only the winning frames.
pub(crate) fn recover(dir: &Path, mode: RecoveryMode, repair: Repair) -> Result<Recovered, Error> {
    match recover_with(dir, mode, repair, true) {
        // A damaged frame that a hint pointed at: hints skip the scan that
        // applies the recovery mode, so read everything again without them.
        Err(Error::Corrupt {
            path,
            offset,
            reason,
        }) => {
            log::warn!(
                "{}: damage at offset {offset} ({reason}); recovering again without hints",
                path.display()
            );
            recover_with(dir, mode, repair, false)
        }
        other => other,
    }
}

fn recover_with(
    dir: &Path,
    mode: RecoveryMode,
    repair: Repair,
    use_hints: bool,
) -> Result<Recovered, Error> {
    let started = Instant::now();
    let folders = layout::shard_dirs(dir)?;
    let scans: Vec<FolderScan> = std::thread::scope(|s| {
        let handles: Vec<_> = folders
            .iter()
            .map(|(shard, path)| {
                s.spawn(move || scan_folder(*shard, path, mode, repair, use_hints))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(corrupt(dir, 0, "recovery thread panicked")))
            })
            .collect::<Result<Vec<_>, Error>>()
    })?;

    // Merge: the best candidate of each key over all folders.
    let mut winners: HashMap<&str, (usize, Candidate)> = HashMap::new();
    for (f, scan) in scans.iter().enumerate() {
        for (key, c) in &scan.best {
            match winners.get(&**key) {
                Some((_, w)) if w.rank >= c.rank => {}
                _ => {
                    winners.insert(key, (f, *c));
                }
            }
        }
    }
    let mut per_folder: Vec<Vec<Candidate>> = vec![Vec::new(); scans.len()];
    for (f, c) in winners.values() {
        if let Some(list) = per_folder.get_mut(*f) {
            list.push(*c);
        }
    }
    let (records, deletes) = std::thread::scope(|s| {
        let handles: Vec<_> = scans
            .iter()
            .zip(per_folder)
            .map(|(scan, list)| s.spawn(move || load_winners(scan.shard, &scan.segments, list)))
            .collect();
        let (mut records, mut deletes) = (Vec::new(), Vec::new());
        for h in handles {
            let (r, d) = h
                .join()
                .unwrap_or_else(|_| Err(corrupt(dir, 0, "recovery thread panicked")))?;
            records.extend(r);
            deletes.extend(d);
        }
        Ok::<_, Error>((records, deletes))
    })?;

    let mut report = RecoveryReport::default();
    let mut next_seq = HashMap::new();
    for scan in scans {
        let r = scan.report;
        report.segments += r.segments;
        report.frames += r.frames;
        report.bytes += r.bytes;
        report.previous_generation = report.previous_generation.max(r.previous_generation);
        report.torn_tails.extend(r.torn_tails);
        report.skipped.extend(r.skipped);
        report.hinted_segments += r.hinted_segments;
        next_seq.insert(scan.shard, scan.next_seq);
    }
    report.keys = records.len();
    report.deleted_keys = deletes.len();
    report.elapsed = started.elapsed();
    Ok(Recovered {
        records,
        deletes,
        next_seq,
        report,
    })
}

fn scan_folder(
    shard: usize,
    shard_dir: &Path,
    mode: RecoveryMode,
    repair: Repair,
    use_hints: bool,
) -> Result<FolderScan, Error> {
    if repair == Repair::Allowed {
        sweep_orphans(shard_dir)?;
    }
    let segs = layout::segments(shard_dir)?;
    let mut scan = FolderScan {
        shard,
        segments: segs.iter().map(|(_, p)| p.clone()).collect(),
        best: HashMap::new(),
        next_seq: 1,
        report: RecoveryReport::default(),
    };
    let last = segs.len().saturating_sub(1);
    for (i, (seq, path)) in segs.iter().enumerate() {
        let at = SegmentAt {
            path,
            seq: *seq,
            index: i,
            is_last: i == last,
        };
        read_segment(&at, mode, repair, use_hints, &mut scan)?;
    }
    scan.next_seq = layout::next_seq(shard_dir)?;
    Ok(scan)
}

/// Removes what a crash left that nothing will read or finish: hint
/// temporaries and hints whose segment is gone (`layout::orphans`).
fn sweep_orphans(shard_dir: &Path) -> Result<(), Error> {
    let orphans =
        layout::orphans(shard_dir).map_err(|e| Error::io("listing shard dir", shard_dir, e))?;
    if orphans.is_empty() {
        return Ok(());
    }
    for path in &orphans {
        match fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io("removing a file a crash left", path, e));
            }
            _ => log::info!("{}: removed (left by a crash)", path.display()),
        }
    }
    sync_dir(shard_dir)
}

fn offer(best: &mut HashMap<Box<str>, Candidate>, key: &str, c: Candidate) {
    match best.get_mut(key) {
        Some(b) if b.rank >= c.rank => {}
        Some(b) => *b = c,
        None => {
            best.insert(key.into(), c);
        }
    }
}

/// Reads the winning frames of one folder and validates their payloads:
/// the records, and the keys whose winner is a delete.
fn load_winners(
    shard: usize,
    segments: &[PathBuf],
    mut list: Vec<Candidate>,
) -> Result<(Vec<LatestRecord>, Vec<LatestDelete>), Error> {
    list.sort_by_key(|c| (c.segment, c.offset));
    let mut out = Vec::with_capacity(list.len());
    let mut deletes = Vec::new();
    let mut buf = Vec::new();
    let mut open: Option<(usize, fs::File, SegmentHeader)> = None;
    for c in list {
        let Some(path) = segments.get(c.segment) else {
            continue;
        };
        if open.as_ref().is_none_or(|(i, _, _)| *i != c.segment) {
            let file = fs::File::open(path).map_err(|e| Error::io("opening segment", path, e))?;
            let header = header_of(&file).map_err(|e| read_error(path, e))?;
            open = Some((c.segment, file, header));
        }
        let Some((_, file, header)) = open.as_ref() else {
            continue;
        };
        let frame =
            frame_at(file, header, c.offset, c.len, &mut buf).map_err(|e| read_error(path, e))?;
        if (frame.version, frame.generation, frame.lsn) != c.rank {
            return Err(corrupt(
                path,
                c.offset,
                "frame does not match its hint entry (stale or forged hint)",
            ));
        }
        if let Some(deleted_at_unix_ns) = frame.deleted_at_unix_ns() {
            deletes.push(LatestDelete {
                key: frame.key.into(),
                version: frame.version,
                deleted_at_unix_ns,
                shard_dir: shard,
                segment: path.clone(),
                offset: c.offset,
                generation: frame.generation,
                lsn: frame.lsn,
            });
            continue;
        }
        let record = RecordRef::from_untrusted(frame.key, frame.version, frame.payload)
            .map_err(|e| corrupt(path, c.offset, format!("invalid record payload: {}", e.0)))?;
        out.push(LatestRecord {
            record,
            shard_dir: shard,
            segment: path.clone(),
            offset: c.offset,
            generation: frame.generation,
            lsn: frame.lsn,
        });
    }
    Ok((out, deletes))
}

/// One segment file of a folder being scanned.
struct SegmentAt<'a> {
    path: &'a Path,
    /// The seq its name says.
    seq: u64,
    /// Its position in the folder's segment list.
    index: usize,
    /// Whether it is the folder's newest.
    is_last: bool,
}

fn read_segment(
    at: &SegmentAt<'_>,
    mode: RecoveryMode,
    repair: Repair,
    use_hints: bool,
    scan: &mut FolderScan,
) -> Result<(), Error> {
    let (path, index, is_last) = (at.path, at.index, at.is_last);
    let report = &mut scan.report;
    let mut reader = match SegmentReader::open(path) {
        Ok(r) => r,
        Err(ReadError::Format { offset, error }) => {
            let damage = damage::judge_header(path, offset, &error, is_last, mode)
                .map_err(|e| Error::io("reading segment", path, e))?;
            if damage.verdict != Verdict::TornTail {
                return Err(corrupt(path, offset, damage.reason));
            }
            // A crash while creating the newest segment: no frame in it
            // was acknowledged.
            if repair == Repair::Allowed {
                remove_torn_segment(path)?;
            }
            report.torn_tails.push(damage_report(path, &damage));
            return Ok(());
        }
        Err(e) => return Err(read_error(path, e)),
    };
    if let Some(damage) = damage::judge_name(reader.header(), at.seq, reader.file_len(), mode) {
        if repair == Repair::Allowed {
            set_aside(path)?;
        }
        report.torn_tails.push(damage_report(path, &damage));
        return Ok(());
    }
    report.segments += 1;
    report.bytes += reader.file_len();
    report.previous_generation = report.previous_generation.max(reader.header().generation);
    if let Some(hint) = use_hints
        .then(|| Hint::load(path, reader.file_len()))
        .flatten()
    {
        report.hinted_segments += 1;
        report.frames += hint.frames;
        for e in &hint.entries {
            let c = Candidate {
                rank: (e.version, e.generation, e.lsn),
                segment: index,
                offset: e.offset,
                len: e.len,
            };
            offer(&mut scan.best, &e.key, c);
        }
        return Ok(());
    }
    // (generation, lsn) of the last valid frame: the log order.
    let mut last_good: Option<(u64, u64)> = None;
    loop {
        let (offset, reason) = match reader.step().map_err(|e| read_error(path, e))? {
            Step::Frame { offset, frame } => {
                last_good = Some((frame.generation, frame.lsn));
                report.frames += 1;
                let c = Candidate {
                    rank: (frame.version, frame.generation, frame.lsn),
                    segment: index,
                    offset,
                    len: frame.len,
                };
                offer(&mut scan.best, frame.key, c);
                continue;
            }
            Step::End => return Ok(()),
            Step::Damaged { offset, reason } => (offset, reason),
        };
        let damage = damage::judge_frames(&mut reader, offset, reason, last_good, is_last, mode)
            .map_err(|e| read_error(path, e))?;
        match damage.verdict {
            Verdict::Skipped => {
                report.skipped.push(damage_report(path, &damage));
                if damage.resume.is_none() {
                    return Ok(());
                }
            }
            Verdict::TornTail => {
                return torn_tail(path, &damage, repair, report);
            }
            Verdict::Refused | Verdict::SetAside => {
                return Err(corrupt(path, offset, damage.reason));
            }
        }
    }
}

fn damage_report(path: &Path, damage: &Damage) -> DamageReport {
    DamageReport {
        path: path.to_path_buf(),
        offset: damage.offset,
        bytes: damage.bytes,
        reason: damage.reason.clone(),
    }
}

/// Renames a spare whose rename to a segment never became durable to
/// `.retired` (with its stale hint, if its removal was lost too, removed).
fn set_aside(path: &Path) -> Result<(), Error> {
    match fs::remove_file(layout::hint_path(path)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(Error::io(
                "removing the hint of an unrenamed spare",
                path,
                e,
            ));
        }
        _ => {}
    }
    let retired = layout::as_kind(path, FileKind::Retired);
    fs::rename(path, &retired)
        .map_err(|e| Error::io("setting aside an unrenamed spare", path, e))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Figures of one sealed segment, from its hint or, without one, a scan.
pub(crate) fn describe_sealed(shard: usize, seq: u64, path: &Path) -> Result<SealedSegment, Error> {
    let bytes = fs::metadata(path)
        .map_err(|e| Error::io("reading segment metadata", path, e))?
        .len();
    let (records, min, max) = match Hint::load(path, bytes) {
        Some(h) => (h.frames, h.min_version, h.max_version),
        None => {
            let mut reader = SegmentReader::open(path).map_err(|e| read_error(path, e))?;
            let (mut n, mut min, mut max) = (0u64, i64::MAX, i64::MIN);
            while let Some((_, f)) = reader.next_frame().map_err(|e| read_error(path, e))? {
                n += 1;
                min = min.min(f.version);
                max = max.max(f.version);
            }
            (n, min, max)
        }
    };
    Ok(SealedSegment {
        shard,
        seq,
        path: path.to_path_buf(),
        records,
        bytes,
        first_version: (records > 0).then_some(min),
        last_version: (records > 0).then_some(max),
    })
}

/// A torn tail of the newest segment: truncated (durably, so the segment
/// ends cleanly even after newer segments are created) when repair is
/// allowed, reported either way.
fn torn_tail(
    path: &Path,
    damage: &Damage,
    repair: Repair,
    report: &mut RecoveryReport,
) -> Result<(), Error> {
    let (offset, bytes, reason) = (damage.offset, damage.bytes, &damage.reason);
    if repair == Repair::Allowed {
        truncate_torn_tail(path, offset)?;
    }
    log::warn!(
        "{}: torn tail at offset {offset} ({bytes} bytes, {}): {reason}",
        path.display(),
        if repair == Repair::Allowed {
            "truncated"
        } else {
            "left in place, read-only scan"
        }
    );
    report.torn_tails.push(damage_report(path, damage));
    Ok(())
}

fn truncate_torn_tail(path: &Path, offset: u64) -> Result<(), Error> {
    let file = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::io("opening torn segment", path, e))?;
    file.set_len(offset)
        .map_err(|e| Error::io("truncating torn tail", path, e))?;
    file.sync_all()
        .map_err(|e| Error::io("syncing truncated segment", path, e))
}

fn remove_torn_segment(path: &Path) -> Result<(), Error> {
    fs::remove_file(path).map_err(|e| Error::io("removing torn segment", path, e))?;
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// fsync of a directory (std, for recovery and open).
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("syncing directory", dir, e))
}
