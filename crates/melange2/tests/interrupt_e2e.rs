//! Interrupted runs, end to end with real processes: `melange2 build` and `melange2 resolve`
//! stopped by SIGINT/SIGTERM at the moment their temporary files exist (a step that sleeps on
//! the daemon of `make test`; a package an HTTP server on 127.0.0.1 delivers half of), runs
//! killed outright and swept by the next run, and a daemon killed mid-build.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

mod common;
#[path = "../../melange2-buildkit/tests/support/mod.rs"]
mod support;

use common::{SignedRepo, daemon, melange2, signed_repo, snapshot};
use melange2_apk::{PackageTree, PkgInfo, RepoBuilder};
use support::Daemon;

/// How long a test waits for something a run must get to (not a timed assertion: reaching the
/// limit means the run never got there).
const PATIENCE: Duration = Duration::from_secs(300);

/// Wait until `f` holds; panic naming `what` if it never does.
fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + PATIENCE;
    while !f() {
        assert!(Instant::now() < end, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn send(child: &Child, signal: &str) {
    let st = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill {signal} {}", child.id());
}

/// Files and directories below `dir` whose name starts with one of `prefixes`.
fn leftovers(dir: &Path, prefixes: &[&str]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if prefixes.iter().any(|p| n.starts_with(p)) {
                found.push(e.path());
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    found.sort();
    found
}

/// A child whose stderr lines arrive on a channel (and are kept for the failure messages).
struct Run {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Run {
    fn spawn(mut cmd: Command) -> Run {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Run {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Read stderr until a line satisfies `f`.
    fn until(&mut self, what: &str, f: impl Fn(&str) -> bool) {
        let end = Instant::now() + PATIENCE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let hit = f(&l);
                    self.seen.push(l);
                    if hit {
                        return;
                    }
                }
                Err(_) => panic!("never happened: {what}\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Wait for the exit; the status and all of stderr.
    fn finish(mut self) -> (ExitStatus, String) {
        let status = self.child.wait().unwrap();
        self.seen.extend(self.lines.iter());
        (status, self.seen.join("\n"))
    }
}

/// Does a rawjson progress line report the step `name` as started?
fn step_started(line: &str, name: &str) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
        return false;
    };
    v["vertexes"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|vx| vx["name"] == name && !vx["started"].is_null())
}

/// A recipe whose one step sleeps (`nonce` keeps it out of BuildKit's cache).
fn slow_recipe(dir: &Path, nonce: &str) -> PathBuf {
    let p = dir.join(format!("slow-{nonce}.yaml"));
    std::fs::write(
        &p,
        format!(
            "package:\n  name: slow\n  version: 1.0.0\n  epoch: 0\n  description: slow\n  \
             copyright:\n    - license: MIT\nenvironment:\n  contents:\n    packages:\n      \
             - busybox\npipeline:\n  - name: sleeping\n    runs: |\n      : {nonce}\n      \
             sleep 600\n      mkdir -p ${{{{targets.destdir}}}}/usr/share/slow\n"
        ),
    )
    .unwrap();
    p
}

/// A quick recipe, built first so that the out-dir has packages and an index to protect.
fn quick_recipe(dir: &Path) -> PathBuf {
    let p = dir.join("quick.yaml");
    std::fs::write(
        &p,
        "package:\n  name: quick\n  version: 1.0.0\n  epoch: 0\n  description: quick\n  \
         copyright:\n    - license: MIT\nenvironment:\n  contents:\n    packages:\n      \
         - busybox\npipeline:\n  - name: write\n    runs: |\n      \
         mkdir -p ${{targets.destdir}}/usr/share/quick\n      \
         echo quick > ${{targets.destdir}}/usr/share/quick/id\n",
    )
    .unwrap();
    p
}

fn build_cmd(r: &SignedRepo, dir: &Path, recipe: &Path, addr: &str) -> Command {
    let mut c = melange2();
    c.arg("build")
        .arg(recipe)
        .args(["--arch", "x86_64", "--progress", "rawjson"])
        .arg("--out-dir")
        .arg(dir.join("out"))
        .arg("-r")
        .arg(&r.repo)
        .arg("-k")
        .arg(&r.pubkey)
        .arg("--signing-key")
        .arg(&r.signing_key)
        .arg("--apk-cache-dir")
        .arg(dir.join("apk-cache"))
        .args(["--buildkit-addr", addr])
        .env_remove("BUILDKIT_HOST")
        .current_dir(dir);
    c
}

/// An out-dir holding the quick package and its index; its snapshot.
fn populated_out_dir(
    r: &SignedRepo,
    dir: &Path,
    addr: &str,
) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let o = build_cmd(r, dir, &quick_recipe(dir), addr)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = dir.join("out");
    assert!(out.join("x86_64/APKINDEX.tar.gz").is_file());
    snapshot(&out)
}

#[test]
fn a_signal_cancels_the_build_and_leaves_the_out_dir_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let r = signed_repo(dir.path(), &[]);
    let addr = daemon();
    let before = populated_out_dir(&r, dir.path(), &addr);
    let out = dir.path().join("out");
    for (signal, code, name) in [("-TERM", 143, "SIGTERM"), ("-INT", 130, "SIGINT")] {
        let nonce = format!("{name}-{}", std::process::id());
        let mut run = Run::spawn(build_cmd(
            &r,
            dir.path(),
            &slow_recipe(dir.path(), &nonce),
            &addr,
        ));
        run.until("the sleeping step started", |l| step_started(l, "sleeping"));
        // the packager is waiting for the build's output in its staging directory
        assert!(
            !leftovers(&out, &[".melange2-staging-"]).is_empty(),
            "no staging directory while building"
        );
        send(&run.child, signal);
        let (status, err) = run.finish();
        assert_eq!(status.code(), Some(code), "{name}: {status}\n{err}");
        assert!(err.contains(&format!("interrupted by {name}")), "{err}");
        assert_eq!(
            leftovers(&out, &[".melange2-staging-", ".melange2-tmp-"]),
            Vec::<PathBuf>::new(),
            "{name}"
        );
        assert!(
            leftovers(&dir.path().join("apk-cache"), &[".download-", ".tmp-"]).is_empty(),
            "{name}"
        );
        assert_eq!(snapshot(&out), before, "{name} changed the out-dir");
    }
}

/// `melange2 test` stopped by SIGTERM while a test step sleeps: it exits 143 and says so.
#[test]
fn a_signal_cancels_melange2_test() {
    let dir = tempfile::tempdir().unwrap();
    let r = signed_repo(dir.path(), &[]);
    let nonce = format!("test-{}", std::process::id());
    let recipe = dir.path().join("busybox.yaml");
    std::fs::write(
        &recipe,
        format!(
            "package:\n  name: busybox\n  version: 1.35.0\n  epoch: 0\n  description: bb\n  \
             copyright:\n    - license: MIT\ntest:\n  environment:\n    contents:\n      \
             packages: [busybox]\n  pipeline:\n    - name: sleeping\n      runs: |\n        \
             : {nonce}\n        sleep 600\n"
        ),
    )
    .unwrap();
    let mut c = melange2();
    c.arg("test")
        .arg(&recipe)
        .args(["--arch", "x86_64", "--progress", "rawjson"])
        .arg("-r")
        .arg(&r.repo)
        .arg("-k")
        .arg(&r.pubkey)
        .arg("--apk-cache-dir")
        .arg(dir.path().join("apk-cache"))
        .args(["--buildkit-addr", &daemon()])
        .env_remove("BUILDKIT_HOST")
        .current_dir(dir.path());
    let mut run = Run::spawn(c);
    // the test steps run in one container, which logs each step as it starts
    run.until("the sleeping test step started", |l| {
        l.contains("melange2-test: step 1/1: sleeping")
    });
    send(&run.child, "-TERM");
    let (status, err) = run.finish();
    assert_eq!(status.code(), Some(143), "{status}\n{err}");
    assert!(err.contains("interrupted by SIGTERM"), "{err}");
    assert!(
        leftovers(&dir.path().join("apk-cache"), &[".download-", ".tmp-"]).is_empty(),
        "{err}"
    );
}

/// A build killed outright (SIGKILL: no clean-up) leaves its staging directory; the next build
/// into the same out-dir sweeps it when it stages its own output, and the index keeps both
/// packages.
#[test]
fn a_killed_build_leaves_staging_that_the_next_build_sweeps() {
    let dir = tempfile::tempdir().unwrap();
    let r = signed_repo(dir.path(), &[]);
    let addr = daemon();
    let out = dir.path().join("out");
    let nonce = format!("killed-{}", std::process::id());
    let mut run = Run::spawn(build_cmd(
        &r,
        dir.path(),
        &slow_recipe(dir.path(), &nonce),
        &addr,
    ));
    run.until("the sleeping step started", |l| step_started(l, "sleeping"));
    let stale = leftovers(&out, &[".melange2-staging-"]);
    assert_eq!(stale.len(), 1, "{stale:?}");
    send(&run.child, "-KILL");
    let (status, _) = run.finish();
    assert_eq!(status.code(), None, "killed by a signal");
    assert!(stale[0].is_dir(), "SIGKILL cannot clean up: {stale:?}");

    let o = build_cmd(&r, dir.path(), &quick_recipe(dir.path()), &addr)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        leftovers(&out, &[".melange2-staging-", ".melange2-tmp-"]),
        Vec::<PathBuf>::new(),
        "the stale staging directory was not swept"
    );
    let files: Vec<String> = std::fs::read_dir(out.join("x86_64"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        files,
        ["APKINDEX.tar.gz", "quick-1.0.0-r0.apk"],
        "{files:?}"
    );
}

#[test]
fn a_daemon_killed_mid_build_is_named_and_the_out_dir_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let r = signed_repo(dir.path(), &[]);
    let victim = Daemon::start("killed-mid-build");
    let before = populated_out_dir(&r, dir.path(), &victim.addr);
    let out = dir.path().join("out");
    let mut run = Run::spawn(build_cmd(
        &r,
        dir.path(),
        &slow_recipe(dir.path(), "killed"),
        &victim.addr,
    ));
    run.until("the sleeping step started", |l| step_started(l, "sleeping"));
    let pid = victim.pid().expect("the daemon runs");
    let k = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(k.success());
    let (status, err) = run.finish();
    assert_eq!(status.code(), Some(1), "{status}\n{err}");
    let last = err
        .lines()
        .rfind(|l| l.starts_with("Error: slow"))
        .unwrap_or_else(|| panic!("no error line for the package:\n{err}"));
    assert!(
        last.contains(&format!("daemon {} went away", victim.addr)),
        "{last}\n{err}"
    );
    assert!(last.contains("the out-dir is unchanged"), "{last}\n{err}");
    assert!(!last.contains("transport error"), "{last}\n{err}");
    assert_eq!(snapshot(&out), before, "the out-dir changed");
}

/// A repository on 127.0.0.1 that, while `stall` is set, sends the head and half the body of
/// every `.apk`, reports it on `stalled`, and sends nothing more until `stall` is cleared.
struct Server {
    url: String,
    stall: Arc<AtomicBool>,
    stalled: mpsc::Receiver<()>,
}

impl Server {
    fn start(root: PathBuf) -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/repo", l.local_addr().unwrap());
        let stall = Arc::new(AtomicBool::new(true));
        let (tx, stalled) = mpsc::channel();
        let s = stall.clone();
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                let (root, stall, tx) = (root.clone(), s.clone(), tx.clone());
                std::thread::spawn(move || serve(c, &root, &stall, &tx));
            }
        });
        Server {
            url,
            stall,
            stalled,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stall.store(false, Ordering::SeqCst);
    }
}

