//! Client for a BuildKit daemon (buildkitd ≥ v0.13) that solves LLB graphs.
//!
//! Contract:
//! - [`Client::connect`] reaches a daemon at `unix://`, `tcp://` (plain or mTLS) or
//!   `docker-container://NAME` within bounded timeouts, and refuses daemons older than v0.13.
//! - [`Client::solve`] runs one LLB definition with a session of its own: local directories
//!   are served over FileSync, secrets over the Secrets service, and the `tar` exporter's
//!   stream is written into a caller-supplied sink. Status events are tracked for the caller
//!   and handed to a [`progress::Progress`] renderer.
//! - Secret values ([`SolveOptions::redact`]) are masked in every status event (logs, vertex
//!   errors, warnings) and in a failed solve's error before anything sees them; a value split
//!   across two log messages is masked too (docs/build.md, "Secrets").
//! - [`SolveOptions::cache_exports`] and [`SolveOptions::cache_imports`] share BuildKit's cache
//!   through a registry ([`CacheOption`]); the daemon reads and writes it itself.
//! - With [`SolveOptions::on_failure`] the build runs through BuildKit's gateway (this process
//!   is its frontend): when a step's process fails, the hook gets a [`FailedStep`] whose
//!   [`FailedStep::container`] reopens that step's mounts as they were at the failure, to run
//!   processes in ([`Container::start`], terminal, resize, signals) or read its files; the
//!   solve then fails with the step's failure (docs/debug.md). [`debug`] builds such hooks:
//!   a shell on this process's terminal (`--interactive`) or the step's root filesystem
//!   written as a tarball or a directory (`--export-on-failure`).
//! - A failed solve becomes a [`SolveError`] naming the failing step, its exit code and the
//!   last lines of its log.
//!
//! This crate knows nothing about melange or APKs; it only speaks BuildKit.

mod addr;
mod cache;
mod client;
pub mod debug;
mod error;
mod filesync;
mod gateway;
pub mod local;
pub mod progress;
mod redact;
mod report;
mod session;

pub use addr::{Address, TlsFiles};
pub use cache::CacheOption;
pub use client::{
    Client, DaemonInfo, ExportSink, Exporter, MIN_VERSION, SolveOptions, SolveResult, WorkerInfo,
};
pub use error::{BuildkitError, SolveError};
pub use gateway::{
    Container, FailedStep, FailureHook, Process, ProcessEvent, ProcessInput, ProcessSpec,
};
pub use melange2_llb as llb;
pub use report::{DaemonReport, daemon_report};

/// The environment variable that names the daemon address, as in buildctl.
pub const BUILDKIT_HOST_ENV: &str = "BUILDKIT_HOST";
