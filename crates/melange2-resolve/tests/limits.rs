//! HTTP limits against misbehaving servers on 127.0.0.1: connect, first-byte
//! and idle timeouts, retries (transient failures only), the index size
//! limit, the declared package size, the gzip magic at the first bytes, and
//! one bound on concurrent requests. Every run is wrapped in a deadline, so
//! a missing limit fails the test instead of hanging it.

mod common;
mod fixture;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use melange2_resolve::{Error, HttpLimits, Options, Resolution, resolve_with};

/// How the server answers one request.
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// The file under the root (404 if missing).
    File,
    /// Read the request, then say nothing for a long time.
    Silent,
    /// The response head, one byte every `ms` milliseconds.
    TrickleHead(u64),
    /// The file's head and first `n` bytes, then nothing for a long time.
    StallAfter(usize),
    /// The head (no length), the gzip magic, then one byte every `ms` milliseconds.
    TrickleBody(u64),
    /// The head (no length), the file (if any), then zeros without end.
    Endless,
    /// An HTML page without end.
    EndlessHtml,
    /// `200` announcing this Content-Length, then zeros.
    Announce(u64),
    /// This status.
    Status(u16),
}

type Rule = dyn Fn(&str, usize) -> Answer + Send + Sync;

struct Misbehaving {
    base: String,
    /// Requests per path.
    hits: Arc<Mutex<BTreeMap<String, usize>>>,
    /// Bytes written per path (bodies).
    sent: Arc<Mutex<BTreeMap<String, usize>>>,
    stop: Arc<AtomicBool>,
    max_inflight: Arc<AtomicUsize>,
}

