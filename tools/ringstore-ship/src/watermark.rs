//! What is committed, per instance and shard folder, and the `SHIPPED` file
//! that tells the store.
//!
//! The table is the truth. Each commit sets the table property
//! `ringstore.ship.watermark.<instance>` to one token per shard folder,
//! `shard:seq:generation:created_unix_ns` (comma-separated): every sealed
//! segment of that folder up to `seq` is in the table. Segments of a folder
//! are shipped in seq order, so that one number per folder says it all. The
//! property changes in the same atomic commit as the rows, so no crash can
//! separate them, and table properties survive snapshot expiry.
//!
//! After each commit the shipper also writes `<dir>/SHIPPED` (format in the
//! crate docs and docs/FORMAT.md), a copy for the store's
//! `retain_until_shipped`. It is derived from the table, so it is never
//! ahead of it; after a crash it may lag, which only retains more.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::ShipError;
use crate::segments::SegmentId;

/// Table property prefix of the watermark; the instance name follows.
pub const PROPERTY_PREFIX: &str = "ringstore.ship.watermark.";
/// Snapshot summary property: the instance that made the snapshot.
pub const SUMMARY_INSTANCE: &str = "ringstore.ship.instance";
/// Snapshot summary property: the segments it added, as tokens.
pub const SUMMARY_SEGMENTS: &str = "ringstore.ship.segments";
/// Name of the watermark file in the data dir.
pub const SHIPPED_FILE: &str = "SHIPPED";
/// First line of the watermark file.
pub const SHIPPED_MAGIC: &str = "ringstore-shipped 1";

/// The newest committed segment of each shard folder of one instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watermark {
    /// Shard folder index → its newest committed segment.
    pub shards: BTreeMap<u64, SegmentId>,
}

impl Watermark {
    /// The table property value.
    pub fn to_property(&self) -> String {
        self.shards
            .values()
            .map(|id| id.to_token())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Parses a table property value; `None` if it is not one.
    pub fn from_property(s: &str) -> Option<Watermark> {
        let mut shards = BTreeMap::new();
        for token in s.split(',').filter(|t| !t.is_empty()) {
            let id = SegmentId::from_token(token)?;
            shards.insert(id.shard, id);
        }
        Some(Watermark { shards })
    }

    /// Whether a segment of shard folder `shard` with `seq` is committed.
    pub fn covers(&self, shard: u64, seq: u64) -> bool {
        self.shards.get(&shard).is_some_and(|id| seq <= id.seq)
    }

    /// Raises the watermark to include `id`.
    pub fn advance(&mut self, id: SegmentId) {
        let slot = self.shards.entry(id.shard).or_insert(id);
        if id.seq >= slot.seq {
            *slot = id;
        }
    }
}

/// The table property key of `instance`'s watermark.
pub fn property_key(instance: &str) -> String {
    format!("{PROPERTY_PREFIX}{instance}")
}

/// Checks an instance name: 1 to 128 of `A-Z a-z 0-9 . _ -`.
pub fn check_instance(name: &str) -> Result<(), ShipError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ShipError::Usage(format!(
            "--instance {name:?}: use 1 to 128 letters, digits, '.', '_' or '-'"
        )))
    }
}

/// The file's text: the magic line, `instance NAME`, `table NS.TABLE`, one
/// `shard-<i> SEQ GENERATION CREATED_UNIX_NS` line per shard folder, `end`.
pub fn shipped_text(instance: &str, table: &str, w: &Watermark) -> String {
    let mut s = format!("{SHIPPED_MAGIC}\ninstance {instance}\ntable {table}\n");
    for id in w.shards.values() {
        s.push_str(&format!(
            "shard-{} {} {} {}\n",
            id.shard, id.seq, id.generation, id.created_unix_ns
        ));
    }
    s.push_str("end\n");
    s
}

