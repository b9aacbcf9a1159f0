//! `melange2 rebuild`, `melange2 scan` and `melange2 completion` end to end: the real binary,
//! the real buildkitd of `make test`, a signed repository written by the test and served
//! over HTTP on 127.0.0.1 (so a test can replace a package between the build and the
//! rebuild).

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;

use common::{daemon, melange2, serve_dir};
use melange2_apk::{PackageReader, PackageTree, PkgInfo, RepoBuilder, SigningKey, generate_key};

/// A package that takes a file from an environment package (`greeting`) and one from its
/// source directory, with a subpackage.
const RECIPE: &str = r#"package:
  name: greet
  version: 1.0.0
  epoch: 0
  description: Greets with the text of the greeting package
  copyright:
    - license: Apache-2.0
environment:
  contents:
    packages:
      - busybox
      - greeting
pipeline:
  - name: Install
    runs: |
      mkdir -p ${{targets.destdir}}/usr/bin ${{targets.destdir}}/usr/share/greet
      cp /usr/share/greeting/text ${{targets.destdir}}/usr/share/greet/text
      cp notes.txt ${{targets.destdir}}/usr/share/greet/notes
      printf '#!/bin/sh\ncat /usr/share/greet/text\n' > ${{targets.destdir}}/usr/bin/greet
      chmod 755 ${{targets.destdir}}/usr/bin/greet
subpackages:
  - name: greet-doc
    description: Notes about greet
    pipeline:
      - runs: |
          mkdir -p ${{targets.subpkgdir}}/usr/share/doc
          mv ${{targets.destdir}}/usr/share/greet/notes ${{targets.subpkgdir}}/usr/share/doc/greet-notes
"#;

struct Fixture {
    dir: tempfile::TempDir,
    repo_key: SigningKey,
    pubkey: PathBuf,
    signing_key: PathBuf,
    url: String,
    recipe: PathBuf,
    src: PathBuf,
    out: PathBuf,
    /// `provides` of the repository's greeting package.
    provides: Vec<String>,
}

impl Fixture {
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn apk(&self, name: &str) -> PathBuf {
        self.out.join(format!("x86_64/{name}-1.0.0-r0.apk"))
    }

    /// (Re)write the repository: busybox and, when given, `greeting` at `version` holding
    /// `text` in /usr/share/greeting/text.
    fn write_repo(&self, greeting: Option<(&str, &str)>) {
        let root = self.path("repo");
        let _ = std::fs::remove_dir_all(&root);
        let mut repo = RepoBuilder::new(&root).signer(self.repo_key.clone());
        common::add_busybox(&mut repo);
        if let Some((version, text)) = greeting {
            let mut t = PackageTree::new();
            t.add_dir("usr", 0o755).unwrap();
            t.add_dir("usr/share", 0o755).unwrap();
            t.add_dir("usr/share/greeting", 0o755).unwrap();
            t.add_file("usr/share/greeting/text", 0o644, text.as_bytes().to_vec())
                .unwrap();
            let mut info = PkgInfo::new("greeting", version, "x86_64");
            info.provides = self.provides.clone();
            repo.add(&info, &t).unwrap();
        }
        repo.finish().unwrap();
    }

    /// Arguments every build and rebuild shares: repository, key, signing key, daemon, and
    /// a download cache of this run's own (the repository changes between runs).
    fn common_args(&self, cmd: &mut std::process::Command, cache: &str, url: &str) {
        cmd.args(["--progress", "plain", "--buildkit-addr", &daemon()])
            .args(["-r", url])
            .arg("-k")
            .arg(&self.pubkey)
            .arg("--signing-key")
            .arg(&self.signing_key)
            .arg("--apk-cache-dir")
            .arg(self.path(cache))
            .current_dir(self.dir.path());
    }

    fn build(&self) -> Output {
        self.build_cmd().output().unwrap()
    }

    fn build_cmd(&self) -> std::process::Command {
        self.build_cmd_of(&self.recipe)
    }

