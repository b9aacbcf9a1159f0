//! `melange2 build` end to end: the real binary, the real buildkitd of `make test`, a signed
//! repository built by the test with our own writer (busybox from Debian's busybox-static),
//! served as a directory and over HTTP on 127.0.0.1.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

use common::{apks, daemon, extract, melange2, serve, serve_dir, snapshot, vertices};
use melange2_apk::{Keyring, PackageTree, PkgInfo, RepoBuilder, generate_key, verify_package};

struct Fixture {
    dir: tempfile::TempDir,
    repo: PathBuf,
    pubkey: PathBuf,
    signing_key: PathBuf,
}

/// A signed repository with busybox (and its applet list) and wget, plus a signing key for the
/// packages the tests build.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let repo_key = generate_key(2048, "repo.rsa").unwrap();
    let pubkey = dir.path().join("repo.rsa.pub");
    std::fs::write(&pubkey, repo_key.public_key_pem().unwrap()).unwrap();
    let mut repo = RepoBuilder::new(dir.path().join("repo")).signer(repo_key);

    common::add_busybox(&mut repo);

    let mut t = PackageTree::new();
    t.add_dir("usr", 0o755).unwrap();
    t.add_dir("usr/bin", 0o755).unwrap();
    t.add_symlink("usr/bin/wget", "/bin/busybox").unwrap();
    let mut info = PkgInfo::new("wget", "1.35.0-r0", "x86_64");
    info.depends.push("busybox".into());
    repo.add(&info, &t).unwrap();
    repo.finish().unwrap();

    let signing_key = dir.path().join("melange.rsa");
    let out = melange2()
        .args(["keygen", "--key-size", "2048"])
        .arg(&signing_key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Fixture {
        repo: dir.path().join("repo"),
        dir,
        pubkey,
        signing_key,
    }
}

/// Run `melange2 build` with the fixture's repository and key; progress as rawjson.
fn build(f: &Fixture, recipe: &Path, out: &Path, extra: &[&str]) -> Output {
    melange2()
        .arg("build")
        .arg(recipe)
        .args(["--arch", "x86_64"])
        .args(if extra.contains(&"--progress") {
            &[][..]
        } else {
            &["--progress", "rawjson"][..]
        })
        .arg("--out-dir")
        .arg(out)
        .arg("-r")
        .arg(&f.repo)
        .arg("-k")
        .arg(&f.pubkey)
        .arg("--signing-key")
        .arg(&f.signing_key)
        .arg("--apk-cache-dir")
        .arg(f.dir.path().join("apk-cache"))
        .args(["--buildkit-addr", &daemon()])
        .args(extra)
        .current_dir(f.dir.path())
        .output()
        .unwrap()
}

fn ok(o: &Output) -> &Output {
    assert!(
        o.status.success(),
        "melange2 build failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn data_files(apk: &Path, keyring: &Keyring) -> BTreeMap<String, String> {
    let c = verify_package(apk, keyring, None).unwrap_or_else(|e| panic!("{}: {e}", apk.display()));
    c.data
        .entries
        .iter()
        .map(|e| (e.path.clone(), e.link.clone()))
        .collect()
}

fn keyring_of(f: &Fixture) -> Keyring {
    let mut kr = Keyring::new();
    kr.add_file(&f.signing_key.with_extension("rsa.pub"))
        .unwrap();
    kr
}

fn write_recipe(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn hello_builds_signed_packages_and_index_and_rebuilds_from_cache() {
    let f = fixture();
    let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello/melange.yaml");
    let out = f.dir.path().join("packages");
    let first = build(&f, &recipe, &out, &[]);
    ok(&first);
    let arch = out.join("x86_64");
    let hello = arch.join("hello-1.0.0-r0.apk");
    let doc = arch.join("hello-doc-1.0.0-r0.apk");
    let kr = keyring_of(&f);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&hello).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let files = data_files(&hello, &kr);
    assert!(files.contains_key("usr/bin/hello"), "{files:?}");
    assert!(
        !files.keys().any(|k| k.starts_with("usr/share/doc")),
        "docs moved out"
    );
    let files = data_files(&doc, &kr);
    assert!(
        files.contains_key("usr/share/doc/hello/README"),
        "{files:?}"
    );
    let (idx, _) = melange2_apk::read_index(&arch.join("APKINDEX.tar.gz"), Some(&kr)).unwrap();
    let names: Vec<&str> = idx.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["hello", "hello-doc"]);

    // Unchanged recipe: up to date, nothing solved, nothing written.
    let first_bytes = apks(&out);
    assert_eq!(
        first_bytes.keys().collect::<Vec<_>>(),
        [
            "APKINDEX.tar.gz",
            "hello-1.0.0-r0.apk",
            "hello-doc-1.0.0-r0.apk"
        ]
    );
    let before = snapshot(&out);
    let again = build(&f, &recipe, &out, &[]);
    ok(&again);
    assert!(
        vertices(&again).is_empty(),
        "a solve ran for an up-to-date recipe"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("\"result\":\"up to date\""));
    assert_eq!(snapshot(&out), before);

    // Forced: every step cached, byte-identical packages.
    use std::os::unix::fs::MetadataExt as _;
    let inode = |p: &Path| std::fs::metadata(p).unwrap().ino();
    let inodes = [inode(&hello), inode(&doc)];
    let second = build(&f, &recipe, &out, &["--force"]);
    ok(&second);
    let v = vertices(&second);
    let steps: Vec<_> = v
        .iter()
        .filter(|(n, _)| {
            n.starts_with("Build") || n.starts_with("Docs") || n.starts_with("hello-doc:")
        })
        .collect();
    assert_eq!(steps.len(), 3, "{v:?}");
    for (n, cached) in steps {
        assert!(cached, "step {n} was not cached");
    }
    // Every package (the subpackage too) and the index were written again…
    assert_ne!(
        inodes,
        [inode(&hello), inode(&doc)],
        "--force wrote nothing"
    );
    // …byte-identical.
    let diff = common::differing(&first_bytes, &apks(&out));
    assert!(diff.is_empty(), "a cached rebuild changed {diff:?}");
}

