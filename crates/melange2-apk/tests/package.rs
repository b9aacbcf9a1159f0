mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::process::Command;

use common::*;
use melange2_apk::gzip::GzOptions;
use melange2_apk::{
    ControlFiles, EntryType, PackageReader, PackageTree, Scriptlet, SignatureAlgorithm,
    WriteOptions, read_package, verify_package, write_package,
};

fn opts(threads: usize) -> WriteOptions {
    WriteOptions {
        source_date_epoch: 1_700_000_000,
        gzip: GzOptions {
            threads,
            ..GzOptions::default()
        },
        ..WriteOptions::default()
    }
}

#[test]
fn write_read_roundtrip() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hello-2.12-r1.apk");
    let mut control = ControlFiles::default();
    control.scripts.insert(
        Scriptlet::PostInstall,
        b"#!/bin/sh\necho installed\n".to_vec(),
    );
    control.melange_yaml = Some(b"package:\n  name: hello\n".to_vec());
    let mut info = sample_info();
    info.triggers = vec!["/usr/share/fonts/*".into()];
    control
        .scripts
        .insert(Scriptlet::Trigger, b"#!/bin/sh\nfc-cache\n".to_vec());
    let w = write_package(
        &sample_tree(),
        &info,
        &control,
        Some(&signer()),
        &opts(2),
        &out,
    )
    .unwrap();
    assert_eq!(w.file_size, std::fs::metadata(&out).unwrap().len());

    let c = verify_package(&out, &keyring(), Some(&w.checksum)).unwrap();
    assert_eq!(c.trusted_key.as_deref(), Some("test.rsa.pub"));
    assert_eq!(c.pkginfo, w.info);
    assert_eq!(c.pkginfo.name, "hello");
    assert_eq!(c.pkginfo.depends, vec!["busybox", "so:libc.so.6"]);
    assert_eq!(c.pkginfo.datahash, hex::encode(c.data.datahash));
    // installed size: files (incl. hard link) + symlink target length
    assert_eq!(c.pkginfo.size, 14 + 16 + 70_000 + 70_000 + 3 + 5);
    assert_eq!(
        c.control_files[".post-install"],
        b"#!/bin/sh\necho installed\n"
    );
    assert!(c.control_files.contains_key(".melange.yaml"));
    assert!(c.control_files.contains_key(".trigger"));
    assert_eq!(c.signatures.len(), 1);
    assert_eq!(c.signatures[0].tag, "RSA256");

    let paths: Vec<&str> = c.data.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "etc",
            "etc/hello.conf",
            "usr",
            "usr/bin",
            "usr/bin/hello",
            "usr/bin/hi",
            "usr/lib",
            "usr/lib/with-xattr",
            "usr/share",
            "usr/share/doc",
            "usr/share/doc/hello",
            "usr/share/doc/hello/README",
            "usr/share/doc/hello/README.link",
            "var",
            "var/empty"
        ]
    );
    let by: BTreeMap<&str, &melange2_apk::DataEntry> = c
        .data
        .entries
        .iter()
        .map(|e| (e.path.as_str(), e))
        .collect();
    assert_eq!(by["usr/bin/hello"].mode, 0o4755);
    assert_eq!(by["var/empty"].mode, 0o1777);
    assert_eq!(by["usr/bin/hi"].kind, EntryType::Symlink);
    assert_eq!(by["usr/bin/hi"].link, "hello");
    assert_eq!(
        by["usr/share/doc/hello/README.link"].kind,
        EntryType::HardLink
    );
    assert_eq!(
        by["usr/share/doc/hello/README.link"].link,
        "usr/share/doc/hello/README"
    );
    assert_eq!(
        by["usr/lib/with-xattr"].xattrs["security.capability"],
        vec![1, 0, 0, 2, 0, 32, 0, 0]
    );
    for e in &c.data.entries {
        assert_eq!(e.mtime, 1_700_000_000);
        assert_eq!(
            (e.uid, e.gid, e.uname.as_str(), e.gname.as_str()),
            (0, 0, "root", "root")
        );
        match e.kind {
            EntryType::File | EntryType::HardLink | EntryType::Symlink => {
                assert!(e.sha1.is_some(), "{}", e.path)
            }
            _ => assert!(e.sha1.is_none()),
        }
    }

    // contents via extraction
    let x = tempfile::tempdir().unwrap();
    PackageReader::open(&out)
        .unwrap()
        .extract_to(x.path())
        .unwrap();
    assert_eq!(
        std::fs::read(x.path().join("etc/hello.conf")).unwrap(),
        b"greeting = hi\n"
    );
    assert_eq!(
        std::fs::read_link(x.path().join("usr/bin/hi"))
            .unwrap()
            .to_str()
            .unwrap(),
        "hello"
    );
    use std::os::unix::fs::MetadataExt;
    let a = std::fs::metadata(x.path().join("usr/share/doc/hello/README")).unwrap();
    let b = std::fs::metadata(x.path().join("usr/share/doc/hello/README.link")).unwrap();
    assert_eq!(a.ino(), b.ino());
    assert_eq!(
        std::fs::metadata(x.path().join("usr/bin/hello"))
            .unwrap()
            .mode()
            & 0o7777,
        0o4755
    );
}

