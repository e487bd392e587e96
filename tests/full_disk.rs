//! A real full disk: a small ext4 image mounted through a loop device is
//! filled with puts until the device refuses. The failing puts get
//! `Error::NoSpace` (later ones `ShardFailed`), every acknowledged put
//! survives a reopen, and once space is freed the store opens and takes
//! writes again. Runs on both I/O backends. Needs root and loop devices;
//! where mounting is impossible the test prints why and passes.

#![expect(
    clippy::unwrap_used,
    reason = "test code: a failure here is a test failure"
)]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ringstore::{Config, Error, IoBackend, Store};

/// A mounted ext4 image, unmounted and deleted on drop (also when the test
/// fails).
struct Mounted {
    image: PathBuf,
    mount: PathBuf,
}

impl Mounted {
    fn new(name: &str, size_mib: u64) -> Result<Mounted, String> {
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("full-disk-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&base).map_err(|e| e.to_string())?;
        let image = base.join("disk.img");
        let mount = base.join("mnt");
        std::fs::create_dir_all(&mount).map_err(|e| e.to_string())?;
        let f = std::fs::File::create(&image).map_err(|e| e.to_string())?;
        f.set_len(size_mib << 20).map_err(|e| e.to_string())?;
        drop(f);
        run(
            "mkfs.ext4",
            &["-q", "-F", "-m", "0", image.to_str().unwrap_or_default()],
        )?;
        let m = Mounted { image, mount };
        run(
            "mount",
            &[
                "-o",
                "loop",
                m.image.to_str().unwrap_or_default(),
                m.mount.to_str().unwrap_or_default(),
            ],
        )?;
        Ok(m)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let mount = self.mount.to_str().unwrap_or_default();
        if run("umount", &[mount]).is_err() {
            let _ = run("umount", &["-l", mount]);
        }
        if let Some(base) = self.image.parent() {
            let _ = std::fs::remove_dir_all(base);
        }
    }
}

fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn config(dir: &Path, backend: IoBackend) -> Config {
    common::config(dir)
        .io_backend(backend)
        .max_segment_bytes(1 << 20)
        .max_record_bytes(64 << 10)
}

fn fill_until_full(backend: IoBackend) {
    let disk = match Mounted::new(&format!("{backend:?}"), 48) {
        Ok(d) => d,
        Err(reason) => {
            eprintln!("skipped: cannot mount an ext4 image here ({reason})");
            return;
        }
    };
    // Ballast to free later: the "space an operator frees".
    let ballast = disk.mount.join("ballast");
    std::fs::write(&ballast, vec![7u8; 8 << 20]).unwrap();
    let dir = disk.mount.join("store");
    let store = Store::open(config(&dir, backend)).unwrap();
    let payload = "x".repeat(16 << 10);
    let mut acked: HashMap<String, i64> = HashMap::new();
    let (mut no_space, mut refused) = (0, 0);
    let mut round = 0i64;
    // Bounded: the disk holds ~2500 such records.
    while round < 2000 {
        round += 1;
        let keys: Vec<String> = (0..8)
            .map(|i| format!("key{}", (round * 8 + i) % 500))
            .collect();
        let futs: Vec<_> = keys
            .iter()
            .map(|k| store.put(k, &common::record(round, &payload)))
            .collect();
        let results = futures::executor::block_on(futures::future::join_all(futs));
        for (key, r) in keys.into_iter().zip(results) {
            match r {
                Ok(_) => {
                    acked.insert(key, round);
                }
                Err(Error::NoSpace { .. }) => no_space += 1,
                Err(Error::ShardFailed { .. }) => refused += 1,
                Err(e) => panic!("{backend:?}: unexpected error on a full disk: {e:?}"),
            }
        }
        if refused > 0 && (no_space + refused) >= 64 {
            break;
        }
    }
    eprintln!(
        "{backend:?}: {} keys acknowledged, {no_space} puts failed with NoSpace, {refused} refused after, in {round} rounds",
        acked.len()
    );
    assert!(no_space > 0, "{backend:?}: the disk never filled");
    for (key, version) in &acked {
        assert!(store.get(key).unwrap().version() >= *version);
    }
    assert!(
        store.close().is_err(),
        "close must report the failed shards"
    );
    drop(store);

    // Still full: opening is a typed error or works, never a panic.
    match Store::open(config(&dir, backend)) {
        Ok(store) => {
            for (key, version) in &acked {
                assert!(store.get(key).unwrap().version() >= *version);
            }
            let _ = store.close();
        }
        Err(Error::NoSpace { .. }) => {}
        Err(e) => panic!("{backend:?}: reopening a full disk: {e:?}"),
    }

    std::fs::remove_file(&ballast).unwrap();
    let store = Store::open(config(&dir, backend)).unwrap();
    assert_eq!(store.io_backend(), backend);
    for (key, version) in &acked {
        let got = store.get(key).unwrap_or_else(|| panic!("{key} lost"));
        assert!(got.version() >= *version, "{key}");
    }
    let report = store.recovery_report();
    eprintln!(
        "{backend:?}: reopened after freeing space: {} keys, torn tails {}",
        report.keys,
        report.torn_tails.len()
    );
    store
        .put_blocking("after", &common::record(1_000_000, "room again"))
        .unwrap();
    store.close().unwrap();
}

#[test]
fn a_full_disk_fails_puts_with_no_space_and_loses_nothing() {
    for backend in [IoBackend::IoUring, IoBackend::Portable] {
        fill_until_full(backend);
    }
}
