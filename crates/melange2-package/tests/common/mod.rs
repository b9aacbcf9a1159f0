//! Fixtures shared by the integration tests: ELF files compiled with the
//! system C compiler, a signing key made with openssl, plans compiled from
//! YAML, and synthetic tar streams built with the `tar` crate.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use melange2_apk::{Keyring, SigningKey};
use melange2_config::plan::Plan;

pub struct Elves {
    pub dir: PathBuf,
    /// shared library, SONAME libfoo.so.1
    pub libfoo: Vec<u8>,
    /// shared library, SONAME libvend.so.2
    pub libvend: Vec<u8>,
    /// executable linking libfoo.so.1, libvend.so.2, libc.so.6
    pub hello: Vec<u8>,
    /// executable with a Go build-info section (cgo + boringcrypto)
    pub gofips: Vec<u8>,
    /// statically linked executable (no interpreter, no DT_NEEDED)
    pub static_bin: Vec<u8>,
}

fn cc(dir: &Path, args: &[&str]) {
    let out = Command::new("cc")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run cc");
    assert!(
        out.status.success(),
        "cc {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn go_buildinfo_c() -> String {
    let mut blob: Vec<u8> = b"\xff Go buildinf:".to_vec();
    blob.push(8);
    blob.push(2);
    blob.resize(32, 0);
    let version = b"go1.22.0";
    blob.push(version.len() as u8);
    blob.extend_from_slice(version);
    let mut info = vec![b'0'; 16];
    info.extend_from_slice(
        b"path\texample.com/fips\nbuild\tCGO_ENABLED=1\nbuild\tGOEXPERIMENT=boringcrypto\n",
    );
    info.extend_from_slice(&[b'1'; 16]);
    assert!(info.len() < 128);
    blob.push(info.len() as u8);
    blob.extend_from_slice(&info);
    let bytes: Vec<String> = blob.iter().map(|b| format!("0x{b:02x}")).collect();
    format!(
        "__attribute__((section(\".go.buildinfo\"), aligned(16), used))\n\
         static const unsigned char buildinfo[] = {{{}}};\n\
         int main(void) {{ return buildinfo[0] == 0; }}\n",
        bytes.join(",")
    )
}

pub fn elves() -> &'static Elves {
    static E: OnceLock<Elves> = OnceLock::new();
    E.get_or_init(|| {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap()
            .keep();
        std::fs::write(dir.join("foo.c"), "int foo(void) { return 42; }\n").unwrap();
        std::fs::write(dir.join("vend.c"), "int vend(void) { return 1; }\n").unwrap();
        std::fs::write(
            dir.join("main.c"),
            "int foo(void); int vend(void);\nint main(void) { return foo() + vend(); }\n",
        )
        .unwrap();
        std::fs::write(dir.join("gofips.c"), go_buildinfo_c()).unwrap();
        cc(
            &dir,
            &[
                "-shared",
                "-fPIC",
                "-Wl,-soname,libfoo.so.1",
                "-Wl,--no-as-needed",
                "-o",
                "libfoo.so.1.2.3",
                "foo.c",
            ],
        );
        cc(
            &dir,
            &[
                "-shared",
                "-fPIC",
                "-Wl,-soname,libvend.so.2",
                "-o",
                "libvend.so.2",
                "vend.c",
            ],
        );
        cc(
            &dir,
            &[
                "-o",
                "hello",
                "main.c",
                "-Wl,--no-as-needed",
                "./libfoo.so.1.2.3",
                "./libvend.so.2",
            ],
        );
        cc(&dir, &["-o", "gofips", "gofips.c"]);
        std::fs::write(dir.join("static.c"), "int main(void) { return 0; }\n").unwrap();
        cc(&dir, &["-static", "-o", "static", "static.c"]);
        let read = |n: &str| std::fs::read(dir.join(n)).unwrap();
        Elves {
            libfoo: read("libfoo.so.1.2.3"),
            libvend: read("libvend.so.2"),
            hello: read("hello"),
            gofips: read("gofips"),
            static_bin: read("static"),
            dir,
        }
    })
}

