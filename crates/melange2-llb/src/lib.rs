//! Immutable, deterministic builder for BuildKit LLB graphs.
//!
//! Contract:
//! - A [`State`] is an immutable value: a reference to one output of one op (or scratch).
//!   Every builder method returns a new value; nothing is mutated, so states can be shared
//!   freely between graphs and threads.
//! - [`State::marshal`] serialises the graph reachable from a state into a `pb::Definition`
//!   with ops in dependency order, each op encoded exactly as BuildKit's Go client encodes it
//!   (non-oneof fields first, then the `op` oneof; maps sorted). Op digests are therefore the
//!   digests the daemon reports in its Status stream.
//! - Every op declares the LLB caps it relies on in its `OpMetadata`, so an old daemon refuses
//!   the graph instead of silently ignoring fields.
//! - The same inputs always give the same bytes: maps are `BTreeMap`, environment variables are
//!   sorted, local sources carry a caller-chosen stable `local.unique`.
//!
//! This crate knows nothing about melange, APKs or the network.

mod encode;
mod exec;
mod file;
mod platform;
mod source;
mod state;

pub use bollard_buildkit_proto::pb;
pub use encode::{digest_of, encode_op};
pub use exec::{CacheSharing, Exec, ExecState, Mount, NetMode, SecurityMode};
pub use file::{ChownOpt, CopyOptions, FileActions, go_file_mode};
pub use platform::Platform;
pub use source::{GitSource, HttpSource, LocalSource, image};
pub use state::{Definition, OpOptions, State};

/// Errors raised while building or marshalling a graph.
#[derive(Debug, thiserror::Error)]
pub enum LlbError {
    /// The final state is scratch: BuildKit needs at least one real op to solve.
    #[error("cannot marshal an empty (scratch) state: the graph has no ops")]
    EmptyDefinition,
    /// An exec op was built without any command arguments.
    #[error("exec op has no arguments")]
    NoArgs,
    /// A path given to an op must be absolute.
    #[error("path {0:?} must be absolute")]
    RelativePath(String),
    /// An unsupported architecture name was given.
    #[error("unknown architecture {0:?}")]
    UnknownArch(String),
}
