//! Tamper matrix and hostile inputs: every case must be refused with a clear
//! error (never a panic, never a write outside the target).

mod common;

use std::path::{Path, PathBuf};

use common::*;
use melange2_apk::tar::{self, Header};
use melange2_apk::writer::{control_member, signature_member};
use melange2_apk::{
    ControlFiles, EntryType, Keyring, PackageReader, PkgInfo, SignatureAlgorithm, WriteOptions,
    read_package, verify_package, write_package,
};
use sha2::Digest;

fn pkg(dir: &Path, name: &str, content: &str, signed: bool) -> (PathBuf, Vec<u8>) {
    let mut t = melange2_apk::PackageTree::new();
    t.add_file("usr/share/data", 0o644, content).unwrap();
    let p = dir.join(format!("{name}.apk"));
    let key = signer();
    write_package(
        &t,
        &PkgInfo::new(name, "1.0-r0", "x86_64"),
        &ControlFiles::default(),
        signed.then_some(&key),
        &WriteOptions::default(),
        &p,
    )
    .unwrap();
    let b = std::fs::read(&p).unwrap();
    (p, b)
}

fn check_refused(dir: &Path, bytes: &[u8], ring: &Keyring, expect: &[&str]) -> String {
    let p = dir.join("tampered.apk");
    std::fs::write(&p, bytes).unwrap();
    let err = verify_package(&p, ring, None)
        .expect_err("tampered package accepted")
        .to_string();
    assert!(
        err.contains("tampered.apk"),
        "error does not name the file: {err}"
    );
    assert!(
        expect.iter().any(|e| err.contains(e)),
        "unexpected message {err:?}, wanted one of {expect:?}"
    );
    err
}

#[test]
fn flip_a_byte_in_each_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (_, good) = pkg(dir.path(), "a", &"payload ".repeat(1000), true);
    let m = members(&good);
    assert_eq!(m.len(), 3);
    let expected: [&[&str]; 3] = [
        &["signature", "CRC", "deflate", "gzip", "tar", "corrupt"],
        &[
            "signature",
            "CRC",
            "deflate",
            "gzip",
            "tar",
            ".PKGINFO",
            "malformed",
            "corrupt",
        ],
        &[
            "datahash",
            "CRC",
            "deflate",
            "gzip",
            "SHA-1",
            "tar",
            "malformed",
            "corrupt",
        ],
    ];
    for (seg, range) in m.iter().enumerate() {
        // a few positions inside each member: header area, middle, trailer
        for pos in [
            range.start + 12,
            range.start + (range.end - range.start) / 2,
            range.end - 5,
        ] {
            let mut bad = good.clone();
            bad[pos] ^= 0x20;
            check_refused(dir.path(), &bad, &keyring(), expected[seg]);
        }
    }
}

#[test]
fn valid_but_foreign_segments_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, a) = pkg(dir.path(), "a", "content a", true);
    let (_, b) = pkg(dir.path(), "b", "content b", true);
    let ma = members(&a);
    let mb = members(&b);
    // A's signature over B's control
    let mut x = a[ma[0].clone()].to_vec();
    x.extend_from_slice(&b[mb[1].clone()]);
    x.extend_from_slice(&b[mb[2].clone()]);
    check_refused(
        dir.path(),
        &x,
        &keyring(),
        &["signature by test.rsa.pub (RSA256) does not match"],
    );
    // B's signed control with A's data
    let mut x = b[mb[0].clone()].to_vec();
    x.extend_from_slice(&b[mb[1].clone()]);
    x.extend_from_slice(&a[ma[2].clone()]);
    check_refused(
        dir.path(),
        &x,
        &keyring(),
        &["does not match .PKGINFO datahash"],
    );
    // index checksum mismatch
    let pa = dir.path().join("a.apk");
    let cb = read_package(&dir.path().join("b.apk")).unwrap().checksum;
    let err = verify_package(&pa, &keyring(), Some(&cb))
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not match the index checksum"), "{err}");
}

