//! `Repositories::pinned`: resolution restricted to the packages of a lock (by name and
//! control checksum), as `melange2 rebuild` uses it, and the report of every locked package
//! the repositories no longer offer.

mod common;

use std::path::Path;

use common::{build_repo, p, rt, signer};
use melange2_resolve::{Lock, Options, PinError, Repositories};

/// Load the repository at `root` with a download cache of its own.
fn load(root: &Path) -> Repositories {
    common::init_logging();
    let cache = tempfile::tempdir().unwrap().keep();
    let o = Options {
        arch: "x86_64".into(),
        repositories: vec![root.display().to_string()],
        keyring: vec![common::key().public.display().to_string()],
        cache_dir: Some(cache),
        ..Options::default()
    };
    rt().block_on(Repositories::load(&o)).unwrap()
}

/// A lock of `a` (which needs `b`) over a repository with b 1; returns it and the
/// repository root.
fn first_lock() -> (tempfile::TempDir, Lock) {
    let dir = tempfile::tempdir().unwrap();
    let pkgs = [p("a", "1-r0").deps(&["b"]), p("b", "1-r0"), p("c", "1-r0")];
    build_repo(dir.path(), "x86_64", &pkgs, Some(signer()));
    let lock = load(dir.path()).lock(&["a"]).unwrap();
    let names: Vec<(&str, &str)> = lock
        .packages
        .iter()
        .map(|l| (l.name.as_str(), l.version.as_str()))
        .collect();
    assert_eq!(names, [("b", "1-r0"), ("a", "1-r0")]);
    (dir, lock)
}

/// Replace the repository's packages with `pkgs`.
fn rewrite(root: &Path, pkgs: &[common::P]) {
    std::fs::remove_dir_all(root.join("x86_64")).unwrap();
    build_repo(root, "x86_64", pkgs, Some(signer()));
}

fn pin_error(root: &Path, lock: &Lock) -> PinError {
    match load(root).pinned(lock) {
        Ok(_) => panic!("pinned to a lock the repository cannot serve"),
        Err(e) => e,
    }
}

#[test]
fn a_pinned_resolution_gives_the_locked_packages_again() {
    let (dir, lock) = first_lock();
    // A newer b appears: resolving anew takes it, pinned resolution keeps b 1.
    let pkgs = [
        p("a", "1-r0").deps(&["b"]),
        p("b", "1-r0"),
        p("b", "2-r0"),
        p("c", "1-r0"),
    ];
    rewrite(dir.path(), &pkgs);
    let repos = load(dir.path());
    let anew = repos.lock(&["a"]).unwrap();
    assert!(
        anew.packages
            .iter()
            .any(|l| l.name == "b" && l.version == "2-r0"),
        "{anew:?}"
    );
    let pinned = repos.pinned(&lock).unwrap();
    assert_eq!(pinned.lock(&["a"]).unwrap(), lock);
    // Only the locked packages are candidates: c is not there any more.
    let names: Vec<&str> = pinned
        .universe()
        .packages()
        .iter()
        .map(|c| c.entry.name.as_str())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(pinned.lock(&["c"]).is_err());
}

#[test]
fn every_unavailable_locked_package_is_reported() {
    let (dir, lock) = first_lock();
    // b 1 with other content, a gone for a 2.
    let pkgs = [p("a", "2-r0").deps(&["b"]), p("b", "1-r0").salt("rebuilt")];
    rewrite(dir.path(), &pkgs);
    let e = pin_error(dir.path(), &lock);
    let names: Vec<&str> = e
        .unavailable
        .iter()
        .map(|u| u.package.name.as_str())
        .collect();
    assert_eq!(names, ["b", "a"]);
    let text = e.to_string();
    assert!(
        text.starts_with("2 locked package(s) unavailable: "),
        "{text}"
    );
    let b = e.unavailable[0].to_string();
    assert!(
        b.starts_with(&format!("b 1-r0 ({}", lock.packages[0].checksum))
            && b.contains(": the repositories have this version with other content (Q1"),
        "{b}"
    );
    assert_ne!(
        e.unavailable[0].found[0].checksum,
        lock.packages[0].checksum
    );
    let a = e.unavailable[1].to_string();
    assert!(
        a.contains(": gone from the repositories, which have 2-r0 (Q1"),
        "{a}"
    );

    // Nothing of that name at all.
    rewrite(dir.path(), &[p("c", "1-r0")]);
    let e = pin_error(dir.path(), &lock);
    assert_eq!(e.unavailable.len(), 2);
    for u in &e.unavailable {
        assert!(
            u.to_string()
                .ends_with(": no package of that name in the repositories"),
            "{u}"
        );
    }
}
