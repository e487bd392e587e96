//! The portable backend keeps the store running where io_uring is refused,
//! with the same files, frames and guarantees: the core scenarios on
//! `IoBackend::Portable`, a SIGKILL crash, data written by one backend
//! recovered by the other, and child processes where io_uring is forbidden
//! (RLIMIT_MEMLOCK lowered; a seccomp filter refusing `io_uring_setup` with
//! EPERM, as Docker's default profile does): `IoUring` gives the typed error
//! naming the remedy, `Auto` falls back and works.

#![expect(
    clippy::unwrap_used,
    reason = "test code: a failure here is a test failure"
)]

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use ringstore::{Durability, Error, IoBackend, PutOutcome, Store};

/// Puts, gets, newest-wins, rotation, close and reopen on `backend`; the
/// store must end up on `expect` (what `Auto` resolves to).
fn core_scenario(dir: &Path, backend: IoBackend, expect: IoBackend) {
    for durability in [Durability::Sync, Durability::Async] {
        let config = || {
            common::config(dir)
                .io_backend(backend)
                .durability(durability)
                .max_segment_records(50)
        };
        let store = Store::open(config()).unwrap();
        assert_eq!(store.io_backend(), expect);
        let writers: Vec<_> = (0..4i64)
            .map(|w| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..100i64 {
                        let key = format!("key{}", (i * 4 + w) % 37);
                        store
                            .put_blocking(&key, &common::record(i * 4 + w, "core"))
                            .unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(
            store
                .put_blocking("key0", &common::record(-1, "stale"))
                .unwrap(),
            PutOutcome::Stale {
                current_version: store.get("key0").unwrap().version()
            }
        );
        let before: HashMap<String, i64> = (0..37)
            .map(|k| {
                let key = format!("key{k}");
                let v = store.get(&key).unwrap().version();
                (key, v)
            })
            .collect();
        store.close().unwrap();
        drop(store);
        let store = Store::open(config()).unwrap();
        for (key, v) in &before {
            assert_eq!(
                store.get(key).unwrap().version(),
                *v,
                "{backend:?} {durability:?}"
            );
        }
        assert!(store.recovery_report().segments > 2, "rotation happened");
        store.close().unwrap();
    }
}

#[test]
fn portable_backend_core_scenarios() {
    let dir = common::temp_dir();
    core_scenario(dir.path(), IoBackend::Portable, IoBackend::Portable);
}

#[test]
fn each_backend_recovers_what_the_other_wrote() {
    let dir = common::temp_dir();
    let mut expected: HashMap<String, i64> = HashMap::new();
    for (round, backend) in [IoBackend::Portable, IoBackend::IoUring, IoBackend::Portable]
        .into_iter()
        .enumerate()
    {
        let store = Store::open(common::config(dir.path()).io_backend(backend)).unwrap();
        for (key, v) in &expected {
            assert_eq!(
                store.get(key).unwrap().version(),
                *v,
                "{backend:?} round {round}"
            );
        }
        for i in 0..50 {
            let key = format!("r{round}-{i}");
            let v = (round * 100 + i) as i64;
            store.put_blocking(&key, &common::record(v, "x")).unwrap();
            expected.insert(key, v);
        }
        store.close().unwrap();
    }
    // The same frames: the log tool's decoder reads every one of them.
    assert_eq!(common::read_all_frames(dir.path()).len(), 150);
}

/// SIGKILL at a seeded random moment, ten rounds on the portable backend:
/// every acknowledged put is recovered. Seed: `RINGSTORE_KILL_SEED`.
#[test]
fn sigkill_on_the_portable_backend_loses_nothing_acknowledged() {
    let config = |dir: &Path| common::config(dir).io_backend(IoBackend::Portable);
    if common::kill::run_child_if_asked(config) {
        return;
    }
    common::kill::rounds(
        "sigkill_on_the_portable_backend_loses_nothing_acknowledged",
        config,
        10,
        true,
    );
}

/// A tmpfs data dir: refused by default on every backend (not durable);
/// allowed explicitly, the portable backend falls back to buffered writes
/// where the kernel's tmpfs has no O_DIRECT.
#[test]
fn tmpfs_on_the_portable_backend() {
    let shm = Path::new("/dev/shm");
    let is_tmpfs = std::fs::read_to_string("/proc/mounts").is_ok_and(|m| {
        m.lines().any(|l| {
            l.split(' ').nth(1) == Some("/dev/shm") && l.split(' ').nth(2) == Some("tmpfs")
        })
    });
    if !is_tmpfs {
        eprintln!("skipped: /dev/shm is not a tmpfs mount on this machine");
        return;
    }
    let dir = tempfile::tempdir_in(shm).unwrap();
    let config = || common::config(dir.path()).io_backend(IoBackend::Portable);
    match Store::open(config()) {
        Err(Error::NoDirectIo { filesystem, .. }) => assert!(filesystem.contains("tmpfs")),
        other => panic!("expected NoDirectIo, got {other:?}"),
    }
    let store = Store::open(config().allow_non_durable_dir(true)).unwrap();
    store
        .put_blocking("t", &common::record(1, "tmpfs"))
        .unwrap();
    store.close().unwrap();
    drop(store);
    let store = Store::open(config().allow_non_durable_dir(true)).unwrap();
    assert_eq!(store.get("t").unwrap().version(), 1);
    store.close().unwrap();
}

/// What the io_uring-forbidden children check: `IoUring` is refused with
/// the typed error, whose message contains `remedy`; `Auto` falls back to
/// the portable backend and runs the core scenarios.
fn forbidden_child_checks(remedy: &[&str]) {
    let dir = common::temp_dir();
    let err = Store::open(common::config(dir.path()).io_backend(IoBackend::IoUring)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::IoUringUnavailable { .. } | Error::MemlockTooLow { .. }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    for r in remedy {
        assert!(text.contains(r), "{text:?} does not name {r:?}");
    }
    println!("REFUSED: {text}");
    core_scenario(dir.path(), IoBackend::Auto, IoBackend::Portable);
    println!("CHILD-OK");
}

fn run_child(test: &str, script: &str, env: &str) {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg(&exe)
        .arg(test)
        .env(env, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("CHILD-OK"),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn low_memlock_falls_back_to_portable() {
    if std::env::var_os("RINGSTORE_MEMLOCK_FALLBACK_CHILD").is_some() {
        forbidden_child_checks(&["ulimit -l"]);
        return;
    }
    run_child(
        "low_memlock_falls_back_to_portable",
        "ulimit -l 64 && exec \"$0\" --exact \"$1\" --nocapture",
        "RINGSTORE_MEMLOCK_FALLBACK_CHILD",
    );
}

/// Installs a seccomp filter on the calling thread (inherited by the threads
/// it spawns) that fails `io_uring_setup` with EPERM, like Docker >= 25's
/// default profile.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[expect(
    unsafe_code,
    reason = "prctl(PR_SET_SECCOMP) has no safe wrapper; test-only"
)]
fn forbid_io_uring() -> std::io::Result<()> {
    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH: u32 = 0xC000_003E;
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH: u32 = 0xC000_00B7;
    const IO_URING_SETUP: u32 = 425;
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    let ins = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let filter = [
        ins(LD_W_ABS, 0, 0, 4), // seccomp_data.arch
        ins(JEQ_K, 0, 3, AUDIT_ARCH),
        ins(LD_W_ABS, 0, 0, 0), // seccomp_data.nr
        ins(JEQ_K, 0, 1, IO_URING_SETUP),
        ins(RET_K, 0, 0, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        ins(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: plain prctl calls; `prog` and `filter` outlive the call, which
    // copies the program into the kernel.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &raw const prog,
                0,
                0,
            ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[test]
fn seccomp_blocked_io_uring_falls_back_to_portable() {
    if std::env::var_os("RINGSTORE_SECCOMP_CHILD").is_some() {
        forbid_io_uring().unwrap();
        forbidden_child_checks(&["seccomp", "io_uring_disabled", "EPERM"]);
        return;
    }
    run_child(
        "seccomp_blocked_io_uring_falls_back_to_portable",
        "exec \"$0\" --exact \"$1\" --nocapture",
        "RINGSTORE_SECCOMP_CHILD",
    );
}
