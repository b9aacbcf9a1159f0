//! SCA generators on crafted packages (exact depends/provides), the SPDX
//! SBOM inside every package (every field SPDX 2.3 requires, byte-identical
//! across runs) and the provenance statements.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use common::*;
use melange2_apk::verify_package;
use melange2_package::{
    BuildEnvironment, InstalledPackage, PackageRequest, PackagedOutput, Provenance, package_tar,
};
use serde_json::Value;

const EPOCH: u64 = 1_700_000_000;

/// ELF fixtures of this file: a library and binaries linking it through
/// the standard directories and through a RUNPATH, and a kernel module.
struct Fixtures {
    /// SONAME libfoo.so.1
    libfoo: Vec<u8>,
    /// links libfoo.so.1 (no RUNPATH)
    app: Vec<u8>,
    /// SONAME libpriv.so.1
    libpriv: Vec<u8>,
    /// links libpriv.so.1 with RUNPATH $ORIGIN/../lib/app-private
    app_private: Vec<u8>,
    /// relocatable object with a .modinfo vermagic (a kernel module)
    module: Vec<u8>,
}

fn cc(dir: &Path, args: &[&str]) {
    let out = Command::new("cc")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run cc");
    assert!(
        out.status.success(),
        "cc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        let dir: PathBuf = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap()
            .keep();
        let w = |n: &str, t: &str| std::fs::write(dir.join(n), t).unwrap();
        w("foo.c", "int foo(void) { return 42; }\n");
        w("priv.c", "int priv(void) { return 7; }\n");
        w("app.c", "int foo(void);\nint main(void) { return foo(); }\n");
        w("apppriv.c", "int priv(void);\nint main(void) { return priv(); }\n");
        w(
            "mod.c",
            "__attribute__((section(\".modinfo\"), used)) static const char vm[] = \"vermagic=6.6.7-wolfi SMP preempt mod_unload \";\n\
             __attribute__((section(\".modinfo\"), used)) static const char lic[] = \"license=GPL\";\n\
             int init_module(void) { return 0; }\n",
        );
        cc(
            &dir,
            &[
                "-shared",
                "-fPIC",
                "-Wl,-soname,libfoo.so.1",
                "-o",
                "libfoo.so.1.0.0",
                "foo.c",
            ],
        );
        cc(
            &dir,
            &[
                "-shared",
                "-fPIC",
                "-Wl,-soname,libpriv.so.1",
                "-o",
                "libpriv.so.1",
                "priv.c",
            ],
        );
        cc(
            &dir,
            &["-o", "app", "app.c", "-Wl,--no-as-needed", "./libfoo.so.1.0.0"],
        );
        cc(
            &dir,
            &[
                "-o",
                "apppriv",
                "apppriv.c",
                "-Wl,--no-as-needed",
                "-Wl,--enable-new-dtags",
                "-Wl,-rpath,$ORIGIN/../lib/app-private",
                "./libpriv.so.1",
            ],
        );
        cc(&dir, &["-c", "-o", "mod.ko", "mod.c"]);
        let r = |n: &str| std::fs::read(dir.join(n)).unwrap();
        Fixtures {
            libfoo: r("libfoo.so.1.0.0"),
            app: r("app"),
            libpriv: r("libpriv.so.1"),
            app_private: r("apppriv"),
            module: r("mod.ko"),
        }
    })
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn request<'a>(plan: &'a melange2_config::plan::Plan, out: &Path) -> PackageRequest<'a> {
    let mut r = PackageRequest::new(plan, out);
    r.signing_key = Some(&key().key);
    r.source_date_epoch = EPOCH;
    r.namespace = "wolfi".to_string();
    r
}

fn by_name<'a>(out: &'a PackagedOutput, name: &str) -> &'a melange2_package::PackagedFile {
    out.packages.iter().find(|p| p.name == name).unwrap()
}

const SCA_YAML: &str = r#"
package:
  name: demo
  version: "2.0"
  epoch: 1
  description: demo
  copyright:
    - license: MIT
environment:
  contents:
    packages:
      - build-base
pipeline:
  - runs: x
subpackages:
  - name: demo-libs
    pipeline:
      - runs: x
  - name: demo-bin
    pipeline:
      - runs: x
  - name: demo-dev
    pipeline:
      - runs: x
  - name: demo-private
    pipeline:
      - runs: x
  - name: demo-private-libs
    pipeline:
      - runs: x
  - name: demo-doc
    pipeline:
      - runs: x
  - name: demo-py
    pipeline:
      - runs: x
  - name: demo-py-declared
    dependencies:
      runtime:
        - python3
    pipeline:
      - runs: x
  - name: demo-lang
    pipeline:
      - runs: x
  - name: demo-kernel
    pipeline:
      - runs: x
  - name: demo-kmod
    # lib/modules (outside /usr) is what the kernel generator must still see
    checks:
      disabled:
        - usrmerge
    pipeline:
      - runs: x
"#;

