//! HTTP(S) downloads (reqwest + rustls/ring): conditional GETs for indexes
//! and keys, bodies streamed into a temporary file next to their final
//! place, and counters for tests and benchmarks.
//!
//! Every request is bounded ([`HttpLimits`]): the connection must be made
//! within `connect_timeout`, the response head must follow within
//! `first_byte_timeout`, and the body must keep coming (at least
//! [`MIN_PROGRESS_BYTES`] every `idle_timeout`), so a server that stops
//! answering or trickles one byte at a time fails instead of hanging.
//! Bodies are capped (the index size limit, a package's declared size) and
//! an index or package must start with the gzip magic; both are checked
//! before anything more is written. Connection errors, timeouts, `429` and
//! `5xx` answers are retried with backoff; other errors are not.
//! At most `parallel` requests (index, key or package) run at once.

use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use serde::{Deserialize, Serialize};
use tokio::time::{Instant, timeout, timeout_at};

use crate::error::{Error, Result};

/// Default limit on the connection set-up of one request.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default limit on the wait for the response head once the request is sent.
pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default limit on a stall of the body (less than [`MIN_PROGRESS_BYTES`] received).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default attempts per request.
pub const DEFAULT_ATTEMPTS: u32 = 3;
/// Default size limit of an index (`APKINDEX.tar.gz`): 256 MiB.
pub const DEFAULT_MAX_INDEX_SIZE: u64 = 256 << 20;
/// Default base delay between attempts (the n-th retry waits n² times this).
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_millis(250);
/// The body must deliver at least this many bytes per `idle_timeout`; a
/// trickle below that counts as a stall.
pub const MIN_PROGRESS_BYTES: u64 = 1024;
/// Size limit of a key fetched from a URL.
pub const MAX_KEY_SIZE: u64 = 1 << 20;

/// Time, retry and size limits of HTTP downloads.
///
/// A zero duration, attempt count or size means "the default".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Connection set-up (TCP + TLS) of one attempt.
    pub connect_timeout: Duration,
    /// From the request being sent to the complete response head (status and
    /// headers); counted after `connect_timeout` on a new connection.
    pub first_byte_timeout: Duration,
    /// Longest time the body may go without delivering [`MIN_PROGRESS_BYTES`]
    /// (or its end).
    pub idle_timeout: Duration,
    /// Attempts per request; connection errors, timeouts, `429` and `5xx`
    /// are retried, nothing else.
    pub attempts: u32,
    /// Base delay between attempts: the n-th retry waits n² × this.
    pub retry_backoff: Duration,
    /// Largest index accepted, in bytes.
    pub max_index_size: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            first_byte_timeout: DEFAULT_FIRST_BYTE_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            attempts: DEFAULT_ATTEMPTS,
            retry_backoff: DEFAULT_RETRY_BACKOFF,
            max_index_size: DEFAULT_MAX_INDEX_SIZE,
        }
    }
}

impl HttpLimits {
    /// Zero fields replaced by the defaults.
    fn effective(self) -> Self {
        let d = HttpLimits::default();
        let dur = |v: Duration, d: Duration| if v.is_zero() { d } else { v };
        HttpLimits {
            connect_timeout: dur(self.connect_timeout, d.connect_timeout),
            first_byte_timeout: dur(self.first_byte_timeout, d.first_byte_timeout),
            idle_timeout: dur(self.idle_timeout, d.idle_timeout),
            attempts: if self.attempts == 0 {
                d.attempts
            } else {
                self.attempts
            },
            retry_backoff: self.retry_backoff,
            max_index_size: if self.max_index_size == 0 {
                d.max_index_size
            } else {
                self.max_index_size
            },
        }
    }
}

/// What a download must look like.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expect {
    /// Largest body accepted, and what that limit is called in errors.
    pub max_size: Option<(u64, &'static str)>,
    /// The body must start with the gzip magic (indexes, packages).
    pub gzip: bool,
}

