mod common;

use std::path::{Path, PathBuf};

use common::*;
use melange2_apk::{
    ApkIndex, ControlFiles, IndexEntry, Keyring, PackageTree, PkgInfo, RepoBuilder, WriteOptions,
    index_packages, parse_index_text, read_index, sign_index_file, verify_package, write_package,
};

fn full_entry() -> IndexEntry {
    IndexEntry {
        checksum: "Q1abcdefghijklmnopqrstuvwxyz0=".into(),
        name: "py3-foo".into(),
        version: "1.2.3_rc1-r4".into(),
        arch: "aarch64".into(),
        size: 12345,
        installed_size: 67890,
        description: "Foo: a thing".into(),
        url: "https://example.invalid".into(),
        license: "MIT AND Apache-2.0".into(),
        origin: "foo".into(),
        maintainer: "wolfi".into(),
        build_time: 1_700_000_001,
        commit: "deadbeef".into(),
        provider_priority: Some(5),
        depends: vec![
            "python-3.12".into(),
            "so:libc.so.6".into(),
            "!foo-old".into(),
        ],
        provides: vec!["py3.12-foo=1.2.3_rc1-r4".into(), "cmd:foo".into()],
        install_if: vec!["foo=1.2.3_rc1-r4".into(), "python-3.12".into()],
        replaces: vec!["foo-compat".into()],
        replaces_priority: Some(2),
        extra: vec![('g', "tag1 tag2".into())],
    }
}

#[test]
fn text_roundtrip_every_field() {
    let mut idx = ApkIndex::new();
    idx.entries.push(full_entry());
    idx.entries.push(IndexEntry {
        checksum: "Q1zzzz".into(),
        name: "tiny".into(),
        version: "0".into(),
        ..IndexEntry::default()
    });
    let text = idx.render_text();
    assert!(text.starts_with("C:Q1abcdefghijklmnopqrstuvwxyz0=\nP:py3-foo\nV:1.2.3_rc1-r4\nA:aarch64\nS:12345\nI:67890\nT:Foo: a thing\nU:https://example.invalid\nL:MIT AND Apache-2.0\no:foo\nm:wolfi\nt:1700000001\nc:deadbeef\nD:python-3.12 so:libc.so.6 !foo-old\ni:foo=1.2.3_rc1-r4 python-3.12\np:py3.12-foo=1.2.3_rc1-r4 cmd:foo\nk:5\n"), "{text}");
    // the tiny record still gets t:0 like melange
    assert!(
        text.contains("P:tiny\nV:0\nS:0\nI:0\nT:\nt:0\n\n"),
        "{text}"
    );
    let back = parse_index_text(&text).unwrap();
    assert_eq!(back, idx.entries);
}

#[test]
fn parser_is_tolerant_where_apk_is_and_strict_where_apko_is() {
    // extra blank lines, CRLF, long lines, unknown lower-case letters
    let long = "x".repeat(100_000);
    let text = format!("\n\nC:Q1a\r\nP:a\nV:1\np:{long}\nz:whatever\n\n\n\nP:b\nV:2\n");
    let e = parse_index_text(&text).unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].provides[0].len(), 100_000);
    assert_eq!(e[1].name, "b");
    let err = parse_index_text("P:a\nV:1\nbogus line\n").unwrap_err();
    assert!(err.to_string().contains("line 3"), "{err}");
    let err = parse_index_text("P:a\nS:notanumber\n").unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
    assert!(
        parse_index_text("C:Q1x\nV:1\n").is_err(),
        "record without P:"
    );
}

fn build_pkg(dir: &Path, name: &str, version: &str, content: &str) -> PathBuf {
    let mut t = PackageTree::new();
    t.add_file(&format!("usr/share/{name}/data"), 0o644, content)
        .unwrap();
    let mut info = PkgInfo::new(name, version, "x86_64");
    info.description = format!("{name} package");
    info.licenses = vec!["MIT".into()];
    let p = dir.join(info.file_name());
    write_package(
        &t,
        &info,
        &ControlFiles::default(),
        Some(&signer()),
        &WriteOptions::default(),
        &p,
    )
    .unwrap();
    p
}

