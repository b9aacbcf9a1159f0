//! The crate's error type.

use std::io;
use std::path::Path;

/// Everything that can make packaging fail. Every variant names what it was
/// working on (package, file, tar entry, output path) so it can be printed
/// as-is. When an error is returned, the output directory is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// Writing, reading or signing an APK or an index failed.
    #[error(transparent)]
    Apk(#[from] melange2_apk::Error),
    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done (usually with a path).
        context: String,
        /// Underlying error.
        #[source]
        source: io::Error,
    },
    /// The tar stream from the build is malformed or holds something that
    /// cannot be packaged.
    #[error("build output tar stream: {context}: {message}")]
    Tar {
        /// Entry (or position) concerned.
        context: String,
        /// What is wrong.
        message: String,
    },
    /// The plan holds metadata that cannot go into a package.
    #[error("package {package}: {message}")]
    Invalid {
        /// Package concerned.
        package: String,
        /// What is wrong.
        message: String,
    },
    /// Required linters fired (every offending path of every package is
    /// in the findings); nothing was written.
    #[error("{}", melange2_lint::render_failures(.0))]
    Lint(Vec<melange2_lint::Finding>),
    /// `lint_require` / `lint_warn` name an unknown linter, or one linter twice.
    #[error(transparent)]
    LintPolicy(#[from] melange2_lint::LintError),
}

impl PackageError {
    pub(crate) fn io_path(what: &str, path: &Path, source: io::Error) -> Self {
        PackageError::Io {
            context: format!("{what} {}", path.display()),
            source,
        }
    }

    pub(crate) fn tar(context: impl Into<String>, message: impl Into<String>) -> Self {
        PackageError::Tar {
            context: context.into(),
            message: message.into(),
        }
    }

    pub(crate) fn invalid(package: impl Into<String>, message: impl Into<String>) -> Self {
        PackageError::Invalid {
            package: package.into(),
            message: message.into(),
        }
    }
}

/// Result alias of the crate.
pub type Result<T, E = PackageError> = std::result::Result<T, E>;
