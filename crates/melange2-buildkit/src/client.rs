//! Connecting, daemon information and solving.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bollard_buildkit_proto::moby::buildkit::v1::{
    self as control, InfoRequest, ListWorkersRequest, SolveRequest, StatusRequest, StatusResponse,
    control_client::ControlClient, frontend as gw,
};
use melange2_llb::{Definition, Platform};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tonic::transport::Channel;

use crate::cache::Role;
use crate::error::{clean_message, decode_details, exit_code_from_message};
use crate::gateway::{Bridge, FailedStep, FailureHook};
use crate::progress::Tracker;
use crate::redact::StatusRedactor;
use crate::session::{Session, SessionConfig};
use crate::{Address, BuildkitError, CacheOption, SolveError, TlsFiles};

/// The oldest daemon we talk to: needs `SolveRequest.exporters`, `Mount.contentCache`, `Info`.
pub const MIN_VERSION: (u64, u64, u64) = (0, 13, 0);

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the status stream may stay silent after the solve returned.
const STATUS_DRAIN: Duration = Duration::from_secs(5);
/// gRPC message limit: Status responses of large builds exceed tonic's 4 MiB default.
const MAX_MSG: usize = 64 << 20;

/// Where the daemon's output goes.
pub type ExportSink = Box<dyn tokio::io::AsyncWrite + Send + Unpin>;

/// The daemon's version.
#[derive(Clone, Debug)]
pub struct DaemonInfo {
    /// The address it was reached at.
    pub address: String,
    /// Go package (`github.com/moby/buildkit`).
    pub package: String,
    /// Version (`v0.32.2`).
    pub version: String,
    /// VCS revision.
    pub revision: String,
}

/// One worker of the daemon.
#[derive(Clone, Debug)]
pub struct WorkerInfo {
    /// Worker id.
    pub id: String,
    /// Platforms it can run.
    pub platforms: Vec<Platform>,
    /// Labels (executor, snapshotter, network, …), sorted.
    pub labels: BTreeMap<String, String>,
}

/// One exporter of a solve. Only the `tar` exporter streams to the client.
pub struct Exporter {
    kind: String,
    attrs: BTreeMap<String, String>,
    sink: Option<ExportSink>,
}

impl Exporter {
    /// Export the result as one tar stream written into `sink`.
    pub fn tar(sink: ExportSink) -> Self {
        Self {
            kind: "tar".into(),
            attrs: BTreeMap::new(),
            sink: Some(sink),
        }
    }
    /// Set an exporter attribute.
    pub fn attr(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.attrs.insert(k.into(), v.into());
        self
    }
    /// Clamp every mtime in the export to this unix time.
    pub fn source_date_epoch(self, epoch: u64) -> Self {
        self.attr("source-date-epoch", epoch.to_string())
    }
}

/// What to solve and what to serve while solving.
#[derive(Default)]
pub struct SolveOptions {
    /// Local directories served for `local://NAME` sources.
    pub local_dirs: BTreeMap<String, PathBuf>,
    /// Secrets served by id.
    pub secrets: BTreeMap<String, Vec<u8>>,
    /// Values masked (as `***`) in every status message (logs, errors, warnings) and in the
    /// error of a failed solve, before the caller sees them.
    pub redact: melange2_secrets::Redactor,
    /// Exporters (their index is their id).
    pub exporters: Vec<Exporter>,
    /// Entitlements (`network.host`, `security.insecure`).
    pub entitlements: Vec<String>,
    /// Frontend attributes (rarely needed for raw LLB).
    pub frontend_attrs: BTreeMap<String, String>,
    /// Where the daemon writes the build's cache after a successful build (`--cache-to`).
    /// A failed export fails the solve with [`BuildkitError::CacheExport`], unless the option
    /// has `ignore-error=true`.
    pub cache_exports: Vec<CacheOption>,
    /// Caches the daemon may take steps from (`--cache-from`). A missing or unreachable one is
    /// not an error: the daemon reports it in the progress and builds without it.
    pub cache_imports: Vec<CacheOption>,
    /// Run the build through the gateway and call this when a step fails, while its
    /// container can still be opened ([`FailedStep::container`]); the solve then fails with
    /// that step's failure as usual.
    pub on_failure: Option<FailureHook>,
}

/// What happened during a successful solve.
#[derive(Clone, Debug)]
pub struct SolveResult {
    /// Every vertex the daemon reported, in first-seen order.
    pub vertices: Vec<crate::progress::VertexSummary>,
    /// The exporter response (e.g. digests).
    pub exporter_response: BTreeMap<String, String>,
    /// Wall time of the solve.
    pub duration: Duration,
    /// File content bytes sent for local sources (0 when the daemon had everything).
    pub local_bytes_sent: u64,
}

