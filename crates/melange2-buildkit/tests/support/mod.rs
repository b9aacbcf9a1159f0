//! Throwaway services for tests: a registry (scripts/registry.sh) and extra buildkitd daemons
//! (scripts/buildkit.sh NAME), each with its state in a temporary directory and stopped when
//! dropped. Starting fails the test; nothing is skipped.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use melange2_buildkit::{Address, Client, TlsFiles};

fn script(env: &str, file: &str) -> PathBuf {
    std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../scripts")
            .join(file)
    })
}

pub fn registry_script() -> PathBuf {
    script("MELANGE2_REGISTRY_SCRIPT", "registry.sh")
}

pub fn buildkit_script() -> PathBuf {
    script("MELANGE2_BUILDKIT_SCRIPT", "buildkit.sh")
}

/// Run a script; its stdout (trimmed) or a panic with everything it printed.
fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A registry of our own on 127.0.0.1, plain HTTP.
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    state: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Registry {
        let state = tempfile::tempdir().unwrap();
        let addr = run(
            Command::new(registry_script())
                .arg("start")
                .env("MELANGE2_REGISTRY_STATE", state.path().join("registry")),
            "scripts/registry.sh start",
        );
        assert!(
            addr.starts_with("127.0.0.1:"),
            "registry.sh start printed {addr:?}"
        );
        Registry { addr, state }
    }

    /// `GET http://ADDR/PATH`: the status code and the body.
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(&self.addr, path)
    }

    /// The tags of a repository (`/v2/REPO/tags/list`).
    pub fn tags(&self, repo: &str) -> Vec<String> {
        let (code, body) = self.get(&format!("/v2/{repo}/tags/list"));
        assert_eq!(code, 200, "tags of {repo}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = Command::new(registry_script())
            .arg("stop")
            .env(
                "MELANGE2_REGISTRY_STATE",
                self.state.path().join("registry"),
            )
            .output();
    }
}

/// HTTP/1.0 GET over a plain TCP connection.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: */*\r\n\r\n"
    )
    .unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {head:?}"));
    (code, body.to_string())
}

/// An extra buildkitd (`scripts/buildkit.sh start NAME`) with a fresh root.
pub struct Daemon {
    pub name: String,
    /// `unix://…/buildkitd.sock`.
    pub addr: String,
    state: tempfile::TempDir,
}

impl Daemon {
    pub fn start(name: &str) -> Daemon {
        Daemon::start_with(name, &[])
    }

    /// A daemon that also listens on `listen` (`tcp://127.0.0.1:PORT`) with mutual TLS, using
    /// `ca.pem`, `server.pem` and `server-key.pem` from `certs`.
    pub fn start_tls(name: &str, listen: &str, certs: &Path) -> Daemon {
        let certs = certs.display().to_string();
        Daemon::start_with(
            name,
            &[
                ("MELANGE2_BUILDKIT_TLS_LISTEN", listen),
                ("MELANGE2_BUILDKIT_TLS_CERTS", &certs),
            ],
        )
    }

    fn start_with(name: &str, env: &[(&str, &str)]) -> Daemon {
        let state = tempfile::tempdir().unwrap();
        let addr = run(
            Command::new(buildkit_script())
                .args(["start", name])
                .env("MELANGE2_BUILDKIT_STATE", state.path().join("bk"))
                .envs(env.iter().copied()),
            &format!("scripts/buildkit.sh start {name}"),
        );
        assert!(addr.starts_with("unix://"), "buildkit.sh printed {addr:?}");
        Daemon {
            name: name.to_string(),
            addr,
            state,
        }
    }

    /// The daemon's own state dir.
    pub fn state_dir(&self) -> PathBuf {
        self.state.path().join(format!("bk-{}", self.name))
    }

    pub async fn client(&self) -> Client {
        Client::connect(&Address::parse(&self.addr).unwrap(), &TlsFiles::default())
            .await
            .unwrap_or_else(|e| panic!("connect to daemon {}: {e}", self.name))
    }

    /// `scripts/buildkit.sh pid NAME`.
    pub fn pid(&self) -> Option<u32> {
        let out = self.script("pid").output().unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
            .flatten()
    }

    /// `scripts/buildkit.sh stop NAME`, which must succeed.
    pub fn stop(&self) {
        run(
            &mut self.script("stop"),
            &format!("scripts/buildkit.sh stop {}", self.name),
        );
    }

    fn script(&self, cmd: &str) -> Command {
        let mut c = Command::new(buildkit_script());
        c.args([cmd, &self.name])
            .env("MELANGE2_BUILDKIT_STATE", self.state.path().join("bk"));
        c
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.script("stop").output();
    }
}

/// Processes whose command line mentions `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(needle) {
            out.push((pid, cmd));
        }
    }
    out
}
