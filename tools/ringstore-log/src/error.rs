//! The tool's one error type and its exit codes.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Exit code: the command ran and found nothing wrong.
pub const EXIT_OK: u8 = 0;
/// Exit code: the command ran and found problems in the data (corruption).
pub const EXIT_PROBLEMS: u8 = 1;
/// Exit code: bad usage, or an I/O error that stopped the command.
pub const EXIT_ERROR: u8 = 2;

/// Exit code of a command that ran to its end: [`EXIT_OK`] when it met no
/// problem, [`EXIT_PROBLEMS`] otherwise.
pub fn exit_code(problems: u64) -> u8 {
    if problems == 0 {
        EXIT_OK
    } else {
        EXIT_PROBLEMS
    }
}

/// Why a command could not run to its end (exit code 2).
#[derive(Debug)]
pub enum ToolError {
    /// The arguments do not make sense together, or the path is not a data
    /// dir, shard folder or segment file.
    Usage(String),
    /// Reading the data failed.
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or folder involved.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// Writing the output (stdout or `--out`) failed.
    Output(io::Error),
    /// The library refused the data dir (e.g. `latest` on a dir that recovery
    /// would refuse).
    Store(ringstore::Error),
    /// The Parquet writer failed.
    Parquet(String),
}

impl ToolError {
    /// Whether this is stdout closed by its reader (`dump | head`): not an
    /// error worth reporting.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, ToolError::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        ToolError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolError::Usage(msg) => write!(f, "{msg}"),
            ToolError::Io { op, path, source } => write!(f, "{op} {}: {source}", path.display()),
            ToolError::Output(e) => write!(f, "writing output: {e}"),
            ToolError::Store(e) => write!(f, "{e}"),
            ToolError::Parquet(e) => write!(f, "writing parquet: {e}"),
        }
    }
}

impl std::error::Error for ToolError {}

impl From<io::Error> for ToolError {
    /// Bare I/O errors in this crate come from writing output; reads always
    /// name their file through [`ToolError::Io`].
    fn from(e: io::Error) -> Self {
        ToolError::Output(e)
    }
}
