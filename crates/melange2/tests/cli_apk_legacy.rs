//! `melange2 verify` on packages without a `datahash` (the older APK v2 layout, where the
//! signature covers the control and the data members together; docs/apk.md): such a
//! package is trusted only when that signature is by a key of the keyring and still
//! matches the data. Dropping `datahash` must never be a way around the signature check.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use melange2_apk::tar::{self, EntryType, Header};
use melange2_apk::writer::{control_member, signature_member};
use melange2_apk::{ControlFiles, PkgInfo, SignatureAlgorithm, SigningKey, generate_key_files};

/// The data member: one file (with its SHA-1 record) in a gzip'ed tar.
fn data_member(content: &[u8]) -> Vec<u8> {
    let mut h = Header::new("usr/share/legacy/README", EntryType::File);
    h.mode = 0o644;
    let mut sha1 = melange2_apk::keys::MultiDigest::new();
    sha1.update(content);
    h.pax.insert(
        tar::PAX_CHECKSUM.into(),
        hex::encode(sha1.finish().sha1).into_bytes(),
    );
    let mut t = Vec::new();
    tar::write_entry(&mut t, &h, content).expect("tar entry");
    tar::write_end(&mut t).expect("tar end");
    melange2_apk::gzip::compress(&t, Default::default()).expect("gzip")
}

/// A package without `datahash`: signature (by `key`, over control + `signed_data`, when
/// given) + control + `data`.
fn legacy_apk(key: Option<&SigningKey>, signed_data: &[u8], data: &[u8]) -> Vec<u8> {
    let info = PkgInfo::new("legacy", "1.0-r0", "x86_64");
    assert!(info.datahash.is_empty());
    let control = control_member(&info, &ControlFiles::default(), 0, Default::default())
        .expect("control member");
    let mut out = Vec::new();
    if let Some(k) = key {
        let mut signed = control.clone();
        signed.extend_from_slice(signed_data);
        let algs = [SignatureAlgorithm::RsaSha1, SignatureAlgorithm::RsaSha256];
        out = signature_member(k, &algs, &signed, 0).expect("signature member");
    }
    out.extend_from_slice(&control);
    out.extend_from_slice(data);
    out
}

fn verify(dir: &Path, key: &Path, apk: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_melange2"))
        .arg("verify")
        .arg("--keyring")
        .arg(key)
        .arg(apk)
        .current_dir(dir)
        .output()
        .expect("run melange2")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

struct Keys {
    trusted: SigningKey,
    trusted_pub: PathBuf,
    other: SigningKey,
}

fn keys(dir: &Path) -> Keys {
    let trusted = generate_key_files(&dir.join("trusted.rsa"), 2048).expect("key");
    let other = generate_key_files(&dir.join("other.rsa"), 2048).expect("key");
    Keys {
        trusted,
        trusted_pub: dir.join("trusted.rsa.pub"),
        other,
    }
}

#[test]
fn packages_without_datahash_still_need_a_trusted_signature() {
    let d = tempfile::tempdir().unwrap();
    let k = keys(d.path());
    let data = data_member(b"legacy payload\n");
    let write = |name: &str, bytes: Vec<u8>| -> PathBuf {
        let p = d.path().join(name);
        std::fs::write(&p, bytes).expect("write package");
        p
    };

    // Signed by the trusted key over control + data: accepted, and says by which key.
    let good = write("good.apk", legacy_apk(Some(&k.trusted), &data, &data));
    let o = verify(d.path(), &k.trusted_pub, &good);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout).trim_end(),
        format!(
            "{}: OK (legacy-1.0-r0, signed by trusted.rsa.pub)",
            good.display()
        )
    );

    let refused = |p: &Path, why: &str| {
        let o = verify(d.path(), &k.trusted_pub, p);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{} accepted: {err}", p.display());
        assert!(
            err.contains(&format!("{}: verification failed: {why}", p.display())),
            "{err}"
        );
        assert!(err.contains("1 of 1 files failed verification"), "{err}");
    };
    // Not signed at all.
    let unsigned = write("unsigned.apk", legacy_apk(None, &data, &data));
    refused(&unsigned, "not signed");
    // Signed, but by a key the keyring does not hold.
    let foreign = write("foreign.apk", legacy_apk(Some(&k.other), &data, &data));
    refused(&foreign, "no signature by a trusted key");
    // Signed by the trusted key, then the data swapped for other (well-formed) data: the
    // signature no longer matches.
    let other_data = data_member(b"something else\n");
    let swapped = write(
        "swapped.apk",
        legacy_apk(Some(&k.trusted), &data, &other_data),
    );
    refused(
        &swapped,
        "signature by trusted.rsa.pub (RSA), trusted.rsa.pub (RSA256) does not match",
    );
}