fn sca_tar() -> Vec<u8> {
    let f = fixtures();
    let mut kernel = vec![0u8; 0x400];
    kernel[0x202..0x206].copy_from_slice(b"HdrS");
    kernel[0x20e..0x210].copy_from_slice(&0x100u16.to_le_bytes());
    let banner = b"6.6.7-wolfi (builder@host) #1 SMP\0";
    kernel[0x300..0x300 + banner.len()].copy_from_slice(banner);
    let mut t = TarStream::new();
    // main: a library with its SONAME and a binary linking it, in the same package
    t.file("demo/usr/lib/libfoo.so.1.0.0", 0o755, &f.libfoo)
        .symlink("demo/usr/lib/libfoo.so.1", "libfoo.so.1.0.0")
        .file("demo/usr/bin/app", 0o755, &f.app)
        // a shebang script (and ones melange ignores or cannot read)
        .file(
            "demo/usr/bin/tool.pl",
            0o755,
            b"#!/usr/bin/perl -w\nprint 1;\n",
        )
        .file(
            "demo/usr/bin/tool.rb",
            0o755,
            b"#!/usr/bin/env -S ruby --disable-gems\n",
        )
        .file("demo/usr/bin/tool.sh", 0o755, b"#!/bin/sh\necho\n")
        .file(
            "demo/usr/local/bin/odd",
            0o644,
            b"#!/usr/bin/env -i node\n",
        )
        // libs subpackage: the library; bin subpackage: the binary linking it
        .file("demo-libs/usr/lib/libfoo.so.1.0.0", 0o755, &f.libfoo)
        .symlink("demo-libs/usr/lib/libfoo.so.1", "libfoo.so.1.0.0")
        .file("demo-bin/usr/bin/app2", 0o755, &f.app)
        // dev: the unversioned link and a .pc with Requires
        .symlink("demo-dev/usr/lib/libfoo.so", "libfoo.so.1.0.0")
        .file(
            "demo-dev/usr/lib/pkgconfig/foo.pc",
            0o644,
            b"prefix=/usr\nName: foo\nVersion: 2.0\nRequires: zlib >= 1.2, libbar\nRequires.private: libbaz\n",
        )
        // private library found through RUNPATH, in the package and in a sibling
        .file("demo-private/usr/bin/app-private", 0o755, &f.app_private)
        .file(
            "demo-private/usr/lib/app-private/libpriv.so.1",
            0o755,
            &f.libpriv,
        )
        .file(
            "demo-private-libs/usr/bin/app-private2",
            0o755,
            &f.app_private,
        )
        // -doc
        .file("demo-doc/usr/share/man/man1/app.1", 0o644, b".TH app\n")
        .file("demo-doc/usr/share/info/app.info", 0o644, b"info\n")
        // a python module, with and without a declared python depend
        .file(
            "demo-py/usr/lib/python3.12/site-packages/demo/__init__.py",
            0o644,
            b"x = 1\n",
        )
        .file(
            "demo-py-declared/usr/lib/python3.12/site-packages/demo/__init__.py",
            0o644,
            b"x = 1\n",
        )
        // ruby gems and perl modules
        .file(
            "demo-lang/usr/lib/ruby/gems/3.3.0/gems/demo-1.0/lib/demo.rb",
            0o644,
            b"1\n",
        )
        .file(
            "demo-lang/usr/lib/perl5/vendor_perl/Demo.pm",
            0o644,
            b"1;\n",
        )
        // a kernel image and modules (plain and gzip-compressed)
        .file("demo-kernel/boot/vmlinuz-6.6.7-wolfi", 0o644, &kernel)
        .file(
            "demo-kmod/lib/modules/6.6.7-wolfi/kernel/demo.ko",
            0o644,
            &f.module,
        )
        .file(
            "demo-kmod/usr/lib/modules/6.6.7-wolfi/extra/demo2.ko.gz",
            0o644,
            &gzip(&f.module),
        );
    // demo-private-libs ships its own copy of the library app-private2 finds through RUNPATH
    t.file(
        "demo-private-libs/usr/lib/app-private/libpriv.so.1",
        0o755,
        &f.libpriv,
    );
    t.finish()
}

