//! The dependency graph of a tree of melange build files (a Wolfi-style distribution
//! tree: `NAME.yaml` at the top of a directory, `pipelines/` beside them, per-package
//! source folders `NAME/`). Pure logic: no network, no BuildKit. The full contract is
//! described in `docs/graph.md`.
//!
//! Contract:
//! * [`discover`] turns the command line's `FILE|DIR` arguments into [`RecipeFile`]s: a
//!   FILE is a recipe; a DIR contributes every top-level `*.yaml`/`*.yml` with a line
//!   starting with `package:` at column 0. Other top-level files are listed in
//!   [`Discovery::skipped`]; hidden files and subdirectories are ignored. Recipes are
//!   sorted by file name and de-duplicated by canonical path.
//! * [`load`] compiles every recipe for every architecture (on all cores, deterministic
//!   result order: recipe order, then architecture order) into one [`Node`] per
//!   (recipe, architecture), with what it provides (packages, subpackages, declared
//!   provides) and what it needs (the build environment, every pipeline's
//!   `needs.packages`, `--package-append`). Compile errors and package-name collisions are
//!   [`LoadFailure`]s; plans whose `target-architecture` excludes an architecture are
//!   [`Loaded::disabled`].
//! * [`build`] links nodes of the same architecture (X needs Y when a need of X names
//!   something Y provides, version constraint honoured, one provider chosen
//!   deterministically), breaks cycles by dropping an edge whose needs the configured
//!   repositories already satisfy, reports unbreakable cycles with their full path, and
//!   computes a deterministic topological [`Graph::order`] (dependencies first).
//! * [`Graph::to_text`], [`Graph::to_dot`] and [`Graph::to_json`] render the graph;
//!   every output is deterministic.

mod discover;
mod graph;
mod load;
mod render;

use std::path::PathBuf;

pub use discover::{Discovery, RecipeFile, Skipped, discover, is_build_file};
pub use graph::{Cycle, Edge, Graph, Offered, build};
pub use load::{LoadFailure, LoadOptions, Loaded, Node, Provided, ProvidedKind, load};

/// Index of a node in [`Graph::nodes`] (and in [`Loaded::nodes`]).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct NodeId(pub usize);

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// A bad `FILE|DIR` argument (missing, not a file or directory, unreadable, none given).
    #[error("{0}")]
    Input(String),
    /// [`Graph::select`] was given names that no recipe builds.
    #[error("{0}")]
    UnknownSelection(String),
}

/// Paths of the recipes, for messages.
pub(crate) fn display_path(p: &std::path::Path) -> String {
    p.display().to_string()
}

/// `p` as a `PathBuf` ("." when empty).
pub(crate) fn non_empty(p: PathBuf) -> PathBuf {
    if p.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        p
    }
}
