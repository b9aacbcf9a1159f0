//! Helpers shared by the CLI tests: the binary, the daemon of `make test`, and the busybox
//! package (Debian's busybox-static with its applet list) that fixture repositories start from.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

/// Final state of every vertex from rawjson progress on stderr: name → cached.
pub fn vertices(o: &Output) -> BTreeMap<String, bool> {
    let mut out = BTreeMap::new();
    for line in String::from_utf8_lossy(&o.stderr).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        for vx in v["vertexes"].as_array().into_iter().flatten() {
            if vx["completed"].is_null() {
                continue;
            }
            out.insert(
                vx["name"].as_str().unwrap_or("").to_string(),
                vx["cached"].as_bool().unwrap_or(false),
            );
        }
    }
    out
}

/// Unpack a package's data into a new directory under `parent`; returns that directory.
pub fn extract(apk: &Path, parent: &Path) -> PathBuf {
    let dir = tempfile::tempdir_in(parent).unwrap().keep();
    melange2_apk::PackageReader::open(apk)
        .unwrap()
        .extract_to(&dir)
        .unwrap();
    dir
}
