//! Daemon addresses (`unix://`, `tcp://`, `docker-container://`) and how to reach them.

use std::path::PathBuf;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Uri};

use crate::BuildkitError;

/// Where buildkitd listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// A unix socket.
    Unix(PathBuf),
    /// A TCP address (`host:port`), plaintext or TLS.
    Tcp(String),
    /// A buildkitd inside a container, reached with `docker exec -i NAME buildctl dial-stdio`.
    DockerContainer {
        /// Container name.
        name: String,
        /// Docker context (`?context=`), if any.
        context: Option<String>,
    },
}

/// TLS material for `tcp://` addresses (mTLS when a client certificate is given).
#[derive(Clone, Debug, Default)]
pub struct TlsFiles {
    /// CA certificate that signed the daemon's certificate.
    pub ca: Option<PathBuf>,
    /// Client certificate.
    pub cert: Option<PathBuf>,
    /// Client key.
    pub key: Option<PathBuf>,
    /// Server name to verify (default: the host of the address).
    pub server_name: Option<String>,
}

impl TlsFiles {
    fn is_set(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some()
    }
}

/// The default address buildctl uses on Linux.
pub const DEFAULT_ADDRESS: &str = "unix:///run/buildkit/buildkitd.sock";

impl Address {
    /// Parse an address such as `unix:///run/buildkit/buildkitd.sock`, `tcp://host:1234` or
    /// `docker-container://buildkitd`.
    pub fn parse(s: &str) -> Result<Self, BuildkitError> {
        let err = |reason: &str| BuildkitError::Address {
            addr: s.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| err("missing scheme; use unix://, tcp:// or docker-container://"))?;
        match scheme {
            "unix" => {
                if rest.is_empty() {
                    return Err(err("empty socket path"));
                }
                Ok(Address::Unix(PathBuf::from(rest)))
            }
            "tcp" => {
                let hostport = rest.trim_end_matches('/');
                let (host, port) = hostport
                    .rsplit_once(':')
                    .ok_or_else(|| err("tcp address needs host:port"))?;
                if host.is_empty() || port.parse::<u16>().is_err() {
                    return Err(err("tcp address needs host:port with a numeric port"));
                }
                Ok(Address::Tcp(hostport.to_string()))
            }
            "docker-container" => {
                let (name, query) = match rest.split_once('?') {
                    Some((n, q)) => (n, Some(q)),
                    None => (rest, None),
                };
                let name = name.trim_end_matches('/');
                if name.is_empty() {
                    return Err(err("missing container name"));
                }
                let context = query.and_then(|q| {
                    q.split('&')
                        .find_map(|kv| kv.strip_prefix("context="))
                        .map(str::to_string)
                });
                Ok(Address::DockerContainer {
                    name: name.to_string(),
                    context,
                })
            }
            other => Err(err(&format!(
                "unsupported scheme {other:?}; use unix://, tcp:// or docker-container://"
            ))),
        }
    }

    /// `$BUILDKIT_HOST` if set, else the default socket.
    pub fn from_env() -> Result<Self, BuildkitError> {
        match std::env::var(crate::BUILDKIT_HOST_ENV) {
            Ok(v) if !v.is_empty() => Self::parse(&v),
            _ => Self::parse(DEFAULT_ADDRESS),
        }
    }

