//! The one error type of the harness: what failed, where, and what to do.

use std::path::PathBuf;

/// Why a load run could not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A flag value is out of its documented range.
    #[error("invalid --{flag}: {reason}")]
    Usage {
        /// The flag, without dashes.
        flag: &'static str,
        /// What is wrong and what is accepted.
        reason: String,
    },

    /// A file or directory operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// The operation.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// The data dir's filesystem keeps data in memory and refuses O_DIRECT.
    #[error(
        "{path} is on {filesystem}, which has no O_DIRECT and loses everything on power loss: \
         pass --dir (or set RINGSTORE_LOAD_DIR) to a directory on a real disk, e.g. /var/tmp"
    )]
    NotADisk {
        /// The directory given.
        path: PathBuf,
        /// What the filesystem was identified as.
        filesystem: &'static str,
    },

    /// The store refused an operation.
    #[error("ringstore: {0}")]
    Store(#[from] ringstore::Error),

    /// A segment could not be read back during verification.
    #[error("verifying {path}: {reason}")]
    Segment {
        /// The segment file.
        path: PathBuf,
        /// What the shared decoder reported.
        reason: String,
    },

    /// A latency histogram could not be created or merged.
    #[error("latency histogram: {reason}")]
    Histogram {
        /// What hdrhistogram reported.
        reason: String,
    },

    /// A put of the seed-design baseline (`--compare seed-design`) failed.
    #[error("seed-design baseline: {reason}")]
    SeedDesign {
        /// The put's error.
        reason: String,
    },

    /// A worker thread panicked (a bug in the harness).
    #[error("a {role} thread panicked")]
    Panicked {
        /// `writer`, `reader`, `baseline` …
        role: &'static str,
    },
}

impl LoadError {
    /// An `Io` error for `path`.
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LoadError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}