/// What was transferred during a resolution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchStats {
    /// HTTP requests sent (including conditional ones answered `304`).
    pub http_requests: u64,
    /// Conditional requests answered `304 Not Modified`.
    pub not_modified: u64,
    /// Body bytes received over HTTP.
    pub bytes_downloaded: u64,
    /// Packages fetched (over HTTP or copied from a local repository).
    pub packages_fetched: u64,
    /// Packages already in the cache.
    pub packages_cached: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub http_requests: AtomicU64,
    pub not_modified: AtomicU64,
    pub bytes_downloaded: AtomicU64,
    pub packages_fetched: AtomicU64,
    pub packages_cached: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> FetchStats {
        FetchStats {
            http_requests: self.http_requests.load(Ordering::Relaxed),
            not_modified: self.not_modified.load(Ordering::Relaxed),
            bytes_downloaded: self.bytes_downloaded.load(Ordering::Relaxed),
            packages_fetched: self.packages_fetched.load(Ordering::Relaxed),
            packages_cached: self.packages_cached.load(Ordering::Relaxed),
        }
    }

    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// Cache validators of a previous download.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Validators {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

pub(crate) enum Fetched {
    /// `304`: the cached copy is current.
    NotModified,
    /// A new body, in a temporary file of the requested directory.
    Body {
        file: tempfile::NamedTempFile,
        validators: Validators,
    },
}

