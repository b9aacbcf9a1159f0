//! Linting `.apk` files: entries and contents come back through the spool exactly, hard
//! links stay one file, and the packaged configuration decides checks and tests.

mod common;

use std::path::Path;

use common::*;
use melange2_apk::{ControlFiles, PackageTree, PkgInfo, WriteOptions, write_package};
use melange2_lint::{FileType, Policy, Severity, lint_apks, read_apk};

fn write(dir: &Path, name: &str, tree: &PackageTree, yaml: Option<&str>) -> std::path::PathBuf {
    let mut info = PkgInfo::new(name, "1-r0", "x86_64");
    info.origin = "origin".into();
    let control = ControlFiles {
        melange_yaml: yaml.map(|y| y.as_bytes().to_vec()),
        ..Default::default()
    };
    let p = dir.join(format!("{name}.apk"));
    write_package(tree, &info, &control, None, &WriteOptions::default(), &p).unwrap();
    p
}

#[test]
fn entries_and_contents_round_trip() {
    let e = elves();
    let mut t = PackageTree::new();
    t.add_file("usr/bin/prog", 0o755, e.debug.clone()).unwrap();
    t.add_hardlink("usr/libexec/prog", "usr/bin/prog").unwrap();
    t.add_file("usr/bin/su", 0o4755, "#!/bin/sh\n").unwrap();
    t.add_symlink("usr/bin/alias", "prog").unwrap();
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "prog", &t, None);

    let apk = read_apk(&p).unwrap();
    assert_eq!(apk.pkginfo.name, "prog");
    let entries = apk.files.entries();
    let by = |path: &str| {
        entries
            .iter()
            .position(|e| e.path == path)
            .unwrap_or_else(|| panic!("{path} missing"))
    };
    let prog = by("usr/bin/prog");
    let link = by("usr/libexec/prog");
    assert_eq!(entries[prog].file_type, FileType::Regular);
    assert_eq!(entries[prog].size, e.debug.len() as u64);
    assert_eq!(entries[link].size, e.debug.len() as u64);
    assert!(entries[prog].link_group.is_some());
    assert_eq!(entries[prog].link_group, entries[link].link_group);
    assert_eq!(entries[by("usr/bin/su")].mode, 0o4755);
    let alias = &entries[by("usr/bin/alias")];
    assert_eq!(alias.file_type, FileType::Symlink);
    assert_eq!(alias.link_target.as_deref(), Some("prog"));
    // contents through the spool, for the file and its hard link
    for i in [prog, link] {
        let data = apk.files.read_range(i, 0, usize::MAX).unwrap();
        assert_eq!(data, e.debug);
    }
    assert_eq!(
        apk.files.read_range(prog, 1, 3).unwrap(),
        e.debug[1..4].to_vec()
    );

    let r = lint_apks(&[p], &Policy::defaults()).unwrap();
    let r = &r[0].1;
    // ELF sections read through the spool
    let s = expect(r, "strip", Severity::Warn);
    assert_eq!(s.paths(), ["usr/bin/prog", "usr/libexec/prog"]);
    expect(r, "setuidgid", Severity::Required);
    // a hard link is not a duplicate
    assert!(finding(r, "duplicate").is_none());
    // nothing known about the tests: lddcheck/pkgconf could not be judged, and
    // nothing here needed them
    assert!(r.notes.is_empty(), "{:?}", r.notes);
}

#[test]
fn melange_build_file_as_configuration() {
    let d = tempfile::tempdir().unwrap();
    let mut t = PackageTree::new();
    t.add_file("usr/lib/libfoo.so.1.0", 0o755, elves().shlib.clone())
        .unwrap();
    t.add_file("usr/lib/pkgconfig/foo.pc", 0o644, "Name: foo\n")
        .unwrap();
    t.add_file("lib/old", 0o644, "x").unwrap();
    // melange writes the build file itself; the subpackage is matched by name
    let yaml = "package:\n  name: origin\n  version: 1\nsubpackages:\n  - name: sub\n    checks:\n      disabled: [usrmerge]\n    test:\n      pipeline:\n        - name: group\n          pipeline:\n            - uses: test/tw/ldd-check\n";
    let sub = write(d.path(), "sub", &t, Some(yaml));
    let r = lint_apks(std::slice::from_ref(&sub), &Policy::defaults()).unwrap();
    let r = &r[0].1;
    assert!(!r.has_failures(), "{:#?}", r.findings);
    assert!(expect(r, "usrmerge", Severity::Warn).disabled);
    assert!(
        finding(r, "lddcheck").is_none(),
        "test/tw/ldd-check is there"
    );
    expect(r, "pkgconf", Severity::Warn);

    // without any configuration: defaults, and the two test linters only noted
    let bare = write(d.path(), "bare", &t, None);
    let r = lint_apks(&[bare], &Policy::defaults()).unwrap();
    let r = &r[0].1;
    assert!(r.has_failures());
    assert!(finding(r, "lddcheck").is_none() && finding(r, "pkgconf").is_none());
    assert_eq!(r.notes.len(), 2, "{:?}", r.notes);
}