impl SolveResult {
    /// Number of vertices taken from the cache.
    pub fn cached(&self) -> usize {
        self.vertices.iter().filter(|v| v.cached).count()
    }
}

/// A connection to one buildkitd.
#[derive(Clone)]
pub struct Client {
    control: ControlClient<Channel>,
    channel: Channel,
    info: DaemonInfo,
    shared_key: String,
}

impl Client {
    /// Connect, ask the daemon for its version and refuse daemons older than [`MIN_VERSION`].
    pub async fn connect(addr: &Address, tls: &TlsFiles) -> Result<Self, BuildkitError> {
        Self::connect_with_timeout(addr, tls, CONNECT_TIMEOUT, CALL_TIMEOUT).await
    }

    /// [`Client::connect`] with explicit limits for connecting and for the first call.
    pub async fn connect_with_timeout(
        addr: &Address,
        tls: &TlsFiles,
        connect_timeout: Duration,
        call_timeout: Duration,
    ) -> Result<Self, BuildkitError> {
        let (channel, docker) = addr.channel(tls, connect_timeout).await?;
        let mut control = ControlClient::new(channel.clone())
            .max_decoding_message_size(MAX_MSG)
            .max_encoding_message_size(MAX_MSG);
        let shown = addr.to_string();
        let info = match tokio::time::timeout(call_timeout, control.info(InfoRequest {})).await {
            Err(_) => {
                return Err(BuildkitError::Timeout {
                    addr: shown,
                    secs: call_timeout.as_secs(),
                    what: "Info".into(),
                });
            }
            Ok(Err(s)) if s.code() == tonic::Code::Unimplemented => {
                return Err(BuildkitError::TooOld {
                    addr: shown,
                    version: "no Info API, older than v0.11".into(),
                    min: version_string(MIN_VERSION),
                });
            }
            // A transport that breaks on the first call (refused TLS handshake, closed
            // connection) shows up as any of these, depending on timing.
            Ok(Err(s))
                if matches!(
                    s.code(),
                    tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
                ) =>
            {
                let mut reason = crate::addr::error_chain(&s);
                // docker-container://: what docker said when it exited
                if let Some(why) = match &docker {
                    Some(d) => d.reason().await,
                    None => None,
                } {
                    reason = why;
                }
                if matches!(addr, Address::Tcp(_)) && tls.cert.is_none() {
                    reason.push_str(
                        " (if the daemon requires client certificates, pass --tlscert and --tlskey)",
                    );
                }
                return Err(BuildkitError::Connect {
                    addr: shown,
                    reason,
                });
            }
            Ok(Err(s)) => {
                return Err(BuildkitError::Rpc {
                    call: "Info",
                    status: Box::new(s),
                });
            }
            Ok(Ok(r)) => r.into_inner().buildkit_version.unwrap_or_default(),
        };
        check_version(&shown, &info.version)?;
        let shared_key = stable_shared_key();
        Ok(Self {
            control,
            channel,
            info: DaemonInfo {
                address: shown,
                package: info.package,
                version: info.version,
                revision: info.revision,
            },
            shared_key,
        })
    }

    /// The daemon's version information.
    pub fn daemon(&self) -> &DaemonInfo {
        &self.info
    }

    /// The daemon's workers and their platforms.
    pub async fn workers(&self) -> Result<Vec<WorkerInfo>, BuildkitError> {
        let mut c = self.control.clone();
        let resp = tokio::time::timeout(
            CALL_TIMEOUT,
            c.list_workers(ListWorkersRequest { filter: vec![] }),
        )
        .await
        .map_err(|_| BuildkitError::Timeout {
            addr: self.info.address.clone(),
            secs: CALL_TIMEOUT.as_secs(),
            what: "ListWorkers".into(),
        })?
        .map_err(|s| BuildkitError::Rpc {
            call: "ListWorkers",
            status: Box::new(s),
        })?;
        Ok(resp
            .into_inner()
            .record
            .into_iter()
            .map(|w| WorkerInfo {
                id: w.id,
                platforms: w
                    .platforms
                    .into_iter()
                    .map(|p| Platform {
                        os: p.os,
                        architecture: p.architecture,
                        variant: p.variant,
                    })
                    .collect(),
                labels: w.labels.into_iter().collect(),
            })
            .collect())
    }

