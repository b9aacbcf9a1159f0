//! The linters during packaging: required findings fail before anything is
//! written (the output directory stays as it was), warnings are returned,
//! `checks:` and `lint_require` / `lint_warn` are honoured.

mod common;

use std::path::Path;

use common::*;
use melange2_config::plan::Plan;
use melange2_package::{PackageError, PackageRequest, PackagedOutput, package_dir, package_tar};

const YAML: &str = r#"
package:
  name: tool
  version: "1.0"
  epoch: 2
  description: a tool
pipeline:
  - runs: "true"
subpackages:
  - name: tool-extra
    pipeline:
      - runs: "true"
  - name: tool-dev
    pipeline:
      - runs: "true"
"#;

fn plan(yaml: &str) -> Plan {
    plan_from_yaml(yaml)
}

fn request<'a>(plan: &'a Plan, out: &Path) -> PackageRequest<'a> {
    let mut r = PackageRequest::new(plan, out);
    r.signing_key = Some(&key().key);
    r.source_date_epoch = 1_700_000_000;
    r
}

/// A clean main package, a subpackage writing to /bin and /opt (usrmerge
/// required, opt a warning), a -dev package with a pkg-config file and no
/// test (pkgconf warning).
fn stream(with_bin: bool) -> Vec<u8> {
    let mut t = TarStream::new();
    t.dir("tool")
        .dir("tool/usr")
        .dir("tool/usr/bin")
        .file("tool/usr/bin/tool", 0o755, b"#!/bin/sh\necho tool\n")
        .dir("tool-extra")
        .file("tool-extra/opt/extra/data", 0o644, b"data\n")
        .file(
            "tool-dev/usr/lib/pkgconfig/tool.pc",
            0o644,
            b"Name: tool\nVersion: 1.0\n",
        );
    if with_bin {
        t.file("tool-extra/bin/extra", 0o755, b"#!/bin/sh\n").file(
            "tool-extra/usr/bin/su-extra",
            0o4755,
            b"#!/bin/sh\n",
        );
    }
    t.finish()
}

fn lint_warnings(out: &PackagedOutput) -> Vec<&str> {
    out.warnings
        .iter()
        .filter(|w| w.starts_with("lint: "))
        .map(String::as_str)
        .collect()
}

#[test]
fn warnings_are_returned() {
    let plan = plan(YAML);
    let tmp = tempfile::tempdir().unwrap();
    let out = package_tar(&request(&plan, tmp.path()), &stream(false)[..]).unwrap();
    assert_eq!(out.packages.len(), 3);
    let w = lint_warnings(&out);
    assert_eq!(w.len(), 2, "{w:#?}");
    assert!(
        w[0].starts_with("lint: package tool-extra: opt (warn): files in /opt: opt/extra/data"),
        "{w:#?}"
    );
    assert!(
        w[1].starts_with("lint: package tool-dev: pkgconf (warn)")
            && w[1].contains("usr/lib/pkgconfig/tool.pc"),
        "{w:#?}"
    );
}

