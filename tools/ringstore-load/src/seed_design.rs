//! The seed project's own architecture, made durable, as a baseline that
//! runs the same workload in the same run and dir (`--compare seed-design`):
//! the question a user of the harness asks on their own disk is how much
//! better than the obvious design the store is.
//!
//! The seed (a Go service) keeps its records in maps behind a mutex, and
//! after the memory update hands each record to a channel read by several
//! serializer goroutines, each appending to its own file. Made durable, that
//! is:
//!
//! * [`SHARDS`] `RwLock<HashMap>` shards (key hashed to a shard); a put
//!   checks recency and updates the map under the write lock (a stale put
//!   returns `Stale` and is not written, as in the seed);
//! * one bounded channel ([`CHANNEL_RECORDS`]) to [`PERSISTERS`] persister
//!   threads, each appending length-prefixed frames to its own buffered
//!   file;
//! * a persister takes what is queued, up to [`GROUP_MAX_RECORDS`] records,
//!   writes them, calls `fdatasync` once for the group (group commit), then
//!   acknowledges each put. Without fsync (`durable: false`, the comparison
//!   for `--durability async`) it acknowledges after the buffered write.
//!
//! Records are serialized with rkyv as the store does, so the comparison
//! measures the architecture, not the encoding. As in the seed, a get may
//! see a record whose write is not yet durable.

use std::collections::HashMap;
use std::fs::File;
use std::hash::BuildHasher;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use ringstore::{PutOutcome, Record, Value};
use serde::Serialize;

use crate::error::LoadError;
use crate::payload::Payload;
use crate::report::LatencySummary;
use crate::system;
use crate::workload::{self, Target, WorkloadResult, WorkloadSpec};

/// Map shards.
pub const SHARDS: usize = 8;
/// Persister threads, each with its own file.
pub const PERSISTERS: usize = 16;
/// Most records one persister writes before one `fdatasync`.
pub const GROUP_MAX_RECORDS: usize = 64;
/// Records the channel holds before a put waits for room.
pub const CHANNEL_RECORDS: usize = 1024;

/// What a put of the seed design can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SeedDesignError {
    /// The record has no integer `collection_time`.
    #[error("the record has no integer `collection_time` field (the version)")]
    NoVersion,
    /// rkyv could not serialize the record.
    #[error("serializing the record: {0}")]
    Serialize(String),
    /// A persister's write or fdatasync failed.
    #[error("persister {persister}: {what} {path}: {reason}")]
    Persist {
        /// Which persister.
        persister: usize,
        /// The operation.
        what: &'static str,
        /// Its file.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// The persisters are gone (closed, or one panicked).
    #[error("the persisters stopped")]
    Closed,
}

/// A record in the map: its version and its serialized bytes (shared with
/// the persister that writes them).
#[derive(Debug)]
pub struct Entry {
    /// `collection_time`.
    pub version: i64,
    /// The archived record.
    pub bytes: rkyv::util::AlignedVec,
}

/// One record on its way to a persister.
struct Job {
    key: Box<str>,
    entry: Arc<Entry>,
    done: std::sync::mpsc::SyncSender<Result<(), SeedDesignError>>,
}

/// The seed's design, running: maps, channel and persister threads.
pub struct SeedDesign {
    dir: PathBuf,
    hasher: std::collections::hash_map::RandomState,
    shards: Vec<RwLock<HashMap<Box<str>, Arc<Entry>>>>,
    tx: crossbeam_channel::Sender<Job>,
    persisters: Vec<JoinHandle<()>>,
}

impl SeedDesign {
    /// Starts the persisters, each with a new file in `dir` (created);
    /// with `durable`, each group is made durable before it is
    /// acknowledged.
    pub fn open(dir: &Path, durable: bool) -> Result<SeedDesign, LoadError> {
        std::fs::create_dir_all(dir).map_err(|e| LoadError::io("creating", dir, e))?;
        let (tx, rx) = crossbeam_channel::bounded::<Job>(CHANNEL_RECORDS);
        let mut persisters = Vec::with_capacity(PERSISTERS);
        for i in 0..PERSISTERS {
            let path = dir.join(format!("persister-{i}.log"));
            let file = File::create(&path).map_err(|e| LoadError::io("creating", &path, e))?;
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("persister-{i}"))
                .spawn(move || persist(i, &path, file, &rx, durable));
            match spawned {
                Ok(h) => persisters.push(h),
                Err(e) => return Err(LoadError::io("spawning a persister thread", dir, e)),
            }
        }
        Ok(SeedDesign {
            dir: dir.to_path_buf(),
            hasher: std::collections::hash_map::RandomState::new(),
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            tx,
            persisters,
        })
    }

    /// Stops the persisters once they wrote everything sent, and waits for
    /// them.
    pub fn close(self) -> Result<(), LoadError> {
        drop(self.tx);
        for h in self.persisters {
            h.join().map_err(|_| LoadError::Panicked {
                role: "seed-design persister",
            })?;
        }
        Ok(())
    }

    fn shard(&self, key: &str) -> Option<&RwLock<HashMap<Box<str>, Arc<Entry>>>> {
        let h = self.hasher.hash_one(key) as usize;
        self.shards.get(h % SHARDS)
    }
}

