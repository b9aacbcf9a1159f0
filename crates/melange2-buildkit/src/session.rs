//! The client session: a gRPC server (health, FileSync, FileSend, Secrets) that runs inside the
//! byte tunnel of `Control.Session`. buildkitd is the gRPC client on that tunnel.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bollard_buildkit_proto::fsutil::types::Packet;
use bollard_buildkit_proto::moby::buildkit::secrets::v1::{
    GetSecretRequest, GetSecretResponse,
    secrets_server::{Secrets, SecretsServer},
};
use bollard_buildkit_proto::moby::buildkit::v1::{BytesMessage, control_client::ControlClient};
use bollard_buildkit_proto::moby::filesync::v1::{
    BytesMessage as FsBytes,
    file_send_server::{FileSend, FileSendServer},
    file_sync_server::{FileSync, FileSyncServer},
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::transport::server::Connected;
use tonic::{Request, Response, Status};

use crate::BuildkitError;
use crate::client::ExportSink;
use crate::filesync::{self, Filters};

/// Max gRPC message size inside the session (the daemon's own limit is 16 MiB).
const MAX_MSG: usize = 32 << 20;

/// What a session serves.
#[derive(Default)]
pub(crate) struct SessionConfig {
    pub dirs: BTreeMap<String, PathBuf>,
    pub secrets: BTreeMap<String, Vec<u8>>,
    /// Sinks for the tar exporters, by index in `SolveRequest.exporters`.
    pub exports: BTreeMap<usize, ExportSink>,
}

/// A running session; dropping it tears everything down.
pub(crate) struct Session {
    pub id: String,
    tasks: Vec<JoinHandle<()>>,
    export_results: Arc<Mutex<Vec<Result<(), String>>>>,
    export_tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    local_bytes_sent: Arc<AtomicU64>,
}

impl Session {
    /// File content bytes sent to the daemon for local sources so far.
    pub fn local_bytes_sent(&self) -> u64 {
        self.local_bytes_sent.load(Ordering::Relaxed)
    }

    /// Open `Control.Session` and serve `cfg` on it.
    pub async fn start(
        control: &ControlClient<Channel>,
        cfg: SessionConfig,
        shared_key: &str,
    ) -> Result<Self, BuildkitError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (client_half, server_half) = tokio::io::duplex(256 * 1024);

        let export_results = Arc::new(Mutex::new(Vec::new()));
        let local_bytes_sent = Arc::new(AtomicU64::new(0));
        let export_tasks = Arc::new(Mutex::new(Vec::new()));
        let mut methods = vec![
            "/grpc.health.v1.Health/Check",
            "/grpc.health.v1.Health/Watch",
            "/moby.filesync.v1.FileSync/DiffCopy",
            "/moby.buildkit.secrets.v1.Secrets/GetSecret",
        ];
        if !cfg.exports.is_empty() {
            methods.push("/moby.filesync.v1.FileSend/DiffCopy");
        }

        let (health_reporter, health) = tonic_health::server::health_reporter();
        let fsync = FileSyncServer::new(FileSyncSvc {
            dirs: Arc::new(cfg.dirs),
            sent: local_bytes_sent.clone(),
        })
        .max_decoding_message_size(MAX_MSG)
        .max_encoding_message_size(MAX_MSG);
        let fsend = FileSendServer::new(FileSendSvc {
            sinks: Arc::new(Mutex::new(cfg.exports)),
            results: export_results.clone(),
            tasks: export_tasks.clone(),
        })
        .max_decoding_message_size(MAX_MSG)
        .max_encoding_message_size(MAX_MSG);
        let secrets = SecretsServer::new(SecretsSvc {
            secrets: Arc::new(cfg.secrets),
        });

        let server = tokio::spawn(async move {
            let _keep = health_reporter;
            let incoming = tokio_stream::once(Ok::<_, std::io::Error>(TunnelConn(server_half)));
            let r = tonic::transport::Server::builder()
                .add_service(health)
                .add_service(fsync)
                .add_service(fsend)
                .add_service(secrets)
                .serve_with_incoming(incoming)
                .await;
            if let Err(e) = r {
                tracing::debug!("session server ended: {e}");
            }
        });

        // Outbound: bytes our server writes become BytesMessages to the daemon.
        let (mut tunnel_read, mut tunnel_write) = tokio::io::split(client_half);
        let (out_tx, out_rx) = mpsc::channel::<BytesMessage>(16);
        let outbound = tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match tunnel_read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let msg = BytesMessage {
                            data: buf[..n].to_vec(),
                        };
                        if out_tx.send(msg).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });

        let mut req = Request::new(ReceiverStream::new(out_rx));
        let md = req.metadata_mut();
        let val = |s: &str| {
            s.parse::<tonic::metadata::MetadataValue<_>>()
                .map_err(|e| BuildkitError::Session(format!("bad header value {s:?}: {e}")))
        };
        md.insert("x-docker-expose-session-uuid", val(&id)?);
        md.insert("x-docker-expose-session-name", val("melange2")?);
        md.insert("x-docker-expose-session-sharedkey", val(shared_key)?);
        for m in methods {
            md.append("x-docker-expose-session-grpc-method", val(m)?);
        }
        let mut control = control.clone();
        let resp = control.session(req).await.map_err(|s| BuildkitError::Rpc {
            call: "Session",
            status: Box::new(s),
        })?;
        let mut inbound = resp.into_inner();
        let inbound_task = tokio::spawn(async move {
            while let Ok(Some(msg)) = inbound.message().await {
                if tunnel_write.write_all(&msg.data).await.is_err() {
                    break;
                }
            }
            let _ = tunnel_write.shutdown().await;
        });

        Ok(Self {
            id,
            tasks: vec![server, outbound, inbound_task],
            export_results,
            export_tasks,
            local_bytes_sent,
        })
    }

    /// Wait for the exporters' writers to finish and report their errors.
    pub async fn finish_exports(&self) -> Result<(), BuildkitError> {
        let tasks: Vec<_> = match self.export_tasks.lock() {
            Ok(mut t) => t.drain(..).collect(),
            Err(_) => vec![],
        };
        for t in tasks {
            let _ = t.await;
        }
        let results = match self.export_results.lock() {
            Ok(r) => r.clone(),
            Err(_) => vec![],
        };
        for r in results {
            r.map_err(BuildkitError::Export)?;
        }
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The server end of the tunnel, as a connection tonic can serve.
struct TunnelConn(DuplexStream);

impl Connected for TunnelConn {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for TunnelConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TunnelConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Header values, URL-decoded when the daemon says they are encoded.
fn header_values(md: &tonic::metadata::MetadataMap, key: &str) -> Vec<String> {
    let encoded = md
        .get(format!("{key}-encoded").as_str())
        .and_then(|v| v.to_str().ok())
        == Some("1");
    md.get_all(key)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| {
            if encoded {
                percent_decode(v)
            } else {
                v.to_string()
            }
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(v) => {
                    out.push(v);
                    i += 3;
                }
                Err(_) => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct FileSyncSvc {
    dirs: Arc<BTreeMap<String, PathBuf>>,
    sent: Arc<AtomicU64>,
}

type PacketStream = ReceiverStream<Result<Packet, Status>>;

#[tonic::async_trait]
impl FileSync for FileSyncSvc {
    type DiffCopyStream = PacketStream;
    type TarStreamStream = PacketStream;

    async fn diff_copy(
        &self,
        request: Request<tonic::Streaming<Packet>>,
    ) -> Result<Response<Self::DiffCopyStream>, Status> {
        let md = request.metadata();
        let name = header_values(md, "dir-name")
            .into_iter()
            .next()
            .unwrap_or_default();
        let root = self
            .dirs
            .get(&name)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("no access allowed to dir {name:?}")))?;
        let filters = Filters {
            include: header_values(md, "include-patterns"),
            exclude: header_values(md, "exclude-patterns"),
            follow: header_values(md, "followpaths"),
        };
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(64);
        let sent = self.sent.clone();
        tokio::spawn(async move {
            if let Err(e) = filesync::serve(root, filters, inbound, tx.clone(), sent).await {
                tracing::warn!("filesync {name}: {e}");
                let _ = tx.send(Err(e)).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn tar_stream(
        &self,
        _request: Request<tonic::Streaming<Packet>>,
    ) -> Result<Response<Self::TarStreamStream>, Status> {
        Err(Status::unimplemented(
            "TarStream is not supported; use diffcopy",
        ))
    }
}

struct FileSendSvc {
    sinks: Arc<Mutex<BTreeMap<usize, ExportSink>>>,
    results: Arc<Mutex<Vec<Result<(), String>>>>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

#[tonic::async_trait]
impl FileSend for FileSendSvc {
    type DiffCopyStream = ReceiverStream<Result<FsBytes, Status>>;

    async fn diff_copy(
        &self,
        request: Request<tonic::Streaming<FsBytes>>,
    ) -> Result<Response<Self::DiffCopyStream>, Status> {
        let id: usize = header_values(request.metadata(), "buildkit-attachable-exporter-id")
            .first()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut sink = self
            .sinks
            .lock()
            .map_err(|_| Status::internal("exporter table poisoned"))?
            .remove(&id)
            .ok_or_else(|| Status::not_found(format!("no output expected for exporter {id}")))?;
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(1);
        let results = self.results.clone();
        let task = tokio::spawn(async move {
            let r: Result<(), String> = async {
                while let Some(msg) = inbound.message().await.map_err(|e| e.to_string())? {
                    sink.write_all(&msg.data).await.map_err(|e| e.to_string())?;
                }
                sink.shutdown().await.map_err(|e| e.to_string())
            }
            .await;
            if let Err(e) = &r {
                let _ = tx.send(Err(Status::internal(e.clone()))).await;
            }
            if let Ok(mut v) = results.lock() {
                v.push(r);
            }
            drop(tx);
        });
        if let Ok(mut t) = self.tasks.lock() {
            t.push(task);
        }
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

struct SecretsSvc {
    secrets: Arc<BTreeMap<String, Vec<u8>>>,
}

#[tonic::async_trait]
impl Secrets for SecretsSvc {
    async fn get_secret(
        &self,
        request: Request<GetSecretRequest>,
    ) -> Result<Response<GetSecretResponse>, Status> {
        let id = request.into_inner().id;
        match self.secrets.get(&id) {
            Some(data) => Ok(Response::new(GetSecretResponse { data: data.clone() })),
            None => Err(Status::not_found(format!("secret {id} not found"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn decode() {
        assert_eq!(percent_decode("a%2Fb%C3%A9+c"), "a/bé c");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
