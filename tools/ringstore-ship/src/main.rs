//! `ringstore-ship`: argument parsing only; the work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ringstore_ship::catalog::{CatalogOptions, s3_props_from_env};
use ringstore_ship::{EXIT_OK, Mode, ShipOptions};

/// Ships the sealed segments of a ringstore data dir, exactly once, into an
/// Apache Iceberg table through an Iceberg REST catalog (Parquet data files
/// on S3-compatible storage). Reads the data dir without locking it, while a
/// store runs; writes only <DIR>/SHIPPED, the committed watermark.
///
/// S3 access comes from the environment: AWS_ENDPOINT_URL_S3 or
/// AWS_ENDPOINT_URL (or --s3-endpoint), AWS_ACCESS_KEY_ID,
/// AWS_SECRET_ACCESS_KEY, AWS_REGION; catalog-vended settings apply
/// otherwise.
///
/// Exit codes: 0 done; 1 damaged sealed segment; 2 usage or local I/O error;
/// 3 catalog or object store unreachable or failing (rerun is safe);
/// 4 credentials refused; 5 incompatible table or instance name.
#[derive(Parser, Debug)]
#[command(name = "ringstore-ship", version, about, long_about)]
struct Cli {
    /// The store's data dir.
    dir: PathBuf,
    /// Iceberg REST catalog URI, e.g. http://127.0.0.1:8181 (without /v1).
    #[arg(long)]
    catalog: String,
    /// Warehouse, e.g. s3://bucket.
    #[arg(long)]
    warehouse: String,
    /// Namespace (levels separated by dots); created if missing.
    #[arg(long)]
    namespace: String,
    /// Table name; created with the shipper's schema if missing.
    #[arg(long)]
    table: String,
    /// OAuth2 client credentials for the catalog, ID:SECRET.
    #[arg(long, env = "RINGSTORE_SHIP_CREDENTIAL", hide_env_values = true)]
    credential: Option<String>,
    /// This store's name in the table (letters, digits, . _ -); one per data
    /// dir. Default: the host name.
    #[arg(long)]
    instance: Option<String>,
    /// Ship what is sealed now, then exit.
    #[arg(long, conflicts_with = "follow", required_unless_present = "follow")]
    once: bool,
    /// Keep shipping as segments seal, until SIGINT or SIGTERM.
    #[arg(long)]
    follow: bool,
    /// With --follow: milliseconds between looks at the data dir.
    #[arg(long, default_value_t = 2000)]
    poll_ms: u64,
    /// Segment bytes per commit (whole segments; at least one per commit).
    #[arg(long, default_value_t = 1 << 30)]
    commit_bytes: u64,
    /// S3 endpoint URL for the data files (overrides AWS_ENDPOINT_URL_S3).
    #[arg(long)]
    s3_endpoint: Option<String>,
    /// Print a JSON summary on stdout (and no progress bar).
    #[arg(long)]
    json: bool,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let opts = ShipOptions {
        dir: cli.dir,
        catalog: CatalogOptions {
            uri: cli.catalog.trim_end_matches('/').to_owned(),
            warehouse: cli.warehouse,
            namespace: cli.namespace,
            table: cli.table,
            credential: cli.credential,
            props: s3_props_from_env(cli.s3_endpoint),
        },
        instance: cli.instance.unwrap_or_else(hostname),
        mode: if cli.follow {
            Mode::Follow {
                poll: Duration::from_millis(cli.poll_ms),
            }
        } else {
            Mode::Once
        },
        commit_bytes: cli.commit_bytes,
        progress: !cli.json,
    };
    match ringstore_ship::run(&opts) {
        Ok(s) => {
            if cli.json {
                println!("{}", s.to_json(&opts));
            } else {
                eprintln!(
                    "ringstore-ship: {} segments ({} bytes, {} rows) in {} commits to {} in {:.3} s ({:.1} MB/s)",
                    s.segments,
                    s.segment_bytes,
                    s.rows,
                    s.commits,
                    opts.catalog.table_name(),
                    s.elapsed.as_secs_f64(),
                    s.mb_per_s()
                );
            }
            ExitCode::from(EXIT_OK)
        }
        Err(e) => {
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"ok": false, "error": e.kind(), "message": e.to_string()})
                );
            }
            eprintln!("ringstore-ship: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