    /// Solve `def`, serving what `opts` names, and hand every status update to `on_status`.
    /// With [`SolveOptions::on_failure`], the build runs through the gateway so that a failed
    /// step's container can be opened before the build ends (see [`FailedStep`]).
    pub async fn solve(
        &self,
        def: &Definition,
        mut opts: SolveOptions,
        on_status: &mut (dyn FnMut(&StatusResponse) + Send),
    ) -> Result<SolveResult, BuildkitError> {
        match opts.on_failure.take() {
            Some(hook) => self.solve_gateway(def, opts, on_status, hook).await,
            None => {
                let mut run = self.start_run(Some(def), opts).await?;
                let mut solve_client = self.control.clone();
                let req = std::mem::take(&mut run.req);
                let outcome = run.pump(solve_client.solve(req), on_status).await;
                run.finish(outcome, on_status).await
            }
        }
    }

    /// Open the session, build the request and start following the build's status.
    async fn start_run(
        &self,
        def: Option<&Definition>,
        opts: SolveOptions,
    ) -> Result<Run, BuildkitError> {
        let start = Instant::now();
        let cache = cache_options(&opts.cache_exports, &opts.cache_imports)?;
        let mut exports = BTreeMap::new();
        let mut exporters = Vec::new();
        for (i, e) in opts.exporters.into_iter().enumerate() {
            if let Some(sink) = e.sink {
                exports.insert(i, sink);
            }
            exporters.push(control::Exporter {
                r#type: e.kind,
                attrs: e.attrs.into_iter().collect(),
            });
        }
        let session = Session::start(
            &self.control,
            SessionConfig {
                dirs: opts.local_dirs,
                secrets: opts.secrets,
                exports,
            },
            &self.shared_key,
        )
        .await?;

        let build_ref = uuid::Uuid::new_v4().simple().to_string();
        let req = SolveRequest {
            r#ref: build_ref.clone(),
            definition: def.map(|d| d.pb.clone()),
            session: session.id.clone(),
            entitlements: opts.entitlements,
            frontend_attrs: opts.frontend_attrs.into_iter().collect(),
            exporters,
            cache,
            ..Default::default()
        };

        // Status runs next to Solve under the same ref; it feeds a channel drained by `pump`.
        let (st_tx, st_rx) = mpsc::channel::<StatusResponse>(256);
        let mut status_client = self.control.clone();
        let status_ref = build_ref.clone();
        let status_task = tokio::spawn(async move {
            let Ok(resp) = status_client
                .status(StatusRequest { r#ref: status_ref })
                .await
            else {
                return;
            };
            let mut stream = resp.into_inner();
            while let Ok(Some(msg)) = stream.message().await {
                if st_tx.send(msg).await.is_err() {
                    break;
                }
            }
        });
        Ok(Run {
            start,
            redactor: StatusRedactor::new(opts.redact),
            session,
            build_ref,
            req,
            st_rx,
            status_task,
            tracker: Tracker::default(),
            cache_exports: opts.cache_exports,
        })
    }

    /// Solve through the gateway: this process is the build's frontend. A failed step's
    /// container is handed to `hook` before the build ends with that step's failure.
    async fn solve_gateway(
        &self,
        def: &Definition,
        opts: SolveOptions,
        on_status: &mut (dyn FnMut(&StatusResponse) + Send),
        hook: FailureHook,
    ) -> Result<SolveResult, BuildkitError> {
        let imports = opts
            .cache_imports
            .iter()
            .map(|c| {
                let p = c.to_proto();
                gw::CacheOptionsEntry {
                    r#type: p.r#type,
                    attrs: p.attrs,
                }
            })
            .collect();
        let mut run = self.start_run(None, opts).await?;
        let bridge = Bridge::new(self.channel.clone(), &run.build_ref)?;
        let mut control = self.control.clone();
        let req = std::mem::take(&mut run.req);
        let mut control_solve = tokio::spawn(async move { control.solve(req).await });

        // The daemon answers the bridge once it has registered the build; a build that ends
        // before (a session error) ends this wait too.
        let gateway = tokio::select! {
            r = run.pump(bridge.solve(&def.pb, imports), on_status) => r,
            r = &mut control_solve => {
                let outcome = r.map_err(|e| BuildkitError::Session(format!("solve task: {e}")))?;
                return run.finish(outcome, on_status).await;
            }
        };
        let failure = match gateway {
            Ok(result) => {
                run.pump(bridge.finish(Ok(result)), on_status).await?;
                None
            }
            Err(status) => {
                run.settle(on_status).await;
                let err = run.solve_error(&status);
                let step = FailedStep::new(err.clone(), &status, &def.pb, bridge.clone());
                hook(&step).await;
                if let Err(e) = bridge.finish(Err(&status)).await {
                    tracing::debug!("returning the failure to the daemon: {e}");
                }
                Some(err)
            }
        };
        let outcome = run.pump(control_solve, on_status).await;
        let outcome = outcome.map_err(|e| BuildkitError::Session(format!("solve task: {e}")))?;
        match failure {
            Some(err) => {
                run.drain(on_status).await;
                run.session.finish_exports().await?;
                Err(err.into())
            }
            None => run.finish(outcome, on_status).await,
        }
    }
}

/// One build in flight: its session, request and status.
struct Run {
    start: Instant,
    redactor: StatusRedactor,
    session: Session,
    build_ref: String,
    req: SolveRequest,
    st_rx: mpsc::Receiver<StatusResponse>,
    status_task: tokio::task::JoinHandle<()>,
    tracker: Tracker,
    cache_exports: Vec<CacheOption>,
}

impl Run {
    /// Track a status update and hand it on, secrets masked.
    fn status(&mut self, msg: StatusResponse, on_status: &mut (dyn FnMut(&StatusResponse) + Send)) {
        for msg in self.redactor.apply(msg) {
            self.tracker.update(&msg);
            on_status(&msg);
        }
    }

    /// The failure of a solve, secrets masked.
    fn solve_error(&self, status: &tonic::Status) -> SolveError {
        let mut e = solve_error(status, &self.tracker);
        e.message = self.redactor.redact_str(&e.message);
        e
    }

    /// Await `fut`, handing status updates on as they come.
    async fn pump<F: std::future::Future>(
        &mut self,
        fut: F,
        on_status: &mut (dyn FnMut(&StatusResponse) + Send),
    ) -> F::Output {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                r = &mut fut => break r,
                Some(msg) = self.st_rx.recv() => self.status(msg, on_status),
            }
        }
    }

