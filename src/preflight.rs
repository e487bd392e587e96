//! Checks run by `Store::open` before any executor starts, so that glommio
//! never panics or exits the host process on a machine that cannot run it:
//! the filesystem of the data dir (every backend), then RLIMIT_MEMLOCK and
//! io_uring itself (the io_uring backend; `IoBackend::Auto` falls back to
//! the portable backend when they fail).

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rustix::fs::OFlags;
use rustix::process::{Resource, getrlimit};

use crate::config::{Config, IoBackend};
use crate::error::Error;

/// glommio refuses to start below this RLIMIT_MEMLOCK.
const MIN_MEMLOCK_BYTES: u64 = 512 << 10;
const TMPFS_MAGIC: i64 = 0x0102_1994;
const RAMFS_MAGIC: i64 = 0x8584_58f6;
/// glommio needs opcodes up to Linux 5.8.
const MIN_KERNEL: (u32, u32) = (5, 8);

const IO_URING_REMEDY: &str = "allow io_uring: `sysctl kernel.io_uring_disabled=0` on the host \
     (1 allows only members of kernel.io_uring_group), and in a container use a seccomp profile \
     that permits io_uring_setup, io_uring_enter and io_uring_register (Docker >= 25 and \
     containerd >= 2.0 block them by default)";

/// Whether this process can run glommio executors: kernel version,
/// RLIMIT_MEMLOCK, and a real `io_uring_setup`.
pub(crate) fn check_io_uring_usable() -> Result<(), Error> {
    check_kernel()?;
    check_memlock()?;
    check_io_uring()
}

/// Checks the data dir's filesystem (every backend needs direct I/O on
/// durable storage unless the config allows otherwise).
pub(crate) fn check_filesystem(dir: &Path, allow_non_durable_dir: bool) -> Result<(), Error> {
    if allow_non_durable_dir {
        return Ok(());
    }
    let fs = rustix::fs::statfs(dir).map_err(|e| Error::io("statfs of data dir", dir, e.into()))?;
    let kind = match fs.f_type as i64 {
        TMPFS_MAGIC => Some("tmpfs (memory, not durable)"),
        RAMFS_MAGIC => Some("ramfs (memory, not durable)"),
        _ => None,
    };
    if let Some(kind) = kind {
        return Err(Error::NoDirectIo {
            path: dir.to_path_buf(),
            filesystem: kind.to_owned(),
        });
    }
    // Some filesystems (FUSE, older NFS, overlay on tmpfs) refuse O_DIRECT:
    // try it on a scratch file rather than trusting a list.
    let probe = dir.join(crate::layout::ODIRECT_PROBE_FILE);
    let _ = std::fs::remove_file(&probe);
    let opened = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(OFlags::DIRECT.bits() as i32)
        .open(&probe);
    let _ = std::fs::remove_file(&probe);
    match opened {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
            Err(Error::NoDirectIo {
                path: dir.to_path_buf(),
                filesystem: format!(
                    "a filesystem without O_DIRECT (statfs type {:#x})",
                    fs.f_type
                ),
            })
        }
        Err(e) => Err(Error::io(
            "creating a probe file in the data dir",
            &probe,
            e,
        )),
    }
}

fn check_kernel() -> Result<(), Error> {
    let uname = rustix::system::uname();
    let release = uname.release().to_string_lossy();
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts
        .next()
        .and_then(|p| p.parse::<u32>().ok())
        .unwrap_or(0);
    let minor = parts
        .next()
        .and_then(|p| p.parse::<u32>().ok())
        .unwrap_or(0);
    if (major, minor) < MIN_KERNEL {
        return Err(Error::IoUringUnavailable {
            reason: format!("kernel {release} is older than 5.8"),
            remedy: "run on Linux 5.8 or newer",
        });
    }
    Ok(())
}

fn check_memlock() -> Result<(), Error> {
    let limit = getrlimit(Resource::Memlock);
    match limit.current {
        Some(bytes) if bytes < MIN_MEMLOCK_BYTES => Err(Error::MemlockTooLow {
            limit_bytes: bytes,
            needed_bytes: MIN_MEMLOCK_BYTES,
        }),
        _ => Ok(()),
    }
}

fn check_io_uring() -> Result<(), Error> {
    if let Ok(v) = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled") {
        if v.trim() == "2" {
            return Err(Error::IoUringUnavailable {
                reason: "the kernel sysctl kernel.io_uring_disabled is 2".to_owned(),
                remedy: IO_URING_REMEDY,
            });
        }
    }
    match try_ring() {
        Ok(()) => Ok(()),
        Err(e) => {
            let errno = rustix::io::Errno::from_io_error(&e);
            let (reason, remedy) = match errno {
                Some(rustix::io::Errno::PERM) | Some(rustix::io::Errno::ACCESS) => (
                    "io_uring_setup was refused (EPERM): a seccomp filter or the \
                     kernel.io_uring_disabled sysctl blocks it"
                        .to_owned(),
                    IO_URING_REMEDY,
                ),
                Some(rustix::io::Errno::NOSYS) => (
                    "io_uring_setup does not exist (ENOSYS): the kernel was built without \
                     io_uring or a sandbox hides it"
                        .to_owned(),
                    "run on a kernel with CONFIG_IO_URING=y, outside sandboxes that hide it",
                ),
                Some(rustix::io::Errno::NOMEM) => (
                    "io_uring_setup failed with ENOMEM: locked memory is exhausted".to_owned(),
                    "raise RLIMIT_MEMLOCK (`ulimit -l`, systemd `LimitMEMLOCK=`)",
                ),
                _ => (format!("io_uring_setup failed: {e}"), IO_URING_REMEDY),
            };
            Err(Error::IoUringUnavailable { reason, remedy })
        }
    }
}

/// Creates and closes a tiny ring.
#[expect(
    unsafe_code,
    reason = "io_uring_setup has no safe wrapper; glommio would panic instead"
)]
fn try_ring() -> io::Result<()> {
    let mut params = rustix::io_uring::io_uring_params::default();
    // SAFETY: `params` is a valid, zeroed `io_uring_params` that outlives the
    // call; the returned fd is owned and closed on drop, and the ring is never
    // mapped, so no memory is shared with the kernel.
    let fd = unsafe { rustix::io_uring::io_uring_setup(4, &mut params) }?;
    drop(fd);
    Ok(())
}

/// Checks the data dir and picks the backend: the preflight's typed error
/// when io_uring is required and refused; the portable backend (with a
/// warning) when `Auto` finds io_uring refused.
pub(crate) fn resolve_backend(config: &Config) -> Result<IoBackend, Error> {
    check_filesystem(&config.dir, config.allow_non_durable_dir)?;
    match config.io_backend {
        IoBackend::Portable => Ok(IoBackend::Portable),
        IoBackend::IoUring => {
            check_io_uring_usable()?;
            Ok(IoBackend::IoUring)
        }
        IoBackend::Auto => match check_io_uring_usable() {
            Ok(()) => Ok(IoBackend::IoUring),
            Err(e) => {
                log::warn!(
                    "{e}; falling back to the portable backend (one thread per shard, blocking \
                     O_DIRECT writes): same files and guarantees, lower throughput"
                );
                Ok(IoBackend::Portable)
            }
        },
    }
}