/// Parses the file's text; `None` unless it is complete and well formed.
pub fn parse_shipped(text: &str) -> Option<(String, String, Watermark)> {
    let mut lines = text.lines();
    if lines.next()? != SHIPPED_MAGIC {
        return None;
    }
    let instance = lines.next()?.strip_prefix("instance ")?.to_owned();
    let table = lines.next()?.strip_prefix("table ")?.to_owned();
    let mut w = Watermark::default();
    for line in lines {
        if line == "end" {
            return Some((instance, table, w));
        }
        let mut f = line.split(' ');
        let shard = f.next()?.strip_prefix("shard-")?.parse().ok()?;
        let mut num = || f.next().and_then(|v| v.parse::<u64>().ok());
        let id = SegmentId {
            shard,
            seq: num()?,
            generation: num()?,
            created_unix_ns: num()?,
        };
        w.shards.insert(shard, id);
    }
    None
}

/// Reads `<dir>/SHIPPED`, if there is a well-formed one.
pub fn read_shipped(dir: &Path) -> Option<(String, String, Watermark)> {
    fs::read_to_string(dir.join(SHIPPED_FILE))
        .ok()
        .and_then(|t| parse_shipped(&t))
}

/// Writes `<dir>/SHIPPED` atomically and durably: a temporary file
/// (`SHIPPED.<pid>.tmp`), fsync, rename over `SHIPPED`, fsync of the dir.
pub fn write_shipped(
    dir: &Path,
    instance: &str,
    table: &str,
    w: &Watermark,
) -> Result<(), ShipError> {
    let path = dir.join(SHIPPED_FILE);
    let tmp = dir.join(format!("{SHIPPED_FILE}.{}.tmp", std::process::id()));
    let fail = |source| ShipError::Watermark {
        path: path.clone(),
        source,
    };
    let text = shipped_text(instance, table, w);
    let _ = fs::remove_file(&tmp); // left by a crashed process with our pid
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(fail)?;
    let written = f.write_all(text.as_bytes()).and_then(|()| f.sync_all());
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(fail(e));
    }
    drop(f);
    fs::rename(&tmp, &path).map_err(fail)?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(fail)?;
    Ok(())
}

/// The watermark file's path.
pub fn shipped_path(dir: &Path) -> PathBuf {
    dir.join(SHIPPED_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(shard: u64, seq: u64) -> SegmentId {
        SegmentId {
            shard,
            seq,
            generation: 2,
            created_unix_ns: 99,
        }
    }

    #[test]
    fn property_round_trips_and_covers_up_to_seq() {
        let mut w = Watermark::default();
        w.advance(id(0, 3));
        w.advance(id(1, 7));
        w.advance(id(0, 2)); // never goes back
        let back = Watermark::from_property(&w.to_property()).unwrap();
        assert_eq!(back, w);
        assert!(w.covers(0, 3) && !w.covers(0, 4) && w.covers(1, 1) && !w.covers(2, 1));
        assert_eq!(Watermark::from_property(""), Some(Watermark::default()));
        assert_eq!(Watermark::from_property("1:2"), None);
    }

    #[test]
    fn shipped_file_is_written_atomically_and_parsed_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Watermark::default();
        w.advance(id(0, 3));
        w.advance(id(5, 1));
        write_shipped(dir.path(), "a-1", "ns.t", &w).unwrap();
        let text = fs::read_to_string(shipped_path(dir.path())).unwrap();
        assert_eq!(
            text,
            "ringstore-shipped 1\ninstance a-1\ntable ns.t\nshard-0 3 2 99\nshard-5 1 2 99\nend\n"
        );
        assert_eq!(
            read_shipped(dir.path()),
            Some(("a-1".to_owned(), "ns.t".to_owned(), w))
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [SHIPPED_FILE], "no temporary file left");
        assert_eq!(
            parse_shipped(&text.replace("end\n", "")),
            None,
            "incomplete"
        );
    }

    #[test]
    fn instance_names_are_checked() {
        assert!(check_instance("svc-a.eu_1").is_ok());
        for bad in ["", "a b", "a,b", "a:b", &"x".repeat(129)] {
            assert!(check_instance(bad).is_err(), "{bad:?}");
        }
    }
}
