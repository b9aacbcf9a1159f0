//! `melange2 index` next to other writers of the same index: concurrent
//! `--merge` updates from separate processes keep every package (the
//! directory's `.melange2.lock`), and packages that `melange2 verify` refuses
//! (paths escaping the root, absolute paths, truncated data) are refused by
//! `melange2 index` too, with the same message.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use melange2_apk::tar::{self, Header};
use melange2_apk::writer::{control_member, signature_member};
use melange2_apk::{
    ApkIndex, ControlFiles, EntryType, IndexEntry, PackageTree, PkgInfo, SignatureAlgorithm,
    SigningKey, WriteOptions,
};
use sha2::Digest as _;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_melange2"))
}

fn workdir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli-index-lock-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn keygen(d: &Path) -> SigningKey {
    ok(&bin()
        .current_dir(d)
        .args(["keygen", "k.rsa", "--key-size", "2048"])
        .output()
        .unwrap());
    SigningKey::load(&d.join("k.rsa")).unwrap()
}

fn package(dir: &Path, name: &str, key: &SigningKey) -> PathBuf {
    let mut t = PackageTree::new();
    t.add_file(&format!("usr/share/{name}"), 0o644, name)
        .unwrap();
    let info = PkgInfo::new(name, "1.0-r0", "x86_64");
    let p = dir.join(info.file_name());
    melange2_apk::write_package(
        &t,
        &info,
        &ControlFiles::default(),
        Some(key),
        &WriteOptions::default(),
        &p,
    )
    .unwrap();
    p
}

#[test]
fn concurrent_index_merges_keep_every_package() {
    const PROCS: usize = 8;
    const ROUNDS: usize = 3;
    let d = workdir("merge");
    let key = keygen(&d);
    let pkgs = d.join("pkgs");
    std::fs::create_dir(&pkgs).unwrap();
    let repo = d.join("repo/x86_64");
    std::fs::create_dir_all(&repo).unwrap();
    let index = repo.join("APKINDEX.tar.gz");
    // a large existing index: every update reads, merges and rewrites it,
    // which gives concurrent updates plenty of time to overlap
    let mut seed = ApkIndex::new();
    seed.entries = (0..5000)
        .map(|i| IndexEntry {
            checksum: format!("Q1{i:027}="),
            name: format!("seed-{i}"),
            version: "1-r0".into(),
            arch: "x86_64".into(),
            description: "an existing package of the repository".into(),
            depends: vec!["so:libc.so.6".into(), format!("seed-{}", i / 2)],
            ..IndexEntry::default()
        })
        .collect();
    seed.write(&index, Some(&key)).unwrap();

    let mut names = Vec::new();
    for round in 0..ROUNDS {
        let apks: Vec<(String, PathBuf)> = (0..PROCS)
            .map(|p| {
                let name = format!("pkg-p{p}-r{round}");
                let apk = package(&pkgs, &name, &key);
                (name, apk)
            })
            .collect();
        // all processes of a round start together and update the same index
        let children: Vec<_> = apks
            .iter()
            .map(|(_, apk)| {
                bin()
                    .args(["index", "--merge", "--signing-key"])
                    .arg(d.join("k.rsa"))
                    .arg("-o")
                    .arg(&index)
                    .arg(apk)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            ok(&c.wait_with_output().unwrap());
        }
        names.extend(apks.into_iter().map(|(n, _)| n));
    }

    let out = bin()
        .args(["verify", "--keyring"])
        .arg(d.join("k.rsa.pub"))
        .arg(&index)
        .output()
        .unwrap();
    ok(&out);
    let idx = ApkIndex::read(&index).unwrap();
    let missing: Vec<&String> = names.iter().filter(|n| idx.find(n).count() != 1).collect();
    assert!(
        missing.is_empty(),
        "{} of {} packages missing from the index: {missing:?}",
        missing.len(),
        names.len()
    );
    assert_eq!(idx.entries.len(), 5000 + PROCS * ROUNDS);
    assert!(repo.join(".melange2.lock").is_file());
    // no temporary files left next to the index
    let left: Vec<String> = std::fs::read_dir(&repo)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "APKINDEX.tar.gz" && n != ".melange2.lock")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A signed package whose data section is `data_tar` (a tar with its end).
fn custom_apk(path: &Path, data_tar: &[u8], key: &SigningKey) {
    let data = melange2_apk::gzip::compress(data_tar, Default::default()).unwrap();
    let mut info = PkgInfo::new("evil", "1-r0", "x86_64");
    info.datahash = hex::encode(sha2::Sha256::digest(&data));
    let control = control_member(&info, &ControlFiles::default(), 0, Default::default()).unwrap();
    let mut out = signature_member(key, &[SignatureAlgorithm::RsaSha256], &control, 0).unwrap();
    out.extend_from_slice(&control);
    out.extend_from_slice(&data);
    std::fs::write(path, out).unwrap();
}

fn data_tar(path: &str) -> Vec<u8> {
    let mut v = Vec::new();
    let mut h = Header::new(path, EntryType::File);
    h.mode = 0o644;
    tar::write_entry(&mut v, &h, b"x").unwrap();
    tar::write_end(&mut v).unwrap();
    v
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn index_refuses_what_verify_refuses() {
    let d = workdir("hostile");
    let key = keygen(&d);
    let good = package(&d, "good", &key);
    ok(&bin()
        .current_dir(&d)
        .args(["index", "-o", "APKINDEX.tar.gz"])
        .arg(&good)
        .output()
        .unwrap());
    let before = std::fs::read(d.join("APKINDEX.tar.gz")).unwrap();

    custom_apk(
        &d.join("dotdot.apk"),
        &data_tar("usr/../../etc/passwd"),
        &key,
    );
    custom_apk(&d.join("absolute.apk"), &data_tar("/etc/passwd"), &key);
    // a good package cut short in its data section
    let bytes = std::fs::read(package(&d, "short", &key)).unwrap();
    std::fs::write(d.join("short.apk"), &bytes[..bytes.len() - 20]).unwrap();
    // and with bytes after the data section
    let mut long = bytes.clone();
    long.extend_from_slice(b"trailing garbage");
    std::fs::write(d.join("trailing.apk"), long).unwrap();

    for (file, want) in [
        ("dotdot.apk", ".."),
        ("absolute.apk", "absolute path"),
        ("short.apk", "short.apk"),
        ("trailing.apk", "unexpected bytes after the data section"),
    ] {
        let v = bin()
            .current_dir(&d)
            .args(["verify", "--keyring", "k.rsa.pub", file])
            .output()
            .unwrap();
        assert!(!v.status.success(), "verify accepted {file}");
        let verify_msg = stderr(&v).lines().next().unwrap_or_default().to_string();
        assert!(verify_msg.contains(want), "{file}: {verify_msg}");
        assert!(verify_msg.contains(file), "{file}: {verify_msg}");

        let o = bin()
            .current_dir(&d)
            .args(["index", "--merge", "-o", "APKINDEX.tar.gz"])
            .arg(&good)
            .arg(file)
            .output()
            .unwrap();
        assert!(!o.status.success(), "index accepted {file}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&verify_msg),
            "{file}: index said {:?}, verify said {verify_msg:?}",
            stderr(&o)
        );
        assert_eq!(
            std::fs::read(d.join("APKINDEX.tar.gz")).unwrap(),
            before,
            "{file}: the index changed"
        );
    }
}