#[test]
fn index_merge_sign_verify() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a1 = build_pkg(d, "a", "1.0-r0", "a1");
    let b1 = build_pkg(d, "b", "1.0-r0", "b1");
    let out = d.join("APKINDEX.tar.gz");
    let idx = index_packages(&[a1.clone(), b1.clone()], &out, None, None, Some(&signer())).unwrap();
    assert_eq!(idx.entries.len(), 2);
    let (read, sigs) = read_index(&out, Some(&keyring())).unwrap();
    assert_eq!(read, idx);
    assert_eq!(sigs.trusted_key.as_deref(), Some("test.rsa.pub"));
    assert_eq!(sigs.signatures[0].tag, "RSA256");
    // checksum and size match the real files
    for e in &read.entries {
        let path = d.join(e.file_name());
        assert_eq!(e.size, std::fs::metadata(&path).unwrap().len());
        verify_package(&path, &keyring(), Some(&e.checksum)).unwrap();
    }

    // rebuild a (same version, different content) and add c: merge replaces a, keeps b, appends c
    std::fs::remove_file(&a1).unwrap();
    let a1b = build_pkg(d, "a", "1.0-r0", "a1 rebuilt");
    let c1 = build_pkg(d, "c", "3-r0", "c");
    // move b away: merging must not need to re-read it
    std::fs::remove_file(&b1).unwrap();
    let merged =
        index_packages(&[a1b.clone(), c1], &out, Some(&out), None, Some(&signer())).unwrap();
    let names: Vec<(&str, &str)> = merged
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e.version.as_str()))
        .collect();
    assert_eq!(names, [("a", "1.0-r0"), ("b", "1.0-r0"), ("c", "3-r0")]);
    let new_a = IndexEntry::from_package_file(&a1b).unwrap();
    assert_eq!(merged.entries[0].checksum, new_a.checksum);
    assert_ne!(idx.entries[0].checksum, new_a.checksum);
    assert_eq!(merged.entries[1], idx.entries[1]);
    // a newer version is added next to the old one
    let a2 = build_pkg(d, "a", "1.1-r0", "a2");
    let merged = index_packages(&[a2], &out, Some(&out), None, None).unwrap();
    assert_eq!(merged.find("a").count(), 2);
    // unsigned now
    assert!(
        read_index(&out, Some(&keyring()))
            .unwrap_err()
            .to_string()
            .contains("not signed")
    );
    // sign-index signs, then is a no-op, then --force re-signs with another key
    assert!(sign_index_file(&out, &signer(), false).unwrap());
    assert!(!sign_index_file(&out, &signer(), false).unwrap());
    read_index(&out, Some(&keyring())).unwrap();
    let other = melange2_apk::SigningKey::load(&other_key().private).unwrap();
    assert!(sign_index_file(&out, &other, true).unwrap());
    let err = read_index(&out, Some(&keyring())).unwrap_err();
    assert!(
        err.to_string().contains("no signature by a trusted key"),
        "{err}"
    );
    let other_ring = Keyring::from_files(&[&other_key().public]).unwrap();
    let (again, _) = read_index(&out, Some(&other_ring)).unwrap();
    assert_eq!(again, merged);
}

#[test]
fn arch_filter_skips_other_arches() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = PackageTree::new();
    t.add_file("f", 0o644, "x").unwrap();
    let arm = dir.path().join("arm.apk");
    write_package(
        &t,
        &PkgInfo::new("arm", "1-r0", "aarch64"),
        &ControlFiles::default(),
        None,
        &WriteOptions::default(),
        &arm,
    )
    .unwrap();
    let x86 = build_pkg(dir.path(), "x", "1-r0", "x");
    let out = dir.path().join("APKINDEX.tar.gz");
    let idx = index_packages(&[arm, x86], &out, None, Some("x86_64"), None).unwrap();
    assert_eq!(idx.entries.len(), 1);
    assert_eq!(idx.entries[0].name, "x");
}

#[test]
fn index_with_apk_tools_member_order_and_hostile_entries() {
    // DESCRIPTION first (apk-tools order) is accepted
    let mut tar_bytes = Vec::new();
    for (n, d) in [("DESCRIPTION", "desc"), ("APKINDEX", "C:Q1x\nP:a\nV:1\n\n")] {
        let h = melange2_apk::tar::Header::new(n, melange2_apk::EntryType::File);
        melange2_apk::tar::write_entry(&mut tar_bytes, &h, d.as_bytes()).unwrap();
    }
    melange2_apk::tar::write_end(&mut tar_bytes).unwrap();
    let gz = melange2_apk::gzip::compress(&tar_bytes, Default::default()).unwrap();
    let (idx, _) = melange2_apk::index::read_index_from(&gz[..], "idx", None).unwrap();
    assert_eq!(idx.description, "desc");
    assert_eq!(idx.entries[0].name, "a");
    // an extra entry is refused
    let mut tar_bytes = Vec::new();
    let h = melange2_apk::tar::Header::new("evil.sh", melange2_apk::EntryType::File);
    melange2_apk::tar::write_entry(&mut tar_bytes, &h, b"x").unwrap();
    melange2_apk::tar::write_end(&mut tar_bytes).unwrap();
    let gz = melange2_apk::gzip::compress(&tar_bytes, Default::default()).unwrap();
    let err = melange2_apk::index::read_index_from(&gz[..], "idx", None).unwrap_err();
    assert!(err.to_string().contains("evil.sh"), "{err}");
    // truncated
    let good = ApkIndex {
        entries: vec![full_entry()],
        description: String::new(),
    }
    .to_bytes(
        Some(&signer()),
        &[melange2_apk::SignatureAlgorithm::RsaSha256],
    )
    .unwrap();
    for cut in [1, 10, good.len() / 2, good.len() - 1] {
        assert!(
            melange2_apk::index::read_index_from(&good[..cut], "idx", None).is_err(),
            "cut {cut}"
        );
    }
    // flipped byte in the index member: signature fails (or gzip fails)
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 20] ^= 0x01;
    assert!(melange2_apk::index::read_index_from(&bad[..], "idx", Some(&keyring())).is_err());
}