impl Drop for Misbehaving {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Misbehaving {
    /// Serve `root`, answering each request as `rule(path, nth request of that path)` says.
    fn start(root: &Path, rule: impl Fn(&str, usize) -> Answer + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let rule: Arc<Rule> = Arc::new(rule);
        let hits = Arc::new(Mutex::new(BTreeMap::new()));
        let sent = Arc::new(Mutex::new(BTreeMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let max_inflight = Arc::new(AtomicUsize::new(0));
        let inflight = Arc::new(AtomicUsize::new(0));
        let (h, s, st, root, mx) = (
            Arc::clone(&hits),
            Arc::clone(&sent),
            Arc::clone(&stop),
            root.to_path_buf(),
            Arc::clone(&max_inflight),
        );
        std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                let conn = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                conn.set_nonblocking(false).unwrap();
                let (h, s, st, root, rule, mx, inf) = (
                    Arc::clone(&h),
                    Arc::clone(&s),
                    Arc::clone(&st),
                    root.clone(),
                    Arc::clone(&rule),
                    Arc::clone(&mx),
                    Arc::clone(&inflight),
                );
                std::thread::spawn(move || {
                    let now = inf.fetch_add(1, Ordering::SeqCst) + 1;
                    mx.fetch_max(now, Ordering::SeqCst);
                    answer(conn, &root, &*rule, &h, &s, &st);
                    inf.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Misbehaving {
            base: format!("http://{addr}"),
            hits,
            sent,
            stop,
            max_inflight,
        }
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    fn sent(&self, path: &str) -> usize {
        self.sent.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

/// Sleep up to `d`, returning early when the server is stopped.
fn nap(d: Duration, stop: &AtomicBool) {
    let end = Instant::now() + d;
    while Instant::now() < end && !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn answer(
    mut s: TcpStream,
    root: &Path,
    rule: &Rule,
    hits: &Mutex<BTreeMap<String, usize>>,
    sent: &Mutex<BTreeMap<String, usize>>,
    stop: &AtomicBool,
) {
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).is_err() || line.is_empty() {
        return;
    }
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let nth = {
        let mut m = hits.lock().unwrap();
        let n = m.entry(path.clone()).or_insert(0);
        *n += 1;
        *n
    };
    let file = root.join(path.trim_start_matches('/'));
    let data = std::fs::read(&file).ok();
    let count = |n: usize| *sent.lock().unwrap().entry(path.clone()).or_insert(0) += n;
    let long = Duration::from_secs(60);
    let chunked_head = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
    match rule(&path, nth) {
        Answer::File => match data {
            Some(d) => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    d.len()
                );
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(&d);
                count(d.len());
            }
            None => {
                let _ = s.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        },
        Answer::Silent => nap(long, stop),
        Answer::TrickleHead(ms) => {
            for b in b"HTTP/1.1 200 OK\r\nX-Slow: "
                .iter()
                .chain([b'a'; 10_000].iter())
            {
                if stop.load(Ordering::SeqCst) || s.write_all(&[*b]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(ms));
            }
        }
        Answer::StallAfter(n) => {
            let d = data.unwrap_or_default();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                d.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&d[..n.min(d.len())]);
            count(n.min(d.len()));
            nap(long, stop);
        }
        Answer::TrickleBody(ms) => {
            let _ = s.write_all(chunked_head.as_bytes());
            let _ = s.write_all(&[0x1f, 0x8b]);
            count(2);
            while !stop.load(Ordering::SeqCst) && s.write_all(&[0]).is_ok() {
                count(1);
                std::thread::sleep(Duration::from_millis(ms));
            }
        }
        Answer::Endless | Answer::EndlessHtml | Answer::Announce(_) => {
            let head = match rule(&path, nth) {
                Answer::Announce(n) => {
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n")
                }
                _ => chunked_head.to_string(),
            };
            let _ = s.write_all(head.as_bytes());
            let mut first = match rule(&path, nth) {
                Answer::EndlessHtml => b"<html><body>".to_vec(),
                Answer::Announce(_) => vec![0x1f, 0x8b],
                _ => data.unwrap_or_else(|| vec![0x1f, 0x8b]),
            };
            let zeros = vec![0u8; 64 * 1024];
            let mut limit = 1usize << 34;
            while !stop.load(Ordering::SeqCst) && limit > 0 {
                let chunk = if first.is_empty() { &zeros } else { &first };
                if s.write_all(chunk).is_err() {
                    break;
                }
                count(chunk.len());
                limit = limit.saturating_sub(chunk.len());
                first.clear();
            }
        }
        Answer::Status(code) => {
            let head = format!(
                "HTTP/1.1 {code} Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = s.write_all(head.as_bytes());
        }
    }
    let _ = s.flush();
}

/// Short limits so that every test stays fast.
fn short() -> HttpLimits {
    HttpLimits {
        connect_timeout: Duration::from_secs(1),
        first_byte_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
        attempts: 2,
        retry_backoff: Duration::from_millis(20),
        max_index_size: 1 << 20,
    }
}

fn opts(base: &str, cache: &Path) -> Options {
    Options {
        arch: "x86_64".into(),
        repositories: vec![format!("{base}/main")],
        keyring: vec![fixture::shared().key().display().to_string()],
        cache_dir: Some(cache.to_path_buf()),
        ..Options::default()
    }
}

/// Resolve under a deadline of 20 s: a missing limit fails here, not by hanging.
fn run(o: &Options, limits: HttpLimits, request: &[&str]) -> (Result<Resolution, Error>, Duration) {
    common::init_logging();
    let t0 = Instant::now();
    let r = common::rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(20), resolve_with(o, limits, request)).await
    });
    let r = r.unwrap_or_else(|_| panic!("no answer after {:?}: the request hangs", t0.elapsed()));
    (r, t0.elapsed())
}

const INDEX: &str = "/main/x86_64/APKINDEX.tar.gz";
const MAKE: &str = "/main/x86_64/make-4.4.1-r0.apk";

fn files_under(dir: &Path) -> Vec<(PathBuf, u64)> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let n = e.metadata().unwrap().len();
            (e.into_path(), n)
        })
        .collect()
}

#[test]
fn silent_server_hits_the_first_byte_timeout_and_is_retried() {
    let f = fixture::shared();
    let server = Misbehaving::start(f.dir.path(), |p, _| {
        if p == INDEX {
            Answer::Silent
        } else {
            Answer::File
        }
    });
    let cache = tempfile::tempdir().unwrap();
    let (r, took) = run(&opts(&server.base, cache.path()), short(), &["make"]);
    let e = r.unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "GET {}{INDEX}: no response within 1s (first-byte timeout) (gave up after 2 attempts)",
            server.base
        )
    );
    assert_eq!(server.hits(INDEX), 2, "a timeout is retried");
    assert!(took < Duration::from_secs(8), "{took:?}");
}

