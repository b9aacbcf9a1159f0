//! The gateway from the client side: a build whose frontend is this process, so that a failed
//! step's container can be opened before the build ends (what `buildx debug` does).
//!
//! `Control.Solve` runs with no definition and no frontend; the daemon then waits for this
//! process to drive the build through `moby.buildkit.v1.frontend.LLBBridge` on the same
//! connection, every call carrying the build's ref in the `buildkit-controlapi-buildid` header.
//! `LLBBridge.Solve` evaluates the definition. When a process fails, the daemon keeps the
//! results of its mounts as they were at the failure and names them in the error details
//! (`errdefs.Solve`, JSON: `mountIDs` in the order of the exec's mounts). `NewContainer` mounts
//! them again, `ExecProcess` runs processes in that container, `ReleaseContainer` ends it, and
//! `Return` hands the build its result (or its error) so `Control.Solve` can export and end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bollard_buildkit_proto::fsutil::types::Stat;
use bollard_buildkit_proto::google::rpc::Status as RpcStatus;
use bollard_buildkit_proto::moby::buildkit::v1::frontend::{
    self as gw, exec_message::Input, llb_bridge_client::LlbBridgeClient,
};
use bollard_buildkit_proto::pb;
use futures::future::BoxFuture;
use prost::Message;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Request;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use crate::{BuildkitError, SolveError};

/// The header that ties an `LLBBridge` call to its build (BuildKit's `client/buildid`).
const BUILD_ID_HEADER: &str = "buildkit-controlapi-buildid";
/// Largest message on the bridge (the daemon's own limit is 16 MiB).
const MAX_MSG: usize = 32 << 20;
/// Bytes asked for per `ReadFileContainer` call.
const READ_CHUNK: i64 = 4 << 20;

/// What runs when a step fails, while its container can still be opened. The build ends with
/// the step's failure once it returns.
pub type FailureHook = Box<dyn for<'a> FnOnce(&'a FailedStep) -> BoxFuture<'a, ()> + Send>;

fn rpc(call: &'static str) -> impl FnOnce(tonic::Status) -> BuildkitError {
    move |s| BuildkitError::Rpc {
        call,
        status: Box::new(s),
    }
}

/// The bridge of one build.
#[derive(Clone)]
pub(crate) struct Bridge {
    client: LlbBridgeClient<Channel>,
    build_id: MetadataValue<Ascii>,
}

impl Bridge {
    pub fn new(channel: Channel, build_id: &str) -> Result<Self, BuildkitError> {
        let build_id = build_id
            .parse()
            .map_err(|e| BuildkitError::Session(format!("bad build id {build_id:?}: {e}")))?;
        let client = LlbBridgeClient::new(channel)
            .max_decoding_message_size(MAX_MSG)
            .max_encoding_message_size(MAX_MSG);
        Ok(Self { client, build_id })
    }

    fn request<T>(&self, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        r.metadata_mut()
            .insert(BUILD_ID_HEADER, self.build_id.clone());
        r
    }