#[test]
fn generators_give_exact_depends_and_provides() {
    let plan = plan_from_yaml(SCA_YAML);
    let tmp = tempfile::tempdir().unwrap();
    let out = package_tar(&request(&plan, tmp.path()), &sca_tar()[..]).unwrap();
    let v = "2.0-r1";
    let check = |name: &str, depends: &[&str], provides: &[&str]| {
        let p = by_name(&out, name);
        assert_eq!(
            p.depends,
            depends,
            "{name} depends\n{}",
            p.sca.render_text()
        );
        assert_eq!(
            p.provides,
            provides,
            "{name} provides\n{}",
            p.sca.render_text()
        );
        // the APK carries exactly what the report says
        let c = verify_package(&p.path, &key().keyring, None).unwrap();
        assert_eq!(c.pkginfo.depends, depends, "{name}");
        assert_eq!(c.pkginfo.provides, provides, "{name}");
    };
    // same package: the binary's so:libfoo.so.1 is provided by the package itself
    check(
        "demo",
        &[
            "cmd:perl",
            "cmd:ruby",
            "so:ld-linux-x86-64.so.2",
            "so:libc.so.6",
        ],
        &[
            &format!("cmd:app={v}"),
            &format!("cmd:tool.pl={v}"),
            &format!("cmd:tool.rb={v}"),
            &format!("cmd:tool.sh={v}"),
            &format!("so-ver:libfoo.so.1={v}"),
            "so:libfoo.so.1=1",
        ],
    );
    let demo = by_name(&out, "demo");
    assert!(
        demo.sca.dropped.iter().any(|d| d.value == "so:libfoo.so.1"
            && d.reason == "provided by the package itself (so:libfoo.so.1=1)"),
        "{:?}",
        demo.sca.dropped
    );
    assert!(
        demo.sca
            .warnings
            .iter()
            .any(|w| w.contains("usr/local/bin/odd") && w.contains("env -i node")),
        "{:?}",
        demo.sca.warnings
    );
    assert!(out.warnings.iter().any(|w| w.contains("usr/local/bin/odd")));
    let why: Vec<(&str, &str)> = demo
        .sca
        .explain("cmd:ruby")
        .map(|f| (f.file.as_str(), f.reason.as_str()))
        .collect();
    assert_eq!(
        why,
        [("usr/bin/tool.rb", "#!/usr/bin/env -S ruby --disable-gems")]
    );

    // (the fixture library needs nothing: linked --as-needed)
    check(
        "demo-libs",
        &[],
        &[&format!("so-ver:libfoo.so.1={v}"), "so:libfoo.so.1=1"],
    );
    // in a subpackage: the sibling's provide satisfies it, the depend stays (as melange)
    check(
        "demo-bin",
        &["so:ld-linux-x86-64.so.2", "so:libc.so.6", "so:libfoo.so.1"],
        &[&format!("cmd:app2={v}")],
    );
    let bin = by_name(&out, "demo-bin");
    assert_eq!(
        bin.sca.provided_in_build.get("so:libfoo.so.1"),
        Some(&vec!["demo".to_string(), "demo-libs".to_string()])
    );
    check(
        "demo-dev",
        &["pc:libbar", "pc:libbaz", "pc:zlib", "so:libfoo.so.1"],
        &[&format!("pc:foo={v}")],
    );
    // RUNPATH: found in the package → dropped; vendored SONAME
    check(
        "demo-private",
        &["so:ld-linux-x86-64.so.2", "so:libc.so.6"],
        &[&format!("cmd:app-private={v}")],
    );
    let private = by_name(&out, "demo-private");
    assert_eq!(
        private.sca.vendored,
        [
            format!("so-ver:libpriv.so.1={v}"),
            "so:libpriv.so.1=1".to_string()
        ]
    );
    assert!(
        private
            .sca
            .dropped
            .iter()
            .any(|d| d.value == "so:libpriv.so.1"
                && d.reason
                    .contains("through its RUNPATH at usr/lib/app-private/libpriv.so.1")),
        "{:?}",
        private.sca.dropped
    );
    // demo-private-libs ships its own copy, so it is found in the package too
    check(
        "demo-private-libs",
        &["so:ld-linux-x86-64.so.2", "so:libc.so.6"],
        &[&format!("cmd:app-private2={v}")],
    );
    check("demo-doc", &["man-db", "texinfo"], &[]);
    check("demo-py", &["python-3.12-base"], &[]);
    check("demo-py-declared", &["python3"], &[]);
    assert!(
        by_name(&out, "demo-py-declared")
            .sca
            .warnings
            .iter()
            .any(|w| w.contains("\"python3\" is declared"))
    );
    check("demo-lang", &["perl~5", "ruby-3.3"], &[]);
    check("demo-kernel", &[], &["linux:6.6.7-wolfi"]);
    check("demo-kmod", &["linux:6.6.7-wolfi"], &[]);
    let kmod: Vec<&str> = by_name(&out, "demo-kmod")
        .sca
        .explain("linux:6.6.7-wolfi")
        .map(|f| f.file.as_str())
        .collect();
    assert_eq!(
        kmod,
        [
            "lib/modules/6.6.7-wolfi/kernel/demo.ko",
            "usr/lib/modules/6.6.7-wolfi/extra/demo2.ko.gz"
        ]
    );
}