#[test]
fn changing_a_step_reruns_it_and_the_steps_after_it_only() {
    let f = fixture();
    let text = |middle: &str, last: &str| {
        format!(
            "package:\n  name: steps\n  version: 1.0.0\n  epoch: 0\n  description: steps\n  copyright:\n    - license: MIT\nenvironment:\n  contents:\n    packages:\n      - busybox\npipeline:\n  - name: first\n    runs: mkdir -p ${{{{targets.destdir}}}}/usr/share && echo one > ${{{{targets.destdir}}}}/usr/share/one\n  - name: middle\n    runs: echo {middle} > ${{{{targets.destdir}}}}/usr/share/middle\n  - name: last\n    runs: echo {last} > ${{{{targets.destdir}}}}/usr/share/last\n"
        )
    };
    let out = f.dir.path().join("out");
    let r1 = write_recipe(f.dir.path(), "steps.yaml", &text("a", "a"));
    ok(&build(&f, &r1, &out, &[]));
    // The last step changed: only it runs.
    let r2 = write_recipe(f.dir.path(), "steps.yaml", &text("a", "b"));
    let o = build(&f, &r2, &out, &[]);
    ok(&o);
    let v = vertices(&o);
    assert_eq!(v.get("first"), Some(&true), "{v:?}");
    assert_eq!(v.get("middle"), Some(&true), "{v:?}");
    assert_eq!(v.get("last"), Some(&false), "{v:?}");
    // A middle step changed: it and every step after it run, the steps before stay cached.
    let r3 = write_recipe(f.dir.path(), "steps.yaml", &text("c", "b"));
    let o = build(&f, &r3, &out, &[]);
    ok(&o);
    let v = vertices(&o);
    assert_eq!(v.get("first"), Some(&true), "{v:?}");
    assert_eq!(v.get("middle"), Some(&false), "{v:?}");
    assert_eq!(v.get("last"), Some(&false), "{v:?}");
    let finished = String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "finished")
        .expect("a finished event");
    assert_eq!(
        finished["reasons"],
        serde_json::json!(["recipe step 002 (middle) changed"]),
        "{finished}"
    );
    let apk = out.join("x86_64/steps-1.0.0-r0.apk");
    let files = data_files(&apk, &keyring_of(&f));
    assert!(files.contains_key("usr/share/middle"), "{files:?}");
    // The package holds what the re-run steps wrote.
    let tree = extract(&apk, f.dir.path());
    let read = |n: &str| std::fs::read_to_string(tree.join("usr/share").join(n)).unwrap();
    assert_eq!(
        (read("one"), read("middle"), read("last")),
        ("one\n".into(), "c\n".into(), "b\n".into())
    );
}

