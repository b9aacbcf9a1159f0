//! Errors of the client, with failed solves decoded into something a person can act on.

use std::fmt;

/// Everything that can go wrong talking to buildkitd.
#[derive(Debug, thiserror::Error)]
pub enum BuildkitError {
    /// The address could not be parsed or uses an unknown scheme.
    #[error("invalid BuildKit address {addr:?}: {reason}")]
    Address {
        /// The address as given.
        addr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A TLS file could not be read.
    #[error("cannot read TLS file {path}: {source}")]
    TlsFile {
        /// The file.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// The daemon could not be reached.
    #[error("cannot connect to buildkitd at {addr}: {reason}")]
    Connect {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The daemon did not answer in time.
    #[error("buildkitd at {addr} did not answer within {secs} s ({what})")]
    Timeout {
        /// The address.
        addr: String,
        /// The time limit.
        secs: u64,
        /// The call that timed out.
        what: String,
    },
    /// The daemon is older than the oldest version we support.
    #[error("buildkitd at {addr} is too old ({version}); melange2 needs BuildKit {min} or newer")]
    TooOld {
        /// The address.
        addr: String,
        /// The version it reported (or why none).
        version: String,
        /// The minimum version.
        min: String,
    },
    /// A gRPC call failed.
    #[error("buildkitd {call} failed: {status}")]
    Rpc {
        /// The call.
        call: &'static str,
        /// The status.
        status: Box<tonic::Status>,
    },
    /// The session could not be set up.
    #[error("BuildKit session failed: {0}")]
    Session(String),
    /// Marshalling the LLB graph failed.
    #[error(transparent)]
    Llb(#[from] melange2_llb::LlbError),
    /// The solve failed.
    #[error(transparent)]
    Solve(Box<SolveError>),
    /// Writing exported output failed.
    #[error("writing the build output failed: {0}")]
    Export(String),
    /// A cache export or import option is invalid.
    #[error("{flag} {spec:?}: {reason}")]
    CacheOption {
        /// `--cache-to`, `--cache-from` or `cache option`.
        flag: &'static str,
        /// The option as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A failed step's container could not be opened or used.
    #[error("debugging the failed step: {0}")]
    Debug(String),
    /// Every step succeeded, but the daemon could not export the cache.
    #[error(
        "the build succeeded, but exporting its cache to {targets} failed: {message} \
         (add ignore-error=true to the cache option to go on without it)"
    )]
    CacheExport {
        /// The cache options that were exported to, as given.
        targets: String,
        /// The daemon's error.
        message: String,
    },
}

/// A failed solve: which step failed, how and what it printed last.
#[derive(Debug, Clone, Default)]
pub struct SolveError {
    /// The daemon's error message.
    pub message: String,
    /// Digest of the failing vertex, when the daemon named it.
    pub vertex: Option<String>,
    /// Display name of the failing step.
    pub step: Option<String>,
    /// Exit code of the failing process, when a process failed.
    pub exit_code: Option<i32>,
    /// The last lines the failing step printed (stdout and stderr).
    pub log_tail: Vec<String>,
}

impl fmt::Display for SolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.step, self.exit_code) {
            (Some(step), Some(code)) => write!(f, "step {step:?} failed with exit code {code}")?,
            (Some(step), None) => write!(f, "step {step:?} failed")?,
            (None, Some(code)) => write!(f, "build failed with exit code {code}")?,
            (None, None) => write!(f, "build failed")?,
        }
        write!(f, ": {}", self.message)?;
        if !self.log_tail.is_empty() {
            write!(f, "\n--- last {} lines of output ---", self.log_tail.len())?;
            for l in &self.log_tail {
                write!(f, "\n{l}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for SolveError {}

impl From<SolveError> for BuildkitError {
    fn from(e: SolveError) -> Self {
        BuildkitError::Solve(Box::new(e))
    }
}

/// Details BuildKit attaches to a failed solve (JSON payloads in `google.rpc.Status.details`).
#[derive(Debug, Default)]
pub(crate) struct ErrorDetails {
    pub vertex: Option<String>,
    pub exit_code: Option<i32>,
}

pub(crate) fn decode_details(status: &tonic::Status) -> ErrorDetails {
    use prost::Message;
    let mut out = ErrorDetails::default();
    let Ok(rpc) = bollard_buildkit_proto::google::rpc::Status::decode(status.details()) else {
        return out;
    };
    for any in rpc.details {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&any.value) else {
            continue;
        };
        if any.type_url.ends_with("errdefs.Vertex+json") {
            out.vertex = v.get("digest").and_then(|d| d.as_str()).map(str::to_string);
        } else if any.type_url.ends_with("ExitMessage+json") {
            out.exit_code = v
                .get("Code")
                .and_then(|c| c.as_i64())
                .and_then(|c| i32::try_from(c).ok());
        }
    }
    out
}

/// The human part of a solve error message. The daemon quotes the whole command line of a
/// failed process (a step's entire script); the step is named separately, so drop it.
pub(crate) fn clean_message(status: &tonic::Status) -> String {
    shorten_process_message(status.message().trim())
}

fn shorten_process_message(msg: &str) -> String {
    const END: &str = "\" did not complete successfully";
    if let (Some(start), Some(end)) = (msg.find("process \""), msg.rfind(END))
        && start < end
    {
        return format!(
            "{}process did not complete successfully{}",
            &msg[..start],
            &msg[end + END.len()..]
        );
    }
    msg.to_string()
}

/// Pull `exit code: N` out of a message when the details did not carry it.
pub(crate) fn exit_code_from_message(msg: &str) -> Option<i32> {
    let idx = msg.rfind("exit code: ")?;
    let rest = &msg[idx + "exit code: ".len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_parse() {
        assert_eq!(
            exit_code_from_message(
                "process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3"
            ),
            Some(3)
        );
        assert_eq!(exit_code_from_message("no code"), None);
    }

    #[test]
    fn process_command_is_dropped() {
        assert_eq!(
            shorten_process_message(
                "process \"/bin/sh -c set -e\\nmake \\\"x\\\"\" did not complete successfully: exit code: 2"
            ),
            "process did not complete successfully: exit code: 2"
        );
        assert_eq!(shorten_process_message("other"), "other");
    }

    #[test]
    fn display_has_step_code_and_tail() {
        let e = SolveError {
            message: "process did not complete successfully".into(),
            vertex: None,
            step: Some("run: make".into()),
            exit_code: Some(2),
            log_tail: vec!["make: *** [all] Error 2".into()],
        };
        let s = e.to_string();
        assert!(s.contains("\"run: make\""));
        assert!(s.contains("exit code 2"));
        assert!(s.contains("Error 2"));
    }
}
