//! The shipping loop: plan against the table's watermark, convert and
//! upload pending sealed segments, commit them with the new watermark in one
//! compare-and-swap, tell the store (`SHIPPED`), repeat.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use iceberg::spec::{DataFile, DataFileFormat};
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use iceberg::{Catalog, ErrorKind};
use indicatif::ProgressBar;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::catalog::{CatalogOptions, Guarded, connect, load_or_create};
use crate::convert::{Converted, convert_segment};
use crate::error::ShipError;
use crate::schema::{Layout, layout};
use crate::segments::{Sealed, SegmentId, sealed_segments};
use crate::watermark::{
    SUMMARY_INSTANCE, SUMMARY_SEGMENTS, Watermark, property_key, write_shipped,
};
use crate::{failpoint, progress};

/// Commit attempts lost to concurrent writers before giving up.
const MAX_ATTEMPTS: u32 = 50;

/// Ship what is sealed and stop, or keep following the data dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Ship every sealed segment, then return.
    Once,
    /// Ship, then look again every `poll` until SIGINT or SIGTERM.
    Follow {
        /// Time between looks at the data dir.
        poll: Duration,
    },
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct ShipOptions {
    /// The store's data dir (read only; only `SHIPPED` is written).
    pub dir: PathBuf,
    /// Catalog, table and credentials.
    pub catalog: CatalogOptions,
    /// This store's name in the table (`instance` column, watermark key).
    pub instance: String,
    /// Once or follow.
    pub mode: Mode,
    /// Segment bytes per commit (at least one segment per commit).
    pub commit_bytes: u64,
    /// Progress bar on stderr (when it is a terminal).
    pub progress: bool,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Segments committed by this run.
    pub segments: u64,
    /// Rows committed by this run.
    pub rows: u64,
    /// Bytes of the segments committed by this run.
    pub segment_bytes: u64,
    /// Data files committed by this run.
    pub data_files: u64,
    /// Bytes of those data files.
    pub data_file_bytes: u64,
    /// Commits made by this run.
    pub commits: u64,
    /// Commits that lost a race and were planned again.
    pub conflicts: u64,
    /// Segments retired by compaction before they could be shipped.
    pub vanished: u64,
    /// Time of each commit (the catalog round trips, not the upload).
    pub commit_latencies: Vec<Duration>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// The instance's watermark in the table at the end.
    pub watermark: Watermark,
}

impl Summary {
    /// Segment megabytes (10^6) per second of wall time.
    pub fn mb_per_s(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.segment_bytes as f64 / 1e6 / s
        } else {
            0.0
        }
    }

    /// The JSON summary printed with `--json`.
    pub fn to_json(&self, opts: &ShipOptions) -> serde_json::Value {
        let mut lat: Vec<f64> = self
            .commit_latencies
            .iter()
            .map(|d| d.as_secs_f64() * 1e3)
            .collect();
        lat.sort_by(f64::total_cmp);
        let pick = |q: f64| -> Option<f64> {
            let i = ((lat.len() as f64 - 1.0) * q).round() as usize;
            lat.get(i).copied()
        };
        let watermark: serde_json::Map<String, serde_json::Value> = self
            .watermark
            .shards
            .values()
            .map(|id| (format!("shard-{}", id.shard), serde_json::json!(id.seq)))
            .collect();
        serde_json::json!({
            "ok": true,
            "instance": opts.instance,
            "table": opts.catalog.table_name(),
            "segments": self.segments,
            "rows": self.rows,
            "segment_bytes": self.segment_bytes,
            "data_files": self.data_files,
            "data_file_bytes": self.data_file_bytes,
            "commits": self.commits,
            "conflicts": self.conflicts,
            "vanished_segments": self.vanished,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "segment_mb_per_s": self.mb_per_s(),
            "commit_ms": {"median": pick(0.5), "max": lat.last().copied(), "count": lat.len()},
            "watermark": watermark,
        })
    }
}

/// Runs the shipper to its end (`Once`) or until SIGINT/SIGTERM (`Follow`).
pub fn run(opts: &ShipOptions) -> Result<Summary, ShipError> {
    crate::watermark::check_instance(&opts.instance)?;
    opts.catalog.ident()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| ShipError::Io {
            op: "starting the async runtime for",
            path: opts.dir.clone(),
            source: e,
        })?;
    rt.block_on(ship(opts))
}

