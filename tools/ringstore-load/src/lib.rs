//! `ringstore-load`: the seed project's workload against ringstore on a real
//! disk, with HDR latency percentiles, a raw-device baseline from the same
//! run, a check that every acknowledged put is on disk, JSON and an SVG plot;
//! for soak runs, a time series of RSS and per-interval latency
//! (`--sample-interval-ms`) with retention on (`--compact-above-bytes`).
//!
//! The binary only parses flags; [`app::main`] does the rest, and every step
//! is a function tests can reach.

pub mod acklog;
pub mod app;
pub mod baseline;
pub mod cli;
pub mod error;
pub mod pacing;
pub mod payload;
pub mod plot;
mod progress;
pub mod report;
pub mod run;
pub mod sampling;
pub mod seed_design;
pub mod system;
pub mod verify;
pub mod workload;

pub use cli::Args;
pub use error::LoadError;
