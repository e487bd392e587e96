//! The shipper's committed watermark, `<dir>/SHIPPED` (written by
//! `ringstore-ship`, format in docs/FORMAT.md), as the store reads it for
//! `Config::retain_until_shipped`: per shard folder, the highest segment
//! seq the analytics table holds. The store never writes this file.

use std::collections::HashMap;
use std::path::Path;

use crate::error::Error;

/// File name of the watermark in the data dir.
pub(crate) const SHIPPED_FILE: &str = "SHIPPED";

/// Per shard folder, the highest seq shipped. No file: nothing shipped.
pub(crate) fn shipped_through(dir: &Path) -> Result<HashMap<usize, u64>, Error> {
    let path = dir.join(SHIPPED_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(Error::io("reading the shipped watermark", &path, e)),
    };
    parse(&text).map_err(|(offset, reason)| Error::Corrupt {
        path: path.clone(),
        offset,
        reason: format!("{reason} (rewritten by ringstore-ship at its next commit)"),
    })
}

/// Parses the watermark; on error, the byte offset of the bad line.
fn parse(text: &str) -> Result<HashMap<usize, u64>, (u64, String)> {
    let mut out = HashMap::new();
    let mut offset = 0u64;
    let mut lines = text.split_inclusive('\n');
    let mut next = |what: &str| -> Result<(u64, String), (u64, String)> {
        let at = offset;
        let line = lines
            .next()
            .ok_or((at, format!("ends before its {what} line")))?;
        offset += line.len() as u64;
        Ok((at, line.trim_end_matches('\n').to_owned()))
    };
    let (at, magic) = next("first")?;
    if magic != "ringstore-shipped 1" {
        return Err((at, format!("not a version-1 watermark: {magic:?}")));
    }
    let (at, instance) = next("instance")?;
    if !instance.starts_with("instance ") {
        return Err((at, "no instance line".to_owned()));
    }
    let (at, table) = next("table")?;
    if !table.starts_with("table ") {
        return Err((at, "no table line".to_owned()));
    }
    loop {
        let (at, line) = next("end")?;
        if line == "end" {
            return Ok(out);
        }
        let mut fields = line.split(' ');
        let shard = fields
            .next()
            .and_then(|f| f.strip_prefix("shard-"))
            .and_then(|i| i.parse::<usize>().ok());
        let seq = fields.next().and_then(|s| s.parse::<u64>().ok());
        match (shard, seq) {
            (Some(shard), Some(seq)) => {
                out.insert(shard, seq);
            }
            _ => return Err((at, format!("not a shard line: {line:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn a_watermark_parses_and_damage_is_located() {
        let ok = "ringstore-shipped 1\ninstance a\ntable ns.t\nshard-0 7 3 1700\nshard-2 4 3 1800\nend\n";
        let m = parse(ok).expect("valid");
        assert_eq!(m.get(&0), Some(&7));
        assert_eq!(m.get(&2), Some(&4));
        assert_eq!(m.len(), 2);
        let empty = "ringstore-shipped 1\ninstance a\ntable ns.t\nend\n";
        assert!(parse(empty).expect("valid").is_empty());
        let torn = "ringstore-shipped 1\ninstance a\ntable ns.t\nshard-0 7 3 1700\n";
        assert!(parse(torn).is_err(), "no end line");
        let bad = "ringstore-shipped 1\ninstance a\ntable ns.t\nshard-x 7\nend\n";
        let (at, _) = parse(bad).expect_err("bad shard line");
        assert_eq!(at, 42, "the offset of the bad line");
        assert!(parse("ringstore-shipped 2\n").is_err());
    }
}
