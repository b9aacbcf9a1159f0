#![allow(dead_code)]
//! Shared test helpers: RSA keys made with openssl, synthetic signed
//! repositories built with `melange2_apk::RepoBuilder`, and a tiny HTTP
//! server on 127.0.0.1 that serves a directory with ETags and counts requests.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use melange2_apk::{PackageTree, PkgInfo, RepoBuilder, SigningKey};

pub struct TestKey {
    pub dir: tempfile::TempDir,
    pub private: PathBuf,
    pub public: PathBuf,
}

fn make_key(name: &str) -> TestKey {
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join(name);
    let public = dir.path().join(format!("{name}.pub"));
    let st = Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&private)
        .arg("2048")
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let st = Command::new("openssl")
        .args(["rsa", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .output()
        .unwrap();
    assert!(st.status.success());
    TestKey {
        dir,
        private,
        public,
    }
}

/// The trusted key (`test.rsa`).
pub fn key() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(|| make_key("test.rsa"))
}

/// An unrelated key (`other.rsa`).
pub fn other_key() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(|| make_key("other.rsa"))
}

pub fn signer() -> SigningKey {
    SigningKey::load(&key().private).unwrap()
}

pub fn other_signer() -> SigningKey {
    SigningKey::load(&other_key().private).unwrap()
}

/// A synthetic package description.
#[derive(Clone, Debug)]
pub struct P {
    pub info: PkgInfo,
    /// Extra content so that two packages with the same name-version differ.
    pub salt: String,
}

pub fn p(name: &str, version: &str) -> P {
    P {
        info: PkgInfo::new(name, version, "x86_64"),
        salt: String::new(),
    }
}

impl P {
    pub fn deps(mut self, d: &[&str]) -> Self {
        self.info.depends = d.iter().map(|s| s.to_string()).collect();
        self
    }
    pub fn provides(mut self, d: &[&str]) -> Self {
        self.info.provides = d.iter().map(|s| s.to_string()).collect();
        self
    }
    pub fn install_if(mut self, d: &[&str]) -> Self {
        self.info.install_if = d.iter().map(|s| s.to_string()).collect();
        self
    }
    pub fn replaces(mut self, d: &[&str]) -> Self {
        self.info.replaces = d.iter().map(|s| s.to_string()).collect();
        self
    }
    pub fn priority(mut self, k: u64) -> Self {
        self.info.provider_priority = Some(k);
        self
    }
    pub fn origin(mut self, o: &str) -> Self {
        self.info.origin = o.to_string();
        self
    }
    pub fn arch(mut self, a: &str) -> Self {
        self.info.arch = a.to_string();
        self
    }
    pub fn salt(mut self, s: &str) -> Self {
        self.salt = s.to_string();
        self
    }

    pub fn tree(&self) -> PackageTree {
        let mut t = PackageTree::new();
        t.add_file(
            &format!("usr/share/{}/{}", self.info.name, self.info.version),
            0o644,
            format!("{} {} {}\n", self.info.name, self.info.version, self.salt),
        )
        .unwrap();
        t
    }
}

/// Write `pkgs` into a repository at `root`, signed by `key` (packages and
/// index). Packages are written into the directory of the index arch `dir_arch`
/// (a `noarch` package lands in the arch directory like in real repositories).
pub fn build_repo(root: &Path, dir_arch: &str, pkgs: &[P], key: Option<SigningKey>) {
    // RepoBuilder writes <root>/<info.arch>/; write noarch ones through a
    // scratch repository and index them into the arch directory.
    let mut rb = RepoBuilder::new(root);
    if let Some(k) = key.clone() {
        rb = rb.signer(k);
    }
    let mut extra = Vec::new();
    for pk in pkgs {
        if pk.info.arch == dir_arch {
            rb.add(&pk.info, &pk.tree()).unwrap();
        } else {
            extra.push(pk.clone());
        }
    }
    rb.finish().unwrap();
    if extra.is_empty() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let mut sb = RepoBuilder::new(scratch.path());
    if let Some(k) = key.clone() {
        sb = sb.signer(k);
    }
    let dir = root.join(dir_arch);
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for pk in &extra {
        let w = sb.add(&pk.info, &pk.tree()).unwrap();
        let _ = w;
        let src = scratch.path().join(&pk.info.arch).join(pk.info.file_name());
        let dst = dir.join(pk.info.file_name());
        std::fs::copy(&src, &dst).unwrap();
        files.push(dst);
    }
    let index = dir.join("APKINDEX.tar.gz");
    let merge = index.exists().then_some(index.as_path());
    melange2_apk::index_packages(&files, &index, merge, None, key.as_ref()).unwrap();
}