    /// After a step failed: hand on its last status (its error and log) before anything else
    /// uses the terminal, waiting a little for it.
    async fn settle(&mut self, on_status: &mut (dyn FnMut(&StatusResponse) + Send)) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.tracker.failed_vertex().is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.st_rx.recv()).await {
                Ok(Some(msg)) => self.status(msg, on_status),
                _ => break,
            }
        }
        while let Ok(msg) = self.st_rx.try_recv() {
            self.status(msg, on_status);
        }
    }

    /// Hand on what the daemon still reports (final vertex states, logs), then stop following.
    async fn drain(&mut self, on_status: &mut (dyn FnMut(&StatusResponse) + Send)) {
        while let Ok(Some(msg)) = tokio::time::timeout(STATUS_DRAIN, self.st_rx.recv()).await {
            self.status(msg, on_status);
        }
        self.status_task.abort();
        if let Some(last) = self.redactor.finish() {
            self.tracker.update(&last);
            on_status(&last);
        }
    }

    /// The result of the build from the outcome of `Control.Solve`.
    async fn finish(
        mut self,
        outcome: Result<tonic::Response<control::SolveResponse>, tonic::Status>,
        on_status: &mut (dyn FnMut(&StatusResponse) + Send),
    ) -> Result<SolveResult, BuildkitError> {
        let t_drain = Instant::now();
        self.drain(on_status).await;
        tracing::debug!(
            solve = ?(t_drain - self.start),
            drain = ?t_drain.elapsed(),
            "solve phases"
        );
        match outcome {
            Ok(resp) => {
                self.session.finish_exports().await?;
                Ok(SolveResult {
                    vertices: self.tracker.summaries(),
                    exporter_response: resp.into_inner().exporter_response.into_iter().collect(),
                    duration: self.start.elapsed(),
                    local_bytes_sent: self.session.local_bytes_sent(),
                })
            }
            Err(status) => {
                // An exporter that failed on our side explains the failure better.
                self.session.finish_exports().await?;
                if let Some(e) = cache_export_error(
                    &status,
                    &self.tracker,
                    &self.session.id,
                    &self.cache_exports,
                ) {
                    return Err(e);
                }
                Err(self.solve_error(&status).into())
            }
        }
    }
}