fn serve(mut c: TcpStream, root: &Path, stall: &AtomicBool, stalled: &mpsc::Sender<()>) {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match c.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let file = path
        .strip_prefix("/repo/")
        .filter(|p| !p.contains(".."))
        .map(|p| root.join(p));
    let Some(body) = file.and_then(|f| std::fs::read(f).ok()) else {
        let _ = c
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    let _ = write!(
        c,
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if path.ends_with(".apk") && stall.load(Ordering::SeqCst) {
        let half = body.len() / 2;
        let _ = c.write_all(&body[..half]);
        let _ = c.flush();
        let _ = stalled.send(());
        while stall.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.write_all(&body[half..]);
    } else {
        let _ = c.write_all(&body);
    }
}

/// A signed repository with one package of 256 KiB that does not compress.
fn big_repo(dir: &Path) -> PathBuf {
    let key = melange2_apk::generate_key(2048, "repo.rsa").unwrap();
    let pubkey = dir.join("repo.rsa.pub");
    std::fs::write(&pubkey, key.public_key_pem().unwrap()).unwrap();
    let mut repo = RepoBuilder::new(dir.join("repo")).signer(key);
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let data: Vec<u8> = (0..256 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let mut t = PackageTree::new();
    t.add_file("usr/share/big/data", 0o644, data).unwrap();
    repo.add(&PkgInfo::new("big", "1.0-r0", "x86_64"), &t)
        .unwrap();
    repo.finish().unwrap();
    pubkey
}

#[test]
fn interrupted_downloads_are_removed_and_killed_ones_swept() {
    let dir = tempfile::tempdir().unwrap();
    let pubkey = big_repo(dir.path());
    let srv = Server::start(dir.path().join("repo"));
    let cache = dir.path().join("cache");
    let resolve = || {
        let mut c = melange2();
        c.args(["resolve", "--arch", "x86_64", "-r", &srv.url, "-k"])
            .arg(&pubkey)
            .arg("--apk-cache-dir")
            .arg(&cache)
            .arg("big");
        c
    };
    let downloading = || !leftovers(&cache, &[".download-"]).is_empty();

    // SIGINT while the package is half downloaded: exit 130, the partial file removed.
    let run = Run::spawn(resolve());
    srv.stalled
        .recv_timeout(PATIENCE)
        .expect("a package download");
    wait_for("the partial download in the cache", downloading);
    send(&run.child, "-INT");
    let (status, err) = run.finish();
    assert_eq!(status.code(), Some(130), "{status}\n{err}");
    assert!(err.contains("interrupted by SIGINT"), "{err}");
    assert_eq!(
        leftovers(&cache, &[".download-", ".tmp-"]),
        Vec::<PathBuf>::new()
    );

    // Killed outright: the partial file stays, and the next run sweeps it.
    let run = Run::spawn(resolve());
    srv.stalled
        .recv_timeout(PATIENCE)
        .expect("a package download");
    wait_for("the partial download in the cache", downloading);
    send(&run.child, "-KILL");
    let (status, _) = run.finish();
    assert_eq!(status.code(), None, "killed by a signal");
    let stale = leftovers(&cache, &[".download-"]);
    assert_eq!(stale.len(), 1, "{stale:?}");
    srv.stall.store(false, Ordering::SeqCst);
    let o = resolve().output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("big"));
    assert_eq!(
        leftovers(&cache, &[".download-", ".tmp-"]),
        Vec::<PathBuf>::new()
    );
}
