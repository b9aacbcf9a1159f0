//! `melange2 build`: a melange build file in, signed packages and an index out.
//!
//! Contract: [`graph::build_graph`] turns a compiled plan and an environment into an LLB graph
//! (one ExecOp per step, toolchain cache mounts, the package trees exported from
//! `/home/build/melange-out`); the graph is deterministic, so an unchanged recipe is fully
//! cached by BuildKit.

pub mod graph;

/// Errors of a build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Building the LLB graph failed.
    #[error(transparent)]
    Llb(#[from] melange2_llb::LlbError),
}