#[test]
fn repo_builder_makes_a_signed_repository() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    let mut repo = RepoBuilder::new(&root)
        .signer(signer())
        .description("test repo");
    let mut t = PackageTree::new();
    t.add_file("usr/bin/hello", 0o755, "#!/bin/sh\n").unwrap();
    let mut info = PkgInfo::new("hello", "1.0-r0", "x86_64");
    info.provides.push("cmd:hello=1.0-r0".into());
    repo.add(&info, &t).unwrap();
    repo.add(&PkgInfo::new("hello", "1.0-r0", "aarch64"), &t)
        .unwrap();
    let indexes = repo.finish().unwrap();
    assert_eq!(indexes.len(), 2);
    let ring = Keyring::from_files(&[root.join("test.rsa.pub")]).unwrap();
    let (idx, _) = read_index(&root.join("x86_64/APKINDEX.tar.gz"), Some(&ring)).unwrap();
    assert_eq!(idx.description, "test repo");
    assert_eq!(idx.entries[0].provides, vec!["cmd:hello=1.0-r0"]);
    verify_package(
        &root.join("x86_64/hello-1.0-r0.apk"),
        &ring,
        Some(&idx.entries[0].checksum),
    )
    .unwrap();
    // adding later merges
    let mut repo = RepoBuilder::new(&root).signer(signer());
    repo.add(&PkgInfo::new("world", "2-r0", "x86_64"), &t)
        .unwrap();
    repo.finish().unwrap();
    let (idx, _) = read_index(&root.join("x86_64/APKINDEX.tar.gz"), Some(&ring)).unwrap();
    assert_eq!(idx.entries.len(), 2);
}

#[test]
fn installed_db_entry() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.apk");
    let mut t = PackageTree::new();
    t.add_file("usr/bin/tool", 0o4755, "bin").unwrap();
    t.add_dir("usr/lib", 0o700).unwrap();
    t.add_file("usr/lib/libx.so.1", 0o644, "lib").unwrap();
    t.add_symlink("usr/lib/libx.so", "libx.so.1").unwrap();
    t.add_file("usr/zfile", 0o644, "z").unwrap();
    let mut info = PkgInfo::new("tool", "1-r0", "x86_64");
    info.replaces.push("old-tool".into());
    info.depends.push("so:libc.so.6".into());
    let w = write_package(
        &t,
        &info,
        &ControlFiles::default(),
        None,
        &WriteOptions::default(),
        &p,
    )
    .unwrap();
    let c = melange2_apk::read_package(&p).unwrap();
    let mut entry = w.index_entry();
    entry.replaces = c.pkginfo.replaces.clone();
    let text = melange2_apk::render_installed_entry_from_data(&entry, &c.data.entries);
    let q1 = |s: &str| melange2_apk::q1_checksum(&sha1_of(s.as_bytes()));
    let expected = format!(
        "P:tool\nV:1-r0\nA:x86_64\nT:\no:tool\nD:so:libc.so.6\nr:old-tool\nt:0\nS:{}\nI:{}\nC:{}\nF:usr\nR:zfile\nZ:{}\nF:usr/bin\nR:tool\na:0:0:4755\nZ:{}\nF:usr/lib\nM:0:0:700\nR:libx.so\na:0:0:777\nZ:{}\nR:libx.so.1\nZ:{}\n\n",
        w.file_size,
        c.pkginfo.size,
        w.checksum,
        q1("z"),
        q1("bin"),
        q1("libx.so.1"),
        q1("lib"),
    );
    assert_eq!(text, expected);
}

fn sha1_of(b: &[u8]) -> [u8; 20] {
    use sha1::Digest;
    sha1::Sha1::digest(b).into()
}