async fn ship(opts: &ShipOptions) -> Result<Summary, ShipError> {
    let started = Instant::now();
    let mut summary = Summary::default();
    // Refused credentials or an unreachable catalog at the start end the run
    // in every mode: the command line or the setup is wrong.
    let mut catalog = Some(connect(&opts.catalog).await?);
    let mut stop = Stop::new()?;
    loop {
        let round = match &catalog {
            Some(c) => ship_pending(opts, c, &mut summary).await,
            None => match connect(&opts.catalog).await {
                Ok(c) => {
                    let r = ship_pending(opts, &c, &mut summary).await;
                    catalog = Some(c);
                    r
                }
                Err(e) => Err(e),
            },
        };
        match (round, opts.mode) {
            (Ok(()), Mode::Once) => break,
            (Ok(()), Mode::Follow { .. }) => {}
            // While following, an outage, a lost race or an expired token is
            // waited out: reconnect (new token) at the next look. Refused
            // credentials at that reconnect end the run.
            (Err(e), Mode::Follow { .. })
                if matches!(
                    e,
                    ShipError::CatalogUnreachable { .. }
                        | ShipError::Catalog { .. }
                        | ShipError::CommitContention { .. }
                ) || (matches!(e, ShipError::BadCredentials { .. }) && catalog.is_some()) =>
            {
                eprintln!("ringstore-ship: {e}; retrying");
                catalog = None;
            }
            (Err(e), _) => return Err(e),
        }
        let Mode::Follow { poll } = opts.mode else {
            break;
        };
        if stop.wait(poll).await {
            break;
        }
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// SIGINT / SIGTERM, for `--follow`.
struct Stop {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Stop {
    fn new() -> Result<Self, ShipError> {
        use tokio::signal::unix::{SignalKind, signal};
        let io = |e| ShipError::Io {
            op: "installing signal handlers for",
            path: PathBuf::from("the process"),
            source: e,
        };
        Ok(Stop {
            term: signal(SignalKind::terminate()).map_err(io)?,
            int: signal(SignalKind::interrupt()).map_err(io)?,
        })
    }

    /// Sleeps `d`; true if a stop signal came first.
    async fn wait(&mut self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => false,
            _ = self.term.recv() => true,
            _ = self.int.recv() => true,
        }
    }
}

/// The instance's watermark as the table records it.
fn table_watermark(table: &Table, opts: &ShipOptions) -> Result<Watermark, ShipError> {
    match table
        .metadata()
        .properties()
        .get(&property_key(&opts.instance))
    {
        None => Ok(Watermark::default()),
        Some(v) => Watermark::from_property(v).ok_or_else(|| ShipError::IncompatibleSchema {
            table: opts.catalog.table_name(),
            reason: format!(
                "table property {} = {v:?} is not a shipper watermark",
                property_key(&opts.instance)
            ),
        }),
    }
}

/// Refuses to ship when the table's watermark of this instance names
/// segments this dir does not have (another dir shipped under this name).
fn check_identity(
    w: &Watermark,
    sealed: &[Sealed],
    newest: &BTreeMap<u64, u64>,
    opts: &ShipOptions,
) -> Result<(), ShipError> {
    for (shard, mark) in &w.shards {
        let here = sealed
            .iter()
            .find(|s| s.id.shard == *shard && s.id.seq == mark.seq);
        let mismatch = match here {
            Some(s) => {
                s.id.generation != mark.generation || s.id.created_unix_ns != mark.created_unix_ns
            }
            // Seqs never go down in a folder: a folder whose newest segment
            // is older than the watermark is not the folder that was shipped.
            None => newest.get(shard).is_none_or(|n| *n < mark.seq),
        };
        if mismatch {
            let (g, c) = here.map_or((0, 0), |s| (s.id.generation, s.id.created_unix_ns));
            return Err(ShipError::InstanceMismatch {
                table: opts.catalog.table_name(),
                instance: opts.instance.clone(),
                shard: *shard,
                seq: mark.seq,
                table_generation: mark.generation,
                table_created_unix_ns: mark.created_unix_ns,
                dir: opts.dir.clone(),
                dir_generation: g,
                dir_created_unix_ns: c,
            });
        }
    }
    Ok(())
}

/// Data files written for one segment and not yet committed.
struct Uploaded {
    files: Vec<DataFile>,
    rows: u64,
}

/// Ships every sealed segment not yet in the table.
async fn ship_pending(
    opts: &ShipOptions,
    catalog: &Arc<dyn Catalog>,
    summary: &mut Summary,
) -> Result<(), ShipError> {
    let uri = opts.catalog.uri.as_str();
    let mut table = load_or_create(catalog.as_ref(), &opts.catalog).await?;
    let mut uploaded: HashMap<SegmentId, Uploaded> = HashMap::new();
    let mut attempts = 0u32;
    let mut bar: Option<ProgressBar> = None;
    let mut written_shipped: Option<Watermark> = None;
    let result = loop {
        let layout = layout(
            &opts.catalog.table_name(),
            table.metadata().current_schema(),
        )?;
        let w = table_watermark(&table, opts)?;
        summary.watermark = w.clone();
        let (sealed, newest) = sealed_segments(&opts.dir)?;
        check_identity(&w, &sealed, &newest, opts)?;
        // Uploads for segments someone else committed meanwhile are orphans.
        let stale: Vec<SegmentId> = uploaded
            .keys()
            .filter(|id| w.covers(id.shard, id.seq))
            .copied()
            .collect();
        for id in stale {
            if let Some(u) = uploaded.remove(&id) {
                delete_files(&table, &u.files).await;
            }
        }
        if written_shipped.as_ref() != Some(&w) && !w.shards.is_empty() {
            write_shipped(&opts.dir, &opts.instance, &opts.catalog.table_name(), &w)?;
            written_shipped = Some(w.clone());
        }
        let pending: Vec<&Sealed> = sealed
            .iter()
            .filter(|s| !w.covers(s.id.shard, s.id.seq))
            .collect();
        if pending.is_empty() {
            break Ok(());
        }
        let pb = bar.get_or_insert_with(|| {
            progress::bar(opts.progress, pending.iter().map(|s| s.bytes).sum())
        });
        // One commit: whole segments up to `commit_bytes`, in folder order.
        let mut group: Vec<&Sealed> = Vec::new();
        let mut bytes = 0u64;
        for s in pending {
            if !group.is_empty() && bytes + s.bytes > opts.commit_bytes {
                break;
            }
            bytes += s.bytes;
            group.push(s);
        }
        let mut next = w.clone();
        let mut files = Vec::new();
        let mut rows = 0u64;
        let mut shipped: Vec<&Sealed> = Vec::new();
        for s in &group {
            if let std::collections::hash_map::Entry::Vacant(slot) = uploaded.entry(s.id) {
                match write_segment(&table, &layout, s, &opts.instance, pb).await? {
                    Some(u) => {
                        slot.insert(u);
                    }
                    None => {
                        summary.vanished += 1;
                        eprintln!(
                            "ringstore-ship: {} was retired by compaction before it was shipped; its rows are not in the table (Config::retain_until_shipped prevents this)",
                            s.path().display()
                        );
                    }
                }
            }
            next.advance(s.id);
            if let Some(u) = uploaded.get(&s.id) {
                files.extend(u.files.iter().cloned());
                rows += u.rows;
                shipped.push(s);
            }
        }
        failpoint::hit("after-upload");
        let tokens: Vec<String> = shipped.iter().map(|s| s.id.to_token()).collect();
        if files.is_empty() {
            // Every segment of the group vanished: they are gone from the
            // listing now, so planning again moves on (a commit of only the
            // watermark would carry no snapshot to compare-and-swap on).
            attempts += 1;
            if attempts >= MAX_ATTEMPTS {
                break Err(ShipError::CommitContention {
                    table: opts.catalog.table_name(),
                    attempts,
                });
            }
            continue;
        }
        let tx = Transaction::new(&table);
        let append = tx
            .fast_append()
            .add_data_files(files.clone())
            .set_snapshot_properties(HashMap::from([
                (SUMMARY_INSTANCE.to_owned(), opts.instance.clone()),
                (SUMMARY_SEGMENTS.to_owned(), tokens.join(",")),
            ]));
        let props = tx
            .update_table_properties()
            .set(property_key(&opts.instance), next.to_property());
        let tx = append
            .apply(tx)
            .and_then(|tx| props.apply(tx))
            .map_err(|e| ShipError::from_iceberg(uri, "preparing the commit", &e))?;
        let guard = Guarded::new(catalog.clone(), table.metadata_location());
        let t0 = Instant::now();
        match tx.commit(&guard).await {
            Ok(t) => {
                summary.commit_latencies.push(t0.elapsed());
                table = t;
                summary.commits += 1;
                summary.segments += shipped.len() as u64;
                summary.rows += rows;
                summary.segment_bytes += shipped.iter().map(|s| s.bytes).sum::<u64>();
                summary.data_files += files.len() as u64;
                summary.data_file_bytes +=
                    files.iter().map(DataFile::file_size_in_bytes).sum::<u64>();
                for s in &group {
                    uploaded.remove(&s.id);
                }
                attempts = 0;
                failpoint::hit("after-commit");
            }
            Err(e) if Guarded::is_moved(&e) || e.kind() == ErrorKind::CatalogCommitConflicts => {
                summary.conflicts += 1;
                attempts += 1;
                if attempts >= MAX_ATTEMPTS {
                    break Err(ShipError::CommitContention {
                        table: opts.catalog.table_name(),
                        attempts,
                    });
                }
                // Back off with jitter so racing shippers spread out.
                let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]);
                tokio::time::sleep(Duration::from_millis(
                    20 * u64::from(attempts.min(10)) + jitter,
                ))
                .await;
                let ident = opts.catalog.ident()?;
                table = catalog
                    .load_table(&ident)
                    .await
                    .map_err(|e| ShipError::from_iceberg(uri, "reloading the table", &e))?;
            }
            Err(e) => break Err(ShipError::from_iceberg(uri, "committing", &e)),
        }
    };
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    // Files of a commit that failed for good are orphans: not in the table.
    for u in uploaded.values() {
        delete_files(&table, &u.files).await;
    }
    result
}