#[test]
fn required_linter_fails_and_leaves_out_dir_unchanged() {
    let plan = plan(YAML);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("packages");
    // a first, clean run leaves packages and an index
    package_tar(&request(&plan, &out), &stream(false)[..]).unwrap();
    let before = snapshot(&out);
    assert!(before.iter().any(|(p, _)| p.ends_with("APKINDEX.tar.gz")));

    let err = package_tar(&request(&plan, &out), &stream(true)[..]).unwrap_err();
    let PackageError::Lint(findings) = &err else {
        panic!("not a lint error: {err}");
    };
    let names: Vec<(&str, &str)> = findings
        .iter()
        .map(|f| (f.package.as_str(), f.linter.as_str()))
        .collect();
    assert_eq!(
        names,
        [("tool-extra", "setuidgid"), ("tool-extra", "usrmerge")]
    );
    assert_eq!(findings[1].paths(), ["bin", "bin/extra"]);
    let msg = err.to_string();
    assert!(msg.contains("nothing was written"), "{msg}");
    assert!(msg.contains("tool-extra: usrmerge:"), "{msg}");
    assert!(msg.contains("\n      bin/extra"), "{msg}");
    assert!(
        msg.contains("usr/bin/su-extra (setuid (mode 4755))"),
        "{msg}"
    );
    assert!(msg.contains("--lint-warn setuidgid,usrmerge"), "{msg}");
    assert_eq!(
        snapshot(&out),
        before,
        "output changed after a lint failure"
    );

    // the same from a directory
    let src = tmp.path().join("melange-out");
    for (p, data) in [
        ("tool/usr/bin/tool", &b"#!/bin/sh\n"[..]),
        ("tool-extra/bin/extra", b"#!/bin/sh\n"),
    ] {
        let f = src.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, data).unwrap();
    }
    let err = package_dir(&request(&plan, &out), &src).unwrap_err();
    assert!(matches!(err, PackageError::Lint(_)), "{err}");
    assert_eq!(snapshot(&out), before);

    // a fresh output directory is not even left behind
    let fresh = tmp.path().join("fresh/packages");
    package_tar(&request(&plan, &fresh), &stream(true)[..]).unwrap_err();
    assert!(!tmp.path().join("fresh").exists());
}

#[test]
fn checks_disabled_turns_the_failure_into_a_warning() {
    let yaml = YAML.replace(
        "  - name: tool-extra\n",
        "  - name: tool-extra\n    checks:\n      disabled:\n        - usrmerge\n        - setuidgid\n",
    );
    let plan = plan(&yaml);
    let tmp = tempfile::tempdir().unwrap();
    let out = package_tar(&request(&plan, tmp.path()), &stream(true)[..]).unwrap();
    let w = lint_warnings(&out);
    assert!(
        w.iter().any(|w| w
            .starts_with("lint: package tool-extra: usrmerge (warn, disabled in checks): ")
            && w.ends_with("bin, bin/extra")),
        "{w:#?}"
    );
    // only that package: the same files elsewhere still fail
    let other = YAML.replace(
        "  - name: tool-dev\n",
        "  - name: tool-dev\n    checks:\n      disabled:\n        - usrmerge\n        - setuidgid\n",
    );
    let plan = plan_from_yaml(&other);
    let err = package_tar(&request(&plan, tmp.path()), &stream(true)[..]).unwrap_err();
    assert!(matches!(err, PackageError::Lint(_)), "{err}");
}

#[test]
fn lint_require_and_lint_warn() {
    let plan = plan(YAML);
    let tmp = tempfile::tempdir().unwrap();
    let mut req = request(&plan, tmp.path());
    req.lint_warn = vec!["usrmerge".into(), "setuidgid".into()];
    let out = package_tar(&req, &stream(true)[..]).unwrap();
    assert!(
        lint_warnings(&out)
            .iter()
            .any(|w| w.contains("usrmerge (warn)")),
        "{:#?}",
        out.warnings
    );

    let mut req = request(&plan, tmp.path());
    req.lint_require = vec!["opt".into()];
    let err = package_tar(&req, &stream(false)[..]).unwrap_err();
    let PackageError::Lint(f) = &err else {
        panic!("{err}")
    };
    assert_eq!(f[0].linter, "opt");
    assert_eq!(f[0].paths(), ["opt/extra/data"]);

    // an unknown name is refused before anything is read or written
    let out = tmp.path().join("never");
    let mut req = request(&plan, &out);
    req.lint_require = vec!["no-such-linter".into()];
    let err = package_tar(&req, &stream(false)[..]).unwrap_err();
    assert!(matches!(err, PackageError::LintPolicy(_)), "{err}");
    assert!(
        err.to_string()
            .contains("unknown linter \"no-such-linter\"")
    );
    assert!(!out.exists());
}