    /// `melange2 build` of `recipe` with the fixture's repository, key and source directory.
    fn build_cmd_of(&self, recipe: &Path) -> std::process::Command {
        let mut cmd = melange2();
        cmd.arg("build")
            .arg(recipe)
            .args(["--arch", "x86_64", "--build-date", "1700000000"])
            .arg("--source-dir")
            .arg(&self.src)
            .arg("--out-dir")
            .arg(&self.out);
        self.common_args(&mut cmd, "cache-build", &self.url);
        cmd
    }

    /// `melange2 rebuild` of `packages` into `out`, with `extra` flags.
    fn rebuild(&self, packages: &[PathBuf], out: &str, extra: &[&str]) -> Output {
        self.rebuild_from(&self.url, packages, out, extra)
    }

    /// [`Fixture::rebuild`] with the repository at `url`.
    fn rebuild_from(&self, url: &str, packages: &[PathBuf], out: &str, extra: &[&str]) -> Output {
        let mut cmd = melange2();
        cmd.arg("rebuild")
            .args(packages)
            .arg("--out-dir")
            .arg(self.path(out))
            .args(extra);
        self.common_args(&mut cmd, &format!("cache-{out}"), url);
        cmd.output().unwrap()
    }
}

/// A repository with greeting 1.0-r0 ("hello"), the recipe, its source directory, and the
/// packages built from them.
fn built() -> Fixture {
    let f = fixture(RECIPE, &[]);
    ok(&f.build(), "build");
    f
}

/// A repository with greeting 1.0-r0 ("hello", with `provides`), `recipe` and its source
/// directory (`notes.txt`), nothing built yet.
fn fixture(recipe_text: &str, provides: &[&str]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let repo_key = generate_key(2048, "repo.rsa").unwrap();
    let pubkey = dir.path().join("repo.rsa.pub");
    std::fs::write(&pubkey, repo_key.public_key_pem().unwrap()).unwrap();
    let signing_key = dir.path().join("melange.rsa");
    let o = melange2()
        .args(["keygen", "--key-size", "2048"])
        .arg(&signing_key)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let recipe = dir.path().join("greet.yaml");
    std::fs::write(&recipe, recipe_text).unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("notes.txt"), "some notes\n").unwrap();
    let url = serve_dir(dir.path().join("repo"));
    let f = Fixture {
        out: dir.path().join("packages"),
        dir,
        repo_key,
        pubkey,
        signing_key,
        url,
        recipe,
        src,
        provides: provides.iter().map(|p| p.to_string()).collect(),
    };
    f.write_repo(Some(("1.0-r0", "hello\n")));
    f
}