#[test]
fn runpath_library_in_a_sibling_becomes_a_package_depend() {
    let yaml = "package:\n  name: rp\n  version: \"1\"\n  epoch: 0\npipeline:\n  - runs: x\nsubpackages:\n  - name: rp-libs\n    pipeline:\n      - runs: x\n";
    let plan = plan_from_yaml(yaml);
    let f = fixtures();
    let mut t = TarStream::new();
    t.file("rp/usr/bin/app-private", 0o755, &f.app_private)
        .file(
            "rp-libs/usr/lib/app-private/libpriv.so.1",
            0o755,
            &f.libpriv,
        );
    let tmp = tempfile::tempdir().unwrap();
    let out = package_tar(&request(&plan, tmp.path()), &t.finish()[..]).unwrap();
    let main = &out.packages[0];
    assert_eq!(
        main.depends,
        ["rp-libs=1-r0", "so:ld-linux-x86-64.so.2", "so:libc.so.6"]
    );
    let why: Vec<&str> = main
        .sca
        .explain("rp-libs=1-r0")
        .map(|f| f.reason.as_str())
        .collect();
    assert_eq!(
        why,
        [
            "DT_NEEDED libpriv.so.1 found through RUNPATH at rp-libs:usr/lib/app-private/libpriv.so.1, outside the library directories"
        ]
    );
    // the sibling vendors the private library (not a provide)
    assert!(out.packages[1].provides.is_empty());
    assert_eq!(
        out.packages[1].sca.vendored,
        ["so-ver:libpriv.so.1=1-r0", "so:libpriv.so.1=1"]
    );
}

#[test]
fn versioned_shlib_depends_and_unresolved_warnings() {
    let yaml = "package:\n  name: vs\n  version: \"3\"\n  epoch: 2\npipeline:\n  - runs: x\nsubpackages:\n  - name: vs-libs\n    pipeline:\n      - runs: x\n  - name: vs-plain\n    options:\n      no-versioned-shlib-deps: true\n    pipeline:\n      - runs: x\n";
    let plan = plan_from_yaml(yaml);
    let f = fixtures();
    let stream = || {
        let mut t = TarStream::new();
        t.file("vs/usr/bin/app", 0o755, &f.app)
            .file("vs-libs/usr/lib/libfoo.so.1.0.0", 0o755, &f.libfoo)
            .file("vs-plain/usr/bin/app", 0o755, &f.app);
        t.finish()
    };
    let installed = vec![
        InstalledPackage {
            name: "glibc".into(),
            version: "2.40-r5".into(),
            provides: vec![
                "so:libc.so.6=6".into(),
                "so-ver:libc.so.6=2.40-r5".into(),
                "so:ld-linux-x86-64.so.2=2".into(),
                "so-ver:ld-linux-x86-64.so.2=2.40-r5".into(),
            ],
        },
        InstalledPackage {
            name: "zlib".into(),
            version: "1.3-r0".into(),
            provides: vec!["so:libz.so.1=1".into()],
        },
    ];
    let asked: Arc<std::sync::Mutex<Vec<BTreeSet<String>>>> = Arc::default();
    let asked2 = Arc::clone(&asked);
    let lookup: melange2_package::ProvidedLookup = Arc::new(move |names: &BTreeSet<String>| {
        asked2.lock().unwrap().push(names.clone());
        // the repositories provide glibc's names only
        names
            .iter()
            .filter(|n| n.as_str() == "so:libc.so.6")
            .cloned()
            .collect()
    });
    let tmp = tempfile::tempdir().unwrap();
    let mut req = request(&plan, tmp.path());
    req.environment = BuildEnvironment {
        installed,
        repositories: Some(lookup),
        versioned_shlib_deps: true,
    };
    let out = package_tar(&req, &stream()[..]).unwrap();
    assert_eq!(
        out.packages[0].depends,
        [
            "so-ver:libc.so.6>=2.40-r5",
            "so-ver:libfoo.so.1>=3-r2",
            "so:ld-linux-x86-64.so.2",
            "so:libc.so.6",
            "so:libfoo.so.1"
        ]
    );
    assert_eq!(
        out.packages[2].depends,
        ["so:ld-linux-x86-64.so.2", "so:libc.so.6", "so:libfoo.so.1"],
        "no-versioned-shlib-deps"
    );
    // only so: names not provided in the build are asked, in one batch
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1);
    assert_eq!(
        asked[0].iter().map(String::as_str).collect::<Vec<_>>(),
        ["so:ld-linux-x86-64.so.2", "so:libc.so.6"]
    );
    let main = &out.packages[0];
    assert_eq!(
        main.sca.unresolved.get("so:ld-linux-x86-64.so.2"),
        Some(&vec!["usr/bin/app".to_string()])
    );
    assert!(!main.sca.unresolved.contains_key("so:libfoo.so.1"));
    assert!(
        out.warnings.iter().any(|w| w
            == "package vs: depend so:ld-linux-x86-64.so.2 (needed by usr/bin/app) is provided by no package of this build or of its repositories"),
        "{:?}",
        out.warnings
    );
    assert!(
        main.sca
            .render_text()
            .contains("unresolved depend so:ld-linux-x86-64.so.2"),
        "{}",
        main.sca.render_text()
    );

    // off by default: no so-ver depends, nothing checked
    let tmp = tempfile::tempdir().unwrap();
    let out = package_tar(&request(&plan, tmp.path()), &stream()[..]).unwrap();
    assert!(
        out.packages[0]
            .depends
            .iter()
            .all(|d| !d.starts_with("so-ver:"))
    );
    assert!(out.packages[0].sca.unresolved.is_empty());
}