#[test]
fn failing_step_reports_and_leaves_out_dir_unchanged() {
    let f = fixture();
    let out = f.dir.path().join("out");
    // A good build first, so the out-dir has content to protect.
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello/melange.yaml");
    ok(&build(&f, &good, &out, &[]));
    let before = snapshot(&out);
    let bad = write_recipe(
        f.dir.path(),
        "bad.yaml",
        "package:\n  name: bad\n  version: 1.0.0\n  epoch: 0\n  description: fails\n  copyright:\n    - license: MIT\nenvironment:\n  contents:\n    packages:\n      - busybox\npipeline:\n  - name: compile things\n    runs: |\n      echo working\n      echo 'error: something is broken' >&2\n      exit 7\n",
    );
    let o = build(&f, &bad, &out, &["--progress", "plain"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("compile things"), "{err}");
    assert!(err.contains("exit code 7"), "{err}");
    assert!(err.contains("error: something is broken"), "{err}");
    assert_eq!(snapshot(&out), before, "out-dir changed by a failed build");
}

fn tarball() -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    let mut add = |path: &str, mode: u32, data: &str| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, path, data.as_bytes()).unwrap();
    };
    add(
        "greet-2.1/configure",
        0o755,
        "#!/bin/sh\nprefix=/usr\nfor a; do case $a in --prefix=*) prefix=${a#--prefix=};; esac; done\necho \"PREFIX=$prefix\" > config.status\n",
    );
    add(
        "greet-2.1/build.sh",
        0o755,
        "#!/bin/sh\nset -e\n. ./config.status 2>/dev/null || PREFIX=$(sed -n 's/PREFIX=//p' config.status)\nmkdir -p \"$DESTDIR$PREFIX/bin\" \"$DESTDIR$PREFIX/include\" \"$DESTDIR$PREFIX/lib\"\nprintf '#!/bin/sh\\necho greetings\\n' > \"$DESTDIR$PREFIX/bin/greet\"\nchmod 755 \"$DESTDIR$PREFIX/bin/greet\"\necho 'int greet(void);' > \"$DESTDIR$PREFIX/include/greet.h\"\necho archive > \"$DESTDIR$PREFIX/lib/libgreet.a\"\n",
    );
    b.into_inner().unwrap().finish().unwrap()
}

#[test]
fn fetch_configure_build_with_subpackages_ranges_conditions_and_split() {
    use sha2::Digest;
    let f = fixture();
    let tgz = tarball();
    let sum = hex::encode(sha2::Sha256::digest(&tgz));
    let url = serve(tgz, "greet-2.1.tar.gz");
    let recipe = format!(
        r#"package:
  name: greet
  version: "2.1"
  epoch: 3
  description: greets
  copyright:
    - license: Apache-2.0
environment:
  contents:
    packages:
      - busybox
  environment:
    GREETING: hi-from-env
data:
  - name: flavours
    items:
      sweet: candy
      sour: lemon
vars:
  tool: greet
pipeline:
  - uses: fetch
    with:
      uri: {url}
      expected-sha256: {sum}
  - name: configure
    runs: ./configure --prefix=/usr
  - name: build
    runs: DESTDIR=${{{{targets.destdir}}}} ./build.sh
  - name: conditional on arch
    if: ${{{{build.arch}}}} == 'x86_64'
    runs: echo x86 > ${{{{targets.destdir}}}}/usr/bin/arch-note
  - name: never
    if: ${{{{build.arch}}}} == 'riscv64'
    runs: exit 9
  - name: env and working directory
    working-directory: sub/dir
    runs: |
      pwd > ${{{{targets.destdir}}}}/usr/bin/where
      echo "$GREETING" > ${{{{targets.destdir}}}}/usr/bin/greeting
subpackages:
  - name: greet-dev
    pipeline:
      - uses: split/dev
  - range: flavours
    name: greet-${{{{range.key}}}}
    description: ${{{{range.value}}}} flavour
    pipeline:
      - runs: |
          mkdir -p ${{{{targets.contextdir}}}}/usr/share/greet
          echo ${{{{range.value}}}} > ${{{{targets.contextdir}}}}/usr/share/greet/${{{{range.key}}}}
"#
    );
    let r = write_recipe(f.dir.path(), "greet.yaml", &recipe);
    let out = f.dir.path().join("out");
    ok(&build(&f, &r, &out, &[]));
    let kr = keyring_of(&f);
    let a = out.join("x86_64");
    let main = data_files(&a.join("greet-2.1-r3.apk"), &kr);
    for p in [
        "usr/bin/greet",
        "usr/bin/arch-note",
        "usr/bin/where",
        "usr/bin/greeting",
    ] {
        assert!(main.contains_key(p), "{p} missing: {main:?}");
    }
    assert!(
        !main.contains_key("usr/include/greet.h"),
        "split/dev moved headers"
    );
    let dev = data_files(&a.join("greet-dev-2.1-r3.apk"), &kr);
    assert!(
        dev.contains_key("usr/include/greet.h") && dev.contains_key("usr/lib/libgreet.a"),
        "{dev:?}"
    );
    let sweet = data_files(&a.join("greet-sweet-2.1-r3.apk"), &kr);
    assert!(sweet.contains_key("usr/share/greet/sweet"), "{sweet:?}");
    assert!(a.join("greet-sour-2.1-r3.apk").is_file());

    // The step outputs: working directory and environment.
    let tmp = extract(&a.join("greet-2.1-r3.apk"), f.dir.path());
    assert_eq!(
        std::fs::read_to_string(tmp.join("usr/bin/where")).unwrap(),
        "/home/build/sub/dir\n"
    );
    assert_eq!(
        std::fs::read_to_string(tmp.join("usr/bin/greeting")).unwrap(),
        "hi-from-env\n"
    );

    // A wrong checksum fails the build.
    let bad = recipe.replace(&sum, &"0".repeat(64));
    let r = write_recipe(f.dir.path(), "greet-bad.yaml", &bad);
    let o = build(
        &f,
        &r,
        &f.dir.path().join("out-bad"),
        &["--progress", "plain"],
    );
    assert!(!o.status.success(), "a wrong checksum must fail");
    assert!(
        !f.dir.path().join("out-bad/x86_64").exists(),
        "nothing written"
    );
}