pub struct Key {
    pub key: SigningKey,
    pub keyring: Keyring,
}

pub fn key() -> &'static Key {
    static K: OnceLock<Key> = OnceLock::new();
    K.get_or_init(|| {
        let out = Command::new("openssl")
            .args(["genrsa", "2048"])
            .output()
            .expect("run openssl");
        assert!(out.status.success());
        let pem = String::from_utf8(out.stdout).unwrap();
        let key = SigningKey::from_pem(&pem, "test-key.rsa").unwrap();
        let mut keyring = Keyring::new();
        keyring
            .add_pem(key.public_key_name(), &key.public_key_pem().unwrap())
            .unwrap();
        Key { key, keyring }
    })
}

pub fn plan_from_yaml(yaml: &str) -> Plan {
    let config =
        melange2_config::parse_str("test.yaml", yaml, &Default::default()).expect("parse plan");
    let registry = melange2_config::PipelineRegistry::new(vec![]);
    let arch = melange2_config::Arch::parse("x86_64").unwrap();
    melange2_config::compile(
        &config,
        &registry,
        &melange2_config::CompileOptions::new(arch),
    )
    .expect("compile plan")
}

pub const HELLO_YAML: &str = r#"
package:
  name: hello
  version: "1.2.3"
  epoch: 4
  description: hello world
  url: https://example.invalid/hello
  commit: 0123456789abcdef0123456789abcdef01234567
  copyright:
    - license: Apache-2.0
    - license: MIT
  dependencies:
    runtime:
      - busybox
    provides:
      - hello-virtual=1.2.3-r4
    replaces:
      - hello-old
    provider-priority: "10"
  scriptlets:
    post-install: |
      #!/bin/sh
      echo installed
    trigger:
      script: |
        #!/bin/sh
        echo triggered
      paths:
        - /usr/share/hello
environment:
  contents:
    packages:
      - build-base
pipeline:
  - runs: echo build
subpackages:
  - name: hello-libs
    description: hello libraries
    pipeline:
      - runs: echo libs
  - name: hello-dev
    description: hello development files
    dependencies:
      replaces-priority: "5"
    pipeline:
      - runs: echo dev
  - name: hello-tools
    options:
      no-commands: true
      no-depends: true
    pipeline:
      - runs: echo tools
  - name: hello-empty
    pipeline:
      - runs: echo empty
"#;

/// A tar stream writer with PAX records, owners and modes.
pub struct TarStream {
    b: tar::Builder<Vec<u8>>,
}

