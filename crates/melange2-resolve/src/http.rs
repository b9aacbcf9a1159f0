//! HTTP(S) downloads (reqwest + rustls/ring): conditional GETs for indexes
//! and keys, bodies streamed into a temporary file next to their final
//! place, a few retries for connection errors and 5xx answers, and counters
//! for tests and benchmarks.

use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Attempts per request (connection errors and 5xx answers are retried).
const ATTEMPTS: u32 = 3;

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

impl Fetcher {
    pub fn new() -> Result<Self> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("melange2/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| Error::config("HTTP client", chain(&e)))?;
        Ok(Fetcher {
            client,
            counters: Counters::default(),
        })
    }

    /// GET `url` into a temporary file in `dir` (conditionally when
    /// validators are given).
    pub async fn get(&self, url: &str, dir: &Path, cond: Option<&Validators>) -> Result<Fetched> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.try_get(url, dir, cond).await {
                Err(e) if attempt < ATTEMPTS && retryable(&e) => {
                    tracing::warn!("{e}; retrying ({attempt}/{ATTEMPTS})");
                    tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt * attempt)))
                        .await;
                }
                r => return r,
            }
        }
    }

    async fn try_get(&self, url: &str, dir: &Path, cond: Option<&Validators>) -> Result<Fetched> {
        let net = |e: reqwest::Error| Error::Network {
            url: url.to_string(),
            message: chain(&e.without_url()),
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
        let mut resp = req.send().await.map_err(net)?;
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
        let mut file = tempfile::Builder::new()
            .prefix(".download-")
            .tempfile_in(dir)
            .map_err(|e| Error::io(dir.display().to_string(), e))?;
        let mut got = 0u64;
        while let Some(chunk) = resp.chunk().await.map_err(net)? {
            file.write_all(&chunk)
                .map_err(|e| Error::io(file.path().display().to_string(), e))?;
            got += chunk.len() as u64;
            Counters::add(&self.counters.bytes_downloaded, chunk.len() as u64);
        }
        file.flush()
            .map_err(|e| Error::io(file.path().display().to_string(), e))?;
        if let Some(n) = expected
            && n != got
        {
            return Err(Error::Network {
                url: url.to_string(),
                message: format!("truncated body: received {got} of {n} bytes"),
            });
        }
        Ok(Fetched::Body { file, validators })
    }
}

fn retryable(e: &Error) -> bool {
    match e {
        Error::Network { .. } => true,
        Error::Http { status, .. } => *status >= 500 || *status == 429,
        _ => false,
    }
}