#[test]
fn cache_mounts_persist_between_builds() {
    let f = fixture();
    let marker = format!("{}", std::process::id());
    let writer = format!(
        "package:\n  name: cache-writer\n  version: 1.0.0\n  epoch: 0\n  description: w\n  copyright:\n    - license: MIT\nenvironment:\n  contents:\n    packages:\n      - busybox\npipeline:\n  - runs: |\n      echo {marker} > /var/cache/melange/e2e-marker\n      mkdir -p ${{{{targets.destdir}}}}/usr/share\n      echo w > ${{{{targets.destdir}}}}/usr/share/w\n"
    );
    let reader = "package:\n  name: cache-reader\n  version: 1.0.0\n  epoch: 0\n  description: r\n  copyright:\n    - license: MIT\nenvironment:\n  contents:\n    packages:\n      - busybox\npipeline:\n  - runs: |\n      mkdir -p ${{targets.destdir}}/usr/share\n      cp /var/cache/melange/e2e-marker ${{targets.destdir}}/usr/share/marker\n";
    let out = f.dir.path().join("out");
    ok(&build(
        &f,
        &write_recipe(f.dir.path(), "w.yaml", &writer),
        &out,
        &[],
    ));
    ok(&build(
        &f,
        &write_recipe(f.dir.path(), "r.yaml", reader),
        &out,
        &[],
    ));
    let tmp = extract(&out.join("x86_64/cache-reader-1.0.0-r0.apk"), f.dir.path());
    assert_eq!(
        std::fs::read_to_string(tmp.join("usr/share/marker")).unwrap(),
        format!("{marker}\n")
    );
}

#[test]
fn repository_over_http() {
    let f = fixture();
    let url = serve_dir(f.repo.clone());
    let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello/melange.yaml");
    let out = f.dir.path().join("out");
    let o = melange2()
        .arg("build")
        .arg(&recipe)
        .args([
            "--arch",
            "x86_64",
            "--progress",
            "plain",
            "--buildkit-addr",
            &daemon(),
        ])
        .args(["-r", &url])
        .arg("-k")
        .arg(&f.pubkey)
        .arg("--apk-cache-dir")
        .arg(f.dir.path().join("http-cache"))
        .arg("--signing-key")
        .arg(&f.signing_key)
        .arg("--out-dir")
        .arg(&out)
        .current_dir(f.dir.path())
        .output()
        .unwrap();
    ok(&o);
    assert!(out.join("x86_64/hello-1.0.0-r0.apk").is_file());
}

/// `melange2 build` of a bootstrap recipe on a given root filesystem.
fn bootstrap(
    f: &Fixture,
    recipe: &Path,
    rootfs: &Path,
    src: &Path,
    out: &Path,
    extra: &[&str],
) -> Output {
    melange2()
        .arg("build")
        .arg(recipe)
        .args([
            "--arch",
            "x86_64",
            "--progress",
            "plain",
            "--buildkit-addr",
            &daemon(),
        ])
        .arg("--bootstrap-rootfs")
        .arg(rootfs)
        .arg("--source-dir")
        .arg(src)
        .arg("--out-dir")
        .arg(out)
        .args(extra)
        .current_dir(f.dir.path())
        .output()
        .unwrap()
}

