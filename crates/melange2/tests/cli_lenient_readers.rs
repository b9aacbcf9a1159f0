//! Packages and indexes written by other melange tools are read as apk-tools and go-apk read
//! them: a Go zero `builddate`/`t:` is an unknown date with a warning, empty and unknown fields
//! are fine, and only security-relevant fields (checksums, signatures, sizes) stay strict.
//! Real bytes through `melange2 verify`, `index` and `resolve`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::melange2;
use melange2_apk::{ControlFiles, PackageReader, PackageTree, PkgInfo, WriteOptions};

/// Go's `time.Time{}.Unix()`: what melange/go-apk write for an unset build time.
const GO_ZERO_TIME: &str = "-62135596800";

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A signed package whose `.PKGINFO` carries a Go zero `builddate`, an empty
/// `depend`, a key no tool knows and a `url =` without a value.
fn go_style_package(dir: &Path) -> PathBuf {
    let mut t = PackageTree::new();
    t.add_file("usr/share/old/README", 0o644, "old").unwrap();
    let mut info = PkgInfo::new("old", "1.0-r0", "x86_64");
    info.extra = vec![
        ("builddate".into(), GO_ZERO_TIME.into()),
        ("depend".into(), String::new()),
        ("futurekey".into(), "some value".into()),
    ];
    let p = dir.join(info.file_name());
    melange2_apk::write_package(
        &t,
        &info,
        &ControlFiles::default(),
        None,
        &WriteOptions::default(),
        &p,
    )
    .unwrap();
    ok(&melange2()
        .current_dir(dir)
        .args(["sign", "--signing-key", "melange.rsa"])
        .arg(&p)
        .output()
        .unwrap());
    p
}

/// `APKINDEX.tar.gz` with the record layout go-apk writes (every field, empty or not,
/// `t:` from a zero time, `k:0`), unsigned.
fn write_go_style_index(path: &Path, apk: &Path) {
    let r = PackageReader::open(apk).unwrap();
    let size = std::fs::metadata(apk).unwrap().len();
    let text = format!(
        "P:old\nV:1.0-r0\nA:x86_64\nL:\nT:\no:\nm:\nU:\nD:\np:\nc:\ni:\nt:{GO_ZERO_TIME}\n\
         S:{size}\nI:0\nk:0\nC:{}\n\n",
        r.checksum()
    );
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tb = tar::Builder::new(gz);
    for (name, data) in [
        ("APKINDEX", text.as_bytes()),
        ("DESCRIPTION", b"".as_slice()),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tb.append_data(&mut h, name, data).unwrap();
    }
    let bytes = tb.into_inner().unwrap().finish().unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn go_zero_build_time_reads_as_unknown_with_a_warning() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    ok(&melange2()
        .current_dir(d)
        .args(["keygen", "--key-size", "2048"])
        .output()
        .unwrap());
    let apk = go_style_package(d);

    // verify: accepted, with a warning naming the file, the line and the value
    let err = ok(&melange2()
        .current_dir(d)
        .args(["verify", "--keyring", "melange.rsa.pub"])
        .arg(&apk)
        .output()
        .unwrap());
    assert!(
        err.contains("old-1.0-r0.apk") && err.contains(&format!("build time {GO_ZERO_TIME}")),
        "{err}"
    );

    // index: the record has an unknown time, the unknown key does not get in the way
    ok(&melange2()
        .current_dir(d)
        .args(["index", "-o", "APKINDEX.tar.gz"])
        .arg(&apk)
        .output()
        .unwrap());
    let idx = melange2_apk::ApkIndex::read(&d.join("APKINDEX.tar.gz")).unwrap();
    assert_eq!(idx.entries.len(), 1);
    assert_eq!(idx.entries[0].build_time, 0);
    assert!(idx.entries[0].depends.is_empty(), "{:?}", idx.entries[0]);

    // an index as go-apk writes it, signed, verifies and resolves
    let repo = d.join("repo");
    std::fs::create_dir_all(repo.join("x86_64")).unwrap();
    let served = repo.join("x86_64").join("old-1.0-r0.apk");
    std::fs::copy(&apk, &served).unwrap();
    let index = repo.join("x86_64").join("APKINDEX.tar.gz");
    write_go_style_index(&index, &served);
    ok(&melange2()
        .current_dir(d)
        .args(["sign-index", "--signing-key", "melange.rsa"])
        .arg(&index)
        .output()
        .unwrap());
    let err = ok(&melange2()
        .current_dir(d)
        .args(["verify", "--keyring", "melange.rsa.pub"])
        .arg(&index)
        .output()
        .unwrap());
    assert!(
        err.contains("APKINDEX line 13") && err.contains(GO_ZERO_TIME),
        "{err}"
    );
    let o = melange2()
        .current_dir(d)
        .args(["resolve", "--arch", "x86_64", "--apk-cache-dir"])
        .arg(d.join("cache"))
        .arg("-r")
        .arg(&repo)
        .args(["-k", "melange.rsa.pub", "old"])
        .output()
        .unwrap();
    ok(&o);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("old 1.0-r0 x86_64 Q1"), "{out}");
}

#[test]
fn security_relevant_fields_stay_strict() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    ok(&melange2()
        .current_dir(d)
        .args(["keygen", "--key-size", "2048"])
        .output()
        .unwrap());
    let apk = go_style_package(d);
    // a size that is not a number: the download could not be checked against it
    let index = d.join("APKINDEX.tar.gz");
    write_go_style_index(&index, &apk);
    let bytes = std::fs::read(&index).unwrap();
    let mut text = String::new();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some("APKINDEX") {
            std::io::Read::read_to_string(&mut e, &mut text).unwrap();
        }
    }
    let start = text.find("S:").unwrap();
    let end = start + text[start..].find('\n').unwrap();
    let bad = format!("{}S:big{}", &text[..start], &text[end..]);
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tb = tar::Builder::new(gz);
    let mut h = tar::Header::new_gnu();
    h.set_size(bad.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tb.append_data(&mut h, "APKINDEX", bad.as_bytes()).unwrap();
    std::fs::write(&index, tb.into_inner().unwrap().finish().unwrap()).unwrap();
    let o = melange2()
        .current_dir(d)
        .args(["sign-index", "--signing-key", "melange.rsa"])
        .arg(&index)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("APKINDEX line 14") && err.contains("S: \"big\" is not a number"),
        "{err}"
    );
}
