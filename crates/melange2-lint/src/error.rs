//! The crate's error type.

use crate::linters::LINTERS;

/// Errors of this crate. Findings of linters are not errors: they are
/// returned in a [`crate::LintReport`].
#[derive(Debug, thiserror::Error)]
pub enum LintError {
    /// A linter name that does not exist (from `--lint-require`, `--lint-warn`).
    #[error("unknown linter {0:?} (known: {known})", known = known_names())]
    UnknownLinter(String),
    /// The same linter given to `--lint-require` and `--lint-warn`.
    #[error("linter {0:?} is given to both --lint-require and --lint-warn")]
    Conflict(String),
    /// An `.apk` could not be read.
    #[error(transparent)]
    Apk(#[from] melange2_apk::Error),
    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done (with the path).
        context: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
}

fn known_names() -> String {
    LINTERS
        .iter()
        .map(|l| l.name)
        .collect::<Vec<_>>()
        .join(", ")
}