    /// Evaluate `def`; its result as `Return` takes it.
    pub async fn solve(
        &self,
        def: &pb::Definition,
        cache_imports: Vec<gw::CacheOptionsEntry>,
    ) -> Result<gw::Result, tonic::Status> {
        let req = gw::SolveRequest {
            definition: Some(def.clone()),
            allow_result_return: true,
            allow_result_array_ref: true,
            // Solve now, not lazily at export, so a failure comes back here.
            evaluate: true,
            cache_imports,
            ..Default::default()
        };
        let resp = self.client.clone().solve(self.request(req)).await?;
        let resp = resp.into_inner();
        Ok(resp.result.unwrap_or_else(|| gw::Result {
            result: Some(gw::result::Result::RefDeprecated(resp.r#ref)),
            ..Default::default()
        }))
    }

    /// End the build with `result` (exported by `Control.Solve`) or with `error`.
    pub async fn finish(
        &self,
        outcome: Result<gw::Result, &tonic::Status>,
    ) -> Result<(), BuildkitError> {
        let req = match outcome {
            Ok(result) => gw::ReturnRequest {
                result: Some(result),
                error: None,
            },
            Err(status) => gw::ReturnRequest {
                result: None,
                error: Some(rpc_status(status)),
            },
        };
        self.client
            .clone()
            .r#return(self.request(req))
            .await
            .map_err(rpc("Return"))?;
        Ok(())
    }
}

/// The status as the gateway passes errors on, details included.
fn rpc_status(status: &tonic::Status) -> RpcStatus {
    match RpcStatus::decode(status.details()) {
        Ok(s) if s.code != 0 => s,
        _ => RpcStatus {
            code: status.code() as i32,
            message: status.message().to_string(),
            details: vec![],
        },
    }
}

/// The result ids the daemon kept for a failed process (`errdefs.Solve`).
fn failed_mount_ids(status: &tonic::Status) -> Option<Vec<String>> {
    let rpc = RpcStatus::decode(status.details()).ok()?;
    rpc.details
        .iter()
        .filter(|a| a.type_url.ends_with("errdefs.Solve+json"))
        .find_map(|a| {
            let v: serde_json::Value = serde_json::from_slice(&a.value).ok()?;
            let ids = v.get("mountIDs").or_else(|| v.get("outputIDs"))?;
            serde_json::from_value::<Vec<String>>(ids.clone()).ok()
        })
}

/// The op of `def` whose digest is `digest`.
fn op_by_digest(def: &pb::Definition, digest: &str) -> Option<pb::Op> {
    def.def
        .iter()
        .find(|bytes| format!("sha256:{}", hex::encode(Sha256::digest(bytes))) == digest)
        .and_then(|bytes| pb::Op::decode(bytes.as_slice()).ok())
}

/// A step whose process failed, with what is needed to open its container.
pub struct FailedStep {
    /// The failure as the build reports it.
    pub error: SolveError,
    exec: Option<(pb::ExecOp, Option<pb::Platform>)>,
    mount_ids: Vec<String>,
    bridge: Bridge,
}

impl FailedStep {
    pub(crate) fn new(
        error: SolveError,
        status: &tonic::Status,
        def: &pb::Definition,
        bridge: Bridge,
    ) -> Self {
        let exec = error
            .vertex
            .as_deref()
            .and_then(|d| op_by_digest(def, d))
            .and_then(|op| match op.op {
                Some(pb::op::Op::Exec(e)) => Some((e, op.platform)),
                _ => None,
            });
        Self {
            error,
            exec,
            mount_ids: failed_mount_ids(status).unwrap_or_default(),
            bridge,
        }
    }

    /// The failed process as it was started: arguments, environment (`K=V`), working
    /// directory and user; `None` when the failure is not in a step that runs a process.
    pub fn process(&self) -> Option<&pb::Meta> {
        self.exec.as_ref().and_then(|(e, _)| e.meta.as_ref())
    }

    /// The failed process's variables that hold secrets (name and secret id).
    pub fn secret_env(&self) -> Vec<pb::SecretEnv> {
        self.exec
            .as_ref()
            .map(|(e, _)| e.secretenv.clone())
            .unwrap_or_default()
    }

    /// Open a container on the failed step's mounts as they were when it failed (its root
    /// filesystem is mount 0).
    pub async fn container(&self) -> Result<Container, BuildkitError> {
        let what = self.error.step.as_deref().unwrap_or("the failed step");
        let Some((exec, platform)) = &self.exec else {
            return Err(BuildkitError::Debug(format!(
                "{what} did not fail in a process, so there is no container to open"
            )));
        };
        if self.mount_ids.len() < exec.mounts.len() {
            return Err(BuildkitError::Debug(format!(
                "the daemon kept {} of the {} mounts of {what}; its container cannot be opened",
                self.mount_ids.len(),
                exec.mounts.len()
            )));
        }
        let mounts = exec
            .mounts
            .iter()
            .zip(&self.mount_ids)
            .map(|(m, id)| pb::Mount {
                dest: m.dest.clone(),
                selector: m.selector.clone(),
                readonly: m.readonly,
                mount_type: m.mount_type,
                result_id: id.clone(),
                tmpfs_opt: m.tmpfs_opt,
                cache_opt: m.cache_opt.clone(),
                secret_opt: m.secret_opt.clone(),
                ssh_opt: m.ssh_opt.clone(),
                ..Default::default()
            })
            .collect();
        let meta = exec.meta.clone().unwrap_or_default();
        // ReleaseContainer takes only letters and digits.
        let id = format!("melange2debug{}", uuid::Uuid::new_v4().simple());
        let req = gw::NewContainerRequest {
            container_id: id.clone(),
            mounts,
            network: exec.network,
            platform: platform.clone(),
            constraints: None,
            extra_hosts: meta.extra_hosts,
            hostname: meta.hostname,
        };
        self.bridge
            .client
            .clone()
            .new_container(self.bridge.request(req))
            .await
            .map_err(rpc("NewContainer"))?;
        Ok(Container {
            id,
            bridge: self.bridge.clone(),
        })
    }
}

/// A container of the build, opened with [`FailedStep::container`].
pub struct Container {
    id: String,
    bridge: Bridge,
}

/// A process to start in a container.
#[derive(Clone, Debug, Default)]
pub struct ProcessSpec {
    /// Command and arguments.
    pub args: Vec<String>,
    /// Environment, `KEY=VALUE`.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: String,
    /// User (`uid:gid` or a name).
    pub user: String,
    /// Give it a terminal (stdout and stderr then both arrive as fd 1).
    pub tty: bool,
    /// Variables whose values are secrets of the build (name and secret id).
    pub secret_env: Vec<pb::SecretEnv>,
}

/// What a running process reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessEvent {
    /// Output on fd 1 or 2.
    Output {
        /// The file descriptor.
        fd: u32,
        /// The bytes.
        data: Vec<u8>,
    },
    /// The process ended with this code (output may still follow until the stream ends).
    Exit(u32),
}

impl Container {
    /// Start a process with stdin, stdout and stderr attached. The first process is the
    /// container's init: the container runs as long as it does, and later processes join it
    /// while it runs.
    pub async fn start(&self, spec: ProcessSpec) -> Result<Process, BuildkitError> {
        let pid = format!("{}:{}", self.id, uuid::Uuid::new_v4().simple());
        let (tx, rx) = mpsc::channel::<gw::ExecMessage>(64);
        let fds = if spec.tty { vec![0, 1] } else { vec![0, 1, 2] };
        let init = gw::InitMessage {
            container_id: self.id.clone(),
            meta: Some(pb::Meta {
                args: spec.args,
                env: spec.env,
                cwd: spec.cwd,
                user: spec.user,
                ..Default::default()
            }),
            fds,
            tty: spec.tty,
            secretenv: spec.secret_env,
            ..Default::default()
        };
        let input = ProcessInput {
            pid: pid.clone(),
            tx,
            stdin_closed: Arc::new(AtomicBool::new(false)),
        };
        input.send(Input::Init(init)).await?;
        let resp = self
            .bridge
            .client
            .clone()
            .exec_process(self.bridge.request(ReceiverStream::new(rx)))
            .await
            .map_err(rpc("ExecProcess"))?;
        let mut stream = resp.into_inner();
        loop {
            let msg = stream.message().await.map_err(rpc("ExecProcess"))?;
            match msg.and_then(|m| m.input) {
                Some(Input::Started(_)) => break,
                Some(Input::Exit(e)) => {
                    let why = e.error.map(|s| s.message).unwrap_or_default();
                    return Err(BuildkitError::Debug(format!(
                        "the process did not start (exit code {}): {why}",
                        e.code
                    )));
                }
                Some(_) => {}
                None => {
                    return Err(BuildkitError::Debug(
                        "the daemon ended the process stream before the process started".into(),
                    ));
                }
            }
        }
        Ok(Process { input, stream })
    }

