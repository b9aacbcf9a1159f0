//! One recipe's build for one architecture: a compiled plan in, signed packages, the merged
//! index and the up-to-date record out (see `docs/build.md`).
//!
//! Contract:
//! * [`BuildContext`] holds what a run shares; [`BuildContext::inputs`] computes a recipe's
//!   inputs (environment lock, source digests, flags) without contacting BuildKit, and
//!   [`BuildContext::up_to_date`] compares them with the record in the out-dir.
//! * [`execute`] resolves and assembles the environment, solves on a daemon, packages into the
//!   out-dir (all or nothing) and writes the record.
//! * [`graph::build_graph`] turns a compiled plan and an environment into an LLB graph (one
//!   ExecOp per step, toolchain cache mounts, the package trees exported from
//!   `/home/build/melange-out`); the graph is deterministic, so an unchanged recipe is fully
//!   cached by BuildKit.
//! * [`bootstrap`]: with `--bootstrap-rootfs` the environment is that root filesystem (read
//!   once per run, recorded by content digest, sent once) with the recipe's packages it lacks
//!   resolved from the repositories and layered over it; packages nothing serves are all
//!   listed before anything is built (`docs/build.md`, "Bootstrapping a distribution").
//! * [`secrets::BuildSecrets`]: `--secret` values are mounted into every step at
//!   `/run/secrets/<id>` (and optionally an environment variable) through the session, never
//!   in the graph; `--env-file` values are shown as `***` in `.melange.yaml` and the records
//!   (names and a digest only); both are masked in step output and logs.
//! * [`BuildOptions::on_failure`]: when a step fails, a shell in its container on this
//!   terminal (`--interactive`) or its root filesystem written out (`--export-on-failure`),
//!   through BuildKit's gateway; the build then fails with the step's error (`docs/debug.md`).

pub mod bootstrap;
mod context;
pub mod graph;
mod pack_progress;
mod run;
pub mod secrets;
mod settings;
pub mod support;

pub use context::{BuildContext, EnvSource, NodeInputs};
pub use melange2_fingerprint::Reason;
pub use run::{BuildOptions, NodeOutput, execute, recipe_cache};
pub use settings::BuildSettings;
pub use support::find_config;

/// Errors of a build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Bad input: missing build file, source directory, key, …
    #[error("{0}")]
    Input(String),
    /// The build file does not compile.
    #[error("{0}")]
    Config(String),
    /// The build environment cannot be resolved.
    #[error("resolving the build environment: {0}")]
    Resolve(String),
    /// The build environment cannot be assembled.
    #[error("assembling the build environment: {0}")]
    Environment(String),
    /// The daemon cannot run a requested architecture.
    #[error("{0}")]
    Platform(String),
    /// BuildKit failed (connection or a failing step).
    #[error(transparent)]
    Buildkit(#[from] melange2_buildkit::BuildkitError),
    /// Packaging failed.
    #[error("packaging: {0}")]
    Package(String),
    /// The build ran over `--timeout`.
    #[error("the build did not finish within {0:?}")]
    Timeout(std::time::Duration),
    /// Building the LLB graph failed.
    #[error(transparent)]
    Llb(#[from] melange2_llb::LlbError),
}