/// Deletes uncommitted data files (best effort: an orphan file is harmless,
/// table maintenance's `remove_orphan_files` removes what is left).
async fn delete_files(table: &Table, files: &[DataFile]) {
    for f in files {
        let _ = table.file_io().delete(f.file_path()).await;
    }
}

/// Converts one segment and uploads its Parquet data files under the
/// table's location; `None` if compaction retired it meanwhile.
async fn write_segment(
    table: &Table,
    layout: &Layout,
    seg: &Sealed,
    instance: &str,
    pb: &ProgressBar,
) -> Result<Option<Uploaded>, ShipError> {
    let uri_err = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |e: iceberg::Error| ShipError::Convert {
            path,
            reason: format!("{op}: {e}"),
        }
    };
    let loc = DefaultLocationGenerator::new(table.metadata())
        .map_err(uri_err("choosing the data file location", seg.path()))?;
    // A unique suffix per attempt: a file another shipper committed is never
    // overwritten.
    let names = DefaultFileNameGenerator::new(
        format!("{instance}-shard{}-seq{}", seg.id.shard, seg.id.seq),
        Some(uuid::Uuid::new_v4().to_string()),
        DataFileFormat::Parquet,
    );
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("ringstore-ship {}", env!("CARGO_PKG_VERSION")))
        .build();
    let parquet = ParquetWriterBuilder::new(props, table.metadata().current_schema().clone());
    let rolling = RollingFileWriterBuilder::new_with_default_file_size(
        parquet,
        table.file_io().clone(),
        loc,
        names,
    );
    let mut writer = DataFileWriterBuilder::new(rolling)
        .build(None)
        .await
        .map_err(uri_err("opening a data file writer", seg.path()))?;

    let (tx, mut rx) = tokio::sync::mpsc::channel::<RecordBatch>(2);
    let conv_seg = seg.clone();
    let conv_layout = layout.clone();
    let conv_instance = instance.to_owned();
    let conv_pb = pb.clone();
    let base = pb.position();
    let converter = tokio::task::spawn_blocking(move || {
        convert_segment(
            &conv_seg,
            &conv_instance,
            &conv_layout,
            &mut |b| tx.blocking_send(b).is_ok(),
            &mut |offset| conv_pb.set_position(base + offset),
        )
    });
    let mut write_err = None;
    while let Some(batch) = rx.recv().await {
        if let Err(e) = writer.write(batch).await {
            write_err = Some(e);
            break;
        }
    }
    drop(rx);
    let converted = converter.await.map_err(|e| ShipError::Convert {
        path: seg.path().to_path_buf(),
        reason: format!("conversion task failed: {e}"),
    })?;
    if let Some(e) = write_err {
        let _ = writer.close().await;
        return Err(ShipError::from_iceberg(
            table.metadata().location(),
            "uploading a data file",
            &e,
        ));
    }
    let closed = writer.close().await;
    let converted = match converted {
        Ok(c) => c,
        Err(e) => {
            if let Ok(files) = &closed {
                delete_files(table, files).await;
            }
            return Err(e);
        }
    };
    let files = closed.map_err(|e| {
        ShipError::from_iceberg(table.metadata().location(), "uploading a data file", &e)
    })?;
    pb.set_position(base + seg.bytes);
    match converted {
        Converted::Rows(rows) => Ok(Some(Uploaded { files, rows })),
        Converted::Vanished => {
            delete_files(table, &files).await;
            Ok(None)
        }
    }
}
