//! Starting a shard's executor: a glommio `LocalExecutor` (the io_uring
//! backend) or a std thread (the portable backend), pinned to a CPU when
//! asked, running `worker::run` through the fault plan in `failpoints`
//! builds.

use glommio::{LocalExecutorBuilder, Placement};

use crate::config::{Config, IoBackend};
use crate::error::Error;
use crate::io::LogFs;
use crate::io::dma::DmaFs;
use crate::io::portable::PortableFs;
use crate::shard::worker::{self, WorkerSetup};

/// The CPUs this process may run on.
pub(crate) fn allowed_cpus() -> Vec<usize> {
    match rustix::thread::sched_getaffinity(None) {
        Ok(set) => (0..rustix::thread::CpuSet::MAX_CPU)
            .filter(|&c| set.is_set(c))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// A running shard: a glommio executor or a portable std thread.
pub(crate) enum ShardThread {
    Glommio(glommio::ExecutorJoinHandle<()>),
    Portable(std::thread::JoinHandle<()>),
}

impl ShardThread {
    pub(crate) fn join(self) -> Result<(), String> {
        match self {
            ShardThread::Glommio(h) => h.join().map_err(|e| e.to_string()),
            ShardThread::Portable(h) => {
                h.join().map_err(|_| "the shard thread panicked".to_owned())
            }
        }
    }
}

/// Starts shard `i` on `backend` (pinned to `cpu` if given), through the
/// fault plan when the config carries one.
pub(crate) fn spawn_shard(
    config: &Config,
    backend: IoBackend,
    i: usize,
    cpu: Option<usize>,
    setup: WorkerSetup,
    ready: std::sync::mpsc::SyncSender<Result<(), Error>>,
) -> Result<ShardThread, Error> {
    let allow_buffered = config.allow_non_durable_dir;
    #[cfg(feature = "failpoints")]
    if let Some(plan) = config.fault_plan.clone() {
        use crate::io::faulty::FaultyFs;
        return match backend {
            IoBackend::Portable => spawn_portable(i, cpu, allow_buffered, setup, ready, |fs| {
                FaultyFs::new(fs, plan)
            }),
            IoBackend::IoUring | IoBackend::Auto => {
                spawn_glommio(i, cpu, FaultyFs::new(DmaFs, plan), setup, ready)
            }
        };
    }
    match backend {
        IoBackend::Portable => spawn_portable(i, cpu, allow_buffered, setup, ready, |fs| fs),
        IoBackend::IoUring | IoBackend::Auto => spawn_glommio(i, cpu, DmaFs, setup, ready),
    }
}

fn spawn_glommio<Fs: LogFs + Send + 'static>(
    i: usize,
    cpu: Option<usize>,
    fs: Fs,
    setup: WorkerSetup,
    ready: std::sync::mpsc::SyncSender<Result<(), Error>>,
) -> Result<ShardThread, Error> {
    let placement = cpu.map_or(Placement::Unbound, Placement::Fixed);
    LocalExecutorBuilder::new(placement)
        .name(&format!("ringstore-{i}"))
        .io_memory(io_memory_bytes(setup.max_batch_bytes, setup.pipeline_depth))
        .spawn(move || async move {
            let _attached = setup.shared.pulse.attach_current_thread();
            worker::run(fs, setup, ready).await;
        })
        .map(ShardThread::Glommio)
        .map_err(|e| Error::ExecutorStart {
            shard: i,
            reason: e.to_string(),
        })
}

/// glommio's preallocated DMA memory per executor: room for the batches in
/// flight, up to [`IO_MEMORY_PER_BATCH_BYTES`] each (a larger batch takes its
/// buffer from the heap), plus the segment header blocks. glommio's default,
/// 10 MiB per executor, was a fifth of the seed workload's peak RSS.
fn io_memory_bytes(max_batch_bytes: usize, pipeline_depth: usize) -> usize {
    max_batch_bytes
        .min(IO_MEMORY_PER_BATCH_BYTES)
        .saturating_mul(pipeline_depth.max(1))
        .saturating_add(64 << 10)
}

/// The part of a batch's buffer that comes from the executor's
/// preallocated DMA memory: 4 MiB (the closed-loop seed workload's batches
/// are 1–1.5 MB).
const IO_MEMORY_PER_BATCH_BYTES: usize = 4 << 20;

/// One std thread running the shard's worker future with a simple local
/// executor (the portable backend).
fn spawn_portable<Fs: LogFs>(
    i: usize,
    cpu: Option<usize>,
    allow_buffered: bool,
    setup: WorkerSetup,
    ready: std::sync::mpsc::SyncSender<Result<(), Error>>,
    wrap: impl FnOnce(PortableFs) -> Fs + Send + 'static,
) -> Result<ShardThread, Error> {
    std::thread::Builder::new()
        .name(format!("ringstore-{i}"))
        .spawn(move || {
            if let Some(cpu) = cpu {
                let mut set = rustix::thread::CpuSet::new();
                set.set(cpu);
                if let Err(e) = rustix::thread::sched_setaffinity(None, &set) {
                    log::warn!("shard {i}: could not pin to CPU {cpu}: {e}");
                }
            }
            match PortableFs::new(i, allow_buffered) {
                Ok(fs) => futures::executor::block_on(worker::run(wrap(fs), setup, ready)),
                Err(e) => {
                    // The store did not open: no put was acknowledged.
                    let mut receiver = setup.receiver;
                    drop(receiver.close(&setup.shared.queue));
                    let _ = ready.send(Err(Error::ExecutorStart {
                        shard: i,
                        reason: format!("could not start the shard's timer thread: {e}"),
                    }));
                }
            }
        })
        .map(ShardThread::Portable)
        .map_err(|e| Error::ExecutorStart {
            shard: i,
            reason: format!("could not start the shard thread: {e}"),
        })
}