const SBOM_YAML: &str = r#"
package:
  name: hello
  version: "1.2.3"
  epoch: 4
  description: hello world
  commit: 0123456789abcdef0123456789abcdef01234567
  cpe:
    vendor: gnu
    product: hello
  copyright:
    - license: Apache-2.0 OR MIT
      attestation: Copyright 2024 Hello Authors
    - license: My Custom License
environment:
  contents:
    packages:
      - build-base
pipeline:
  - uses: fetch
    with:
      uri: https://downloads.example.invalid/hello-1.2.3.tar.gz
      expected-sha256: 0000000000000000000000000000000000000000000000000000000000000abc
  - uses: git-checkout
    with:
      repository: https://github.com/example/hello.git
      tag: v1.2.3
      expected-commit: 1111111111111111111111111111111111111111
  - runs: echo build
subpackages:
  - name: hello-extra
    pipeline:
      - uses: git-checkout
        with:
          repository: https://git.example.invalid/group/extra
          expected-commit: 2222222222222222222222222222222222222222
      - runs: echo extra
"#;

fn sbom_tar() -> Vec<u8> {
    let mut t = TarStream::new();
    t.file("hello/usr/share/hello/data.txt", 0o644, b"hi\n")
        .file("hello-extra/usr/share/extra/data.txt", 0o644, b"hi\n");
    t.finish()
}

fn sbom_of(p: &melange2_package::PackagedFile) -> (Vec<u8>, Value) {
    let tmp = tempfile::tempdir().unwrap();
    melange2_apk::PackageReader::open(&p.path)
        .unwrap()
        .extract_to(tmp.path())
        .unwrap();
    let rel = format!("var/lib/db/sbom/{}-{}.spdx.json", p.name, p.version);
    assert_eq!(p.sbom.as_deref(), Some(rel.as_str()));
    let bytes = std::fs::read(tmp.path().join(&rel)).unwrap();
    let v = serde_json::from_slice(&bytes).unwrap();
    (bytes, v)
}

fn is_spdx_id(s: &str) -> bool {
    s.strip_prefix("SPDXRef-").is_some_and(|r| {
        !r.is_empty()
            && r.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    })
}

/// Every field SPDX 2.3 requires of a document, its packages and its
/// relationships.
fn assert_spdx_23(doc: &Value) {
    let s = |v: &Value, k: &str| -> String {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("missing string {k} in {v}"))
            .to_string()
    };
    assert_eq!(s(doc, "spdxVersion"), "SPDX-2.3");
    assert_eq!(s(doc, "dataLicense"), "CC0-1.0");
    assert_eq!(s(doc, "SPDXID"), "SPDXRef-DOCUMENT");
    assert!(!s(doc, "name").is_empty());
    let ns = s(doc, "documentNamespace");
    assert!(ns.starts_with("https://") && !ns.contains('#'), "{ns}");
    let ci = &doc["creationInfo"];
    let created = s(ci, "created");
    assert!(
        created.len() == 20 && created.ends_with('Z') && created.as_bytes()[10] == b'T',
        "{created}"
    );
    let creators = ci["creators"].as_array().unwrap();
    assert!(!creators.is_empty());
    for c in creators {
        let c = c.as_str().unwrap();
        assert!(
            c.starts_with("Tool: ") || c.starts_with("Organization: ") || c.starts_with("Person: "),
            "{c}"
        );
    }
    let packages = doc["packages"].as_array().unwrap();
    let mut ids = BTreeSet::from(["SPDXRef-DOCUMENT".to_string()]);
    for p in packages {
        let id = s(p, "SPDXID");
        assert!(is_spdx_id(&id), "{id}");
        assert!(ids.insert(id.clone()), "duplicate {id}");
        assert!(!s(p, "name").is_empty());
        assert!(!s(p, "downloadLocation").is_empty());
        // filesAnalyzed false: no verification code needed
        assert_eq!(p["filesAnalyzed"], Value::Bool(false));
        for k in ["licenseConcluded", "licenseDeclared", "copyrightText"] {
            assert!(!s(p, k).is_empty(), "{k}");
        }
        for c in p["checksums"].as_array().into_iter().flatten() {
            assert!(["SHA256", "SHA512", "SHA1"].contains(&c["algorithm"].as_str().unwrap()));
            assert!(!s(c, "checksumValue").is_empty());
        }
        for r in p["externalRefs"].as_array().into_iter().flatten() {
            for k in ["referenceCategory", "referenceType", "referenceLocator"] {
                assert!(!s(r, k).is_empty());
            }
        }
    }
    for d in doc["documentDescribes"].as_array().unwrap() {
        assert!(ids.contains(d.as_str().unwrap()));
    }
    let rels = doc["relationships"].as_array().unwrap();
    assert!(!rels.is_empty());
    for r in rels {
        assert!(ids.contains(&s(r, "spdxElementId")), "{r}");
        assert!(ids.contains(&s(r, "relatedSpdxElement")), "{r}");
        assert!(!s(r, "relationshipType").is_empty());
    }
    for e in doc["hasExtractedLicensingInfos"]
        .as_array()
        .into_iter()
        .flatten()
    {
        assert!(s(e, "licenseId").starts_with("LicenseRef-"));
        assert!(!s(e, "extractedText").is_empty());
    }
}

