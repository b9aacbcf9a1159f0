//! tcp:// with mutual TLS against the daemon of `make test` (scripts/buildkit.sh gives it a
//! TLS listener and a throwaway CA; `eval "$(scripts/buildkit.sh env)"` names them).

use std::path::PathBuf;

use melange2_buildkit::{Address, Client, TlsFiles};

fn tls_env() -> Option<(Address, PathBuf)> {
    let addr = std::env::var("MELANGE2_BUILDKIT_TLS_ADDR").ok();
    let dir = std::env::var("MELANGE2_BUILDKIT_TLS_DIR").ok();
    match (addr, dir) {
        (Some(a), Some(d)) => Some((Address::parse(&a).unwrap(), PathBuf::from(d))),
        _ if std::env::var("MELANGE2_OWN_DAEMON").is_ok() => {
            panic!("make test runs its own daemon but MELANGE2_BUILDKIT_TLS_* are not set")
        }
        _ => None,
    }
}

#[tokio::test]
async fn mtls_connects_with_a_client_certificate() {
    let Some((addr, dir)) = tls_env() else {
        eprintln!("skipped: BUILDKIT_HOST is an outside daemon without our TLS listener");
        return;
    };
    let tls = TlsFiles {
        ca: Some(dir.join("ca.pem")),
        cert: Some(dir.join("client.pem")),
        key: Some(dir.join("client-key.pem")),
        server_name: None,
    };
    let c = Client::connect(&addr, &tls).await.expect("mTLS connect");
    assert!(c.daemon().version.starts_with('v'));
    assert!(!c.workers().await.unwrap().is_empty());
}

#[tokio::test]
async fn mtls_without_client_certificate_is_refused_clearly() {
    let Some((addr, dir)) = tls_env() else {
        eprintln!("skipped: BUILDKIT_HOST is an outside daemon without our TLS listener");
        return;
    };
    let tls = TlsFiles {
        ca: Some(dir.join("ca.pem")),
        ..Default::default()
    };
    let err = Client::connect(&addr, &tls)
        .await
        .err()
        .expect("client cert required")
        .to_string();
    assert!(
        err.contains("cannot connect to buildkitd at tcp://"),
        "{err}"
    );
    assert!(err.contains("--tlscert"), "{err}");
}

#[tokio::test]
async fn tls_with_unknown_ca_is_refused() {
    let Some((addr, dir)) = tls_env() else {
        eprintln!("skipped: BUILDKIT_HOST is an outside daemon without our TLS listener");
        return;
    };
    // The client certificate is not a CA of the server's chain.
    let tls = TlsFiles {
        ca: Some(dir.join("client.pem")),
        cert: Some(dir.join("client.pem")),
        key: Some(dir.join("client-key.pem")),
        server_name: None,
    };
    let err = Client::connect(&addr, &tls)
        .await
        .err()
        .expect("untrusted server")
        .to_string();
    assert!(
        err.contains("cannot connect to buildkitd at tcp://"),
        "{err}"
    );
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
