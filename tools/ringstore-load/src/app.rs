//! What the binary does with a finished run: print the table, write the JSON
//! and the plot, and choose the exit code (documented in `--help`).

use std::process::ExitCode;

use crate::cli::Args;
use crate::error::LoadError;
use crate::plot::{self, Series};
use crate::run::{self, Outcome};

/// The run completed and nothing was lost.
pub const EXIT_OK: u8 = 0;
/// The run failed.
pub const EXIT_FAILED: u8 = 1;
/// Bad command line (clap uses 2 too).
pub const EXIT_USAGE: u8 = 2;
/// Acknowledged puts are missing from disk.
pub const EXIT_LOST: u8 = 3;

/// Runs `args` end to end and returns the process exit code.
pub fn main(args: Args) -> ExitCode {
    match execute(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("ringstore-load: error: {e}");
            ExitCode::from(match e {
                LoadError::Usage { .. } => EXIT_USAGE,
                _ => EXIT_FAILED,
            })
        }
    }
}

fn execute(args: Args) -> Result<u8, LoadError> {
    args.validate()?;
    if let Some(path) = &args.json {
        run::check_output_path("json", path)?;
    }
    if let Some(path) = &args.plot {
        run::check_output_path("plot", path)?;
    }
    let json_path = args.json.clone();
    let plot_path = args.plot.clone();
    let outcome = run::run(args)?;
    let report = &outcome.report;
    print!("{}", crate::report::render(report));
    if let Some(path) = json_path {
        let text = serde_json::to_string_pretty(report).map_err(|e| {
            LoadError::io(
                "serializing the report for",
                &path,
                std::io::Error::other(e),
            )
        })?;
        std::fs::write(&path, text + "\n").map_err(|e| LoadError::io("writing", &path, e))?;
        println!("  json        {}", path.display());
    }
    if let Some(path) = plot_path {
        std::fs::write(&path, plot_svg(&outcome))
            .map_err(|e| LoadError::io("writing", &path, e))?;
        println!("  plot        {}", path.display());
    }
    Ok(if report.lost > 0 {
        eprintln!(
            "ringstore-load: {} acknowledged puts are missing from disk",
            report.lost
        );
        EXIT_LOST
    } else if report.put_errors > 0 || report.close_error.is_some() {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}

fn plot_svg(outcome: &Outcome) -> String {
    let r = &outcome.report;
    let c = &r.config;
    let title = format!(
        "ringstore latency: {} writers {}, {} readers {}, {}",
        c.writers,
        crate::report::pace(c.write_interval()),
        c.readers,
        crate::report::pace(c.read_interval()),
        c.durability.name()
    );
    let subtitle = format!(
        "{} shards, {} keys, records of {:.0} bytes; {:.2} writes/ms, {:.1} MB/s; {} on {}",
        c.shards.unwrap_or(0),
        c.keys,
        r.mean_record_bytes,
        r.writes_per_ms,
        r.write_mb_per_s,
        r.device.filesystem.as_deref().unwrap_or("?"),
        r.device.block_device.as_deref().unwrap_or("?"),
    );
    plot::svg(
        &title,
        &subtitle,
        &[
            Series {
                name: "put (call → ack)",
                color: "#c0392b",
                histogram: &outcome.put_latency_ns,
            },
            Series {
                name: "get",
                color: "#2471a3",
                histogram: &outcome.get_latency_ns,
            },
        ],
    )
}