impl TarStream {
    pub fn new() -> Self {
        TarStream {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn header(path: &str, kind: tar::EntryType, mode: u32, uid: u64, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_path(path).unwrap();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_size(size);
        h.set_mtime(1_234_567);
        h.set_cksum();
        h
    }

    pub fn pax(&mut self, path: &str, records: &[(&str, &[u8])]) -> &mut Self {
        let mut data = Vec::new();
        for (k, v) in records {
            let body_len = 1 + k.len() + 1 + v.len() + 1;
            let mut len = body_len + 1;
            loop {
                let total = len.to_string().len() + body_len;
                if total == len {
                    break;
                }
                len = total;
            }
            data.extend_from_slice(format!("{len} {k}=").as_bytes());
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        let h = Self::header(
            &format!("PaxHeaders/{}", path.rsplit('/').next().unwrap()),
            tar::EntryType::XHeader,
            0o644,
            0,
            data.len() as u64,
        );
        self.b.append(&h, &data[..]).unwrap();
        self
    }

    pub fn dir(&mut self, path: &str) -> &mut Self {
        self.dir_owned(path, 0o755, 0)
    }

    pub fn dir_owned(&mut self, path: &str, mode: u32, uid: u64) -> &mut Self {
        let h = Self::header(&format!("{path}/"), tar::EntryType::Directory, mode, uid, 0);
        self.b.append(&h, std::io::empty()).unwrap();
        self
    }

    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> &mut Self {
        self.file_owned(path, mode, 0, data)
    }

    pub fn file_owned(&mut self, path: &str, mode: u32, uid: u64, data: &[u8]) -> &mut Self {
        let h = Self::header(path, tar::EntryType::Regular, mode, uid, data.len() as u64);
        self.b.append(&h, data).unwrap();
        self
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut h = Self::header(path, tar::EntryType::Symlink, 0o777, 0, 0);
        h.set_link_name(target).unwrap();
        h.set_cksum();
        self.b.append(&h, std::io::empty()).unwrap();
        self
    }

    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut h = Self::header(path, tar::EntryType::Link, 0o644, 0, 0);
        h.set_link_name(target).unwrap();
        h.set_cksum();
        self.b.append(&h, std::io::empty()).unwrap();
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

pub const FOO_PC: &str = "prefix=/usr\nlibdir=${prefix}/lib\nzdep=zlib\n\nName: foo\nDescription: foo library\nVersion: 1.2.3\nRequires: ${zdep} >= 1.2, glib-2.0\nRequires.private: libbar\nLibs: -L${libdir} -lfoo\n";

/// The build output of [`HELLO_YAML`] as BuildKit would export it.
pub fn hello_tar() -> Vec<u8> {
    let e = elves();
    let mut t = TarStream::new();
    t.dir("hello")
        .dir("hello/usr")
        .dir("hello/usr/bin")
        .file("hello/usr/bin/hello", 0o755, &e.hello)
        .file("hello/usr/bin/script.sh", 0o755, b"#!/bin/sh\necho hi\n")
        .file("hello/usr/bin/notexec", 0o644, b"data\n")
        .symlink("hello/usr/bin/hello-link", "hello")
        .dir_owned("hello/usr/share", 0o755, 1000)
        .dir("hello/usr/share/hello")
        .pax(
            "hello/usr/share/hello/data.txt",
            &[("SCHILY.xattr.user.melange", b"yes")],
        )
        .file_owned(
            "hello/usr/share/hello/data.txt",
            0o644,
            1000,
            b"some data\n",
        )
        .hardlink(
            "hello/usr/share/hello/data-link.txt",
            "hello/usr/share/hello/data.txt",
        )
        .file_owned("hello/usr/share/hello/other-owner", 0o600, 123, b"x")
        .dir("hello/opt")
        .dir("hello/opt/vendor")
        .file("hello/opt/vendor/libvend.so.2", 0o755, &e.libvend)
        // subpackage libs: the runtime library
        .dir("hello-libs")
        .dir("hello-libs/usr")
        .dir("hello-libs/usr/lib")
        .file("hello-libs/usr/lib/libfoo.so.1.2.3", 0o755, &e.libfoo)
        .symlink("hello-libs/usr/lib/libfoo.so.1", "libfoo.so.1.2.3")
        // subpackage dev: the unversioned link and pkg-config files; no parent dir entries
        .symlink("hello-dev/usr/lib/libfoo.so", "libfoo.so.1.2.3")
        .file(
            "hello-dev/usr/lib/pkgconfig/foo.pc",
            0o644,
            FOO_PC.as_bytes(),
        )
        .file(
            "hello-dev/usr/share/foo/other.pc",
            0o644,
            b"Name: other\nVersion: 1\nRequires: nothing-here\n",
        )
        // subpackage tools: a command and a binary, with no-commands/no-depends
        .file("hello-tools/usr/bin/tool", 0o755, &e.hello)
        // not a package of this build
        .file("junk/file", 0o644, b"junk");
    t.finish()
}

/// Every file under `dir` with its bytes (directories as `<dir>`), sorted.
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if !dir.exists() {
        return out;
    }
    for e in walkdir(dir) {
        let rel = e.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
        let md = std::fs::symlink_metadata(&e).unwrap();
        let data = if md.is_dir() {
            b"<dir>".to_vec()
        } else {
            std::fs::read(&e).unwrap()
        };
        out.push((rel, data));
    }
    out.sort();
    out
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            v.extend(walkdir(&p));
        }
        v.push(p);
    }
    v
}