// ---------------------------------------------------------------------------
// HTTP server

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub path: String,
    pub status: u16,
    pub bytes: usize,
}

pub struct Server {
    pub base: String,
    pub root: PathBuf,
    hits: Arc<Mutex<Vec<Hit>>>,
    stop: Arc<AtomicBool>,
    inflight: Arc<(AtomicUsize, AtomicUsize)>,
    addr: std::net::SocketAddr,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn etag_of(data: &[u8]) -> String {
    use sha2::Digest as _;
    format!("\"{}\"", hex::encode(&sha2::Sha256::digest(data)[..12]))
}

/// Answer one request. `inflight` (now, most) counts the requests being answered from
/// when the request has been read to when the answer starts: a window inside the one in
/// which the client holds a download slot, so the count never exceeds what the client has
/// in flight (counting whole connections did: a connection the client had finished with
/// could still be draining while its next download started).
fn serve_one(
    mut s: TcpStream,
    root: &Path,
    hits: &Mutex<Vec<Hit>>,
    delay: Duration,
    inflight: &(AtomicUsize, AtomicUsize),
) {
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).is_err() || line.is_empty() {
        return;
    }
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let now = inflight.0.fetch_add(1, Ordering::SeqCst) + 1;
    inflight.1.fetch_max(now, Ordering::SeqCst);
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let rel = path.trim_start_matches('/');
    let file = root.join(rel);
    let (status, reason, body, etag) = if rel.contains("..") || !file.is_file() {
        (404, "Not Found", b"not found\n".to_vec(), None)
    } else {
        let data = std::fs::read(&file).unwrap();
        let tag = etag_of(&data);
        if headers.get("if-none-match") == Some(&tag) {
            (304, "Not Modified", Vec::new(), Some(tag))
        } else {
            (200, "OK", data, Some(tag))
        }
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n",
        if status == 304 { 0 } else { body.len() }
    );
    if let Some(t) = etag {
        head.push_str(&format!("ETag: {t}\r\n"));
    }
    head.push_str("\r\n");
    if !delay.is_zero() && path.ends_with(".apk") {
        std::thread::sleep(delay);
    }
    inflight.0.fetch_sub(1, Ordering::SeqCst);
    let _ = s.write_all(head.as_bytes());
    if status != 304 {
        let _ = s.write_all(&body);
    }
    let _ = s.flush();
    hits.lock().unwrap().push(Hit {
        path,
        status,
        bytes: if status == 200 { body.len() } else { 0 },
    });
    // drain anything left so the client sees a clean close
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 64];
    let _ = r.read(&mut sink);
}

impl Server {
    /// Serve `root` on 127.0.0.1 (an ephemeral port).
    pub fn start(root: &Path) -> Server {
        Server::start_with_delay(root, Duration::ZERO)
    }

    /// Like [`Server::start`], each `.apk` answer delayed by `delay`.
    pub fn start_with_delay(root: &Path, delay: Duration) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let inflight = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let (h, st, rt, inf) = (
            Arc::clone(&hits),
            Arc::clone(&stop),
            root.to_path_buf(),
            Arc::clone(&inflight),
        );
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (h, rt, inf) = (Arc::clone(&h), rt.clone(), Arc::clone(&inf));
                std::thread::spawn(move || serve_one(conn, &rt, &h, delay, &inf));
            }
        });
        Server {
            base: format!("http://{addr}"),
            root: root.to_path_buf(),
            hits,
            stop,
            inflight,
            addr,
            thread: Some(thread),
        }
    }

    /// Most connections served at the same time so far.
    pub fn max_inflight(&self) -> usize {
        self.inflight.1.load(Ordering::SeqCst)
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.hits.lock().unwrap().clear();
        self.inflight.1.store(0, Ordering::SeqCst);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A runtime for tests that call async APIs.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Show warnings from the crate while testing (`RUST_LOG` overrides).
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}