#[test]
fn sbom_in_every_package() {
    let plan = plan_from_yaml(SBOM_YAML);
    let tmp = tempfile::tempdir().unwrap();
    let out = package_tar(&request(&plan, &tmp.path().join("a")), &sbom_tar()[..]).unwrap();
    let (bytes, doc) = sbom_of(&out.packages[0]);
    assert!(bytes.ends_with(b"}\n"));
    assert!(
        std::str::from_utf8(&bytes)
            .unwrap()
            .contains("\n  \"SPDXID\"")
    );
    assert_spdx_23(&doc);
    assert_eq!(doc["name"], "apk-hello-1.2.3-r4");
    assert_eq!(doc["creationInfo"]["created"], "2023-11-14T22:13:20Z");
    assert_eq!(doc["creationInfo"]["licenseListVersion"], "3.22");
    let ns = doc["documentNamespace"].as_str().unwrap();
    let hash = ns
        .strip_prefix("https://spdx.org/spdxdocs/chainguard/melange/")
        .unwrap();
    assert_eq!(hash.len(), 32);
    assert_eq!(
        doc["documentDescribes"],
        serde_json::json!(["SPDXRef-Package-hello-1.2.3-r4"])
    );
    let pk = doc["packages"].as_array().unwrap();
    let ids: Vec<&str> = pk.iter().map(|p| p["SPDXID"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "SPDXRef-OperatingSystem",
            "SPDXRef-Package-hello-1.2.3-r4",
            "SPDXRef-Package-Melange-test.yaml-0123456789abcdef0123456789abcdef01234567",
            "SPDXRef-Package-Source-hello-1.2.3-0",
            "SPDXRef-Package-Source-github.com-example-hello-v1.2.3-1111111111111111111111111111111111111111-1",
        ]
    );
    // operating system
    assert_eq!(pk[0]["name"], "wolfi");
    assert_eq!(pk[0]["primaryPackagePurpose"], "OPERATING-SYSTEM");
    assert_eq!(pk[0]["supplier"], "Organization: Wolfi");
    assert_eq!(pk[0]["description"], "Operating System");
    // the APK
    let apk = &pk[1];
    assert_eq!(apk["versionInfo"], "1.2.3-r4");
    assert_eq!(
        apk["licenseDeclared"],
        "(Apache-2.0 OR MIT) AND LicenseRef-My-Custom-License"
    );
    assert_eq!(apk["copyrightText"], "Copyright 2024 Hello Authors");
    assert_eq!(apk["primaryPackagePurpose"], "APPLICATION");
    let refs = apk["externalRefs"].as_array().unwrap();
    assert_eq!(
        refs[0]["referenceLocator"],
        "pkg:apk/wolfi/hello@1.2.3-r4?arch=x86_64&distro=wolfi"
    );
    assert_eq!(refs[1]["referenceType"], "cpe23Type");
    assert!(
        refs[1]["referenceLocator"]
            .as_str()
            .unwrap()
            .starts_with("cpe:2.3:")
    );
    // build configuration
    assert_eq!(pk[2]["name"], "test.yaml");
    assert_eq!(pk[2]["primaryPackagePurpose"], "INSTALL");
    assert_eq!(
        pk[2]["externalRefs"][0]["referenceLocator"],
        "pkg:github/unknown/unknown@0123456789abcdef0123456789abcdef01234567#test.yaml"
    );
    // fetch source with its checksum
    let fetch = &pk[3];
    assert_eq!(
        fetch["downloadLocation"],
        "https://downloads.example.invalid/hello-1.2.3.tar.gz"
    );
    assert_eq!(
        fetch["checksums"],
        serde_json::json!([{"algorithm": "SHA256", "checksumValue": format!("{:0>64}", "abc")}])
    );
    assert_eq!(
        fetch["externalRefs"][0]["referenceLocator"],
        format!(
            "pkg:generic/hello@1.2.3?checksum=sha256%3A{:0>64}&download_url=https%3A%2F%2Fdownloads.example.invalid%2Fhello-1.2.3.tar.gz",
            "abc"
        )
    );
    assert_eq!(fetch["primaryPackagePurpose"], "SOURCE");
    // git-checkout from GitHub
    let git = &pk[4];
    assert_eq!(
        git["externalRefs"][0]["referenceLocator"],
        "pkg:github/example/hello@v1.2.3"
    );
    assert_eq!(
        git["downloadLocation"],
        "https://github.com/example/hello/archive/v1.2.3.tar.gz"
    );
    // relationships
    let rels: Vec<(&str, &str, &str)> = doc["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["spdxElementId"].as_str().unwrap(),
                r["relationshipType"].as_str().unwrap(),
                r["relatedSpdxElement"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(rels.len(), 3);
    assert_eq!(rels[0].1, "DESCRIBED_BY");
    assert_eq!(rels[0].2, ids[2]);
    assert_eq!(rels[1], (ids[1], "GENERATED_FROM", ids[3]));
    assert_eq!(rels[2], (ids[1], "GENERATED_FROM", ids[4]));
    // the non-SPDX licence's text
    assert_eq!(
        doc["hasExtractedLicensingInfos"],
        serde_json::json!([{"licenseId": "LicenseRef-My-Custom-License", "extractedText": "Non-SPDX License: My Custom License"}])
    );

    // the subpackage: its own name, the main package's licence, its own source too
    let (_, sub) = sbom_of(&out.packages[1]);
    assert_spdx_23(&sub);
    assert_eq!(sub["name"], "apk-hello-extra-1.2.3-r4");
    let spk = sub["packages"].as_array().unwrap();
    assert_eq!(spk[1]["name"], "hello-extra");
    assert_eq!(spk[1]["licenseDeclared"], apk["licenseDeclared"]);
    assert_eq!(spk.len(), 6);
    let other = &spk[5];
    assert_eq!(
        other["externalRefs"][0]["referenceLocator"],
        "pkg:generic/group/extra@2222222222222222222222222222222222222222?vcs_url=git%2Bhttps%3A%2F%2Fgit.example.invalid%2Fgroup%2Fextra%402222222222222222222222222222222222222222"
    );
    assert_eq!(
        other["downloadLocation"],
        "git+https://git.example.invalid/group/extra@2222222222222222222222222222222222222222"
    );

    // same build → same bytes (SBOMs and packages)
    let again = package_tar(&request(&plan, &tmp.path().join("b")), &sbom_tar()[..]).unwrap();
    for (a, b) in out.packages.iter().zip(&again.packages) {
        assert_eq!(sbom_of(a).0, sbom_of(b).0, "{}", a.name);
        assert_eq!(
            std::fs::read(&a.path).unwrap(),
            std::fs::read(&b.path).unwrap()
        );
    }
    // a different epoch changes the creation time only
    let mut req = request(&plan, &tmp.path().join("c"));
    req.source_date_epoch = 0;
    let other = package_tar(&req, &sbom_tar()[..]).unwrap();
    let (_, d) = sbom_of(&other.packages[0]);
    assert_eq!(d["creationInfo"]["created"], "1970-01-01T00:00:00Z");

    // license-path: the text comes from the license directory
    let yaml = SBOM_YAML.replace(
        "    - license: My Custom License\n",
        "    - license: My Custom License\n      license-path: COPYING.custom\n",
    );
    let plan = plan_from_yaml(&yaml);
    std::fs::write(tmp.path().join("COPYING.custom"), "custom terms\n").unwrap();
    let mut req = request(&plan, &tmp.path().join("d"));
    req.license_dir = Some(tmp.path().to_path_buf());
    let out = package_tar(&req, &sbom_tar()[..]).unwrap();
    let (_, d) = sbom_of(&out.packages[0]);
    assert_eq!(
        d["hasExtractedLicensingInfos"][0]["extractedText"],
        "custom terms\n"
    );
    // without it: a warning and the name only
    let out = package_tar(&request(&plan, &tmp.path().join("e")), &sbom_tar()[..]).unwrap();
    assert!(
        out.warnings
            .iter()
            .any(|w| w.contains("COPYING.custom") && w.contains("cannot be read")),
        "{:?}",
        out.warnings
    );
}

#[test]
fn sbom_can_be_switched_off() {
    let plan = plan_from_yaml(SBOM_YAML);
    let tmp = tempfile::tempdir().unwrap();
    let mut req = request(&plan, tmp.path());
    req.generate_sbom = false;
    let out = package_tar(&req, &sbom_tar()[..]).unwrap();
    let c = verify_package(&out.packages[0].path, &key().keyring, None).unwrap();
    assert!(c.data.entries.iter().all(|e| !e.path.starts_with("var")));
    assert!(out.packages[0].sbom.is_none());
}

fn provenance() -> Provenance {
    Provenance {
        build_file: "hello.yaml".into(),
        build_file_sha256: "ab".repeat(32),
        environment_lock: serde_json::json!({
            "arch": "x86_64",
            "packages": [
                {"name": "busybox", "version": "1.36-r0", "arch": "x86_64",
                 "checksum": "Q1AAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "repository": "/repo"}
            ]
        }),
        buildkit_package: "github.com/moby/buildkit".into(),
        buildkit_version: "v0.32.2".into(),
        buildkit_revision: "deadbeef".into(),
        llb_digest: format!("sha256:{}", "cd".repeat(32)),
    }
}

/// Entries of a `.attest.tar.gz`: name → bytes, in order.
fn attest_entries(path: &Path) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let f = std::fs::File::open(path).unwrap();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    ar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            assert_eq!(e.header().mtime().unwrap(), EPOCH);
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (name, data)
        })
        .collect()
}

