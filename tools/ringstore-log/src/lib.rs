//! `ringstore-log`: read-only inspection of ringstore data dirs and segment
//! files: `ls`, `verify`, `dump`, `latest` and `export` (JSON Lines, Parquet).
//!
//! Every command reads segments through the library's one decoder
//! (`ringstore::inspect::SegmentReader`) and judges damage with recovery's
//! rule ([`walk`]). `main.rs` only parses arguments; the work is here so tests
//! can reach it.
//!
//! Exit codes: 0 clean, 1 problems found in the data, 2 usage or I/O error.

pub mod dump;
pub mod error;
pub mod export;
pub mod json;
pub mod latest;
pub mod ls;
#[cfg(feature = "parquet")]
pub mod parquet_out;
pub mod progress;
pub mod source;
pub mod verify;
pub mod walk;

pub use error::{EXIT_ERROR, EXIT_OK, EXIT_PROBLEMS, ToolError, exit_code};
