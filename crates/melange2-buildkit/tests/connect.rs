//! Connection failures: each gives a clear error within a bounded time, never a hang.
//! These tests run their own fake peers on unix sockets; they do not need buildkitd.

use std::time::{Duration, Instant};

use bollard_buildkit_proto::moby::buildkit::v1::{
    self as pb,
    control_server::{Control, ControlServer},
};
use melange2_buildkit::{Address, BuildkitError, Client, TlsFiles};
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Request, Response, Status};

const SHORT: Duration = Duration::from_secs(2);

async fn connect(addr: &Address) -> Result<Client, BuildkitError> {
    Client::connect_with_timeout(addr, &TlsFiles::default(), SHORT, SHORT).await
}

#[tokio::test]
async fn missing_socket_is_a_connect_error() {
    let d = tempfile::tempdir().unwrap();
    let addr = Address::Unix(d.path().join("nothing.sock"));
    let err = connect(&addr)
        .await
        .err()
        .expect("no daemon there")
        .to_string();
    assert!(err.contains("cannot connect to buildkitd"), "{err}");
    assert!(err.contains("nothing.sock"), "{err}");
}

#[tokio::test]
async fn closed_tcp_port_is_a_connect_error() {
    // Bind then drop a listener to get a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = Address::parse(&format!("tcp://127.0.0.1:{port}")).unwrap();
    let started = Instant::now();
    let err = connect(&addr)
        .await
        .err()
        .expect("port is closed")
        .to_string();
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn wrong_scheme_is_refused() {
    let err = Address::parse("http://localhost:1234")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unsupported scheme \"http\""), "{err}");
}

#[tokio::test]
async fn silent_peer_times_out() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("silent.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    // Accept connections and never answer.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let started = Instant::now();
    let err = connect(&Address::Unix(path))
        .await
        .err()
        .expect("a silent peer is not a daemon");
    assert!(
        matches!(
            err,
            BuildkitError::Timeout { .. } | BuildkitError::Connect { .. }
        ),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "bounded");
    holder.abort();
}

/// A daemon that only speaks grpc health: no Control service, as before BuildKit v0.11.
#[tokio::test]
async fn daemon_without_info_api_is_too_old() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("old.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let (_rep, health) = tonic_health::server::health_reporter();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming(UnixListenerStream::new(listener)),
    );
    let err = connect(&Address::Unix(path))
        .await
        .err()
        .expect("too old")
        .to_string();
    assert!(err.contains("too old") && err.contains("v0.13.0"), "{err}");
    server.abort();
}

/// A daemon whose Info says v0.12.1.
struct OldDaemon;

type Never<T> = tokio_stream::Empty<Result<T, Status>>;

#[tonic::async_trait]
impl Control for OldDaemon {
    async fn disk_usage(
        &self,
        _: Request<pb::DiskUsageRequest>,
    ) -> Result<Response<pb::DiskUsageResponse>, Status> {
        Err(Status::unimplemented("test daemon"))
    }
    type PruneStream = Never<pb::UsageRecord>;
    async fn prune(
        &self,
        _: Request<pb::PruneRequest>,
    ) -> Result<Response<Self::PruneStream>, Status> {
        Err(Status::unimplemented("test daemon"))
    }
    async fn solve(
        &self,
        _: Request<pb::SolveRequest>,
    ) -> Result<Response<pb::SolveResponse>, Status> {
        Err(Status::unimplemented("test daemon"))
    }
    type StatusStream = Never<pb::StatusResponse>;
    async fn status(
        &self,
        _: Request<pb::StatusRequest>,
    ) -> Result<Response<Self::StatusStream>, Status> {
        Err(Status::unimplemented("test daemon"))
    }
    type SessionStream = Never<pb::BytesMessage>;
    async fn session(
        &self,
        _: Request<tonic::Streaming<pb::BytesMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        Err(Status::unimplemented("test daemon"))
    }
    async fn list_workers(
        &self,
        _: Request<pb::ListWorkersRequest>,
    ) -> Result<Response<pb::ListWorkersResponse>, Status> {
        Err(Status::unimplemented("test daemon"))
    }
    async fn info(
        &self,
        _: Request<pb::InfoRequest>,
    ) -> Result<Response<pb::InfoResponse>, Status> {
        Ok(Response::new(pb::InfoResponse {
            buildkit_version: Some(pb::types::BuildkitVersion {
                package: "github.com/moby/buildkit".into(),
                version: "v0.12.1".into(),
                revision: "test".into(),
            }),
        }))
    }
    type ListenBuildHistoryStream = Never<pb::BuildHistoryEvent>;
    async fn listen_build_history(
        &self,
        _: Request<pb::BuildHistoryRequest>,
    ) -> Result<Response<Self::ListenBuildHistoryStream>, Status> {
        Err(Status::unimplemented("test daemon"))
    }
    async fn update_build_history(
        &self,
        _: Request<pb::UpdateBuildHistoryRequest>,
    ) -> Result<Response<pb::UpdateBuildHistoryResponse>, Status> {
        Err(Status::unimplemented("test daemon"))
    }
}

#[tokio::test]
async fn daemon_reporting_old_version_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("v012.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ControlServer::new(OldDaemon))
            .serve_with_incoming(UnixListenerStream::new(listener)),
    );
    let err = connect(&Address::Unix(path))
        .await
        .err()
        .expect("v0.12 is too old")
        .to_string();
    assert!(err.contains("too old (v0.12.1)"), "{err}");
    assert!(err.contains("v0.13.0 or newer"), "{err}");
    server.abort();
}
