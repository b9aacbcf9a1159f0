//! Linters in `melange2 build` against the real buildkitd of `make test`: a required linter
//! fails the build with the offending paths and leaves the out-dir as it was;
//! `--lint-warn` and `checks.disabled` turn it into a warning; `melange2 lint` agrees.
//! The build environment is a bootstrap root filesystem (Debian's static busybox), so no
//! repository is needed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

use common::{daemon, melange2, snapshot};

struct Fixture {
    dir: tempfile::TempDir,
    rootfs: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for a in String::from_utf8(list.stdout).unwrap().lines() {
        let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a));
    }
    Fixture { dir, rootfs }
}

fn recipe(f: &Fixture, name: &str, extra_package_keys: &str, script: &str) -> PathBuf {
    let text = format!(
        "package:\n  name: {name}\n  version: 1.0.0\n  epoch: 0\n  description: lint test\n{extra_package_keys}environment:\n  contents:\n    packages: []\npipeline:\n  - name: install\n    runs: |\n{}\n",
        script
            .lines()
            .map(|l| format!("      {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let p = f.dir.path().join(format!("{name}.yaml"));
    std::fs::write(&p, text).unwrap();
    p
}

fn build(f: &Fixture, recipe: &Path, out: &Path, extra: &[&str]) -> Output {
    melange2()
        .arg("build")
        .arg(recipe)
        .args(["--arch", "x86_64", "--progress", "plain"])
        .args(["--buildkit-addr", &daemon()])
        .arg("--bootstrap-rootfs")
        .arg(&f.rootfs)
        .arg("--out-dir")
        .arg(out)
        .args(extra)
        .current_dir(f.dir.path())
        .output()
        .unwrap()
}

const BAD: &str = "mkdir -p ${{targets.destdir}}/bin ${{targets.destdir}}/usr/bin\necho '#!/bin/sh' > ${{targets.destdir}}/bin/old-place\necho '#!/bin/sh' > ${{targets.destdir}}/usr/bin/tool\nchmod 755 ${{targets.destdir}}/bin/old-place ${{targets.destdir}}/usr/bin/tool";

#[test]
fn required_linter_fails_the_build_and_leaves_out_dir_unchanged() {
    let f = fixture();
    let out = f.dir.path().join("packages");
    // a clean package first: the out-dir has packages and an index
    let good = recipe(
        &f,
        "good",
        "",
        "mkdir -p ${{targets.destdir}}/usr/bin\necho '#!/bin/sh' > ${{targets.destdir}}/usr/bin/good\nchmod 755 ${{targets.destdir}}/usr/bin/good",
    );
    let o = build(&f, &good, &out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let before = snapshot(&out);

    let bad = recipe(&f, "bad", "", BAD);
    let o = build(&f, &bad, &out, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a usrmerge violation must fail: {err}");
    assert!(err.contains("required linters failed"), "{err}");
    assert!(err.contains("bad: usrmerge"), "{err}");
    assert!(err.contains("      bin/old-place"), "{err}");
    assert_eq!(snapshot(&out), before, "out-dir changed by a failed build");

    // --lint-warn: the same build succeeds with a warning naming the path
    let o = build(&f, &bad, &out, &["--lint-warn", "usrmerge"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("usrmerge (warn)") && err.contains("bin/old-place"),
        "{err}"
    );
    // the standalone linter, with melange's defaults, refuses the package
    let apk = out.join("x86_64/bad-1.0.0-r0.apk");
    let o = melange2().arg("lint").arg(&apk).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("      bin/old-place"));
    let o = melange2()
        .args(["lint", "--lint-warn", "usrmerge"])
        .arg(&apk)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // --lint-require: a warning linter becomes fatal
    let o = build(
        &f,
        &bad,
        &out,
        &["--lint-warn", "usrmerge", "--lint-require", "opt"],
    );
    assert!(o.status.success(), "no /opt file: nothing to fail");
    let o = build(&f, &good, &out, &["--lint-require", "nosuchlinter"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("unknown linter \"nosuchlinter\""),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn checks_disabled_in_the_recipe() {
    let f = fixture();
    let out = f.dir.path().join("packages");
    let r = recipe(
        &f,
        "legacy",
        "  checks:\n    disabled:\n      - usrmerge\n",
        BAD,
    );
    let o = build(&f, &r, &out, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("usrmerge (warn, disabled in checks)"), "{err}");
    // the packaged configuration carries the checks to `melange2 lint`
    let o = melange2()
        .arg("lint")
        .arg(out.join("x86_64/legacy-1.0.0-r0.apk"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}
