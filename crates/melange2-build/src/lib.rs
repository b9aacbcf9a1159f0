//! `melange2 build`: a melange build file in, signed packages and an index out.
//!
//! Contract: [`graph::build_graph`] turns a compiled plan and an environment into an LLB graph
//! (one ExecOp per step, toolchain cache mounts, the package trees exported from
//! `/home/build/melange-out`); the graph is deterministic, so an unchanged recipe is fully
//! cached by BuildKit.

pub mod graph;
mod run;
pub mod support;

pub use run::{ArchReport, BuildOptions, BuildReport, build};
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