impl Target for SeedDesign {
    type Error = SeedDesignError;
    type Handle = Arc<Entry>;

    fn put_blocking(&self, key: &str, record: &Record) -> Result<PutOutcome, SeedDesignError> {
        let Some(Value::Int(version)) = record.get("collection_time") else {
            return Err(SeedDesignError::NoVersion);
        };
        let version = *version;
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(record)
            .map_err(|e| SeedDesignError::Serialize(e.to_string()))?;
        let entry = Arc::new(Entry { version, bytes });
        let shard = self.shard(key).ok_or(SeedDesignError::Closed)?;
        {
            let mut map = shard.write().map_err(|_| SeedDesignError::Closed)?;
            if let Some(current) = map.get(key) {
                if current.version > version {
                    return Ok(PutOutcome::Stale {
                        current_version: current.version,
                    });
                }
            }
            map.insert(key.into(), Arc::clone(&entry));
        }
        let (done, acked) = std::sync::mpsc::sync_channel(1);
        self.tx
            .send(Job {
                key: key.into(),
                entry,
                done,
            })
            .map_err(|_| SeedDesignError::Closed)?;
        acked.recv().map_err(|_| SeedDesignError::Closed)??;
        Ok(PutOutcome::Applied)
    }

    fn get(&self, key: &str) -> Option<Arc<Entry>> {
        let map = self.shard(key)?.read().ok()?;
        map.get(key).cloned()
    }

    fn dir(&self) -> &Path {
        &self.dir
    }
}

/// One persister: take a group off the channel, append it, fdatasync once,
/// acknowledge every put of the group; until the channel closes.
fn persist(
    id: usize,
    path: &Path,
    file: File,
    rx: &crossbeam_channel::Receiver<Job>,
    durable: bool,
) {
    let mut out = BufWriter::new(file);
    let mut group: Vec<Job> = Vec::with_capacity(GROUP_MAX_RECORDS);
    while let Ok(first) = rx.recv() {
        group.push(first);
        while group.len() < GROUP_MAX_RECORDS {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let failed = |what: &'static str, e: std::io::Error| SeedDesignError::Persist {
            persister: id,
            what,
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let mut result = group
            .iter()
            .try_for_each(|job| write_frame(&mut out, &job.key, &job.entry.bytes))
            .and_then(|()| out.flush())
            .map_err(|e| failed("writing", e));
        if durable && result.is_ok() {
            result = out
                .get_ref()
                .sync_data()
                .map_err(|e| failed("fdatasync of", e));
        }
        for job in group.drain(..) {
            let _ = job.done.send(result.clone());
        }
    }
}

/// A frame: key length and record length (u32 little-endian each), CRC32C
/// of the record, the key, the record.
fn write_frame(out: &mut impl Write, key: &str, record: &[u8]) -> std::io::Result<()> {
    let len = |n: usize| {
        u32::try_from(n).map_err(|_| std::io::Error::other("a key or record over 4 GiB"))
    };
    out.write_all(&len(key.len())?.to_le_bytes())?;
    out.write_all(&len(record.len())?.to_le_bytes())?;
    out.write_all(&crc32c::crc32c(record).to_le_bytes())?;
    out.write_all(key.as_bytes())?;
    out.write_all(record)
}

/// What one run of the workload through the seed design measured.
#[derive(Debug, Clone, Serialize)]
pub struct DesignRun {
    /// Puts acknowledged.
    pub puts: u64,
    /// Workload wall time, ms (start until the last writer finished).
    pub wall_ms: f64,
    /// Puts acknowledged per second of `wall_ms`.
    pub puts_per_s: f64,
    /// Put latency, call to acknowledgement, µs.
    pub put_latency_us: LatencySummary,
    /// CPU per put, µs: the process's CPU over the workload and close,
    /// minus the writer threads outside their puts and the reader threads
    /// (see `Report::store_cpu_us_per_put`).
    pub cpu_us_per_put: Option<f64>,
}

/// The store against the seed design, in the same run and dir: the design
/// ran before and after the store, the comparison uses the mean of the two.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Always `seed-design`.
    pub design: &'static str,
    /// Whether each group was made durable (`fdatasync`) before it was
    /// acknowledged: true for `--durability sync`, false for async.
    pub durable: bool,
    /// Map shards, persister threads, records per fdatasync at most.
    pub shards: usize,
    /// Persister threads (each with its own file).
    pub persisters: usize,
    /// Records one fdatasync covers at most.
    pub group_max_records: usize,
    /// The run before the store's.
    pub before: DesignRun,
    /// The run after the store's.
    pub after: DesignRun,
    /// Mean puts/s of the two runs.
    pub puts_per_s: f64,
    /// Mean put p50 of the two runs, µs.
    pub put_p50_us: f64,
    /// Mean put p99 of the two runs, µs.
    pub put_p99_us: f64,
    /// Mean CPU per put of the two runs, µs.
    pub cpu_us_per_put: Option<f64>,
    /// The store's figure ÷ the design's: above 1 the store is faster.
    pub puts_per_s_ratio: f64,
    /// The store's put p50 ÷ the design's: below 1 the store is faster.
    pub put_p50_ratio: f64,
    /// The store's put p99 ÷ the design's: below 1 the store is faster.
    pub put_p99_ratio: f64,
    /// The store's CPU per put ÷ the design's: below 1 the store is cheaper.
    pub cpu_per_put_ratio: Option<f64>,
}