#[test]
fn provenance_next_to_every_apk() {
    use sha2::Digest;
    let plan = plan_from_yaml(SBOM_YAML);
    let tmp = tempfile::tempdir().unwrap();
    let mut req = request(&plan, &tmp.path().join("a"));
    req.provenance = Some(provenance());
    let out = package_tar(&req, &sbom_tar()[..]).unwrap();
    let arch_dir = tmp.path().join("a/x86_64");
    for p in &out.packages {
        let attest = arch_dir.join(format!("{}-1.2.3-r4.attest.tar.gz", p.name));
        assert_eq!(p.provenance.as_deref(), Some(attest.as_path()));
        let entries = attest_entries(&attest);
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        let statement_name = format!("{}-1.2.3-r4.attestation", p.name);
        assert_eq!(
            names,
            [".SIGN.RSA256.test-key.rsa.pub", statement_name.as_str()]
        );
        let statement = &entries[1].1;
        let v: Value = serde_json::from_slice(statement).unwrap();
        assert_eq!(v["_type"], "https://in-toto.io/Statement/v1");
        assert_eq!(v["predicateType"], "https://slsa.dev/provenance/v1");
        let apk = std::fs::read(&p.path).unwrap();
        assert_eq!(
            v["subject"],
            serde_json::json!([{
                "name": format!("{}-1.2.3-r4.apk", p.name),
                "digest": {"sha256": hex::encode(sha2::Sha256::digest(&apk))}
            }])
        );
        let bd = &v["predicate"]["buildDefinition"];
        assert_eq!(bd["externalParameters"]["buildFile"]["path"], "hello.yaml");
        assert_eq!(
            bd["externalParameters"]["buildFile"]["digest"]["sha256"],
            "ab".repeat(32)
        );
        assert_eq!(bd["externalParameters"]["package"], p.name.as_str());
        assert_eq!(bd["externalParameters"]["arch"], "x86_64");
        assert_eq!(
            bd["internalParameters"]["llbDigest"],
            format!("sha256:{}", "cd".repeat(32))
        );
        assert_eq!(
            bd["internalParameters"]["environmentLock"]["packages"][0]["name"],
            "busybox"
        );
        assert_eq!(
            bd["resolvedDependencies"][0]["uri"],
            "pkg:apk/wolfi/busybox@1.36-r0?arch=x86_64"
        );
        assert_eq!(
            v["predicate"]["runDetails"]["builder"]["version"]["buildkit"],
            "v0.32.2"
        );
        // the signature verifies with openssl against the public key
        let dir = tmp.path().join(format!("verify-{}", p.name));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("statement"), statement).unwrap();
        std::fs::write(dir.join("sig"), &entries[0].1).unwrap();
        std::fs::write(dir.join("key.pub"), key().key.public_key_pem().unwrap()).unwrap();
        let st = Command::new("openssl")
            .current_dir(&dir)
            .args([
                "dgst",
                "-sha256",
                "-verify",
                "key.pub",
                "-signature",
                "sig",
                "statement",
            ])
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
    }
    // deterministic, and nothing written without the option
    let mut req = request(&plan, &tmp.path().join("b"));
    req.provenance = Some(provenance());
    package_tar(&req, &sbom_tar()[..]).unwrap();
    for p in &out.packages {
        let f = format!("{}-1.2.3-r4.attest.tar.gz", p.name);
        assert_eq!(
            std::fs::read(arch_dir.join(&f)).unwrap(),
            std::fs::read(tmp.path().join("b/x86_64").join(&f)).unwrap()
        );
    }
    let out = package_tar(&request(&plan, &tmp.path().join("c")), &sbom_tar()[..]).unwrap();
    assert!(out.packages.iter().all(|p| p.provenance.is_none()));
    let files: Vec<String> = std::fs::read_dir(tmp.path().join("c/x86_64"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(files.iter().all(|f| !f.contains("attest")), "{files:?}");
}

#[test]
fn provenance_is_atomic_with_the_packages() {
    // a failure after the provenance of the first package was staged leaves nothing behind
    let yaml = SBOM_YAML.replace(
        "  - name: hello-extra\n",
        "  - name: hello-extra\n    dependencies:\n      provider-priority: \"-1\"\n",
    );
    let plan = plan_from_yaml(&yaml);
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    let mut req = request(&plan, &out_dir);
    req.provenance = Some(provenance());
    let err = package_tar(&req, &sbom_tar()[..]).unwrap_err();
    assert!(err.to_string().contains("provider-priority"), "{err}");
    assert!(!out_dir.exists());
}
