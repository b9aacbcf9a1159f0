//! Error type shared by every module of the crate.

use std::io;
use std::path::Path;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while writing, reading, signing or verifying
/// packages and indexes. Every variant carries a human-readable context
/// (file, entry, field or package) so callers can print it as-is.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being accessed (usually a path).
        context: String,
        /// Underlying error.
        #[source]
        source: io::Error,
    },
    /// Input bytes do not follow the expected format (gzip, tar, .PKGINFO,
    /// APKINDEX, PEM, ...).
    #[error("{context}: {message}")]
    Malformed {
        /// Where the problem was found.
        context: String,
        /// What is wrong.
        message: String,
    },
    /// A signature, checksum or hash does not match.
    #[error("{context}: verification failed: {message}")]
    Verification {
        /// What was being verified.
        context: String,
        /// Why it failed.
        message: String,
    },
    /// A key could not be read, generated or used.
    #[error("{context}: {message}")]
    Key {
        /// Key file or key name.
        context: String,
        /// What is wrong.
        message: String,
    },
    /// A caller-supplied value (metadata field, path, option) is invalid.
    #[error("{context}: {message}")]
    Invalid {
        /// Field or path concerned.
        context: String,
        /// What is wrong.
        message: String,
    },
}

impl Error {
    /// I/O error with context.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// I/O error about a path.
    pub fn io_path(path: &Path, source: io::Error) -> Self {
        Error::io(path.display().to_string(), source)
    }

    /// Malformed input.
    pub fn malformed(context: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Malformed {
            context: context.into(),
            message: message.into(),
        }
    }

    /// Verification failure.
    pub fn verification(context: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Verification {
            context: context.into(),
            message: message.into(),
        }
    }

    /// Key problem.
    pub fn key(context: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Key {
            context: context.into(),
            message: message.into(),
        }
    }

    /// Invalid caller input.
    pub fn invalid(context: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            context: context.into(),
            message: message.into(),
        }
    }

    /// Prefix the context with an outer context (typically a file name), giving
    /// messages like `foo.apk: control member: .PKGINFO: bad line`.
    #[must_use]
    pub fn within(self, outer: impl std::fmt::Display) -> Self {
        let wrap = |c: String| {
            if c.is_empty() {
                outer.to_string()
            } else {
                format!("{outer}: {c}")
            }
        };
        match self {
            Error::Io { context, source } => Error::Io {
                context: wrap(context),
                source,
            },
            Error::Malformed { context, message } => Error::Malformed {
                context: wrap(context),
                message,
            },
            Error::Verification { context, message } => Error::Verification {
                context: wrap(context),
                message,
            },
            Error::Key { context, message } => Error::Key {
                context: wrap(context),
                message,
            },
            Error::Invalid { context, message } => Error::Invalid {
                context: wrap(context),
                message,
            },
        }
    }

    /// True when this is a verification failure (bad signature/hash).
    pub fn is_verification(&self) -> bool {
        matches!(self, Error::Verification { .. })
    }
}

/// Convert an `io::Error` produced while decoding a stream: errors carrying an
/// inner [`Error`] (from our own decoders) are unwrapped, others become
/// [`Error::Malformed`] or [`Error::Io`].
pub(crate) fn from_stream_io(context: &str, e: io::Error) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        match e.into_inner().map(|b| b.downcast::<Error>()) {
            Some(Ok(inner)) => return *inner,
            Some(Err(other)) => return Error::malformed(context, other.to_string()),
            None => return Error::malformed(context, "unknown stream error"),
        }
    }
    match e.kind() {
        io::ErrorKind::UnexpectedEof => Error::malformed(
            context,
            format!("unexpected end of data ({e}): truncated or corrupt"),
        ),
        io::ErrorKind::InvalidData => Error::malformed(context, e.to_string()),
        _ => Error::io(context, e),
    }
}