#[test]
fn member_layout_matches_apk_expectations() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.apk");
    write_package(
        &sample_tree(),
        &sample_info(),
        &ControlFiles::default(),
        Some(&signer()),
        &opts(2),
        &out,
    )
    .unwrap();
    let bytes = std::fs::read(&out).unwrap();
    let m = members(&bytes);
    assert_eq!(m.len(), 3, "signature, control, data");
    let unz = |r: std::ops::Range<usize>| {
        let mut v = Vec::new();
        flate2::read::GzDecoder::new(&bytes[r])
            .read_to_end(&mut v)
            .unwrap();
        v
    };
    let sig = unz(m[0].clone());
    let control = unz(m[1].clone());
    let data = unz(m[2].clone());
    // signature and control parts have no end-of-archive blocks
    assert_eq!(sig.len(), 512 + 512);
    assert!(!control[control.len() - 512..].iter().all(|&b| b == 0) || control.len() % 512 == 0);
    assert!(!control.ends_with(&[0u8; 1024]));
    assert!(data.ends_with(&[0u8; 1024]));
    assert_eq!(&sig[..22], b".SIGN.RSA256.test.rsa.");
    assert_eq!(&control[..8], b".PKGINFO");
    // gzip headers: no name, mtime 0, OS 255
    for r in &m {
        assert_eq!(&bytes[r.start..r.start + 4], &[0x1f, 0x8b, 8, 0]);
        assert_eq!(&bytes[r.start + 4..r.start + 8], &[0, 0, 0, 0]);
    }
    // the whole file decompresses to one tar stream readable by the tar crate
    let mut all = Vec::new();
    flate2::read::MultiGzDecoder::new(&bytes[..])
        .read_to_end(&mut all)
        .unwrap();
    let mut ar = tar::Archive::new(&all[..]);
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names[0], ".SIGN.RSA256.test.rsa.pub");
    assert_eq!(names[1], ".PKGINFO");
    assert!(names.contains(&"usr/bin/hello".to_string()));
    // and by GNU tar
    let tmp = dir.path().join("all.tar");
    std::fs::write(&tmp, &all).unwrap();
    let o = Command::new("tar").arg("-tvf").arg(&tmp).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let listing = String::from_utf8_lossy(&o.stdout);
    assert!(listing.contains("-rwsr-xr-x root/root"), "{listing}");
    assert!(
        listing.contains("usr/share/doc/hello/README.link link to usr/share/doc/hello/README"),
        "{listing}"
    );
    // gzip -t accepts the multi-member file
    assert!(
        Command::new("gzip")
            .arg("-t")
            .arg(&out)
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn openssl_verifies_sha1_and_sha256_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.apk");
    let mut o = opts(1);
    o.signature_algorithms = vec![SignatureAlgorithm::RsaSha256, SignatureAlgorithm::RsaSha1];
    write_package(
        &sample_tree(),
        &sample_info(),
        &ControlFiles::default(),
        Some(&signer()),
        &o,
        &out,
    )
    .unwrap();
    let bytes = std::fs::read(&out).unwrap();
    let m = members(&bytes);
    let control = dir.path().join("control.gz");
    std::fs::write(&control, &bytes[m[1].clone()]).unwrap();
    let mut sigtar = Vec::new();
    flate2::read::GzDecoder::new(&bytes[m[0].clone()])
        .read_to_end(&mut sigtar)
        .unwrap();
    let mut found = Vec::new();
    let mut ar = tar::Archive::new(&sigtar[..]);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut sig = Vec::new();
        e.read_to_end(&mut sig).unwrap();
        found.push(name.clone());
        let sigfile = dir.path().join("sig.bin");
        std::fs::write(&sigfile, &sig).unwrap();
        let dgst = if name.starts_with(".SIGN.RSA256.") {
            "-sha256"
        } else {
            "-sha1"
        };
        let o = Command::new("openssl")
            .args(["dgst", dgst, "-verify"])
            .arg(&key().public)
            .arg("-signature")
            .arg(&sigfile)
            .arg(&control)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        assert!(String::from_utf8_lossy(&o.stdout).contains("Verified OK"));
        // and a wrong digest fails
        let bad = if dgst == "-sha1" { "-sha256" } else { "-sha1" };
        let o = Command::new("openssl")
            .args(["dgst", bad, "-verify"])
            .arg(&key().public)
            .arg("-signature")
            .arg(&sigfile)
            .arg(&control)
            .output()
            .unwrap();
        assert!(!o.status.success());
    }
    assert_eq!(
        found,
        [".SIGN.RSA.test.rsa.pub", ".SIGN.RSA256.test.rsa.pub"]
    );
    // our verifier accepts both (keyring has the key)
    verify_package(&out, &keyring(), None).unwrap();
}