#[test]
fn bootstrap_rootfs_builds_busybox() {
    let f = fixture();
    // Bootstrap: build busybox from Debian's static binary with a rootfs directory.
    let rootfs = f.dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for a in String::from_utf8(list.stdout).unwrap().lines() {
        let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a));
    }
    let src = f.dir.path().join("bbsrc");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::copy("/bin/busybox", src.join("busybox")).unwrap();
    let recipe =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/bootstrap/busybox.yaml");
    let out = f.dir.path().join("boot");
    let key = f.signing_key.to_string_lossy().to_string();
    let o = bootstrap(&f, &recipe, &rootfs, &src, &out, &["--signing-key", &key]);
    ok(&o);
    let files = data_files(&out.join("x86_64/busybox-1.35.0-r0.apk"), &keyring_of(&f));
    assert!(files.contains_key("bin/busybox") && files.contains_key("etc/busybox-paths.d/busybox"));

    // The same with the rootfs as a compressed tar, and the trees kept in a workspace dir.
    let tgz = f.dir.path().join("rootfs.tar.gz");
    let st = Command::new("tar")
        .arg("-czf")
        .arg(&tgz)
        .arg("-C")
        .arg(&rootfs)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let ws = f.dir.path().join("ws");
    let ws_arg = ws.to_string_lossy().to_string();
    let o = bootstrap(
        &f,
        &recipe,
        &tgz,
        &src,
        &f.dir.path().join("boot-tar"),
        &["--workspace-dir", &ws_arg],
    );
    ok(&o);
    assert!(
        f.dir
            .path()
            .join("boot-tar/x86_64/busybox-1.35.0-r0.apk")
            .is_file()
    );
    let tree = ws.join("x86_64/melange-out/busybox");
    assert!(
        tree.join("bin/busybox").is_file(),
        "workspace has the built tree"
    );
    let paths = std::fs::read_to_string(tree.join("etc/busybox-paths.d/busybox")).unwrap();
    assert!(paths.lines().any(|l| l == "/bin/sh"), "{paths}");
}

#[test]
fn cache_dir_seeds_the_melange_cache() {
    let f = fixture();
    let cache = f.dir.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let marker = format!(
        "seed-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    );
    std::fs::write(cache.join("seeded"), &marker).unwrap();
    let recipe = write_recipe(
        f.dir.path(),
        "seeded.yaml",
        "package:\n  name: seeded\n  version: 1.0.0\n  epoch: 0\n  description: s\n  copyright:\n    - license: MIT\nenvironment:\n  contents:\n    packages:\n      - busybox\npipeline:\n  - runs: |\n      mkdir -p ${{targets.destdir}}/usr/share\n      cp /var/cache/melange/seeded ${{targets.destdir}}/usr/share/seeded\n",
    );
    let out = f.dir.path().join("out");
    let cache_arg = cache.to_string_lossy().to_string();
    ok(&build(&f, &recipe, &out, &["--cache-dir", &cache_arg]));
    let tmp = extract(&out.join("x86_64/seeded-1.0.0-r0.apk"), f.dir.path());
    assert_eq!(
        std::fs::read_to_string(tmp.join("usr/share/seeded")).unwrap(),
        marker
    );
}

#[test]
fn an_arch_the_daemon_cannot_run_is_reported_before_building() {
    let f = fixture();
    let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello/melange.yaml");
    let out = f.dir.path().join("out");
    let o = melange2()
        .arg("build")
        .arg(&recipe)
        .args([
            "--arch",
            "x86_64,s390x",
            "--progress",
            "plain",
            "--buildkit-addr",
            &daemon(),
        ])
        .arg("-r")
        .arg(&f.repo)
        .arg("-k")
        .arg(&f.pubkey)
        .arg("--out-dir")
        .arg(&out)
        .current_dir(f.dir.path())
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no daemon runs s390x"), "{err}");
    assert!(err.contains("nothing was built"), "{err}");
    assert!(
        err.contains("x86_64"),
        "names what the daemon supports: {err}"
    );
    assert!(!err.contains("exec format error"), "{err}");
    assert!(!out.exists(), "nothing was built");
}

#[test]
fn bad_build_file_is_a_clear_error() {
    let f = fixture();
    let bad = write_recipe(
        f.dir.path(),
        "typo.yaml",
        "package:\n  name: typo\n  version: 1.0.0\n  epcho: 0\n",
    );
    let o = build(
        &f,
        &bad,
        &f.dir.path().join("out"),
        &["--progress", "plain"],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("typo.yaml:4"), "names file and line: {err}");
    assert!(err.contains("epoch"), "suggests the key: {err}");
}
