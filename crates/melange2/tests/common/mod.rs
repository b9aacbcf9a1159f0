//! Helpers shared by the CLI tests: the binary, the daemon of `make test`, and the busybox
//! package (Debian's busybox-static with its applet list) that fixture repositories start from.
#![allow(dead_code)]

use std::process::Command;

use melange2_apk::{PackageTree, PkgInfo, RepoBuilder};

/// The `melange2` binary under test.
pub fn melange2() -> Command {
    Command::new(env!("CARGO_BIN_EXE_melange2"))
}

/// The daemon `make test` started.
pub fn daemon() -> String {
    std::env::var("BUILDKIT_HOST")
        .expect("BUILDKIT_HOST is not set: run with `make test`, which starts buildkitd")
}

/// Add `busybox-1.35.0-r0` to a repository: `/bin/busybox` from Debian's busybox-static and
/// `etc/busybox-paths.d/busybox` listing every applet, so environments get the applet links.
pub fn add_busybox(repo: &mut RepoBuilder) {
    let applets = Command::new("/bin/busybox")
        .arg("--list-full")
        .output()
        .expect("busybox-static is installed");
    let mut list: Vec<String> = String::from_utf8(applets.stdout)
        .unwrap()
        .lines()
        .map(|l| format!("/{l}"))
        .collect();
    list.sort();
    let mut t = PackageTree::new();
    t.add_dir("bin", 0o755).unwrap();
    t.add_file("bin/busybox", 0o755, std::fs::read("/bin/busybox").unwrap())
        .unwrap();
    t.add_dir("etc", 0o755).unwrap();
    t.add_dir("etc/busybox-paths.d", 0o755).unwrap();
    t.add_file("etc/busybox-paths.d/busybox", 0o644, list.join("\n") + "\n")
        .unwrap();
    repo.add(&PkgInfo::new("busybox", "1.35.0-r0", "x86_64"), &t)
        .unwrap();
}
