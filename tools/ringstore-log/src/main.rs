//! `ringstore-log`: argument parsing only; the work is in the library.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use ringstore::RecoveryMode;
use ringstore_log::dump::{DumpFilter, DumpFormat};
use ringstore_log::export::{ExportFormat, ExportOptions};
use ringstore_log::source::discover;
use ringstore_log::verify::VerifyOptions;
use ringstore_log::{EXIT_ERROR, EXIT_OK, ToolError, exit_code};

/// Read-only inspection of ringstore data dirs: list, verify, dump, newest
/// records, export for analytics. Never modifies the data dir; safe to run
/// while a store is writing to it.
///
/// Exit codes: 0 = clean, 1 = problems found in the data, 2 = usage or I/O
/// error.
#[derive(Parser, Debug)]
#[command(name = "ringstore-log", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List shards and segments: seq, size, records, first/last version,
    /// sealed or active (and `reused`: written over a spare file), the spare
    /// files kept for reuse, and totals.
    Ls {
        /// Data dir, shard folder or segment file.
        path: PathBuf,
        /// One JSON object per segment, one per shard with spare files
        /// (`"kind": "spares"`), then a totals object.
        #[arg(long)]
        json: bool,
    },
    /// Check every segment header, frame, CRC and record payload; print each
    /// problem with file, byte offset, frame number and reason. Streams with
    /// constant memory. Deletes (tombstones) are counted in the summary
    /// ("deletes"), never reported as damage.
    ///
    /// Damage is judged exactly as Store::open judges it in the chosen
    /// recovery mode (the same library call): what a crash leaves and open
    /// repairs (the end of a shard's newest segment cut mid-write, with the
    /// batches that were in flight; a newest segment whose header never
    /// completed; a spare whose rename was lost) is a torn tail, not a
    /// problem. Exit 0 when open would open the dir and every record is
    /// valid, 1 when open would refuse it (or a record is invalid), 2 on
    /// usage or I/O error.
    Verify {
        /// Data dir, shard folder or segment file.
        path: PathBuf,
        /// JSON Lines: one object per finding ("kind": "problem",
        /// "torn_tail" or "skipped"), then a "summary" object.
        #[arg(long)]
        json: bool,
        /// Judge as open does in RecoveryMode::Strict (torn tails are
        /// problems); the same as --mode strict.
        #[arg(long, conflicts_with = "mode")]
        strict: bool,
        /// Judge damage as open does in this RecoveryMode.
        #[arg(long, value_enum, default_value_t = ModeArg::TolerateTornTail)]
        mode: ModeArg,
        /// Top-level record field holding the version: when a record has it as
        /// an integer, it must equal the frame's version. Empty: no check.
        #[arg(long, default_value = "collection_time")]
        version_field: String,
    },
    /// Print every put and delete as JSON Lines:
    /// {"key","version","op","shard","segment","offset","deleted_at_unix_ns","record"},
    /// in log order (shard, then segment, then offset). A put has "op":"put",
    /// its record, and "deleted_at_unix_ns":null; a delete has "op":"delete",
    /// the deletion time (nanoseconds since the Unix epoch) and
    /// "record":null. Damage is reported on stderr and skipped (exit 1).
    Dump {
        /// Data dir, shard folder or segment file.
        path: PathBuf,
        /// Only this key.
        #[arg(long)]
        key: Option<String>,
        /// Only versions >= this.
        #[arg(long, allow_hyphen_values = true)]
        since_version: Option<i64>,
        /// Only versions <= this.
        #[arg(long, allow_hyphen_values = true)]
        until_version: Option<i64>,
        /// Stop after this many lines (puts and deletes).
        #[arg(long)]
        limit: Option<u64>,
        /// json: JSON Lines; table: frame headers only (shard, segment,
        /// offset, len, lsn, generation, version, op, key).
        #[arg(long, value_enum, default_value_t = DumpFormatArg::Json)]
        format: DumpFormatArg,
    },
    /// Print the newest record of every key exactly as Store::open would
    /// recover it, as JSON Lines sorted by key (the lines of `dump`).
    ///
    /// A key whose newest frame is a delete has no record (Store::get
    /// returns None): it is left out, and stderr says how many were; with
    /// --include-deleted it is listed as a delete line ("op":"delete",
    /// "record":null, its version and deletion time).
    Latest {
        /// Data dir.
        path: PathBuf,
        /// What damage to tolerate, as the store's RecoveryMode.
        #[arg(long, value_enum, default_value_t = ModeArg::TolerateTornTail)]
        mode: ModeArg,
        /// Also list the keys whose newest frame is a delete.
        #[arg(long)]
        include_deleted: bool,
    },
    /// Write the full history (or only the newest record per key) to a file:
    /// JSON Lines (the lines of `dump`) or Parquet (one row per put or
    /// delete: key, version, op, shard, segment, offset, deleted_at_unix_ns,
    /// then one typed column per top-level record field, nested values as
    /// JSON strings; a delete's field columns are null).
    Export {
        /// Data dir (or shard folder / segment file, without --latest).
        path: PathBuf,
        /// Output format.
        #[arg(long, value_enum)]
        format: ExportFormatArg,
        /// Output file (created or replaced; refused inside the data dir).
        #[arg(long)]
        out: PathBuf,
        /// Only the newest record of each key, as recovery chooses it.
        #[arg(long)]
        latest: bool,
        /// With --latest: what damage to tolerate, as the store's RecoveryMode.
        #[arg(long, value_enum, default_value_t = ModeArg::TolerateTornTail)]
        mode: ModeArg,
        /// With --latest: also the keys whose newest frame is a delete, as
        /// delete rows (left out without it).
        #[arg(long, requires = "latest")]
        include_deleted: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DumpFormatArg {
    Json,
    Table,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ExportFormatArg {
    Jsonl,
    Parquet,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ModeArg {
    /// Drop a torn tail at the end of a shard's newest segment; refuse other damage.
    TolerateTornTail,
    /// Refuse any damage.
    Strict,
    /// Skip damaged frames, keep every intact one.
    SkipCorrupt,
}

impl From<ModeArg> for RecoveryMode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::TolerateTornTail => RecoveryMode::TolerateTornTail,
            ModeArg::Strict => RecoveryMode::Strict,
            ModeArg::SkipCorrupt => RecoveryMode::SkipCorrupt,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) if e.is_broken_pipe() => ExitCode::from(EXIT_OK),
        Err(e) => {
            eprintln!("ringstore-log: error: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn run(cli: Cli) -> Result<u8, ToolError> {
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    let mut err = std::io::stderr().lock();
    match cli.command {
        Command::Ls { path, json } => {
            let source = discover(&path)?;
            ringstore_log::ls::ls(&source, json, &mut out)?;
            Ok(EXIT_OK)
        }
        Command::Verify {
            path,
            json,
            strict,
            mode,
            version_field,
        } => {
            let source = discover(&path)?;
            let opts = VerifyOptions {
                json,
                mode: match strict {
                    true => RecoveryMode::Strict,
                    false => mode.into(),
                },
                version_field: Some(version_field).filter(|f| !f.is_empty()),
                progress: true,
            };
            let summary = ringstore_log::verify::verify(&source, &opts, &mut out)?;
            Ok(summary.exit_code())
        }
        Command::Dump {
            path,
            key,
            since_version,
            until_version,
            limit,
            format,
        } => {
            let source = discover(&path)?;
            let filter = DumpFilter {
                key,
                since_version,
                until_version,
                limit,
            };
            let format = match format {
                DumpFormatArg::Json => DumpFormat::Json,
                DumpFormatArg::Table => DumpFormat::Table,
            };
            let summary = ringstore_log::dump::dump(&source, &filter, format, &mut out, &mut err)?;
            Ok(summary.exit_code())
        }
        Command::Latest {
            path,
            mode,
            include_deleted,
        } => {
            let source = discover(&path)?;
            let latest =
                ringstore_log::latest::latest(&source, &path, mode.into(), include_deleted)?;
            latest.warn_torn_tails(&mut err)?;
            latest.note_hidden_deletes(&mut err)?;
            ringstore_log::latest::write_latest(&latest, &mut out)?;
            Ok(exit_code(latest.report.skipped.len() as u64))
        }
        Command::Export {
            path,
            format,
            out: out_path,
            latest,
            mode,
            include_deleted,
        } => {
            let opts = ExportOptions {
                format: match format {
                    ExportFormatArg::Jsonl => ExportFormat::Jsonl,
                    ExportFormatArg::Parquet => ExportFormat::Parquet,
                },
                out: out_path,
                latest,
                include_deleted,
                mode: mode.into(),
                progress: true,
            };
            export(&path, &opts, &mut err)
        }
    }
}

fn export(path: &Path, opts: &ExportOptions, err: &mut dyn Write) -> Result<u8, ToolError> {
    let source = discover(path)?;
    let s = ringstore_log::export::export(&source, path, opts, err)?;
    let secs = s.elapsed.as_secs_f64();
    writeln!(
        err,
        "ringstore-log: exported {} rows to {} ({} bytes) from {} bytes of log in {secs:.3} s ({:.1} MB/s)",
        s.rows,
        opts.out.display(),
        s.bytes_written,
        s.bytes_read,
        if secs > 0.0 {
            s.bytes_read as f64 / 1e6 / secs
        } else {
            0.0
        }
    )?;
    Ok(s.exit_code())
}
