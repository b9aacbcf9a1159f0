//! Several packagers sharing one output directory: every index record kept
//! (the per-arch lock), the lock really held around the index merge and the
//! commit, and staging directories of interrupted runs swept — but never
//! those of a live run.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use common::*;
use melange2_apk::{ApkIndex, verify_package};
use melange2_config::plan::Plan;
use melange2_package::{
    INDEX_FILE_NAME, LOCK_FILE_NAME, PackageRequest, lock_arch, package_dir, write_atomic,
};

const ARCH: &str = "x86_64";

fn plan(name: &str) -> Plan {
    plan_from_yaml(&format!(
        "package:\n  name: {name}\n  version: \"1.0.0\"\n  epoch: 0\n  description: {name}\n  copyright:\n    - license: MIT\npipeline:\n  - runs: \"true\"\n"
    ))
}

fn request<'a>(plan: &'a Plan, out: &Path) -> PackageRequest<'a> {
    let mut r = PackageRequest::new(plan, out);
    r.signing_key = Some(&key().key);
    r.source_date_epoch = 1_700_000_000;
    r
}

/// A `melange-out` tree with one package directory holding a few files.
fn melange_out(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(format!("melange-out-{name}"));
    let share = dir.join(name).join("usr/share").join(name);
    fs::create_dir_all(&share).unwrap();
    for i in 0..8 {
        fs::write(
            share.join(format!("f{i}")),
            format!("{name} {i}\n").repeat(200),
        )
        .unwrap();
    }
    dir
}

fn staging_dirs(out: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".melange2-staging-"))
        .collect();
    v.sort();
    v
}

#[test]
fn concurrent_packagers_keep_every_index_record() {
    const THREADS: usize = 6;
    const ROUNDS: usize = 4;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("packages");
    // every plan and build output up front: the threads only package
    let names: Vec<Vec<String>> = (0..THREADS)
        .map(|t| (0..ROUNDS).map(|r| format!("pkg-t{t}-r{r}")).collect())
        .collect();
    let plans: Vec<Vec<Plan>> = names
        .iter()
        .map(|ns| ns.iter().map(|n| plan(n)).collect())
        .collect();
    let trees: Vec<Vec<PathBuf>> = names
        .iter()
        .map(|ns| ns.iter().map(|n| melange_out(tmp.path(), n)).collect())
        .collect();
    let _ = key(); // generated once, before the threads start
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (plans, trees, barrier, out) = (&plans[t], &trees[t], &barrier, &out);
            s.spawn(move || {
                for r in 0..ROUNDS {
                    barrier.wait();
                    package_dir(&request(&plans[r], out), &trees[r]).unwrap();
                }
            });
        }
    });

    let arch_dir = out.join(ARCH);
    let index = ApkIndex::read_verified(&arch_dir.join(INDEX_FILE_NAME), &key().keyring).unwrap();
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &index.entries {
        *count.entry(e.name.as_str()).or_default() += 1;
    }
    let all: Vec<&String> = names.iter().flatten().collect();
    let missing: Vec<&&String> = all
        .iter()
        .filter(|n| !count.contains_key(n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "index lists {} of {} packages; missing {missing:?}",
        count.len(),
        all.len()
    );
    assert!(count.values().all(|&c| c == 1), "duplicates: {count:?}");
    assert_eq!(index.entries.len(), all.len());
    for e in &index.entries {
        let apk = arch_dir.join(e.file_name());
        verify_package(&apk, &key().keyring, Some(&e.checksum)).unwrap();
    }
    assert!(staging_dirs(&out).is_empty(), "{:?}", staging_dirs(&out));
}

