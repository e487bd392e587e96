//! The data-dir lock: `<dir>/LOCK`, held with `flock(LOCK_EX|LOCK_NB)` for the
//! store's lifetime and released by the kernel if the process dies.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

use crate::error::Error;
use crate::layout::LOCK_FILE;

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct DirLock {
    file: File,
}

impl Drop for DirLock {
    /// Unlocks explicitly before the file closes. A process that another
    /// thread forks while the store is open shares the lock's open file
    /// description until it execs (the fd is close-on-exec); closing our fd
    /// alone would leave the dir locked for that moment, and an `open`
    /// right after `close` failed `Locked` (seen in CI: the log tool's
    /// tests spawn processes while other tests reopen stores). An unlock
    /// through any copy releases the lock for all of them.
    fn drop(&mut self) {
        let _ = flock(&self.file, FlockOperation::Unlock);
    }
}

impl DirLock {
    /// Takes the lock on `dir` or fails with `Error::Locked`.
    pub fn acquire(dir: &Path) -> Result<DirLock, Error> {
        let path: PathBuf = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("opening lock file", &path, e))?;
        if let Err(e) = flock(&file, FlockOperation::NonBlockingLockExclusive) {
            if e == rustix::io::Errno::WOULDBLOCK {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(Error::Locked {
                    path,
                    pid: text.trim().parse().ok(),
                });
            }
            return Err(Error::io("locking data dir", &path, e.into()));
        }
        // The pid is informational (for the `Locked` message): best effort.
        let _ = file.set_len(0);
        let _ = file.seek(SeekFrom::Start(0));
        let _ = write!(file, "{}", std::process::id());
        Ok(DirLock { file })
    }
}
