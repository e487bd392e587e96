//! Segments: the append-only log files of a shard.

pub mod damage;
pub mod format;
pub mod hint;
pub mod reader;
pub(crate) mod writer;