#[test]
fn reproducible_for_any_thread_count_and_block_boundaries() {
    let mut tree = PackageTree::new();
    // several blocks worth of mixed data
    let mut x: u32 = 7;
    let noisy: Vec<u8> = (0..3_500_000)
        .map(|i| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            if i % 3 == 0 {
                (x >> 24) as u8
            } else {
                b'a' + (i % 26) as u8
            }
        })
        .collect();
    tree.add_file("big", 0o644, noisy).unwrap();
    tree.add_file("exact", 0o644, vec![3u8; 1 << 20]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut outs = Vec::new();
    for threads in [1, 2, 4] {
        let p = dir.path().join(format!("t{threads}.apk"));
        let w = write_package(
            &tree,
            &sample_info(),
            &ControlFiles::default(),
            None,
            &opts(threads),
            &p,
        )
        .unwrap();
        outs.push((std::fs::read(&p).unwrap(), w.checksum));
    }
    assert_eq!(outs[0], outs[1]);
    assert_eq!(outs[0], outs[2]);
    // unsigned package: two members
    assert_eq!(members(&outs[0].0).len(), 2);
    let c = read_package(&dir.path().join("t4.apk")).unwrap();
    assert!(c.signatures.is_empty());
    assert_eq!(c.checksum, outs[0].1);
}