#[test]
fn packaging_waits_for_the_arch_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("packages");
    let p = plan("waiter");
    let tree = melange_out(tmp.path(), "waiter");
    let _ = key();
    // another process's lock (a scheduler writing its bookkeeping, say)
    let held = lock_arch(&out, ARCH).unwrap();
    assert!(
        held.lock_file()
            .ends_with(Path::new(ARCH).join(LOCK_FILE_NAME))
    );
    let index = out.join(ARCH).join(INDEX_FILE_NAME);
    std::thread::scope(|s| {
        let h = s.spawn(|| package_dir(&request(&p, &out), &tree));
        // the long work happens while the lock is held elsewhere: the
        // package gets written into the staging directory...
        let start = Instant::now();
        let staged = loop {
            let found = staging_dirs(&out).into_iter().find_map(|d| {
                let f = out.join(d).join("out/waiter-1.0.0-r0.apk");
                f.exists().then_some(f)
            });
            if let Some(f) = found {
                break f;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "package never staged"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        // ...but neither the index nor the package is committed
        std::thread::sleep(Duration::from_millis(500));
        assert!(!h.is_finished(), "packaging finished without the lock");
        assert!(!index.exists());
        assert!(!out.join(ARCH).join("waiter-1.0.0-r0.apk").exists());
        // the holder writes its own file under the lock
        write_atomic(held.dir(), "scheduler.json", b"{}").unwrap();
        drop(held);
        h.join().unwrap().unwrap();
        assert!(!staged.exists());
    });
    let idx = ApkIndex::read(&index).unwrap();
    assert_eq!(idx.entries.len(), 1);
    assert_eq!(
        fs::read(out.join(ARCH).join("scheduler.json")).unwrap(),
        b"{}"
    );
}

#[test]
fn stale_staging_dirs_are_swept_live_ones_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("packages");
    fs::create_dir_all(&out).unwrap();
    let mk = |name: &str, lock_file: bool| {
        let d = out.join(name);
        fs::create_dir_all(d.join("out")).unwrap();
        fs::write(d.join("out/half-written.apk"), b"partial").unwrap();
        if lock_file {
            fs::write(d.join(LOCK_FILE_NAME), b"").unwrap();
        }
        d
    };
    // interrupted runs: an unlocked lock file, and none at all (older melange2)
    let dead = mk(".melange2-staging-x", true);
    let no_lock = mk(".melange2-staging-old", false);
    // a live run: its lock file is locked
    let live = mk(".melange2-staging-live", true);
    let live_lock = fs::File::open(live.join(LOCK_FILE_NAME)).unwrap();
    live_lock.lock().unwrap();
    // not staging directories
    fs::write(out.join(".melange2-staging-file"), b"a file").unwrap();
    let other = out.join("other-dir");
    fs::create_dir(&other).unwrap();

    let p = plan("sweeper");
    let tree = melange_out(tmp.path(), "sweeper");
    package_dir(&request(&p, &out), &tree).unwrap();
    assert!(!dead.exists(), "stale staging directory kept");
    assert!(
        !no_lock.exists(),
        "stale staging directory without lock kept"
    );
    assert!(
        live.join("out/half-written.apk").exists(),
        "live staging directory removed"
    );
    assert!(out.join(".melange2-staging-file").is_file());
    assert!(other.is_dir());
    assert_eq!(
        staging_dirs(&out),
        [".melange2-staging-file", ".melange2-staging-live"]
    );

    // once its owner is gone, the next run removes it
    drop(live_lock);
    package_dir(&request(&p, &out), &tree).unwrap();
    assert!(!live.exists());
    assert_eq!(staging_dirs(&out), [".melange2-staging-file"]);
}

#[test]
fn staging_dir_of_a_killed_process_is_swept() {
    // a real process holding a staging lock, then killed: flock releases it
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("packages");
    let stale = out.join(".melange2-staging-killed");
    fs::create_dir_all(&stale).unwrap();
    let lock = stale.join(LOCK_FILE_NAME);
    fs::write(&lock, b"").unwrap();
    // -o: the lock stays with flock(1) itself, not with its `sleep`
    let mut child = std::process::Command::new("flock")
        .arg("-o")
        .arg(&lock)
        .args(["sleep", "600"])
        .spawn()
        .expect("run flock(1)");
    // wait until the child holds it
    let f = fs::File::open(&lock).unwrap();
    let start = Instant::now();
    while f.try_lock().is_ok() {
        f.unlock().unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "flock(1) never locked"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let p = plan("killed");
    let tree = melange_out(tmp.path(), "killed");
    package_dir(&request(&p, &out), &tree).unwrap();
    assert!(stale.exists(), "removed while its process was alive");
    child.kill().unwrap();
    child.wait().unwrap();
    package_dir(&request(&p, &out), &tree).unwrap();
    assert!(!stale.exists(), "not removed after its process died");
}

#[test]
fn failed_run_removes_the_lock_file_it_created() {
    // an out-dir written by an older melange2 (no lock file); a run that
    // fails under the lock leaves it exactly as it was
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("packages");
    let arch_dir = out.join(ARCH);
    fs::create_dir_all(&arch_dir).unwrap();
    fs::write(arch_dir.join(INDEX_FILE_NAME), b"garbage").unwrap();
    let before = snapshot(&out);
    let p = plan("failing");
    let tree = melange_out(tmp.path(), "failing");
    let err = package_dir(&request(&p, &out), &tree).unwrap_err();
    assert!(err.to_string().contains("APKINDEX"), "{err}");
    assert_eq!(snapshot(&out), before);
    // with a lock file already there, it is kept
    fs::write(arch_dir.join(LOCK_FILE_NAME), b"").unwrap();
    let before = snapshot(&out);
    package_dir(&request(&p, &out), &tree).unwrap_err();
    assert_eq!(snapshot(&out), before);
}
