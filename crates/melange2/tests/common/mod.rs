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

/// Every file and directory under an out-dir with its bytes, except the build logs
/// (`logs/`), which a failed build writes on purpose.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p == dir.join("logs") {
                continue;
            }
            if p.is_dir() {
                stack.push(p.clone());
                out.insert(p, Vec::new());
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// A signed repository (busybox, plus `extra` packages with a `usr/` directory) and a
/// signing key for the packages a test builds.
pub struct SignedRepo {
    /// The repository directory.
    pub repo: PathBuf,
    /// Its public key.
    pub pubkey: PathBuf,
    /// `melange.rsa` for the packages built (its `.pub` beside it).
    pub signing_key: PathBuf,
}

/// Write a [`SignedRepo`] into `dir`; `extra` are (name, full version) of empty packages.
pub fn signed_repo(dir: &Path, extra: &[(&str, &str)]) -> SignedRepo {
    let repo_key = melange2_apk::generate_key(2048, "repo.rsa").unwrap();
    let pubkey = dir.join("repo.rsa.pub");
    std::fs::write(&pubkey, repo_key.public_key_pem().unwrap()).unwrap();
    let mut repo = RepoBuilder::new(dir.join("repo")).signer(repo_key);
    add_busybox(&mut repo);
    for (name, version) in extra {
        let mut t = PackageTree::new();
        t.add_dir("usr", 0o755).unwrap();
        repo.add(&PkgInfo::new(*name, *version, "x86_64"), &t)
            .unwrap();
    }
    repo.finish().unwrap();
    let signing_key = dir.join("melange.rsa");
    let o = melange2()
        .args(["keygen", "--key-size", "2048"])
        .arg(&signing_key)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    SignedRepo {
        repo: dir.join("repo"),
        pubkey,
        signing_key,
    }
}

/// Every `.apk` and the index of `<out>/x86_64`, with their bytes.
pub fn apks(out: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir(out.join("x86_64")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".apk") || name == "APKINDEX.tar.gz" {
                m.insert(name, std::fs::read(e.path()).unwrap());
            }
        }
    }
    m
}

/// Names of the files that differ between two [`apks`] snapshots (missing on one side
/// included); empty when they are identical.
pub fn differing(a: &BTreeMap<String, Vec<u8>>, b: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    a.keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Serve one file on 127.0.0.1 for as long as the test runs; returns its URL.
pub fn serve(body: Vec<u8>, name: &str) -> String {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/{name}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut s) = c else { break };
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).starts_with("HEAD");
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            if !head {
                let _ = s.write_all(&body);
            }
        }
    });
    url
}

/// Serve a directory over HTTP on 127.0.0.1 (GET and HEAD, 404 for missing files), read
/// at each request so the test can change it.
pub fn serve_dir(root: PathBuf) -> String {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut s) = c else { break };
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let mut parts = req.split_whitespace();
            let method = parts.next().unwrap_or("").to_string();
            let path = parts
                .next()
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_string();
            match std::fs::read(root.join(&path)) {
                Ok(body) if !path.contains("..") => {
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    if method != "HEAD" {
                        let _ = s.write_all(&body);
                    }
                }
                _ => {
                    let _ = write!(
                        s,
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                }
            }
        }
    });
    url
}