#[test]
fn wrong_key_missing_signature_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let (_, a) = pkg(dir.path(), "a", "content", true);
    let other = Keyring::from_files(&[&other_key().public]).unwrap();
    check_refused(
        dir.path(),
        &a,
        &other,
        &[
            "no signature by a trusted key (signed by test.rsa.pub (RSA256); keyring has other.rsa.pub)",
        ],
    );
    // a key with the right name but different material
    let mut impostor = Keyring::new();
    impostor
        .add_pem(
            "test.rsa.pub",
            &std::fs::read_to_string(&other_key().public).unwrap(),
        )
        .unwrap();
    check_refused(dir.path(), &a, &impostor, &["does not match"]);
    // signature removed
    let m = members(&a);
    check_refused(dir.path(), &a[m[1].start..], &keyring(), &["not signed"]);
    // unsigned package
    let (_, u) = pkg(dir.path(), "u", "content", false);
    check_refused(dir.path(), &u, &keyring(), &["not signed"]);
    // truncated anywhere
    for cut in [
        0,
        1,
        9,
        100,
        m[1].start,
        m[1].start + 7,
        m[2].start,
        m[2].start + 30,
        a.len() - 8,
        a.len() - 1,
    ] {
        check_refused(
            dir.path(),
            &a[..cut],
            &keyring(),
            &[
                "truncated",
                "empty file",
                "unexpected end",
                "no control",
                "no data",
            ],
        );
    }
    // trailing garbage
    let mut x = a.clone();
    x.extend_from_slice(b"garbage");
    check_refused(dir.path(), &x, &keyring(), &["after the data section"]);
    // SHA-1 signature also verifies, SHA-512/unknown algorithms are ignored
    let key = signer();
    let sig = signature_member(&key, &[SignatureAlgorithm::RsaSha1], &a[m[1].clone()], 0).unwrap();
    let mut x = sig;
    x.extend_from_slice(&a[m[1].start..]);
    let p = dir.path().join("sha1.apk");
    std::fs::write(&p, &x).unwrap();
    verify_package(&p, &keyring(), None).unwrap();
}

/// Build an unsigned package around a hand-made data tar.
fn custom_apk(data_tar: &[u8]) -> Vec<u8> {
    let data = melange2_apk::gzip::compress(data_tar, Default::default()).unwrap();
    let mut info = PkgInfo::new("evil", "1-r0", "x86_64");
    info.datahash = hex::encode(sha2::Sha256::digest(&data));
    let mut out = control_member(&info, &ControlFiles::default(), 0, Default::default()).unwrap();
    out.extend_from_slice(&data);
    out
}

fn entry(path: &str, kind: EntryType, link: &str, content: &[u8], checksum: bool) -> Vec<u8> {
    let mut h = Header::new(path, kind);
    h.link = link.into();
    if checksum {
        use sha1::Digest as _;
        h.pax.insert(
            tar::PAX_CHECKSUM.into(),
            hex::encode(sha1::Sha1::digest(content)).into_bytes(),
        );
    }
    let mut v = Vec::new();
    tar::write_entry(&mut v, &h, content).unwrap();
    v
}

fn extract(
    bytes: &[u8],
) -> (
    tempfile::TempDir,
    melange2_apk::Result<melange2_apk::DataSummary>,
) {
    let base = tempfile::tempdir().unwrap();
    let target = base.path().join("root");
    let r = PackageReader::new(bytes, "evil.apk").and_then(|r| r.extract_to(&target));
    (base, r)
}

fn only_root_written(base: &Path) {
    let names: Vec<String> = std::fs::read_dir(base)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["root"], "something was written outside the target");
}

