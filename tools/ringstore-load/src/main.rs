//! `ringstore-load`: see `--help` and the crate docs.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    ringstore_load::app::main(ringstore_load::Args::parse())
}
