//! `melange2 lint` on good and bad packages written by our own APK writer.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use melange2_apk::{ControlFiles, PackageTree, PkgInfo, WriteOptions, write_package};

fn melange2() -> Command {
    Command::new(env!("CARGO_BIN_EXE_melange2"))
}

fn apk(dir: &Path, name: &str, origin: &str, tree: &PackageTree, yaml: Option<&str>) -> PathBuf {
    let mut info = PkgInfo::new(name, "1.0-r0", "x86_64");
    info.origin = origin.to_string();
    let control = ControlFiles {
        melange_yaml: yaml.map(|y| y.as_bytes().to_vec()),
        ..Default::default()
    };
    let path = dir.join(format!("{name}-1.0-r0.apk"));
    write_package(tree, &info, &control, None, &WriteOptions::default(), &path).unwrap();
    path
}

fn good_tree() -> PackageTree {
    let mut t = PackageTree::new();
    t.add_file("usr/bin/hello", 0o755, "#!/bin/sh\necho hi\n")
        .unwrap();
    t
}

fn bad_tree() -> PackageTree {
    let mut t = PackageTree::new();
    t.add_file("bin/busybox", 0o755, "#!/bin/sh\n").unwrap();
    t.add_file("usr/bin/su", 0o4755, "#!/bin/sh\n").unwrap();
    t.add_file("opt/x/data", 0o644, "x").unwrap();
    t
}

fn lint(args: &[&str], files: &[&Path]) -> Output {
    melange2()
        .arg("lint")
        .args(args)
        .args(files)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn good_package_passes() {
    let d = tempfile::tempdir().unwrap();
    let p = apk(d.path(), "hello", "hello", &good_tree(), None);
    let o = lint(&[], &[&p]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("(hello): ok"),
        "{}",
        text(&o.stdout)
    );
    assert!(text(&o.stderr).contains("1 package(s) linted: 0 failed, 0 warning(s)"));
}

#[test]
fn bad_package_fails_with_paths() {
    let d = tempfile::tempdir().unwrap();
    let p = apk(d.path(), "bad", "bad", &bad_tree(), None);
    let o = lint(&[], &[&p]);
    assert!(!o.status.success());
    let out = text(&o.stdout);
    assert!(out.contains("error: usrmerge (required)"), "{out}");
    assert!(out.contains("      bin/busybox\n"), "{out}");
    assert!(out.contains("error: setuidgid (required)"), "{out}");
    assert!(out.contains("usr/bin/su (setuid (mode 4755))"), "{out}");
    assert!(out.contains("warning: opt (warn)"), "{out}");
    let err = text(&o.stderr);
    assert!(
        err.contains("required linters failed: bad (setuidgid, usrmerge)"),
        "{err}"
    );

    // overrides: both required linters only warn now
    let o = lint(&["--lint-warn", "usrmerge,setuidgid"], &[&p]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("warning: usrmerge (warn)"));
    // and a warning made required fails
    let o = lint(
        &["--lint-warn", "usrmerge,setuidgid", "--lint-require", "opt"],
        &[&p],
    );
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("bad (opt)"), "{}", text(&o.stderr));
}

#[test]
fn json_output() {
    let d = tempfile::tempdir().unwrap();
    let good = apk(d.path(), "hello", "hello", &good_tree(), None);
    let bad = apk(d.path(), "bad", "bad", &bad_tree(), None);
    let o = lint(&["--json"], &[&good, &bad]);
    assert!(!o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["package"], "hello");
    assert_eq!(v[0]["findings"].as_array().unwrap().len(), 0);
    assert_eq!(v[1]["package"], "bad");
    let f = &v[1]["findings"];
    let usrmerge = f
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["linter"] == "usrmerge")
        .unwrap();
    assert_eq!(usrmerge["severity"], "required");
    assert_eq!(usrmerge["offenders"][0]["path"], "bin");
    assert_eq!(usrmerge["offenders"][1]["path"], "bin/busybox");
}

#[test]
fn checks_come_from_the_packaged_configuration() {
    let d = tempfile::tempdir().unwrap();
    // melange2's .melange.yaml: the compiled plan; the subpackage disables usrmerge
    let yaml = "package:\n  name: main\n  version: \"1.0\"\n  epoch: 0\n  description: m\npipeline:\n  - runs: \"true\"\nsubpackages:\n  - name: main-bin\n    checks:\n      disabled:\n        - usrmerge\n        - setuidgid\n    pipeline:\n      - runs: \"true\"\n";
    let config = melange2_config::parse_str("main.yaml", yaml, &Default::default()).unwrap();
    let plan = melange2_config::compile(
        &config,
        &melange2_config::PipelineRegistry::new(vec![]),
        &melange2_config::CompileOptions::new(melange2_config::Arch::parse("x86_64").unwrap()),
    )
    .unwrap();
    let melange_yaml = serde_json::to_string_pretty(&serde_json::json!({ "plan": plan })).unwrap();
    let main = apk(d.path(), "main", "main", &good_tree(), Some(&melange_yaml));
    let sub = apk(d.path(), "main-bin", "main", &bad_tree(), None);
    // with the main package, the subpackage's checks apply
    let o = lint(&[], &[&main, &sub]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("warning: usrmerge (warn, disabled in checks)"),
        "{out}"
    );
    // alone, nothing is known about it
    let o = lint(&[], &[&sub]);
    assert!(!o.status.success());

    // melange's .melange.yaml: the build file itself
    let melange = "package:\n  name: legacy\n  version: 1.0\n  epoch: 0\n  checks:\n    disabled:\n      - usrmerge\n      - setuidgid\ntest:\n  pipeline:\n    - uses: test/pkgconf\n";
    let mut t = bad_tree();
    t.add_file("usr/lib/pkgconfig/legacy.pc", 0o644, "Name: legacy\n")
        .unwrap();
    let legacy = apk(d.path(), "legacy", "legacy", &t, Some(melange));
    let o = lint(&["--json"], &[&legacy]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = v[0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["linter"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["setuidgid", "usrmerge", "opt"], "{v}");
    assert!(v[0]["notes"].as_array().unwrap().is_empty(), "{v}");
}

#[test]
fn bad_input_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let p = apk(d.path(), "hello", "hello", &good_tree(), None);
    let o = lint(&["--lint-require", "no-such"], &[&p]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("unknown linter \"no-such\""),
        "{}",
        text(&o.stderr)
    );
    let junk = d.path().join("junk.apk");
    std::fs::write(&junk, b"not a package").unwrap();
    let o = lint(&[], &[&junk]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("junk.apk"), "{}", text(&o.stderr));
}