fn ok<'a>(o: &'a Output, what: &str) -> &'a Output {
    assert!(
        o.status.success(),
        "{what} failed:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn failed(o: &Output, what: &str) -> (String, String) {
    assert!(
        !o.status.success(),
        "{what} succeeded:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_package_rebuilt_from_itself_is_identical() {
    let f = built();
    let (greet, doc) = (f.apk("greet"), f.apk("greet-doc"));
    let src = f.src.to_str().unwrap().to_string();
    let o = f.rebuild(
        &[greet.clone(), doc.clone()],
        "rebuilt",
        &["--source-dir", &src],
    );
    let out = stdout(ok(&o, "rebuild"));
    for (orig, name) in [(&greet, "greet"), (&doc, "greet-doc")] {
        let line = format!("{}: identical (byte for byte)", orig.display());
        assert!(out.contains(&line), "no {line:?} in\n{out}");
        let again = f.path(&format!("rebuilt/x86_64/{name}-1.0.0-r0.apk"));
        assert_eq!(
            std::fs::read(orig).unwrap(),
            std::fs::read(&again).unwrap(),
            "{name} differs in bytes"
        );
    }

    // A subpackage alone: its build is read from the origin package beside it.
    let o = f.rebuild(
        std::slice::from_ref(&doc),
        "rebuilt-doc",
        &["--source-dir", &src],
    );
    let out = stdout(ok(&o, "rebuild of the subpackage"));
    assert!(
        out.contains(&format!("{}: identical (byte for byte)", doc.display())),
        "{out}"
    );
    assert!(!out.contains(&greet.display().to_string()), "{out}");

    // The same packages from another address: found by checksum, built into the same
    // data; only the repository recorded in .melange.yaml differs, and is named.
    let moved = serve_dir(f.path("repo"));
    let o = f.rebuild_from(
        &moved,
        std::slice::from_ref(&greet),
        "rebuilt-moved",
        &["--source-dir", &src],
    );
    let (out, err) = failed(&o, "rebuild from a moved repository");
    assert!(err.contains("1 of 1 packages differ"), "{err}");
    assert!(
        out.contains("greet (x86_64): environment: greeting 1.0-r0 (Q1")
            && out.contains(&format!(") from {} → from {moved}", f.url)),
        "{out}"
    );
    let listed: Vec<&str> = out.lines().filter(|l| l.starts_with("  ")).collect();
    assert_eq!(
        listed,
        ["  control .melange.yaml: differs in environment-lock"],
        "{out}"
    );

    // Two builds in one run (hail and hail-doc beside greet): each origin rebuilt once,
    // results in the order given.
    let other = f.path("other.yaml");
    std::fs::write(&other, RECIPE.replace("name: greet", "name: hail")).unwrap();
    ok(&f.build_cmd_of(&other).output().unwrap(), "build of hail");
    let hail = f.apk("hail");
    let o = f.rebuild(
        &[hail.clone(), greet.clone()],
        "rebuilt-two",
        &["--source-dir", &src],
    );
    let out = stdout(ok(&o, "rebuild of two origins"));
    let order: Vec<&str> = out
        .lines()
        .map(|l| l.split(':').next().unwrap_or(""))
        .collect();
    assert_eq!(
        order,
        [hail.display().to_string(), greet.display().to_string()],
        "{out}"
    );
    for line in out.lines() {
        assert!(line.contains(": identical (byte for byte)"), "{out}");
    }

    // Never over the originals.
    let o = melange2()
        .arg("rebuild")
        .arg(&greet)
        .arg("--out-dir")
        .arg(&f.out)
        .args(["--buildkit-addr", &daemon()])
        .output()
        .unwrap();
    let (_, err) = failed(&o, "rebuild into the originals' directory");
    assert!(err.contains("would overwrite it"), "{err}");
}

#[test]
fn a_changed_environment_is_named_and_its_differences_reported() {
    let f = built();
    let greet = f.apk("greet");
    let src = f.src.to_str().unwrap().to_string();

    // Same version, other content: pinning by checksum refuses it before anything runs.
    f.write_repo(Some(("1.0-r0", "bonjour tout le monde\n")));
    let o = f.rebuild(
        std::slice::from_ref(&greet),
        "pinned",
        &["--source-dir", &src],
    );
    let (_, err) = failed(&o, "rebuild over a changed package");
    assert!(err.contains("cannot rebuild greet"), "{err}");
    assert!(
        err.contains("environment package greeting 1.0-r0")
            && err.contains("the repositories have this version with other content"),
        "{err}"
    );
    assert!(!f.path("pinned/x86_64").exists(), "something was built");

    // Resolving anew: the rebuild runs and every difference is reported.
    let o = f.rebuild(
        std::slice::from_ref(&greet),
        "updated",
        &["--source-dir", &src, "--update-environment"],
    );
    let (out, err) = failed(&o, "rebuild with a changed environment");
    assert!(
        err.contains("1 of 1 packages differ from their rebuild"),
        "{err}"
    );
    assert!(
        out.contains(&format!("{}: DIFFERS from its rebuild", greet.display())),
        "{out}"
    );
    assert!(
        out.contains("greet (x86_64): environment: greeting 1.0-r0 (Q1"),
        "{out}"
    );
    let changed = out
        .lines()
        .find(|l| l.contains("changed usr/share/greet/text:"))
        .unwrap_or_else(|| panic!("no changed file in\n{out}"));
    assert!(
        changed.contains("size 6 → 22") && changed.contains("sha256 "),
        "{changed}"
    );
    assert!(out.contains(".PKGINFO datahash:"), "{out}");
    assert!(out.contains(".PKGINFO size:"), "{out}");
    assert!(
        out.contains("control .melange.yaml: differs in environment-lock"),
        "{out}"
    );
    // Files that did not change are not listed.
    assert!(!out.contains("usr/bin/greet:"), "{out}");

    // A version that is gone: named with what the repositories have instead.
    f.write_repo(Some(("2.0-r0", "hello\n")));
    let o = f.rebuild(
        std::slice::from_ref(&greet),
        "gone",
        &["--source-dir", &src],
    );
    let (_, err) = failed(&o, "rebuild over a gone package");
    assert!(
        err.contains("greeting 1.0-r0")
            && err.contains("gone from the repositories, which have 2.0-r0"),
        "{err}"
    );
}

#[test]
fn missing_inputs_are_named_together() {
    let f = built();
    let greet = f.apk("greet");

    // No source directory and no greeting at all: both named in one error.
    f.write_repo(None);
    let o = f.rebuild(std::slice::from_ref(&greet), "r1", &[]);
    let (_, err) = failed(&o, "rebuild without its inputs");
    assert!(
        err.contains("the build had a source directory, which is not given")
            && err.contains("pass it with --source-dir"),
        "{err}"
    );
    assert!(
        err.contains("greeting 1.0-r0") && err.contains("no package of that name"),
        "{err}"
    );

    // A source directory with other content: the rebuild runs and the subpackage that
    // installs the changed file differs; the main package, which does not, is identical.
    f.write_repo(Some(("1.0-r0", "hello\n")));
    let other = f.path("other-src");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "other notes\n").unwrap();
    let doc = f.apk("greet-doc");
    let o = f.rebuild(
        &[greet.clone(), doc.clone()],
        "r2",
        &["--source-dir", other.to_str().unwrap()],
    );
    let (out, err) = failed(&o, "rebuild with another source directory");
    assert!(
        err.contains("1 of 2 packages differ from their rebuild"),
        "{err}"
    );
    assert!(
        out.contains(&format!("{}: DIFFERS from its rebuild", doc.display()))
            && !out.contains(&format!("{}: DIFFERS", greet.display())),
        "{out}"
    );
    assert!(out.contains("changed usr/share/doc/greet-notes:"), "{out}");

    // A package melange2 did not build (no .melange.yaml).
    let foreign = f.path("repo/x86_64/greeting-1.0-r0.apk");
    let o = f.rebuild(std::slice::from_ref(&foreign), "r3", &[]);
    let (_, err) = failed(&o, "rebuild of a foreign package");
    assert!(
        err.contains(&foreign.display().to_string()) && err.contains("no .melange.yaml"),
        "{err}"
    );

    // A subpackage without its origin package beside it.
    let lone = f.path("lone");
    std::fs::create_dir(&lone).unwrap();
    let lone_doc = lone.join("greet-doc-1.0.0-r0.apk");
    std::fs::copy(f.apk("greet-doc"), &lone_doc).unwrap();
    let o = f.rebuild(std::slice::from_ref(&lone_doc), "r4", &[]);
    let (_, err) = failed(&o, "rebuild of a lone subpackage");
    assert!(
        err.contains(&lone_doc.display().to_string())
            && err.contains("a subpackage of greet")
            && err.contains(&lone.join("greet-1.0.0-r0.apk").display().to_string()),
        "{err}"
    );

    // A package written by another melange2 version: rebuilt all the same, with a note,
    // and its recorded version is a difference of .melange.yaml.
    let old_dir = f.path("old/x86_64");
    std::fs::create_dir_all(&old_dir).unwrap();
    let old = old_dir.join("greet-1.0.0-r0.apk");
    repack(&greet, &old, |_, yaml| {
        yaml["build"]["melange2"] = "0.0.1".into()
    });
    let src = f.src.to_str().unwrap().to_string();
    let o = f.rebuild(std::slice::from_ref(&old), "r5", &["--source-dir", &src]);
    let (out, _) = failed(&o, "rebuild of an older melange2's package");
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        out.contains(&format!(
            "greet (x86_64): note: built by melange2 0.0.1, rebuilt by melange2 {version}"
        )) && out.contains("control .melange.yaml: differs in build"),
        "{out}"
    );
}