#[test]
fn response_head_trickling_one_byte_at_a_time_times_out() {
    let f = fixture::shared();
    let server = Misbehaving::start(f.dir.path(), |p, _| {
        if p == INDEX {
            Answer::TrickleHead(100)
        } else {
            Answer::File
        }
    });
    let cache = tempfile::tempdir().unwrap();
    let mut limits = short();
    limits.attempts = 1;
    let (r, took) = run(&opts(&server.base, cache.path()), limits, &["make"]);
    let e = r.unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "GET {}{INDEX}: no response within 1s (first-byte timeout)",
            server.base
        )
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn body_trickling_one_byte_at_a_time_hits_the_idle_timeout() {
    let f = fixture::shared();
    let server = Misbehaving::start(f.dir.path(), |p, _| {
        if p == INDEX {
            Answer::TrickleBody(100)
        } else {
            Answer::File
        }
    });
    let cache = tempfile::tempdir().unwrap();
    let (r, took) = run(&opts(&server.base, cache.path()), short(), &["make"]);
    let e = r.unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "GET {}{INDEX}: the body stalled: less than 1024 bytes in 1s after ",
            server.base
        )),
        "{e}"
    );
    assert!(
        e.ends_with("(idle timeout) (gave up after 2 attempts)"),
        "{e}"
    );
    assert_eq!(server.hits(INDEX), 2);
    assert!(took < Duration::from_secs(8), "{took:?}");
}

#[test]
fn package_body_stalling_hits_the_idle_timeout_then_a_retry_succeeds() {
    let f = fixture::shared();
    let server = Misbehaving::start(f.dir.path(), |p, nth| {
        if p == MAKE && nth == 1 {
            Answer::StallAfter(100)
        } else {
            Answer::File
        }
    });
    let cache = tempfile::tempdir().unwrap();
    let (r, took) = run(&opts(&server.base, cache.path()), short(), &["make"]);
    let r = r.unwrap();
    assert_eq!(r.packages.len(), 1);
    assert_eq!(server.hits(MAKE), 2);
    assert!(took < Duration::from_secs(8), "{took:?}");
    // with one attempt, the stall is the error
    let cache = tempfile::tempdir().unwrap();
    let server = Misbehaving::start(f.dir.path(), |p, _| {
        if p == MAKE {
            Answer::StallAfter(100)
        } else {
            Answer::File
        }
    });
    let mut limits = short();
    limits.attempts = 1;
    let (r, _) = run(&opts(&server.base, cache.path()), limits, &["make"]);
    let e = r.unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "GET {}{MAKE}: the body stalled: less than 1024 bytes in 1s after 100 bytes (idle timeout)",
            server.base
        )
    );
    assert!(files_under(&cache.path().join("packages")).is_empty());
}

/// A listener whose accept queue is full: new connections are never
/// completed, as with a host that drops packets.
fn unanswered_listener() -> (TcpListener, Vec<TcpStream>, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..5000 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(c) => held.push(c),
            Err(_) => return (l, held, addr),
        }
    }
    panic!("the accept queue never filled");
}

#[test]
fn unanswered_connection_hits_the_connect_timeout() {
    let (_l, _held, addr) = unanswered_listener();
    let cache = tempfile::tempdir().unwrap();
    let base = format!("http://{addr}");
    let (r, took) = run(&opts(&base, cache.path()), short(), &["make"]);
    let e = r.unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "GET {base}{INDEX}: no connection within 1s (connect timeout) (gave up after 2 attempts)"
        )
    );
    assert!(took < Duration::from_secs(8), "{took:?}");
}

#[test]
fn server_errors_are_retried_client_errors_are_not() {
    let f = fixture::shared();
    let server = Misbehaving::start(f.dir.path(), |p, nth| match (p, nth) {
        (INDEX, 1 | 2) => Answer::Status(503),
        (MAKE, _) => Answer::Status(403),
        _ => Answer::File,
    });
    let cache = tempfile::tempdir().unwrap();
    let mut limits = short();
    limits.attempts = 3;
    let (r, _) = run(&opts(&server.base, cache.path()), limits, &["make"]);
    let e = r.unwrap_err().to_string();
    assert_eq!(e, format!("GET {}{MAKE}: HTTP 403 Forbidden", server.base));
    assert_eq!(server.hits(INDEX), 3, "503 twice, then the index");
    assert_eq!(server.hits(MAKE), 1, "a 4xx is not retried");
}