#[test]
fn hostile_paths_never_escape() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (entry("../escape", EntryType::File, "", b"x", true), ".."),
        (
            entry("a/../../escape", EntryType::File, "", b"x", true),
            "..",
        ),
        (entry("/abs", EntryType::File, "", b"x", true), "absolute"),
        (
            [
                entry("link", EntryType::Symlink, "..", b"", false),
                entry("link/escape", EntryType::File, "", b"x", true),
            ]
            .concat(),
            "symlink",
        ),
        (
            [
                entry("d", EntryType::Symlink, "/tmp", b"", false),
                entry("d/x/escape", EntryType::Directory, "", b"", false),
            ]
            .concat(),
            "symlink",
        ),
        (
            entry("h", EntryType::HardLink, "../../etc/passwd", b"", false),
            "..",
        ),
        (
            entry("h", EntryType::HardLink, "nonexistent", b"", false),
            "hard link target",
        ),
    ];
    for (data, want) in cases {
        let mut tar_bytes = data;
        tar::write_end(&mut tar_bytes).unwrap();
        let apk = custom_apk(&tar_bytes);
        let (base, r) = extract(&apk);
        let err = r.expect_err("hostile path accepted").to_string();
        assert!(err.contains(want), "{err} (wanted {want})");
        assert!(err.contains("evil.apk"), "{err}");
        only_root_written(base.path());
    }
}

#[test]
fn bad_file_checksum_is_refused_even_with_valid_datahash() {
    let mut t = entry("f", EntryType::File, "", b"real", false);
    let mut h = Header::new("g", EntryType::File);
    h.pax.insert(
        tar::PAX_CHECKSUM.into(),
        hex::encode([0u8; 20]).into_bytes(),
    );
    tar::write_entry(&mut t, &h, b"other").unwrap();
    tar::write_end(&mut t).unwrap();
    let apk = custom_apk(&t);
    let err = PackageReader::new(&apk[..], "evil.apk")
        .unwrap()
        .read_data(|_, _| Ok(()))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("evil.apk: data section: g: verification failed"),
        "{err}"
    );
}

#[test]
fn hostile_headers_and_streams() {
    // a PAX header claiming 1 GiB
    let mut raw = Vec::new();
    let mut h = Header::new("x", EntryType::File);
    h.pax.insert("comment".into(), vec![b'a'; 10]);
    tar::write_header(&mut raw, &h).unwrap();
    // patch the size of the x header to 1 GiB and fix its checksum
    let size = format!("{:011o}\0", 1u64 << 30);
    raw[124..136].copy_from_slice(size.as_bytes());
    raw[148..156].copy_from_slice(b"        ");
    let sum: u32 = raw[..512].iter().map(|&b| u32::from(b)).sum();
    raw[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let apk = custom_apk(&raw);
    let (_b, r) = extract(&apk);
    assert!(r.unwrap_err().to_string().contains("too large"));

    // unknown entry type, NUL in a PAX path, garbage files
    let mut raw = entry("x", EntryType::File, "", b"", false);
    raw[156] = b'S';
    raw[148..156].copy_from_slice(b"        ");
    let sum: u32 = raw[..512].iter().map(|&b| u32::from(b)).sum();
    raw[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let (_b, r) = extract(&custom_apk(&raw));
    assert!(
        r.unwrap_err()
            .to_string()
            .contains("unsupported tar entry type")
    );

    let mut h = Header::new("x", EntryType::File);
    h.pax.insert("path".into(), b"a\0b".to_vec());
    let mut raw = Vec::new();
    tar::write_entry(&mut raw, &h, b"").unwrap();
    let (_b, r) = extract(&custom_apk(&raw));
    assert!(r.unwrap_err().to_string().contains("NUL"));

    for garbage in [
        &b""[..],
        b"\x1f\x8b",
        b"not a gzip at all",
        &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff],
    ] {
        assert!(PackageReader::new(garbage, "g.apk").is_err());
    }
    // a control section without .PKGINFO
    let mut raw = Vec::new();
    tar::write_entry(
        &mut raw,
        &Header::new(".post-install", EntryType::File),
        b"x",
    )
    .unwrap();
    let gz = melange2_apk::gzip::compress(&raw, Default::default()).unwrap();
    let err = PackageReader::new(&gz[..], "nopkginfo.apk").unwrap_err();
    assert!(err.to_string().contains("no .PKGINFO"), "{err}");
}