    /// The entries of a directory of the root filesystem (names only, not recursive).
    pub async fn read_dir(&self, path: &str) -> Result<Vec<Stat>, BuildkitError> {
        let req = gw::ReadDirRequest {
            r#ref: self.id.clone(),
            dir_path: path.to_string(),
            include_pattern: String::new(),
            mount_index: 0,
        };
        let resp = self
            .bridge
            .client
            .clone()
            .read_dir_container(self.bridge.request(req))
            .await
            .map_err(rpc("ReadDirContainer"))?;
        Ok(resp.into_inner().entries)
    }

    /// The whole content of a regular file of the root filesystem, read in chunks.
    pub async fn read_file(&self, path: &str, size: i64) -> Result<Vec<u8>, BuildkitError> {
        let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        loop {
            let req = gw::ReadFileRequest {
                r#ref: self.id.clone(),
                file_path: path.to_string(),
                range: Some(gw::FileRange {
                    offset: out.len() as i64,
                    length: READ_CHUNK,
                }),
                mount_index: 0,
            };
            let data = self
                .bridge
                .client
                .clone()
                .read_file_container(self.bridge.request(req))
                .await
                .map_err(rpc("ReadFileContainer"))?
                .into_inner()
                .data;
            let n = data.len() as i64;
            out.extend_from_slice(&data);
            if n < READ_CHUNK {
                return Ok(out);
            }
        }
    }