#[test]
fn endless_index_is_cut_at_the_size_limit() {
    let f = fixture::shared();
    let server = Misbehaving::start(f.dir.path(), |p, _| {
        if p == INDEX {
            Answer::Endless
        } else {
            Answer::File
        }
    });
    let cache = tempfile::tempdir().unwrap();
    let (r, took) = run(&opts(&server.base, cache.path()), short(), &["make"]);
    let e = r.unwrap_err();
    assert!(matches!(e, Error::Refused { .. }), "{e:?}");
    let e = e.to_string();
    assert!(
        e.starts_with(&format!(
            "GET {}{INDEX}: the body is larger than the index size limit (1048576 bytes; ",
            server.base
        )),
        "{e}"
    );
    assert_eq!(server.hits(INDEX), 1, "not retried");
    assert!(took < Duration::from_secs(8), "{took:?}");
    // nothing stays in the cache, and no more than the limit was kept
    assert!(files_under(&cache.path().join("indexes")).is_empty());
    // an announced length above the limit is refused before the body
    let server = Misbehaving::start(f.dir.path(), |p, _| {
        if p == INDEX {
            Answer::Announce(10 << 30)
        } else {
            Answer::File
        }
    });
    let (r, _) = run(&opts(&server.base, cache.path()), short(), &["make"]);
    assert_eq!(
        r.unwrap_err().to_string(),
        format!(
            "GET {}{INDEX}: the body is larger than the index size limit (1048576 bytes; \
             10737418240 announced or received)",
            server.base
        )
    );
}

#[test]
fn package_longer_than_its_declared_size_is_refused() {
    let f = fixture::shared();
    let size = std::fs::metadata(f.main().join("x86_64/make-4.4.1-r0.apk"))
        .unwrap()
        .len();
    let server = Misbehaving::start(f.dir.path(), |p, _| {
        if p == MAKE {
            Answer::Endless
        } else {
            Answer::File
        }
    });
    let cache = tempfile::tempdir().unwrap();
    let (r, took) = run(&opts(&server.base, cache.path()), short(), &["make"]);
    let e = r.unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "GET {}{MAKE}: the body is larger than the size the index declares ({size} bytes; ",
            server.base
        )),
        "{e}"
    );
    assert_eq!(server.hits(MAKE), 1, "not retried");
    assert!(took < Duration::from_secs(8), "{took:?}");
    assert!(files_under(&cache.path().join("packages")).is_empty());
}

#[test]
fn non_gzip_answers_are_refused_at_the_first_bytes() {
    let f = fixture::shared();
    let server = Misbehaving::start(f.dir.path(), |p, _| {
        if p == INDEX {
            Answer::EndlessHtml
        } else {
            Answer::File
        }
    });
    let cache = tempfile::tempdir().unwrap();
    let mut limits = short();
    limits.max_index_size = 256 << 20;
    let (r, took) = run(&opts(&server.base, cache.path()), limits, &["make"]);
    let e = r.unwrap_err();
    assert!(matches!(e, Error::Refused { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "GET {}{INDEX}: not a gzip stream: starts with 3c 68 74 6d 6c 3e 3c 62 instead of 1f 8b",
            server.base
        )
    );
    assert_eq!(server.hits(INDEX), 1, "not retried");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // the client hung up at once: far less than the size limit was sent
    assert!(server.sent(INDEX) < 64 << 20, "{}", server.sent(INDEX));
    assert!(files_under(&cache.path().join("indexes")).is_empty());

    // a package that is not gzip (an HTML error page served with 200)
    let server = Misbehaving::start(f.dir.path(), |p, _| {
        if p == MAKE {
            Answer::EndlessHtml
        } else {
            Answer::File
        }
    });
    let (r, _) = run(&opts(&server.base, cache.path()), short(), &["make"]);
    assert_eq!(
        r.unwrap_err().to_string(),
        format!(
            "GET {}{MAKE}: not a gzip stream: starts with 3c 68 74 6d 6c 3e 3c 62 instead of 1f 8b",
            server.base
        )
    );
    assert!(files_under(&cache.path().join("packages")).is_empty());
}

#[test]
fn one_bound_covers_indexes_and_packages() {
    let f = fixture::shared();
    let server = Misbehaving::start(f.dir.path(), |_, _| Answer::File);
    let cache = tempfile::tempdir().unwrap();
    let mut o = opts(&server.base, cache.path());
    o.repositories = vec![
        format!("{}/main", server.base),
        format!("{}/third", server.base),
        format!("@local {}/local", server.base),
    ];
    o.parallel_downloads = 1;
    let (r, _) = run(&o, short(), &["build-base", "localonly@local"]);
    assert!(r.unwrap().packages.len() > 8);
    assert_eq!(server.max_inflight.load(Ordering::SeqCst), 1);
}
