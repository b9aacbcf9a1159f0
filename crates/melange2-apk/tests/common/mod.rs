#![allow(dead_code)]
//! Shared test helpers: keys made with openssl, small trees, hand-made tars.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use melange2_apk::{Keyring, PackageTree, PkgInfo, SigningKey};

pub struct TestKey {
    pub dir: tempfile::TempDir,
    pub private: PathBuf,
    pub public: PathBuf,
}

fn make_key(name: &str, traditional: bool) -> TestKey {
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join(name);
    let public = dir.path().join(format!("{name}.pub"));
    let mut cmd = Command::new("openssl");
    cmd.arg("genrsa");
    if traditional {
        cmd.arg("-traditional");
    }
    let st = cmd.arg("-out").arg(&private).arg("2048").output().unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let st = Command::new("openssl")
        .args(["rsa", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .output()
        .unwrap();
    assert!(st.status.success());
    TestKey {
        dir,
        private,
        public,
    }
}

/// A PKCS#1 key named `test.rsa` (shared by the tests of one binary).
pub fn key() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(|| make_key("test.rsa", true))
}

/// A second, unrelated key (PKCS#8 private PEM) named `other.rsa`.
pub fn other_key() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(|| make_key("other.rsa", false))
}

pub fn signer() -> SigningKey {
    SigningKey::load(&key().private).unwrap()
}

pub fn keyring() -> Keyring {
    Keyring::from_files(&[&key().public]).unwrap()
}

pub fn sample_tree() -> PackageTree {
    let mut t = PackageTree::new();
    t.add_dir("etc", 0o755).unwrap();
    t.add_file("etc/hello.conf", 0o644, "greeting = hi\n")
        .unwrap();
    t.add_file("usr/bin/hello", 0o4755, b"\x7fELF fake binary".to_vec())
        .unwrap();
    t.add_symlink("usr/bin/hi", "hello").unwrap();
    t.add_file("usr/share/doc/hello/README", 0o644, vec![b'x'; 70_000])
        .unwrap();
    t.add_hardlink(
        "usr/share/doc/hello/README.link",
        "usr/share/doc/hello/README",
    )
    .unwrap();
    t.add_dir("var/empty", 0o1777).unwrap();
    t.add_file("usr/lib/with-xattr", 0o755, "cap")
        .unwrap()
        .xattrs
        .insert("security.capability".into(), vec![1, 0, 0, 2, 0, 32, 0, 0]);
    t
}

pub fn sample_info() -> PkgInfo {
    let mut p = PkgInfo::new("hello", "2.12-r1", "x86_64");
    p.description = "GNU hello".into();
    p.url = "https://example.invalid/hello".into();
    p.commit = "0123456789abcdef".into();
    p.maintainer = "wolfi".into();
    p.build_date = 1_700_000_000;
    p.licenses = vec!["GPL-3.0-or-later".into()];
    p.depends = vec!["so:libc.so.6".into(), "busybox".into()];
    p.provides = vec!["cmd:hello=2.12-r1".into()];
    p.replaces = vec!["hello-old".into()];
    p.provider_priority = Some(10);
    p.normalize();
    p
}

pub fn file_bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

/// Split an .apk into its gzip members (byte ranges) with an independent
/// decoder (flate2's GzDecoder on a counting reader).
pub fn members(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let mut cursor = std::io::Cursor::new(&bytes[pos..]);
        let mut d = flate2::bufread::GzDecoder::new(&mut cursor);
        let mut sink = Vec::new();
        d.read_to_end(&mut sink).unwrap();
        let used = cursor.position() as usize;
        out.push(pos..pos + used);
        pos += used;
    }
    out
}
