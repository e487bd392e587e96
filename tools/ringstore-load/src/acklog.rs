//! Every acknowledged put, kept on disk rather than in memory: one file per
//! writer in the run's data dir (beside, not inside, the store), 12 bytes a
//! put (key index u32 LE, version i64 LE), appended through a fixed buffer.
//! A 20-minute soak acknowledges millions of puts; holding them in memory
//! would grow the harness's RSS by tens of MB and hide whether the store's
//! own RSS is flat.

use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::LoadError;
use crate::workload::Acked;

/// Bytes of one entry.
const ENTRY_BYTES: usize = 12;
/// Write buffer of each writer's file: flushed to the page cache every
/// ~21 800 puts, between puts (never inside a timed call).
const BUFFER_BYTES: usize = 256 << 10;

/// One writer's file, open for appending.
#[derive(Debug)]
pub struct AckWriter {
    out: BufWriter<File>,
    path: PathBuf,
    count: u64,
}

impl AckWriter {
    /// Creates (truncates) `path`.
    pub fn create(path: &Path) -> Result<AckWriter, LoadError> {
        let file = File::create(path).map_err(|e| LoadError::io("creating", path, e))?;
        Ok(AckWriter {
            out: BufWriter::with_capacity(BUFFER_BYTES, file),
            path: path.to_path_buf(),
            count: 0,
        })
    }

    /// Appends one acknowledged put.
    pub fn push(&mut self, (key, version): Acked) -> Result<(), LoadError> {
        let mut entry = [0u8; ENTRY_BYTES];
        let (k, v) = entry.split_at_mut(4);
        k.copy_from_slice(&key.to_le_bytes());
        v.copy_from_slice(&version.to_le_bytes());
        self.out
            .write_all(&entry)
            .map_err(|e| LoadError::io("appending to", &self.path, e))?;
        self.count += 1;
        Ok(())
    }

    /// Puts appended so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Flushes and closes the file.
    pub fn finish(mut self) -> Result<AckFile, LoadError> {
        self.out
            .flush()
            .map_err(|e| LoadError::io("flushing", &self.path, e))?;
        Ok(AckFile {
            path: self.path,
            count: self.count,
        })
    }
}

/// One writer's finished file.
#[derive(Debug, Clone)]
pub struct AckFile {
    path: PathBuf,
    count: u64,
}

/// Every writer's acknowledged puts.
#[derive(Debug, Clone, Default)]
pub struct AckLog {
    files: Vec<AckFile>,
}

impl AckLog {
    /// Adds a writer's file.
    pub fn add(&mut self, file: AckFile) {
        self.files.push(file);
    }

    /// Acknowledged puts in all files.
    pub fn len(&self) -> u64 {
        self.files.iter().map(|f| f.count).sum()
    }

    /// Whether no put was acknowledged.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` with every acknowledged put, writer by writer, each in the
    /// order it was acknowledged.
    pub fn for_each(&self, mut f: impl FnMut(Acked)) -> Result<(), LoadError> {
        for file in &self.files {
            let handle =
                File::open(&file.path).map_err(|e| LoadError::io("opening", &file.path, e))?;
            let mut input = BufReader::with_capacity(BUFFER_BYTES, handle);
            let mut read: u64 = 0;
            let mut entry = [0u8; ENTRY_BYTES];
            loop {
                match input.read_exact(&mut entry) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(LoadError::io("reading", &file.path, e)),
                }
                let (k, v) = entry.split_at(4);
                let key = u32::from_le_bytes(k.try_into().unwrap_or_default());
                let version = i64::from_le_bytes(v.try_into().unwrap_or_default());
                f((key, version));
                read += 1;
            }
            if read != file.count {
                return Err(LoadError::io(
                    "reading back",
                    &file.path,
                    std::io::Error::other(format!(
                        "holds {read} acknowledged puts, {} were written",
                        file.count
                    )),
                ));
            }
        }
        Ok(())
    }

    /// The newest acknowledged version of each of `keys` key indices.
    pub fn newest_per_key(&self, keys: usize) -> Result<Vec<Option<i64>>, LoadError> {
        let mut newest: Vec<Option<i64>> = vec![None; keys];
        self.for_each(|(k, version)| {
            if let Some(slot) = newest.get_mut(k as usize) {
                *slot = Some(slot.map_or(version, |v| v.max(version)));
            }
        })?;
        Ok(newest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn puts_read_back_in_order_across_writers() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AckLog::default();
        for w in 0..3u32 {
            let mut writer = AckWriter::create(&dir.path().join(format!("w{w}"))).unwrap();
            for i in 0..10_000i64 {
                writer.push((w, i * 7 - 3)).unwrap();
            }
            assert_eq!(writer.count(), 10_000);
            log.add(writer.finish().unwrap());
        }
        assert_eq!(log.len(), 30_000);
        let mut seen = Vec::new();
        log.for_each(|a| seen.push(a)).unwrap();
        assert_eq!(seen.len(), 30_000);
        assert_eq!(seen.first(), Some(&(0, -3)));
        assert_eq!(seen.last(), Some(&(2, 9_999 * 7 - 3)));
        let newest = log.newest_per_key(4).unwrap();
        assert_eq!(
            newest,
            vec![Some(69_990); 3]
                .into_iter()
                .chain([None])
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_truncated_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w");
        let mut writer = AckWriter::create(&path).unwrap();
        writer.push((1, 2)).unwrap();
        writer.push((3, 4)).unwrap();
        let mut log = AckLog::default();
        log.add(writer.finish().unwrap());
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, bytes.get(..ENTRY_BYTES + 5).unwrap()).unwrap();
        assert!(log.for_each(|_| {}).is_err());
    }
}
