//! Error type of the crate. Every variant names what failed: the URL, file,
//! repository, package or dependency chain.

use std::fmt;

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a request could not be resolved, with the chain of packages that led
/// to the failing dependency (`build-base → gcc → so:libisl.so.23: no provider`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsatisfiable {
    /// Requested constraint and packages on the way to `dependency`, outermost first.
    pub chain: Vec<String>,
    /// The dependency that could not be satisfied.
    pub dependency: String,
    /// What went wrong (`no provider`, `conflicts with …`, candidates and why they were refused).
    pub problem: String,
}

impl fmt::Display for Unsatisfiable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.chain {
            write!(f, "{c} → ")?;
        }
        write!(f, "{}: {}", self.dependency, self.problem)
    }
}

/// Everything that can go wrong while loading repositories, resolving and
/// downloading.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A malformed dependency/constraint string.
    #[error("{context}: dependency {dependency:?}: {message}")]
    Dependency {
        /// Where it was found (`request`, a package, a build file).
        context: String,
        /// The text as written.
        dependency: String,
        /// What is wrong.
        message: String,
    },
    /// Invalid configuration (repository line, keyring entry, option).
    #[error("{context}: {message}")]
    Config {
        /// The entry concerned.
        context: String,
        /// What is wrong.
        message: String,
    },
    /// An HTTP request got an error status.
    #[error("GET {url}: HTTP {status} {reason}")]
    Http {
        /// Requested URL.
        url: String,
        /// Status code (`404`).
        status: u16,
        /// Reason phrase (`Not Found`).
        reason: String,
    },
    /// A request failed: DNS, connect, TLS, a timeout (connect, first byte,
    /// idle; the message names which), a broken or truncated body.
    #[error("GET {url}: {message}")]
    Network {
        /// Requested URL.
        url: String,
        /// Error chain.
        message: String,
    },
    /// A response was refused while it was being received, before it was
    /// stored: larger than its limit, or not what was asked for (an index or
    /// package that does not start with the gzip magic). Never retried.
    #[error("GET {url}: {message}")]
    Refused {
        /// Requested URL.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// A local file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// Path or operation.
        context: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// An index, package or key was malformed or failed verification (its message and
    /// source are the APK error's own, so a printed chain says them once).
    #[error(transparent)]
    Apk(#[from] melange2_apk::Error),
    /// The request cannot be satisfied.
    #[error("cannot resolve: {0}")]
    Unsatisfiable(Box<Unsatisfiable>),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn config(context: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            context: context.into(),
            message: message.into(),
        }
    }

    /// True for signature/checksum failures.
    pub fn is_verification(&self) -> bool {
        matches!(self, Error::Apk(e) if e.is_verification())
    }

    /// The unsatisfiable-request details, if that is what this is.
    pub fn unsatisfiable(&self) -> Option<&Unsatisfiable> {
        match self {
            Error::Unsatisfiable(u) => Some(u),
            _ => None,
        }
    }
}

/// Rewrite an APK error whose context names a temporary/cache path so that
/// it names `what` (usually the URL the bytes came from) instead.
pub(crate) fn rename_context(
    e: melange2_apk::Error,
    from: &str,
    what: &str,
) -> melange2_apk::Error {
    use melange2_apk::Error as E;
    let fix = |c: String| -> String {
        match c.strip_prefix(from) {
            Some(rest) => format!("{what}{rest}"),
            None => format!("{what}: {c}"),
        }
    };
    match e {
        E::Io { context, source } => E::Io {
            context: fix(context),
            source,
        },
        E::Malformed { context, message } => E::Malformed {
            context: fix(context),
            message,
        },
        E::Verification { context, message } => E::Verification {
            context: fix(context),
            message,
        },
        E::Key { context, message } => E::Key {
            context: fix(context),
            message,
        },
        E::Invalid { context, message } => E::Invalid {
            context: fix(context),
            message,
        },
    }
}