impl Comparison {
    /// Compares the store's figures with the design's two runs.
    pub fn new(
        durable: bool,
        before: DesignRun,
        after: DesignRun,
        store_puts_per_s: f64,
        store_put_latency_us: &LatencySummary,
        store_cpu_us_per_put: Option<f64>,
    ) -> Comparison {
        let mean = |f: fn(&DesignRun) -> f64| (f(&before) + f(&after)) / 2.0;
        let puts_per_s = mean(|r| r.puts_per_s);
        let put_p50_us = mean(|r| r.put_latency_us.p50);
        let put_p99_us = mean(|r| r.put_latency_us.p99);
        let cpu_us_per_put = before
            .cpu_us_per_put
            .zip(after.cpu_us_per_put)
            .map(|(a, b)| (a + b) / 2.0);
        let ratio = |store: f64, design: f64| store / design.max(1e-9);
        Comparison {
            design: "seed-design",
            durable,
            shards: SHARDS,
            persisters: PERSISTERS,
            group_max_records: GROUP_MAX_RECORDS,
            puts_per_s_ratio: ratio(store_puts_per_s, puts_per_s),
            put_p50_ratio: ratio(store_put_latency_us.p50, put_p50_us),
            put_p99_ratio: ratio(store_put_latency_us.p99, put_p99_us),
            cpu_per_put_ratio: store_cpu_us_per_put
                .zip(cpu_us_per_put)
                .map(|(s, d)| ratio(s, d)),
            before,
            after,
            puts_per_s,
            put_p50_us,
            put_p99_us,
            cpu_us_per_put,
        }
    }
}

/// Runs the workload through a fresh seed design in `dir` (removed after),
/// acknowledged puts logged under `spec.ack_dir`.
pub fn measure(
    dir: &Path,
    durable: bool,
    payload: &Payload,
    keys: &[String],
    spec: &WorkloadSpec,
) -> Result<DesignRun, LoadError> {
    let design = SeedDesign::open(dir, durable)?;
    let cpu_before = system::process_cpu();
    let result = workload::run(&design, payload, keys, spec);
    let closed = design.close();
    let cpu_after = system::process_cpu();
    let _ = std::fs::remove_dir_all(dir);
    let result = result?;
    closed?;
    if let Some(e) = &result.first_put_error {
        return Err(LoadError::SeedDesign { reason: e.clone() });
    }
    let wall_ms = crate::verify::ms(result.wall);
    Ok(DesignRun {
        puts: result.puts,
        wall_ms,
        puts_per_s: result.puts as f64 * 1e3 / wall_ms.max(1e-9),
        put_latency_us: LatencySummary::from_ns(&result.put_latency_ns),
        cpu_us_per_put: cpu_us_per_put(cpu_before, cpu_after, &result),
    })
}

/// CPU per put, µs: the process's CPU (user + system, every thread,
/// io_uring workers included) between `before` and `after`, minus the
/// writer threads' CPU outside their puts and the reader threads' CPU,
/// divided by the puts.
pub fn cpu_us_per_put(before: Duration, after: Duration, result: &WorkloadResult) -> Option<f64> {
    let load_generator = result.generation_cpu + result.reader_cpu;
    let cpu = after.saturating_sub(before).saturating_sub(load_generator);
    (result.puts > 0).then(|| cpu.as_secs_f64() * 1e6 / result.puts as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_wins_and_every_put_is_in_a_persister_file() {
        let dir = tempfile::tempdir().unwrap();
        let design = SeedDesign::open(dir.path(), true).unwrap();
        let put = |v: i64| {
            design.put_blocking(
                "k",
                &Record::new().with("collection_time", v).with("x", "y"),
            )
        };
        assert_eq!(put(2).unwrap(), PutOutcome::Applied);
        assert_eq!(put(1).unwrap(), PutOutcome::Stale { current_version: 2 });
        assert_eq!(design.get("k").unwrap().version, 2);
        assert!(design.get("other").is_none());
        assert!(matches!(
            design.put_blocking("k", &Record::new().with("x", "y")),
            Err(SeedDesignError::NoVersion)
        ));
        design.close().unwrap();
        let written: u64 = (0..PERSISTERS)
            .map(|i| {
                std::fs::metadata(dir.path().join(format!("persister-{i}.log")))
                    .unwrap()
                    .len()
            })
            .sum();
        // One applied put: one frame of 12 header bytes, the key, the record.
        assert!(written > 13, "{written}");
    }
}