#[test]
fn directory_input_with_owner_remap() {
    use std::os::unix::fs::PermissionsExt;
    let src = tempfile::tempdir().unwrap();
    let r = src.path();
    std::fs::create_dir_all(r.join("usr/bin")).unwrap();
    std::fs::write(r.join("usr/bin/tool"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        r.join("usr/bin/tool"),
        std::fs::Permissions::from_mode(0o2755),
    )
    .unwrap();
    std::fs::hard_link(r.join("usr/bin/tool"), r.join("usr/bin/alias")).unwrap();
    std::os::unix::fs::symlink("/usr/bin/tool", r.join("usr/bin/abs")).unwrap();
    std::fs::create_dir_all(r.join("usr/bin-extra")).unwrap();
    let uid = std::fs::metadata(r)
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.apk");
    let mut o = opts(2);
    // pretend the current user is the build user
    o.build_uid = Some(uid);
    o.build_gid = Some(
        std::fs::metadata(r)
            .map(|m| std::os::unix::fs::MetadataExt::gid(&m))
            .unwrap(),
    );
    melange2_apk::write_package_from_dir(
        r,
        &sample_info(),
        &ControlFiles::default(),
        None,
        &o,
        &out,
    )
    .unwrap();
    let c = read_package(&out).unwrap();
    let paths: Vec<(&str, EntryType)> = c
        .data
        .entries
        .iter()
        .map(|e| (e.path.as_str(), e.kind))
        .collect();
    assert_eq!(
        paths,
        [
            ("usr", EntryType::Directory),
            ("usr/bin", EntryType::Directory),
            ("usr/bin/abs", EntryType::Symlink),
            ("usr/bin/alias", EntryType::File),
            ("usr/bin/tool", EntryType::HardLink),
            ("usr/bin-extra", EntryType::Directory),
        ]
    );
    for e in &c.data.entries {
        assert_eq!((e.uid, e.gid), (0, 0));
    }
    let tool = c
        .data
        .entries
        .iter()
        .find(|e| e.path == "usr/bin/tool")
        .unwrap();
    assert_eq!(tool.link, "usr/bin/alias");
    assert_eq!(tool.mode, 0o2755);
}

fn tar_stream() -> Vec<u8> {
    // BuildKit-like export: "./"-less paths, numeric ids 1000, PAX xattrs,
    // hard links, two package directories in one stream, unsorted.
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str,
                   kind: tar::EntryType,
                   mode: u32,
                   data: &[u8],
                   link: Option<&str>,
                   xattr: bool| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(1000);
        h.set_gid(1000);
        h.set_mtime(12345);
        h.set_size(data.len() as u64);
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        if xattr {
            b.append_pax_extensions([
                ("SCHILY.xattr.user.test", b"v".as_slice()),
                ("SCHILY.xattr.security.selinux", b"x".as_slice()),
            ])
            .unwrap();
        }
        b.append_data(&mut h, path, data).unwrap();
    };
    add(
        "out/foo/",
        tar::EntryType::Directory,
        0o755,
        b"",
        None,
        false,
    );
    add(
        "out/foo/usr/bin/",
        tar::EntryType::Directory,
        0o755,
        b"",
        None,
        false,
    );
    add(
        "out/foo/usr/bin/zz",
        tar::EntryType::Regular,
        0o755,
        b"zz-content",
        None,
        true,
    );
    add(
        "out/foo/usr/bin/aa",
        tar::EntryType::Link,
        0o755,
        b"",
        Some("out/foo/usr/bin/zz"),
        false,
    );
    add(
        "out/foo/usr/",
        tar::EntryType::Directory,
        0o755,
        b"",
        None,
        false,
    );
    add(
        "out/foo-doc/usr/share/man/",
        tar::EntryType::Directory,
        0o755,
        b"",
        None,
        false,
    );
    add(
        "out/foo-doc/usr/share/man/foo.1",
        tar::EntryType::Regular,
        0o644,
        b".TH FOO",
        None,
        false,
    );
    add(
        "out/foo-doc/usr/share/man/foo.link",
        tar::EntryType::Link,
        0o644,
        b"",
        Some("out/foo/usr/bin/zz"),
        false,
    );
    add(
        "elsewhere/file",
        tar::EntryType::Regular,
        0o644,
        b"ignored",
        None,
        false,
    );
    b.into_inner().unwrap()
}

#[test]
fn tar_stream_input_split_per_package() {
    let trees = PackageTree::split_tar(&tar_stream()[..], &["out/foo", "./out/foo-doc/"]).unwrap();
    let foo = &trees["out/foo"];
    let doc = &trees["./out/foo-doc/"];
    let paths: Vec<&str> = foo.entries().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["usr", "usr/bin", "usr/bin/aa", "usr/bin/zz"]);
    let doc_paths: Vec<&str> = doc.entries().map(|e| e.path.as_str()).collect();
    assert_eq!(
        doc_paths,
        [
            "usr/share/man",
            "usr/share/man/foo.1",
            "usr/share/man/foo.link"
        ]
    );

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("foo.apk");
    let info = melange2_apk::PkgInfo::new("foo", "1-r0", "x86_64");
    write_package(
        foo,
        &info,
        &ControlFiles::default(),
        Some(&signer()),
        &opts(2),
        &out,
    )
    .unwrap();
    let c = verify_package(&out, &keyring(), None).unwrap();
    let aa = c
        .data
        .entries
        .iter()
        .find(|e| e.path == "usr/bin/aa")
        .unwrap();
    let zz = c
        .data
        .entries
        .iter()
        .find(|e| e.path == "usr/bin/zz")
        .unwrap();
    // sorted: "aa" comes first, so it carries the content, "zz" links to it
    assert_eq!(aa.kind, EntryType::File);
    assert_eq!(zz.kind, EntryType::HardLink);
    assert_eq!(zz.link, "usr/bin/aa");
    assert_eq!(
        aa.xattrs.get("user.test").map(Vec::as_slice),
        Some(b"v".as_slice())
    );
    assert!(!aa.xattrs.contains_key("security.selinux"));
    assert_eq!((aa.uid, aa.gid, aa.uname.as_str()), (0, 0, "root"));
    assert_eq!(aa.mtime, 1_700_000_000);

    // cross-package hard link becomes a regular file with the content
    let out2 = dir.path().join("doc.apk");
    let info2 = melange2_apk::PkgInfo::new("foo-doc", "1-r0", "x86_64");
    write_package(doc, &info2, &ControlFiles::default(), None, &opts(1), &out2).unwrap();
    let x = tempfile::tempdir().unwrap();
    PackageReader::open(&out2)
        .unwrap()
        .extract_to(x.path())
        .unwrap();
    assert_eq!(
        std::fs::read(x.path().join("usr/share/man/foo.link")).unwrap(),
        b"zz-content"
    );

    // same stream through from_tar gives the same package bytes as the tree
    let whole = PackageTree::from_tar(&tar_stream()[..]).unwrap();
    assert!(whole.get("out/foo/usr/bin/zz").is_some());
    assert!(whole.get("elsewhere/file").is_some());
}

