mod common;

use std::process::Command;

use melange2_apk::{Keyring, SignatureAlgorithm, SigningKey, generate_key, generate_key_files};

#[test]
fn keygen_writes_pkcs1_private_and_pkix_public_pem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("melange.rsa");
    let key = generate_key_files(&path, 2048).unwrap();
    assert_eq!(key.public_key_name(), "melange.rsa.pub");
    let private = std::fs::read_to_string(&path).unwrap();
    let public = std::fs::read_to_string(dir.path().join("melange.rsa.pub")).unwrap();
    assert!(private.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // openssl agrees on the key material
    let o = Command::new("openssl")
        .args(["rsa", "-check", "-noout", "-in"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new("openssl")
        .args(["rsa", "-pubout", "-in"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), public);
    let o = Command::new("openssl")
        .args(["rsa", "-text", "-noout", "-in"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("2048 bit"));
    // sign with our key, verify with openssl
    let msg = dir.path().join("msg");
    std::fs::write(&msg, b"hello").unwrap();
    let sig = key.sign(SignatureAlgorithm::RsaSha256, b"hello").unwrap();
    assert_eq!(sig.len(), 256);
    std::fs::write(dir.path().join("sig"), &sig).unwrap();
    let o = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(dir.path().join("melange.rsa.pub"))
        .arg("-signature")
        .arg(dir.path().join("sig"))
        .arg(&msg)
        .output()
        .unwrap();
    assert!(o.status.success());
    // reload round trip
    let again = SigningKey::load(&path).unwrap();
    assert_eq!(again.public_key_pem().unwrap(), public);
}

#[test]
fn key_errors_are_clear() {
    assert!(
        generate_key(1024, "small.rsa")
            .unwrap_err()
            .to_string()
            .contains("too small")
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.rsa");
    std::fs::write(&p, "not a key").unwrap();
    let e = SigningKey::load(&p).unwrap_err().to_string();
    assert!(
        e.contains("bad.rsa") && e.contains("not a PEM RSA private key"),
        "{e}"
    );
    let e = SigningKey::load(&dir.path().join("missing.rsa"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.rsa"), "{e}");
    // encrypted legacy PEM
    let enc = dir.path().join("enc.rsa");
    let o = Command::new("openssl")
        .args([
            "genrsa",
            "-traditional",
            "-aes128",
            "-passout",
            "pass:x",
            "-out",
        ])
        .arg(&enc)
        .arg("2048")
        .output()
        .unwrap();
    assert!(o.status.success());
    let e = SigningKey::load(&enc).unwrap_err().to_string();
    assert!(e.contains("encrypted"), "{e}");
    // keyring rejects private keys and garbage
    let mut k = Keyring::new();
    assert!(k.add_pem("x.rsa.pub", "garbage").is_err());
    // PKCS#8 private keys from openssl 3 load
    let k8 = SigningKey::load(&common::other_key().private).unwrap();
    assert_eq!(k8.public_key_name(), "other.rsa.pub");
    // keyring lookup also accepts names without .rsa.pub
    let mut ring = Keyring::new();
    ring.add_file(&common::other_key().public).unwrap();
    assert!(ring.get("other.rsa.pub").is_some());
    assert!(ring.get("other").is_some());
    assert!(ring.get("another.rsa.pub").is_none());
}