    /// End the container and its processes.
    pub async fn release(self) -> Result<(), BuildkitError> {
        let req = gw::ReleaseContainerRequest {
            container_id: self.id.clone(),
        };
        match self
            .bridge
            .client
            .clone()
            .release_container(self.bridge.request(req))
            .await
        {
            Ok(_) => Ok(()),
            // The daemon reports how the container's first process ended, which its Exit
            // message already said.
            Err(s) if s.message().starts_with("exit code:") => {
                tracing::debug!(container = %self.id, "released: {}", s.message());
                Ok(())
            }
            Err(s) => Err(rpc("ReleaseContainer")(s)),
        }
    }
}

/// The input side of a process; clones may be used from other tasks.
#[derive(Clone)]
pub struct ProcessInput {
    pid: String,
    tx: mpsc::Sender<gw::ExecMessage>,
    /// Set once stdin's end was sent: the daemon refuses a second one.
    stdin_closed: Arc<AtomicBool>,
}

impl ProcessInput {
    async fn send(&self, input: Input) -> Result<(), BuildkitError> {
        let msg = gw::ExecMessage {
            process_id: self.pid.clone(),
            input: Some(input),
        };
        self.tx
            .send(msg)
            .await
            .map_err(|_| BuildkitError::Debug("the process has ended".into()))
    }

    /// Bytes for the process's stdin.
    pub async fn stdin(&self, data: Vec<u8>) -> Result<(), BuildkitError> {
        self.send(Input::File(gw::FdMessage {
            fd: 0,
            eof: false,
            data,
        }))
        .await
    }

    /// Close the process's stdin (again is a no-op).
    pub async fn close_stdin(&self) -> Result<(), BuildkitError> {
        if self.stdin_closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.send(Input::File(gw::FdMessage {
            fd: 0,
            eof: true,
            data: vec![],
        }))
        .await
    }

    /// The terminal's new size.
    pub async fn resize(&self, rows: u32, cols: u32) -> Result<(), BuildkitError> {
        self.send(Input::Resize(gw::ResizeMessage { rows, cols }))
            .await
    }

    /// Send a signal by name (`INT`, `TERM`, `HUP`, …).
    pub async fn signal(&self, name: &str) -> Result<(), BuildkitError> {
        self.send(Input::Signal(gw::SignalMessage {
            name: name.to_string(),
        }))
        .await
    }
}

/// A process running in a [`Container`].
pub struct Process {
    input: ProcessInput,
    stream: tonic::Streaming<gw::ExecMessage>,
}

impl Process {
    /// Where its input goes.
    pub fn input(&self) -> ProcessInput {
        self.input.clone()
    }

    /// The next event; `None` once the daemon is done with the process.
    pub async fn next(&mut self) -> Result<Option<ProcessEvent>, BuildkitError> {
        loop {
            let Some(msg) = self.stream.message().await.map_err(rpc("ExecProcess"))? else {
                return Ok(None);
            };
            if msg.process_id != self.input.pid {
                continue;
            }
            match msg.input {
                Some(Input::File(f)) if !f.data.is_empty() => {
                    return Ok(Some(ProcessEvent::Output {
                        fd: f.fd,
                        data: f.data,
                    }));
                }
                Some(Input::Exit(e)) => {
                    // The daemon ends the process's stream (Done) only once stdin is closed
                    // too; nothing reads it any more.
                    let _ = self.input.close_stdin().await;
                    return Ok(Some(ProcessEvent::Exit(e.code)));
                }
                Some(Input::Done(_)) => return Ok(None),
                _ => {}
            }
        }
    }

    /// Run to the end, collecting output by fd; the exit code (255 when none was reported).
    pub async fn wait_output(mut self) -> Result<(u32, BTreeMap<u32, Vec<u8>>), BuildkitError> {
        let mut out: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
        let mut code = 255;
        while let Some(ev) = self.next().await? {
            match ev {
                ProcessEvent::Output { fd, data } => out.entry(fd).or_default().extend(data),
                ProcessEvent::Exit(c) => code = c,
            }
        }
        Ok((code, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_ids_from_details() {
        let detail = |url: &str, json: &str| bollard_buildkit_proto::google::protobuf::Any {
            type_url: url.into(),
            value: json.as_bytes().to_vec(),
        };
        let rpc = RpcStatus {
            code: 2,
            message: "process failed".into(),
            details: vec![
                detail(
                    "github.com/moby/buildkit/errdefs.Vertex+json",
                    r#"{"digest":"sha256:ab"}"#,
                ),
                detail(
                    "github.com/moby/buildkit/errdefs.Solve+json",
                    r#"{"inputIDs":["a","b"],"mountIDs":["c","d"],"op":{}}"#,
                ),
            ],
        };
        let status = tonic::Status::with_details(
            tonic::Code::Unknown,
            "process failed",
            rpc.encode_to_vec().into(),
        );
        assert_eq!(
            failed_mount_ids(&status),
            Some(vec!["c".into(), "d".into()])
        );
        assert_eq!(rpc_status(&status), rpc);
        let plain = tonic::Status::unknown("x");
        assert_eq!(failed_mount_ids(&plain), None);
        assert_eq!(rpc_status(&plain).message, "x");
    }
}