/// Shared HTTP client.
pub(crate) struct Fetcher {
    client: reqwest::Client,
    limits: HttpLimits,
    /// Bounds the requests in flight (indexes, keys and packages alike).
    slots: tokio::sync::Semaphore,
    pub counters: Counters,
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// `1s`, `1.5s`, `250ms`.
fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

impl Fetcher {
    pub fn new(limits: HttpLimits, parallel: usize) -> Result<Self> {
        let limits = limits.effective();
        let client = reqwest::Client::builder()
            .user_agent(concat!("melange2/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(limits.connect_timeout)
            .build()
            .map_err(|e| Error::config("HTTP client", chain(&e)))?;
        Ok(Fetcher {
            client,
            limits,
            slots: tokio::sync::Semaphore::new(parallel.max(1)),
            counters: Counters::default(),
        })
    }

    /// The limits in force (defaults filled in).
    pub fn limits(&self) -> &HttpLimits {
        &self.limits
    }

    /// GET `url` into a temporary file in `dir` (conditionally when
    /// validators are given), retrying transient failures.
    pub async fn get(
        &self,
        url: &str,
        dir: &Path,
        cond: Option<&Validators>,
        expect: Expect,
    ) -> Result<Fetched> {
        let attempts = self.limits.attempts;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let r = {
                let _slot = self
                    .slots
                    .acquire()
                    .await
                    .map_err(|e| Error::config("download", e.to_string()))?;
                self.try_get(url, dir, cond, expect).await
            };
            match r {
                Err(e) if attempt < attempts && retryable(&e) => {
                    tracing::warn!("{e}; retrying ({attempt}/{attempts})");
                    tokio::time::sleep(self.limits.retry_backoff * (attempt * attempt)).await;
                }
                Err(Error::Network { url, message }) if attempts > 1 => {
                    return Err(Error::Network {
                        url,
                        message: format!("{message} (gave up after {attempt} attempts)"),
                    });
                }
                r => return r,
            }
        }
    }

    async fn try_get(
        &self,
        url: &str,
        dir: &Path,
        cond: Option<&Validators>,
        expect: Expect,
    ) -> Result<Fetched> {
        let lim = &self.limits;
        let net = |message: String| Error::Network {
            url: url.to_string(),
            message,
        };
        let refused = |message: String| Error::Refused {
            url: url.to_string(),
            message,
        };
        let req_err = |e: reqwest::Error| {
            if e.is_connect() && e.is_timeout() {
                net(format!(
                    "no connection within {} (connect timeout)",
                    secs(lim.connect_timeout)
                ))
            } else {
                net(chain(&e.without_url()))
            }
        };
        let mut req = self.client.get(url);
        if let Some(v) = cond {
            if let Some(t) = &v.etag {
                req = req.header(IF_NONE_MATCH, t);
            }
            if let Some(t) = &v.last_modified {
                req = req.header(IF_MODIFIED_SINCE, t);
            }
        }
        tracing::debug!(url, conditional = cond.is_some(), "GET");
        // the connection (if a new one is needed) is bounded by reqwest's
        // connect timeout; the head must follow within the first-byte limit
        let head_limit = lim.connect_timeout + lim.first_byte_timeout;
        let mut resp = match timeout(head_limit, req.send()).await {
            Ok(r) => r.map_err(req_err)?,
            Err(_) => {
                return Err(net(format!(
                    "no response within {} (first-byte timeout)",
                    secs(lim.first_byte_timeout)
                )));
            }
        };
        Counters::add(&self.counters.http_requests, 1);
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_MODIFIED && cond.is_some() {
            Counters::add(&self.counters.not_modified, 1);
            return Ok(Fetched::NotModified);
        }
        if !status.is_success() {
            return Err(Error::Http {
                url: url.to_string(),
                status: status.as_u16(),
                reason: status.canonical_reason().unwrap_or("").to_string(),
            });
        }
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let validators = Validators {
            etag: header(ETAG),
            last_modified: header(LAST_MODIFIED),
        };
        let expected = resp.content_length();
        let too_big = |n: u64, (max, what): (u64, &str)| {
            refused(format!(
                "the body is larger than {what} ({max} bytes; {n} announced or received)"
            ))
        };
        if let (Some(n), Some(max)) = (expected, expect.max_size)
            && n > max.0
        {
            return Err(too_big(n, max));
        }
        let mut file: Option<tempfile::NamedTempFile> = None;
        // the first bytes, held back until the gzip magic can be checked
        let mut head: Vec<u8> = Vec::new();
        let mut got = 0u64;
        let mut progress = 0u64;
        let mut deadline = Instant::now() + lim.idle_timeout;
        loop {
            let chunk = match timeout_at(deadline, resp.chunk()).await {
                Ok(c) => c.map_err(|e| net(chain(&e.without_url())))?,
                Err(_) => {
                    return Err(net(format!(
                        "the body stalled: less than {MIN_PROGRESS_BYTES} bytes in {} \
                         after {got} bytes (idle timeout)",
                        secs(lim.idle_timeout)
                    )));
                }
            };
            let Some(chunk) = chunk else { break };
            got += chunk.len() as u64;
            progress += chunk.len() as u64;
            Counters::add(&self.counters.bytes_downloaded, chunk.len() as u64);
            if progress >= MIN_PROGRESS_BYTES {
                progress = 0;
                deadline = Instant::now() + lim.idle_timeout;
            }
            if file.is_none() {
                head.extend_from_slice(&chunk);
                if expect.gzip && head.len() >= 2 && head[..2] != [0x1f, 0x8b] {
                    return Err(refused(not_gzip(&head)));
                }
            }
            if let Some(max) = expect.max_size
                && got > max.0
            {
                return Err(too_big(got, max));
            }
            if file.is_none() {
                if expect.gzip && head.len() < 2 {
                    continue;
                }
                let mut f = self.tempfile(dir)?;
                f.write_all(&head)
                    .map_err(|e| Error::io(f.path().display().to_string(), e))?;
                file = Some(f);
            } else if let Some(f) = file.as_mut() {
                f.write_all(&chunk)
                    .map_err(|e| Error::io(f.path().display().to_string(), e))?;
            }
        }
        if expect.gzip && file.is_none() {
            return Err(refused(not_gzip(&head)));
        }
        let mut file = match file {
            Some(f) => f,
            None => {
                let mut f = self.tempfile(dir)?;
                f.write_all(&head)
                    .map_err(|e| Error::io(f.path().display().to_string(), e))?;
                f
            }
        };
        file.flush()
            .map_err(|e| Error::io(file.path().display().to_string(), e))?;
        if let Some(n) = expected
            && n != got
        {
            return Err(net(format!("truncated body: received {got} of {n} bytes")));
        }
        Ok(Fetched::Body { file, validators })
    }

    fn tempfile(&self, dir: &Path) -> Result<tempfile::NamedTempFile> {
        crate::cache::locked_tempfile(dir, ".download-")
    }
}

fn not_gzip(head: &[u8]) -> String {
    if head.is_empty() {
        return "empty body where a gzip stream (1f 8b) was expected".to_string();
    }
    let shown: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!(
        "not a gzip stream: starts with {} instead of 1f 8b",
        shown.join(" ")
    )
}

fn retryable(e: &Error) -> bool {
    match e {
        Error::Network { .. } => true,
        Error::Http { status, .. } => *status >= 500 || *status == 429,
        _ => false,
    }
}