#[test]
fn tar_stream_rejects_unsafe_paths() {
    let mut raw = Vec::new();
    let mut h =
        melange2_apk::tar::Header::new("a/../../etc/passwd", melange2_apk::tar::EntryType::File);
    h.size = 1;
    melange2_apk::tar::write_entry(&mut raw, &h, b"x").unwrap();
    melange2_apk::tar::write_end(&mut raw).unwrap();
    let e = PackageTree::from_tar(&raw[..]).unwrap_err();
    assert!(e.to_string().contains(".."), "{e}");
    // dangling hard link
    let mut raw = Vec::new();
    let mut h = melange2_apk::tar::Header::new("b", melange2_apk::tar::EntryType::HardLink);
    h.link = "missing".into();
    melange2_apk::tar::write_header(&mut raw, &h).unwrap();
    melange2_apk::tar::write_end(&mut raw).unwrap();
    let e = PackageTree::from_tar(&raw[..]).unwrap_err();
    assert!(e.to_string().contains("missing"), "{e}");
}

#[test]
fn invalid_metadata_is_refused_and_nothing_is_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bad.apk");
    let mut info = sample_info();
    info.version = "not a version".into();
    let e = write_package(
        &sample_tree(),
        &info,
        &ControlFiles::default(),
        None,
        &opts(1),
        &out,
    )
    .unwrap_err();
    assert!(e.to_string().contains("invalid version"), "{e}");
    let mut info = sample_info();
    info.description = "two\nlines".into();
    assert!(
        write_package(
            &sample_tree(),
            &info,
            &ControlFiles::default(),
            None,
            &opts(1),
            &out
        )
        .is_err()
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn disk_xattrs_long_paths_and_index_trust() {
    let src = tempfile::tempdir().unwrap();
    let long_dir = format!("usr/share/{}", "long-directory-name/".repeat(8));
    std::fs::create_dir_all(src.path().join(&long_dir)).unwrap();
    let long_file = src.path().join(&long_dir).join("file-with-a-long-name.txt");
    std::fs::write(&long_file, "long").unwrap();
    let xattr_ok = xattr::set(&long_file, "user.melange2", b"yes").is_ok();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.apk");
    let w = melange2_apk::write_package_from_dir(
        src.path(),
        &sample_info(),
        &ControlFiles::default(),
        None,
        &opts(2),
        &out,
    )
    .unwrap();
    let entry = w.index_entry();
    let c = melange2_apk::verify_package_from_index(&out, &entry).unwrap();
    let rel = format!("{long_dir}file-with-a-long-name.txt");
    assert!(rel.len() > 150);
    let e = c
        .data
        .entries
        .iter()
        .find(|e| e.path == rel)
        .expect("long path round-trips");
    if xattr_ok {
        assert_eq!(
            e.xattrs.get("user.melange2").map(Vec::as_slice),
            Some(b"yes".as_slice())
        );
    }
    // a record for another build of the package is refused
    let mut other = entry.clone();
    other.checksum = "Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
    let err = melange2_apk::verify_package_from_index(&out, &other).unwrap_err();
    assert!(
        err.to_string()
            .contains("does not match the index checksum"),
        "{err}"
    );
    let mut other = entry;
    other.size += 1;
    assert!(
        melange2_apk::verify_package_from_index(&out, &other)
            .unwrap_err()
            .to_string()
            .contains("size")
    );
}