/// The request's cache options, checked; `None` when there are none.
fn cache_options(
    exports: &[CacheOption],
    imports: &[CacheOption],
) -> Result<Option<control::CacheOptions>, BuildkitError> {
    if exports.is_empty() && imports.is_empty() {
        return Ok(None);
    }
    for e in exports {
        e.check(Role::Export)?;
    }
    for i in imports {
        i.check(Role::Import)?;
    }
    Ok(Some(control::CacheOptions {
        exports: exports.iter().map(CacheOption::to_proto).collect(),
        imports: imports.iter().map(CacheOption::to_proto).collect(),
        ..Default::default()
    }))
}

/// The daemon runs cache exports after the build, each under a progress vertex of its own
/// whose digest is that of `SESSION-cache-INDEX` (BuildKit v0.13 to v0.32). A solve that failed
/// while one of them reported an error failed in the export, not in a step.
fn cache_export_error(
    status: &tonic::Status,
    tracker: &Tracker,
    session_id: &str,
    exports: &[CacheOption],
) -> Option<BuildkitError> {
    if exports.is_empty() {
        return None;
    }
    let export_vertex = |d: &str, name: &str| {
        (0..exports.len()).any(|i| {
            let id = format!("{session_id}-cache-{i}");
            d == format!("sha256:{}", hex::encode(Sha256::digest(id.as_bytes())))
        }) || name.starts_with("exporting cache")
    };
    let failed = tracker
        .summaries()
        .into_iter()
        .find(|v| v.error.is_some() && export_vertex(&v.digest, &v.name))?;
    let message = failed
        .error
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| clean_message(status));
    let targets = exports
        .iter()
        .map(|e| e.reference().map_or_else(|| e.to_string(), str::to_string))
        .collect::<Vec<_>>()
        .join(", ");
    Some(BuildkitError::CacheExport { targets, message })
}

fn solve_error(status: &tonic::Status, tracker: &Tracker) -> SolveError {
    let details = decode_details(status);
    let message = clean_message(status);
    let vertex = details
        .vertex
        .clone()
        .or_else(|| tracker.failed_vertex().map(str::to_string));
    let (step, log_tail) = match vertex.as_deref().and_then(|d| tracker.get(d)) {
        Some(v) => (Some(v.name.clone()), v.log_tail()),
        None => (None, vec![]),
    };
    SolveError {
        exit_code: details
            .exit_code
            .or_else(|| exit_code_from_message(&message)),
        message,
        vertex,
        step,
        log_tail,
    }
}

fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let v = v.trim().trim_start_matches('v');
    let core = v.split(['-', '+']).next()?;
    let mut it = core.split('.').map(|p| p.parse::<u64>());
    Some((
        it.next()?.ok()?,
        it.next()?.ok()?,
        it.next().unwrap_or(Ok(0)).ok()?,
    ))
}

fn version_string(v: (u64, u64, u64)) -> String {
    format!("v{}.{}.{}", v.0, v.1, v.2)
}

/// Refuse daemons older than [`MIN_VERSION`]; development builds (`v0.0.0+unknown`) pass.
pub(crate) fn check_version(addr: &str, version: &str) -> Result<(), BuildkitError> {
    match parse_version(version) {
        Some((0, 0, 0)) => {
            tracing::warn!("buildkitd at {addr} reports a development version ({version})");
            Ok(())
        }
        Some(v) if v >= MIN_VERSION => Ok(()),
        Some(_) => Err(BuildkitError::TooOld {
            addr: addr.to_string(),
            version: version.to_string(),
            min: version_string(MIN_VERSION),
        }),
        None => {
            tracing::warn!("buildkitd at {addr} reports an unparsable version {version:?}");
            Ok(())
        }
    }
}

/// A key that stays the same for this machine, so the daemon can reuse what it received from us
/// in earlier sessions (incremental local transfers).
fn stable_shared_key() -> String {
    let seed = std::fs::read_to_string("/etc/machine-id")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .unwrap_or_else(|| "melange2".into());
    let h = Sha256::digest(format!("melange2:{}", seed.trim()).as_bytes());
    hex::encode(&h[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("v0.32.2"), Some((0, 32, 2)));
        assert_eq!(parse_version("v0.13.0-rc1"), Some((0, 13, 0)));
        assert_eq!(parse_version("v0.0.0+unknown"), Some((0, 0, 0)));
        assert!(check_version("x", "v0.12.5").is_err());
        assert!(check_version("x", "v0.13.0").is_ok());
        assert!(check_version("x", "v0.0.0+unknown").is_ok());
        let e = check_version("unix:///s", "v0.10.0")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("too old") && e.contains("v0.10.0") && e.contains("v0.13.0"),
            "{e}"
        );
    }
}
