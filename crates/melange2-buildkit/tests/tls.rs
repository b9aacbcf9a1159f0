//! tcp:// with mutual TLS against a daemon of the test's own: a named buildkitd
//! (`scripts/buildkit.sh start NAME` with `MELANGE2_BUILDKIT_TLS_LISTEN`) listening on a free
//! port of 127.0.0.1 with certificates made here with rcgen. Nothing depends on `BUILDKIT_HOST`:
//! when the daemon cannot be started the test fails.

mod support;

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::Path;

use melange2_buildkit::{Address, Client, TlsFiles};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use support::Daemon;

/// A CA that signs certificates into `dir` as `<name>.pem` and `<name>-key.pem`.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(cn: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, cn);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    fn write_ca(&self, dir: &Path, file: &str) {
        std::fs::write(dir.join(file), self.issuer.pem()).unwrap();
    }

    fn sign(&self, dir: &Path, name: &str, usage: ExtendedKeyUsagePurpose) {
        let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        p.subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        p.distinguished_name.push(DnType::CommonName, name);
        p.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}-key.pem")), key.serialize_pem()).unwrap();
    }
}

/// A port of 127.0.0.1 nothing listens on right now.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Certificates in `dir`: `ca.pem` with `server.pem` and `client.pem` it signed, and
/// `other-ca.pem` with `stranger.pem`, a client certificate of a CA the daemon does not trust.
fn certificates(dir: &Path) {
    let ca = Ca::new("melange2 test CA");
    ca.write_ca(dir, "ca.pem");
    ca.sign(dir, "server", ExtendedKeyUsagePurpose::ServerAuth);
    ca.sign(dir, "client", ExtendedKeyUsagePurpose::ClientAuth);
    let other = Ca::new("another CA");
    other.write_ca(dir, "other-ca.pem");
    other.sign(dir, "stranger", ExtendedKeyUsagePurpose::ClientAuth);
}

fn files(dir: &Path, ca: &str, client: Option<&str>) -> TlsFiles {
    TlsFiles {
        ca: Some(dir.join(ca)),
        cert: client.map(|c| dir.join(format!("{c}.pem"))),
        key: client.map(|c| dir.join(format!("{c}-key.pem"))),
        server_name: None,
    }
}

async fn refused(addr: &Address, tls: &TlsFiles, what: &str) -> String {
    let err = Client::connect(addr, tls)
        .await
        .err()
        .unwrap_or_else(|| panic!("{what}: the connection was accepted"))
        .to_string();
    assert!(
        err.contains(&format!("cannot connect to buildkitd at {addr}")),
        "{what}: {err}"
    );
    err
}

#[tokio::test]
async fn mtls_accepts_our_client_certificate_and_refuses_the_others() {
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path());
    let listen = format!("tcp://127.0.0.1:{}", free_port());
    let daemon = Daemon::start_tls("mtls", &listen, certs.path());
    let addr = Address::parse(&listen).unwrap();
    let dir = certs.path();

    let c = Client::connect(&addr, &files(dir, "ca.pem", Some("client")))
        .await
        .unwrap_or_else(|e| panic!("mTLS connect to {listen}: {e}"));
    assert!(c.daemon().version.starts_with('v'), "{:?}", c.daemon());
    assert!(!c.workers().await.unwrap().is_empty());

    // No client certificate: the daemon requires one, and the message says which flag.
    let err = refused(&addr, &files(dir, "ca.pem", None), "no client certificate").await;
    assert!(err.contains("--tlscert"), "{err}");
    // A client certificate of a CA the daemon does not trust.
    refused(
        &addr,
        &files(dir, "ca.pem", Some("stranger")),
        "untrusted client",
    )
    .await;
    // The daemon's certificate checked against a CA that did not sign it.
    refused(
        &addr,
        &files(dir, "other-ca.pem", Some("client")),
        "untrusted server",
    )
    .await;
    // Plain HTTP/2 to a TLS listener.
    refused(&addr, &TlsFiles::default(), "plaintext").await;
    drop(daemon);
}

#[tokio::test]
async fn missing_tls_file_is_named() {
    let tls = TlsFiles {
        ca: Some("/nonexistent/ca.pem".into()),
        ..Default::default()
    };
    let addr = Address::parse("tcp://127.0.0.1:1").unwrap();
    let err = Client::connect(&addr, &tls)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
}