    /// Open a gRPC channel to the daemon within `timeout`.
    pub(crate) async fn channel(
        &self,
        tls: &TlsFiles,
        timeout: Duration,
    ) -> Result<Channel, BuildkitError> {
        let shown = self.to_string();
        let connect_err = |reason: String| BuildkitError::Connect {
            addr: shown.clone(),
            reason,
        };
        let fut = async {
            match self {
                Address::Unix(path) => {
                    let path = path.clone();
                    Endpoint::try_from("http://localhost")
                        .map_err(|e| connect_err(e.to_string()))?
                        .connect_timeout(timeout)
                        .connect_with_connector(tower::service_fn(move |_: Uri| {
                            let p = path.clone();
                            async move {
                                let s = tokio::net::UnixStream::connect(p).await?;
                                Ok::<_, std::io::Error>(TokioIo::new(s))
                            }
                        }))
                        .await
                        .map_err(|e| connect_err(error_chain(&e)))
                }
                Address::Tcp(hostport) => {
                    let scheme = if tls.is_set() { "https" } else { "http" };
                    let mut ep = Endpoint::from_shared(format!("{scheme}://{hostport}"))
                        .map_err(|e| connect_err(e.to_string()))?
                        .connect_timeout(timeout);
                    if tls.is_set() {
                        ep = ep
                            .tls_config(tls_config(tls, hostport)?)
                            .map_err(|e| connect_err(error_chain(&e)))?;
                    }
                    ep.connect().await.map_err(|e| connect_err(error_chain(&e)))
                }
                Address::DockerContainer { name, context } => {
                    let name = name.clone();
                    let context = context.clone();
                    Endpoint::try_from("http://localhost")
                        .map_err(|e| connect_err(e.to_string()))?
                        .connect_timeout(timeout)
                        .connect_with_connector(tower::service_fn(move |_: Uri| {
                            let name = name.clone();
                            let context = context.clone();
                            async move { dial_stdio(&name, context.as_deref()) }
                        }))
                        .await
                        .map_err(|e| connect_err(error_chain(&e)))
                }
            }
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(BuildkitError::Timeout {
                addr: self.to_string(),
                secs: timeout.as_secs(),
                what: "connect".into(),
            }),
        }
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "unix://{}", p.display()),
            Address::Tcp(h) => write!(f, "tcp://{h}"),
            Address::DockerContainer { name, context } => {
                write!(f, "docker-container://{name}")?;
                if let Some(c) = context {
                    write!(f, "?context={c}")?;
                }
                Ok(())
            }
        }
    }
}

fn read_tls(path: &PathBuf) -> Result<Vec<u8>, BuildkitError> {
    std::fs::read(path).map_err(|source| BuildkitError::TlsFile {
        path: path.display().to_string(),
        source,
    })
}

fn tls_config(tls: &TlsFiles, hostport: &str) -> Result<ClientTlsConfig, BuildkitError> {
    let mut cfg = ClientTlsConfig::new();
    if let Some(ca) = &tls.ca {
        cfg = cfg.ca_certificate(Certificate::from_pem(read_tls(ca)?));
    }
    match (&tls.cert, &tls.key) {
        (Some(c), Some(k)) => {
            cfg = cfg.identity(Identity::from_pem(read_tls(c)?, read_tls(k)?));
        }
        (None, None) => {}
        _ => {
            return Err(BuildkitError::Address {
                addr: format!("tcp://{hostport}"),
                reason: "a client certificate needs both --tlscert and --tlskey".into(),
            });
        }
    }
    let host = hostport
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(hostport)
        .trim_start_matches('[')
        .trim_end_matches(']');
    Ok(cfg.domain_name(tls.server_name.clone().unwrap_or_else(|| host.to_string())))
}

/// Spawn `docker exec -i NAME buildctl dial-stdio` and use its stdio as the connection.
fn dial_stdio(
    name: &str,
    context: Option<&str>,
) -> Result<
    TokioIo<tokio::io::Join<tokio::process::ChildStdout, tokio::process::ChildStdin>>,
    std::io::Error,
> {
    let mut cmd = tokio::process::Command::new("docker");
    if let Some(c) = context {
        cmd.arg(format!("--context={c}"));
    }
    cmd.args(["exec", "-i", name, "buildctl", "dial-stdio"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    let mut child = cmd.spawn().map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot run `docker exec` for {name}: {e}"),
        )
    })?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("docker exec: no stdout"))?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("docker exec: no stdin"))?;
    // The child keeps running after its handle is dropped; it ends when the pipe closes.
    drop(child);
    Ok(TokioIo::new(tokio::io::join(stdout, stdin)))
}

/// Render an error with its sources (tonic's transport errors hide the useful part there).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_addresses() {
        assert_eq!(
            Address::parse("unix:///run/buildkit/buildkitd.sock").unwrap(),
            Address::Unix("/run/buildkit/buildkitd.sock".into())
        );
        assert_eq!(
            Address::parse("tcp://localhost:1234").unwrap(),
            Address::Tcp("localhost:1234".into())
        );
        assert_eq!(
            Address::parse("docker-container://bk?context=remote").unwrap(),
            Address::DockerContainer {
                name: "bk".into(),
                context: Some("remote".into())
            }
        );
        for bad in [
            "localhost:1234",
            "http://x:1",
            "tcp://nohost",
            "tcp://h:port",
            "unix://",
            "docker-container://",
        ] {
            let e = Address::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
        assert!(
            Address::parse("ftp://x")
                .unwrap_err()
                .to_string()
                .contains("unsupported scheme \"ftp\"")
        );
    }
}
