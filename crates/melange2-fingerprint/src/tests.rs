use std::collections::BTreeMap;

use super::*;

struct View {
    files: BTreeMap<String, u64>,
    index: BTreeMap<(String, String), String>,
}

impl OutDirView for View {
    fn checksum(&self, name: &str, version: &str) -> Option<String> {
        self.index
            .get(&(name.to_string(), version.to_string()))
            .cloned()
    }
    fn file_size(&self, file: &str) -> Option<u64> {
        self.files.get(file).copied()
    }
}

fn inputs() -> Inputs {
    let mut i = Inputs {
        version: "0.1.0".into(),
        ..Default::default()
    };
    i.plan.insert("step 001 (uses: fetch)".into(), "aa".into());
    i.plan.insert("step 002 (Build)".into(), "bb".into());
    i.environment
        .insert("busybox".into(), "1.0-r0 Q1abc".into());
    i.source.insert("patch.diff".into(), "f 644 cc".into());
    i.flags.insert("build-date".into(), "0".into());
    i
}

fn record(i: &Inputs) -> Record {
    Record {
        fingerprint: i.fingerprint(),
        recipe: "foo".into(),
        arch: "x86_64".into(),
        inputs: i.clone(),
        packages: vec![RecordedPackage {
            name: "foo".into(),
            version: "1-r0".into(),
            file: "foo-1-r0.apk".into(),
            checksum: "Q1x".into(),
            size: 10,
        }],
    }
}

fn view() -> View {
    View {
        files: [("foo-1-r0.apk".to_string(), 10)].into(),
        index: [(("foo".to_string(), "1-r0".to_string()), "Q1x".to_string())].into(),
    }
}

#[test]
fn same_inputs_are_up_to_date() {
    let i = inputs();
    assert_eq!(check(Some(&record(&i)), &i, &view()), Ok(()));
    assert_eq!(i.fingerprint(), inputs().fingerprint());
}

#[test]
fn no_record_means_no_previous_build() {
    assert_eq!(
        check(None, &inputs(), &view()),
        Err(vec![Reason::NoPreviousBuild])
    );
}

#[test]
fn every_changed_input_is_named() {
    let old = inputs();
    let mut new = old.clone();
    new.plan.insert("step 002 (Build)".into(), "changed".into());
    new.environment
        .insert("busybox".into(), "1.0-r0 Q1def".into());
    new.environment.insert("zlib".into(), "1-r0 Q1z".into());
    new.source.remove("patch.diff");
    new.flags.insert("build-date".into(), "5".into());
    let reasons = check(Some(&record(&old)), &new, &view()).unwrap_err();
    let text: Vec<String> = reasons.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        text,
        vec![
            "recipe step 002 (Build) changed",
            "dependency busybox has new bytes (1.0-r0 Q1abc → 1.0-r0 Q1def)",
            "dependency zlib added to the environment",
            "source file patch.diff removed",
            "flag build-date changed (0 → 5)",
        ]
    );
}

#[test]
fn missing_or_replaced_packages_are_not_up_to_date() {
    let i = inputs();
    let mut v = view();
    v.files.clear();
    let r = check(Some(&record(&i)), &i, &v).unwrap_err();
    assert_eq!(r[0].to_string(), "package foo-1-r0.apk is missing");
    let mut v = view();
    v.index
        .insert(("foo".into(), "1-r0".into()), "Q1other".into());
    let r = check(Some(&record(&i)), &i, &v).unwrap_err();
    assert_eq!(
        r[0].to_string(),
        "package foo-1-r0.apk differs from the index"
    );
}

#[test]
fn source_digest_honours_melangeignore() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("a.c"), "int a;").unwrap();
    std::fs::create_dir(d.path().join("build")).unwrap();
    std::fs::write(d.path().join("build/a.o"), "obj").unwrap();
    std::fs::write(d.path().join("x.log"), "log").unwrap();
    std::fs::write(d.path().join(".melangeignore"), "build\n*.log\n").unwrap();
    let m = digest_source_dir(d.path()).unwrap();
    let keys: Vec<&str> = m.keys().map(String::as_str).collect();
    assert_eq!(keys, vec![".melangeignore", "a.c"]);
    std::fs::write(d.path().join("build/a.o"), "changed").unwrap();
    assert_eq!(digest_source_dir(d.path()).unwrap(), m);
    std::fs::write(d.path().join("a.c"), "int b;").unwrap();
    assert_ne!(digest_source_dir(d.path()).unwrap(), m);
}

#[test]
fn rootfs_digest_follows_content_not_path() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for d in [a.path(), b.path()] {
        std::fs::create_dir(d.join("bin")).unwrap();
        std::fs::write(d.join("bin/sh"), "shell").unwrap();
        std::os::unix::fs::symlink("sh", d.join("bin/ash")).unwrap();
    }
    let da = digest_path(a.path()).unwrap();
    assert_eq!(da, digest_path(b.path()).unwrap());
    std::fs::write(b.path().join("bin/sh"), "other").unwrap();
    assert_ne!(da, digest_path(b.path()).unwrap());
}
