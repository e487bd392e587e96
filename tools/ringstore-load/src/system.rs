//! What the process used (peak RSS, CPU time) and what it ran on (the block
//! device and filesystem under the data dir), read from /proc and /sys.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::LoadError;

const TMPFS_MAGIC: i64 = 0x0102_1994;
const RAMFS_MAGIC: i64 = 0x8584_58f6;

/// Refuses a directory on a memory filesystem, where O_DIRECT and
/// durability do not exist.
pub fn check_real_disk(dir: &Path) -> Result<(), LoadError> {
    let fs = rustix::fs::statfs(dir).map_err(|e| LoadError::io("statfs of", dir, e.into()))?;
    let filesystem = match fs.f_type as i64 {
        TMPFS_MAGIC => "tmpfs",
        RAMFS_MAGIC => "ramfs",
        _ => return Ok(()),
    };
    Err(LoadError::NotADisk {
        path: dir.to_path_buf(),
        filesystem,
    })
}

/// Peak resident set size of this process (VmHWM), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    status_kib("VmHWM:").map(|kib| kib * 1024)
}

/// Resets the peak resident set size (VmHWM) to the current RSS, so a later
/// `peak_rss_bytes` covers only what happened since (Linux ≥ 4.0). Returns
/// whether the kernel accepted it.
pub fn reset_peak_rss() -> bool {
    fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Current resident set size of this process (VmRSS), in bytes.
pub fn rss_bytes() -> Option<u64> {
    status_kib("VmRSS:").map(|kib| kib * 1024)
}

/// A `kB` field of /proc/self/status.
fn status_kib(field: &str) -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time this process has used so far: (user, system) seconds.
pub fn cpu_seconds() -> Option<(f64, f64)> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which may hold spaces and parentheses.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace();
    // After ")": state is field 3; utime and stime are fields 14 and 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    Some((utime as f64 / ticks, stime as f64 / ticks))
}

/// Bytes this process has caused to be sent to storage so far
/// (`write_bytes` of /proc/self/io: direct writes when submitted, buffered
/// ones when dirtied; not the filesystem journal's).
pub fn process_write_bytes() -> Option<u64> {
    let io = fs::read_to_string("/proc/self/io").ok()?;
    let line = io.lines().find(|l| l.starts_with("write_bytes:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Bytes written to the block device `device` (e.g. `vda`) so far, by
/// everyone (journal and other processes included): sectors written in
/// `/sys/block/<device>/stat` × 512.
pub fn device_write_bytes(device: &str) -> Option<u64> {
    let stat = fs::read_to_string(format!("/sys/block/{device}/stat")).ok()?;
    let sectors: u64 = stat.split_whitespace().nth(6)?.parse().ok()?;
    Some(sectors * 512)
}

/// CPU time (user + system) of every thread of this process so far, io_uring
/// workers included, to the nanosecond (`CLOCK_PROCESS_CPUTIME_ID`).
pub fn process_cpu() -> std::time::Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    std::time::Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// CPU time of the whole host so far, summed over CPUs, in clock ticks:
/// (busy, total). Busy is everything but idle and iowait.
pub fn host_cpu_ticks() -> Option<(u64, u64)> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|t| t.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let idle = ticks.get(3)? + ticks.get(4)?;
    let total: u64 = ticks.iter().sum();
    Some((total - idle, total))
}

/// The disk and filesystem holding the data dir.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeviceInfo {
    /// The block device (e.g. `nvme0n1`), partitions resolved to their disk.
    pub block_device: Option<String>,
    /// Model string from sysfs.
    pub model: Option<String>,
    /// Whether the kernel considers it rotational (a spinning disk).
    pub rotational: Option<bool>,
    /// `write back` (volatile cache: durability needs flushes) or
    /// `write through`.
    pub write_cache: Option<String>,
    /// Whether the device honours FUA (force unit access) writes.
    pub fua: Option<bool>,
    /// Filesystem type of the mount holding the dir (ext4, xfs, …).
    pub filesystem: Option<String>,
    /// Mount point holding the dir.
    pub mount_point: Option<String>,
    /// What is mounted there (e.g. /dev/nvme0n1p2).
    pub mount_source: Option<String>,
}

/// Describes the device and filesystem under `dir` (fields left `None` when
/// sysfs or /proc do not say, e.g. inside some containers).
pub fn device_info(dir: &Path) -> DeviceInfo {
    let mut info = DeviceInfo::default();
    if let Some((fs_type, mount_point, source)) = mount_of(dir) {
        info.filesystem = Some(fs_type);
        info.mount_point = Some(mount_point);
        info.mount_source = Some(source);
    }
    let Some(disk) = fs::metadata(dir).ok().and_then(|m| block_dir(m.dev())) else {
        return info;
    };
    let read = |rel: &str| {
        fs::read_to_string(disk.join(rel))
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    info.block_device = disk.file_name().and_then(|n| n.to_str()).map(str::to_owned);
    info.model = read("device/model");
    info.rotational = read("queue/rotational").map(|s| s == "1");
    info.write_cache = read("queue/write_cache");
    info.fua = read("queue/fua").map(|s| s == "1");
    info
}

/// The sysfs dir of the whole disk holding device number `dev`.
fn block_dir(dev: u64) -> Option<PathBuf> {
    let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
    let dir = fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).ok()?;
    if dir.join("partition").exists() {
        dir.parent().map(Path::to_path_buf)
    } else {
        Some(dir)
    }
}

/// (filesystem type, mount point, source) of the mount holding `dir`: the
/// longest mount point that is a prefix of its canonical path.
fn mount_of(dir: &Path) -> Option<(String, String, String)> {
    let dir = fs::canonicalize(dir).ok()?;
    let table = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut best: Option<(usize, (String, String, String))> = None;
    for line in table.lines() {
        // id parent major:minor root mount-point options [optional…] - type source super-options
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mount_point) = left.split_whitespace().nth(4) else {
            continue;
        };
        let mount_point = mount_point.replace("\\040", " ");
        let mut right = right.split_whitespace();
        let (Some(fs_type), Some(source)) = (right.next(), right.next()) else {
            continue;
        };
        if dir.starts_with(&mount_point)
            && best
                .as_ref()
                .is_none_or(|(len, _)| mount_point.len() >= *len)
        {
            best = Some((
                mount_point.len(),
                (fs_type.to_owned(), mount_point, source.to_owned()),
            ));
        }
    }
    best.map(|(_, m)| m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_figures_are_readable() {
        assert!(peak_rss_bytes().unwrap() > 0);
        assert!(rss_bytes().unwrap() > 0);
        assert!(rss_bytes().unwrap() <= peak_rss_bytes().unwrap());
        let (user, system) = cpu_seconds().unwrap();
        assert!(user >= 0.0 && system >= 0.0);
        let (busy, total) = host_cpu_ticks().unwrap();
        assert!(0 < busy && busy <= total);
    }

    #[test]
    fn root_has_a_filesystem() {
        assert!(device_info(Path::new("/")).filesystem.is_some());
    }
}
