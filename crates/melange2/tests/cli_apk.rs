//! End-to-end tests of `melange2 keygen|sign|index|sign-index|verify`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use melange2_apk::{ControlFiles, PackageTree, PkgInfo, WriteOptions};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_melange2"))
}

fn workdir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli-apk-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn unsigned_pkg(dir: &Path, name: &str, version: &str) -> PathBuf {
    let mut t = PackageTree::new();
    t.add_file(&format!("usr/share/{name}"), 0o644, name)
        .unwrap();
    let info = PkgInfo::new(name, version, "x86_64");
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
    p
}

#[test]
fn keygen_sign_index_verify() {
    let d = workdir("flow");
    ok(bin()
        .current_dir(&d)
        .args(["keygen", "--key-size", "2048"])
        .output()
        .unwrap());
    assert!(d.join("melange.rsa").exists() && d.join("melange.rsa.pub").exists());
    let a = unsigned_pkg(&d, "a", "1.0-r0");
    let b = unsigned_pkg(&d, "b", "2.0-r1");

    // unsigned packages fail verification with a clear message and exit code
    let o = bin()
        .current_dir(&d)
        .args(["verify", "--keyring", "melange.rsa.pub"])
        .arg(&a)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not signed"));

    ok(bin()
        .current_dir(&d)
        .args(["sign", "--signing-key", "melange.rsa"])
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap());
    ok(bin()
        .current_dir(&d)
        .args([
            "index",
            "-o",
            "APKINDEX.tar.gz",
            "--signing-key",
            "melange.rsa",
        ])
        .arg(&a)
        .output()
        .unwrap());
    ok(bin()
        .current_dir(&d)
        .args([
            "index",
            "-o",
            "APKINDEX.tar.gz",
            "--merge",
            "--signing-key",
            "melange.rsa",
        ])
        .arg(&b)
        .output()
        .unwrap());
    let out = ok(bin()
        .current_dir(&d)
        .args(["verify", "--keyring", "melange.rsa.pub", "APKINDEX.tar.gz"])
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap());
    assert!(
        out.contains("APKINDEX.tar.gz: OK (index, 2 packages, signed by melange.rsa.pub)"),
        "{out}"
    );
    assert!(
        out.contains("OK (a-1.0-r0, signed by melange.rsa.pub)"),
        "{out}"
    );
}

#[test]
fn sign_index_and_failures() {
    let d = workdir("signindex");
    ok(bin()
        .current_dir(&d)
        .args(["keygen", "k.rsa", "--key-size", "2048"])
        .output()
        .unwrap());
    ok(bin()
        .current_dir(&d)
        .args(["keygen", "other.rsa", "--key-size", "2048"])
        .output()
        .unwrap());
    let a = unsigned_pkg(&d, "a", "1.0-r0");
    ok(bin()
        .current_dir(&d)
        .args(["index", "-o", "idx.tar.gz"])
        .arg(&a)
        .output()
        .unwrap());
    let o = bin()
        .current_dir(&d)
        .args(["verify", "--keyring", "k.rsa.pub", "idx.tar.gz"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    ok(bin()
        .current_dir(&d)
        .args(["sign-index", "--signing-key", "k.rsa", "idx.tar.gz"])
        .output()
        .unwrap());
    ok(bin()
        .current_dir(&d)
        .args(["verify", "--keyring", "k.rsa.pub", "idx.tar.gz"])
        .output()
        .unwrap());
    // already signed: no-op without --force
    let o = bin()
        .current_dir(&d)
        .args(["sign-index", "--signing-key", "other.rsa", "idx.tar.gz"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("already signed"));
    ok(bin()
        .current_dir(&d)
        .args(["verify", "--keyring", "k.rsa.pub", "idx.tar.gz"])
        .output()
        .unwrap());
    ok(bin()
        .current_dir(&d)
        .args([
            "sign-index",
            "--force",
            "--signing-key",
            "other.rsa",
            "idx.tar.gz",
        ])
        .output()
        .unwrap());
    let o = bin()
        .current_dir(&d)
        .args(["verify", "--keyring", "k.rsa.pub", "idx.tar.gz"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no signature by a trusted key"));
    // keyring given as a directory
    std::fs::create_dir_all(d.join("keys")).unwrap();
    std::fs::copy(d.join("other.rsa.pub"), d.join("keys/other.rsa.pub")).unwrap();
    ok(bin()
        .current_dir(&d)
        .args(["verify", "--keyring", "keys", "idx.tar.gz"])
        .output()
        .unwrap());
    // bad inputs: missing key, garbage package
    let o = bin()
        .current_dir(&d)
        .args(["sign", "--signing-key", "missing.rsa"])
        .arg(&a)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.rsa"));
    std::fs::write(d.join("junk.apk"), b"junk").unwrap();
    let o = bin()
        .current_dir(&d)
        .args(["index", "-o", "idx2.tar.gz", "junk.apk"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("junk.apk"));
    assert!(!d.join("idx2.tar.gz").exists(), "nothing half-written");
}