/// The package's data and control files written again with another `.PKGINFO`.
fn repack(apk: &Path, dest: &Path, change: impl FnOnce(&mut PkgInfo, &mut serde_json::Value)) {
    let reader = PackageReader::open(apk).unwrap();
    let mut info = reader.pkginfo().clone();
    let mut yaml: serde_json::Value =
        serde_json::from_slice(&reader.control_files()[".melange.yaml"]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    reader.extract_to(tmp.path()).unwrap();
    change(&mut info, &mut yaml);
    let control = melange2_apk::ControlFiles {
        melange_yaml: Some(serde_json::to_vec_pretty(&yaml).unwrap()),
        ..Default::default()
    };
    let tree = PackageTree::from_dir(tmp.path()).unwrap();
    melange2_apk::write_package(
        &tree,
        &info,
        &control,
        None,
        &melange2_apk::WriteOptions::default(),
        dest,
    )
    .unwrap();
}

#[test]
fn scan_prints_the_pkginfo_and_its_difference() {
    let f = built();
    let greet = f.apk("greet");
    let doc = f.apk("greet-doc");
    let own = |p: &Path| PackageReader::open(p).unwrap().pkginfo().render();

    // One package: the .PKGINFO the SCA gives, equal to the package's own.
    let o = melange2().arg("scan").arg(&greet).output().unwrap();
    assert_eq!(stdout(ok(&o, "scan")), own(&greet));

    // Two packages: each under a header; --diff says unchanged.
    let o = melange2()
        .arg("scan")
        .args([&greet, &doc])
        .output()
        .unwrap();
    let out = stdout(ok(&o, "scan of two"));
    assert_eq!(
        out,
        format!(
            "# {}\n{}# {}\n{}",
            greet.display(),
            own(&greet),
            doc.display(),
            own(&doc)
        )
    );
    let o = melange2()
        .args(["scan", "--diff"])
        .args([&greet, &doc])
        .output()
        .unwrap();
    let out = stdout(ok(&o, "scan --diff"));
    assert_eq!(
        out,
        format!(
            "{}: .PKGINFO unchanged\n{}: .PKGINFO unchanged\n",
            greet.display(),
            doc.display()
        )
    );

    // A package whose .PKGINFO lost what the SCA found and got a depend it does not need.
    let forged_dir = f.path("forged/x86_64");
    std::fs::create_dir_all(&forged_dir).unwrap();
    let forged = forged_dir.join("greet-1.0.0-r0.apk");
    let before = PackageReader::open(&greet).unwrap().pkginfo().clone();
    assert!(!before.provides.is_empty(), "{}", own(&greet));
    repack(&greet, &forged, |i, _| {
        i.provides.clear();
        i.depends.push("nothing-needs-this".into());
    });
    let o = melange2()
        .args(["scan", "--diff"])
        .arg(&forged)
        .output()
        .unwrap();
    let (out, err) = failed(&o, "scan --diff of a forged package");
    assert!(
        err.contains("1 of 1 packages would get another .PKGINFO"),
        "{err}"
    );
    assert!(out.contains("-depend = nothing-needs-this\n"), "{out}");
    for p in &before.provides {
        assert!(out.contains(&format!("+provides = {p}\n")), "{out}");
    }
    // The scanned .PKGINFO is the original's again.
    let o = melange2().arg("scan").arg(&forged).output().unwrap();
    let scanned = stdout(ok(&o, "scan of a forged package"));
    let mut expect = before.clone();
    expect.size = PackageReader::open(&forged).unwrap().pkginfo().size;
    expect.datahash = PackageReader::open(&forged)
        .unwrap()
        .pkginfo()
        .datahash
        .clone();
    assert_eq!(scanned, expect.render());

    // A subpackage without its origin: named.
    let lone = f.path("lone");
    std::fs::create_dir(&lone).unwrap();
    let lone_doc = lone.join("greet-doc-1.0.0-r0.apk");
    std::fs::copy(&doc, &lone_doc).unwrap();
    let o = melange2().arg("scan").arg(&lone_doc).output().unwrap();
    let (_, err) = failed(&o, "scan of a lone subpackage");
    assert!(
        err.contains("a subpackage of greet") && err.contains("greet-1.0.0-r0.apk"),
        "{err}"
    );
}

#[test]
fn completion_scripts_for_each_shell() {
    let cases = [
        ("bash", "_melange2()", "complete -F _melange2"),
        ("zsh", "#compdef melange2", "_melange2"),
        ("fish", "complete -c melange2", "__fish_melange2"),
    ];
    for (shell, first, other) in cases {
        let o = melange2().args(["completion", shell]).output().unwrap();
        let out = stdout(ok(&o, shell));
        assert!(out.contains(first), "{shell}: no {first:?}");
        assert!(out.contains(other), "{shell}: no {other:?}");
        // Every command and a flag of the new ones are offered.
        for word in [
            "rebuild",
            "scan",
            "completion",
            "build",
            "update-environment",
            "diff",
        ] {
            assert!(out.contains(word), "{shell}: {word} is not offered");
        }
    }
    let o = melange2().args(["completion", "tcsh"]).output().unwrap();
    let (_, err) = failed(&o, "completion tcsh");
    assert!(err.contains("tcsh") && err.contains("bash"), "{err}");
}

/// A package built on a bootstrap root filesystem (a directory with busybox).
const BOOT_RECIPE: &str = r#"package:
  name: boot
  version: 1.0.0
  epoch: 0
  description: Built on a bootstrap root filesystem
  copyright:
    - license: MIT
pipeline:
  - runs: |
      mkdir -p ${{targets.destdir}}/usr/share/boot
      echo booted > ${{targets.destdir}}/usr/share/boot/file
"#;

#[test]
fn a_bootstrap_rootfs_is_checked_by_digest() {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for a in ["sh", "mkdir", "echo", "cat"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
    }
    let recipe = dir.path().join("boot.yaml");
    std::fs::write(&recipe, BOOT_RECIPE).unwrap();
    let run = |args: &[&std::ffi::OsStr]| {
        melange2()
            .args(args)
            .args(["--progress", "plain", "--buildkit-addr", &daemon()])
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let out = dir.path().join("packages");
    let o = run(&[
        "build".as_ref(),
        recipe.as_os_str(),
        "--arch".as_ref(),
        "x86_64".as_ref(),
        "--bootstrap-rootfs".as_ref(),
        rootfs.as_os_str(),
        "--out-dir".as_ref(),
        out.as_os_str(),
    ]);
    ok(&o, "bootstrap build");
    let apk = out.join("x86_64/boot-1.0.0-r0.apk");
    let rebuild = |name: &str, rootfs: Option<&Path>| {
        let target = dir.path().join(name);
        let mut args = vec![
            "rebuild".as_ref(),
            apk.as_os_str(),
            "--out-dir".as_ref(),
            target.as_os_str(),
        ];
        if let Some(r) = rootfs {
            args.push("--bootstrap-rootfs".as_ref());
            args.push(r.as_os_str());
        }
        run(&args)
    };

    let o = rebuild("same", Some(&rootfs));
    let text = stdout(ok(&o, "rebuild on the same rootfs"));
    assert!(
        text.contains(&format!("{}: identical (byte for byte)", apk.display())),
        "{text}"
    );

    let o = rebuild("none", None);
    let (_, err) = failed(&o, "rebuild without the rootfs");
    assert!(
        err.contains("the bootstrap root filesystem (content sha256:")
            && err.contains("pass it with --bootstrap-rootfs"),
        "{err}"
    );

    std::fs::write(rootfs.join("bin/extra"), "changed\n").unwrap();
    let o = rebuild("changed", Some(&rootfs));
    let (_, err) = failed(&o, "rebuild on a changed rootfs");
    assert!(
        err.contains(&format!(
            "bootstrap root filesystem {} has content sha256:",
            rootfs.display()
        )) && err.contains("the package was built on sha256:"),
        "{err}"
    );
    assert!(
        !dir.path().join("changed/x86_64").exists(),
        "something was built"
    );
}

/// A root filesystem directory with busybox and the applets the boot recipes use.
fn busybox_rootfs(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs-env");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for a in ["sh", "mkdir", "echo", "cat"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
    }
    rootfs
}

#[test]
fn env_file_values_hidden_in_the_package_are_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(dir.path());
    let recipe = dir.path().join("env.yaml");
    std::fs::write(
        &recipe,
        BOOT_RECIPE.replace("echo booted", "echo \"$GREETING\""),
    )
    .unwrap();
    let env_file = dir.path().join("build.env");
    std::fs::write(&env_file, "GREETING=a long hidden greeting\n").unwrap();
    let run = |args: &[&std::ffi::OsStr]| {
        melange2()
            .args(args)
            .args(["--progress", "plain", "--buildkit-addr", &daemon()])
            .arg("--bootstrap-rootfs")
            .arg(&rootfs)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let out = dir.path().join("packages");
    let o = run(&[
        "build".as_ref(),
        recipe.as_os_str(),
        "--arch".as_ref(),
        "x86_64".as_ref(),
        "--env-file".as_ref(),
        env_file.as_os_str(),
        "--out-dir".as_ref(),
        out.as_os_str(),
    ]);
    ok(&o, "build with an env file");
    let apk = out.join("x86_64/boot-1.0.0-r0.apk");
    let data = common::extract(&apk, dir.path());
    assert_eq!(
        std::fs::read_to_string(data.join("usr/share/boot/file")).unwrap(),
        "a long hidden greeting\n"
    );
    let yaml = PackageReader::open(&apk).unwrap().control_files()[".melange.yaml"].clone();
    let yaml = String::from_utf8(yaml).unwrap();
    assert!(
        !yaml.contains("a long hidden greeting") && yaml.contains("\"GREETING\": \"***\""),
        "{yaml}"
    );

    let without = dir.path().join("without");
    let o = run(&[
        "rebuild".as_ref(),
        apk.as_os_str(),
        "--out-dir".as_ref(),
        without.as_os_str(),
    ]);
    let (_, err) = failed(&o, "rebuild without the env file");
    assert!(
        err.contains("variables GREETING were set from an --env-file")
            && err.contains("pass the same --env-file"),
        "{err}"
    );

    let with = dir.path().join("with");
    let o = run(&[
        "rebuild".as_ref(),
        apk.as_os_str(),
        "--env-file".as_ref(),
        env_file.as_os_str(),
        "--out-dir".as_ref(),
        with.as_os_str(),
    ]);
    let text = stdout(ok(&o, "rebuild with the env file"));
    assert!(
        text.contains(&format!("{}: identical (byte for byte)", apk.display())),
        "{text}"
    );
}

#[test]
fn scan_of_a_versioned_shlib_build_reads_provides_from_the_repositories() {
    // greeting stands in for the C library; the package ships a host binary needing it.
    let recipe = RECIPE.replace(
        "cp notes.txt ${{targets.destdir}}/usr/share/greet/notes",
        "cp notes.txt ${{targets.destdir}}/usr/share/greet/notes\n      \
         cp true.bin ${{targets.destdir}}/usr/bin/greet-true",
    );
    let f = fixture(&recipe, &["so:libc.so.6=6", "so-ver:libc.so.6=1.0-r0"]);
    std::fs::copy("/bin/true", f.src.join("true.bin")).unwrap();
    let o = f
        .build_cmd()
        .env("MELANGE_VERSIONED_SHLIB_DEPENDS", "1")
        .output()
        .unwrap();
    ok(&o, "versioned shlib build");
    let greet = f.apk("greet");
    let own = PackageReader::open(&greet).unwrap().pkginfo().render();
    assert!(own.contains("depend = so-ver:libc.so.6>=1.0-r0\n"), "{own}");

    // Without the repositories: a warning naming the packages, the so-ver depend left out.
    let o = melange2()
        .args(["scan", "--diff"])
        .arg(&greet)
        .output()
        .unwrap();
    let (out, err) = failed(&o, "scan --diff without the repositories");
    assert!(
        out.contains("-depend = so-ver:libc.so.6>=1.0-r0\n"),
        "{out}"
    );
    assert!(
        err.contains("the provides of environment packages")
            && err.contains("greeting")
            && err.contains("give them with -r/-k"),
        "{err}"
    );

    // With them: the same .PKGINFO as the build's.
    let o = melange2()
        .args(["scan", "--diff", "-r", &f.url])
        .arg("-k")
        .arg(&f.pubkey)
        .arg("--apk-cache-dir")
        .arg(f.path("scan-cache"))
        .arg(&greet)
        .output()
        .unwrap();
    let out = stdout(ok(&o, "scan --diff with the repositories"));
    assert_eq!(out, format!("{}: .PKGINFO unchanged\n", greet.display()));
}
