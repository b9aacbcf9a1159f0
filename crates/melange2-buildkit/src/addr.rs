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

    /// Open a gRPC channel to the daemon within `timeout`; for `docker-container://`, also how
    /// `docker` ended if it did (for the error when the first call finds the transport broken).
    pub(crate) async fn channel(
        &self,
        tls: &TlsFiles,
        timeout: Duration,
    ) -> Result<(Channel, Option<DockerExit>), BuildkitError> {
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
                        .map(|c| (c, None))
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
                    ep.connect()
                        .await
                        .map(|c| (c, None))
                        .map_err(|e| connect_err(error_chain(&e)))
                }
                Address::DockerContainer { name, context } => {
                    let exited = DockerExit::new(docker_argv(name, context.as_deref()));
                    let x = exited.clone();
                    let r = Endpoint::try_from("http://localhost")
                        .map_err(|e| connect_err(e.to_string()))?
                        .connect_timeout(timeout)
                        .connect_with_connector(tower::service_fn(move |_: Uri| {
                            let x = x.clone();
                            async move { dial_stdio(&x) }
                        }))
                        .await;
                    match r {
                        Ok(ch) => Ok((ch, Some(exited))),
                        // docker's own words say more than the broken pipe it leaves behind
                        Err(e) => Err(connect_err(
                            exited.reason().await.unwrap_or_else(|| error_chain(&e)),
                        )),
                    }
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

/// The command a `docker-container://NAME[?context=CTX]` address runs: `docker
/// [--context=CTX] exec -i NAME buildctl dial-stdio` (as buildctl and buildx do).
pub fn docker_argv(name: &str, context: Option<&str>) -> Vec<String> {
    let mut argv = vec!["docker".to_string()];
    if let Some(c) = context {
        argv.push(format!("--context={c}"));
    }
    argv.extend(["exec", "-i", name, "buildctl", "dial-stdio"].map(str::to_string));
    argv
}

/// Most of docker's stderr kept for an error message.
const DOCKER_STDERR_MAX: usize = 4096;

/// What `docker exec` ran, and how it ended once it has: its status and the start of its
/// stderr.
#[derive(Clone)]
pub(crate) struct DockerExit {
    argv: Vec<String>,
    ended: std::sync::Arc<std::sync::Mutex<Option<(std::process::ExitStatus, String)>>>,
}

impl DockerExit {
    fn new(argv: Vec<String>) -> DockerExit {
        DockerExit {
            argv,
            ended: Default::default(),
        }
    }

    fn set(&self, status: std::process::ExitStatus, stderr: String) {
        if let Ok(mut g) = self.ended.lock() {
            *g = Some((status, stderr));
        }
    }

    /// Why the connection failed, if `docker` exited (waiting a moment for it to be reaped).
    pub(crate) async fn reason(&self) -> Option<String> {
        let argv = &self.argv;
        for _ in 0..40 {
            let got = self.ended.lock().ok().and_then(|g| g.clone());
            if let Some((status, stderr)) = got {
                let said = stderr.trim();
                let said = if said.is_empty() {
                    "nothing on stderr"
                } else {
                    said
                };
                return Some(format!("`{}` failed ({status}): {said}", argv.join(" ")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

/// Spawn `exited.argv` (see [`docker_argv`]) and use its stdio as the connection; its stderr
/// and exit status go to `exited`.
fn dial_stdio(
    exited: &DockerExit,
) -> Result<
    TokioIo<tokio::io::Join<tokio::process::ChildStdout, tokio::process::ChildStdin>>,
    std::io::Error,
> {
    use tokio::io::AsyncReadExt as _;
    let argv = &exited.argv;
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        let why = if e.kind() == std::io::ErrorKind::NotFound {
            "docker is not installed (no `docker` on PATH)".to_string()
        } else {
            format!("cannot run docker: {e}")
        };
        std::io::Error::new(
            e.kind(),
            format!("{why}; needed to run `{}`", argv.join(" ")),
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
    let stderr = child.stderr.take();
    let exited = exited.clone();
    // The child runs as long as the connection; this task reaps it and keeps what it said.
    tokio::spawn(async move {
        let mut said = Vec::new();
        if let Some(mut e) = stderr {
            let mut buf = [0u8; 1024];
            while let Ok(n) = e.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let room = DOCKER_STDERR_MAX.saturating_sub(said.len());
                said.extend_from_slice(&buf[..n.min(room)]);
            }
        }
        match child.wait().await {
            Ok(status) => exited.set(status, String::from_utf8_lossy(&said).into_owned()),
            Err(e) => tracing::debug!(error = %e, "cannot wait for docker exec"),
        }
    });
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
        assert_eq!(
            docker_argv("bk", Some("remote")),
            [
                "docker",
                "--context=remote",
                "exec",
                "-i",
                "bk",
                "buildctl",
                "dial-stdio"
            ]
        );
        assert_eq!(
            docker_argv("bk", None),
            ["docker", "exec", "-i", "bk", "buildctl", "dial-stdio"]
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
