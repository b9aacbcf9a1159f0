//! A local buildkitd that melange2 starts when no daemon answers, reused by later runs and
//! stopped with `melange2 buildkit stop`. It shares its state dir with `scripts/buildkit.sh`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{Address, BuildkitError, Client, TlsFiles};

/// The pinned BuildKit version `scripts/buildkit.sh` installs.
pub const PINNED_VERSION: &str = "v0.32.2";

/// A local daemon's state directory.
#[derive(Clone, Debug)]
pub struct LocalDaemon {
    /// State dir (root, socket, pid file, log).
    pub state_dir: PathBuf,
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

impl Default for LocalDaemon {
    fn default() -> Self {
        let dir = std::env::var_os("MELANGE2_BUILDKIT_STATE")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                std::env::var_os("XDG_STATE_HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| home().join(".local/state"))
                    .join("melange2/buildkitd")
            });
        Self { state_dir: dir }
    }
}

impl LocalDaemon {
    /// Its socket address.
    pub fn address(&self) -> Address {
        Address::Unix(self.state_dir.join("buildkitd.sock"))
    }

    fn pid_file(&self) -> PathBuf {
        self.state_dir.join("buildkitd.pid")
    }

    /// The log file of the daemon.
    pub fn log_file(&self) -> PathBuf {
        self.state_dir.join("buildkitd.log")
    }

    /// `buildkitd` from PATH or the pinned tool dir of `scripts/buildkit.sh`.
    pub fn find_buildkitd() -> Option<PathBuf> {
        let tools = std::env::var_os("MELANGE2_TOOLS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                std::env::var_os("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| home().join(".cache"))
                    .join("melange2/tools")
            })
            .join(format!("buildkit-{PINNED_VERSION}/bin/buildkitd"));
        if tools.is_file() {
            return Some(tools);
        }
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("buildkitd"))
                .find(|p| p.is_file())
        })
    }

    /// Start buildkitd in the state dir (detached) and wait until it answers.
    pub async fn start(&self, buildkitd: &Path) -> Result<Client, BuildkitError> {
        use std::os::unix::process::CommandExt;
        let err = |reason: String| BuildkitError::Connect {
            addr: self.address().to_string(),
            reason,
        };
        std::fs::create_dir_all(&self.state_dir)
            .map_err(|e| err(format!("cannot create {}: {e}", self.state_dir.display())))?;
        let sock = self.state_dir.join("buildkitd.sock");
        let _ = std::fs::remove_file(&sock);
        let log = std::fs::File::create(self.log_file())
            .map_err(|e| err(format!("cannot create {}: {e}", self.log_file().display())))?;
        let log2 = log.try_clone().map_err(|e| err(format!("log file: {e}")))?;
        let child = std::process::Command::new(buildkitd)
            .arg("--root")
            .arg(self.state_dir.join("root"))
            .arg("--addr")
            .arg(self.address().to_string())
            // its own OTEL socket: the default one (/run/buildkit) may be another daemon's
            .arg("--otel-socket-path")
            .arg(self.state_dir.join("otel-grpc.sock"))
            .args(["--oci-worker=true", "--containerd-worker=false"])
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0)
            .spawn()
            .map_err(|e| err(format!("cannot run {}: {e}", buildkitd.display())))?;
        let pid = child.id();
        std::fs::write(self.pid_file(), format!("{pid}\n"))
            .map_err(|e| err(format!("cannot write pid file: {e}")))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(c) = Client::connect_with_timeout(
                &self.address(),
                &TlsFiles::default(),
                Duration::from_secs(2),
                Duration::from_secs(5),
            )
            .await
            {
                return Ok(c);
            }
            if !alive(pid) || Instant::now() > deadline {
                let tail = std::fs::read_to_string(self.log_file()).unwrap_or_default();
                let tail: Vec<&str> = tail.lines().rev().take(10).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                return Err(err(format!(
                    "buildkitd did not start (log {}):\n{}",
                    self.log_file().display(),
                    tail.join("\n")
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The pid of the daemon started in this state dir, if it runs: the pid file names a live
    /// buildkitd whose `--root` is this state dir's (not a process that reused the pid).
    pub fn pid(&self) -> Option<u32> {
        let pid = std::fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse::<u32>()
            .ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        let root = self.state_dir.join("root");
        let ours = args
            .windows(2)
            .any(|w| w[0] == b"--root" && w[1] == root.as_os_str().as_encoded_bytes());
        (ours && alive(pid)).then_some(pid)
    }

    /// Stop the daemon started here; false when none was running.
    pub fn stop(&self) -> Result<bool, BuildkitError> {
        let Some(pid) = self.pid() else {
            let _ = std::fs::remove_file(self.pid_file());
            return Ok(false);
        };
        let status = std::process::Command::new("kill")
            .arg(pid.to_string())
            .status()
            .map_err(|e| BuildkitError::Connect {
                addr: self.address().to_string(),
                reason: format!("cannot run kill: {e}"),
            })?;
        for _ in 0..40 {
            if !alive(pid) {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let _ = std::fs::remove_file(self.pid_file());
        Ok(status.success())
    }
}

/// Whether process `pid` exists and has not exited (a zombie waiting to be reaped has).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // the state follows the command name, which is in parentheses
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// How a client was obtained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reached {
    /// The address given by flag or `BUILDKIT_HOST`.
    Given,
    /// The default socket or a local daemon already running.
    Found,
    /// A local daemon melange2 just started.
    Started,
}

/// Connect to `explicit` (flag or BUILDKIT_HOST) if given. Otherwise try the default socket,
/// then the local daemon's socket, then start a local daemon when `buildkitd` is available.
pub async fn connect_or_start(
    explicit: Option<&str>,
    tls: &TlsFiles,
) -> Result<(Client, Reached), BuildkitError> {
    if let Some(a) = explicit.filter(|a| !a.is_empty()) {
        return Ok((
            Client::connect(&Address::parse(a)?, tls).await?,
            Reached::Given,
        ));
    }
    let default = Address::parse(crate::addr::DEFAULT_ADDRESS)?;
    let quick = |a: Address| async move {
        Client::connect_with_timeout(&a, tls, Duration::from_secs(2), Duration::from_secs(5)).await
    };
    if let Ok(c) = quick(default.clone()).await {
        return Ok((c, Reached::Found));
    }
    let local = LocalDaemon::default();
    if let Ok(c) = quick(local.address()).await {
        return Ok((c, Reached::Found));
    }
    let Some(bkd) = LocalDaemon::find_buildkitd() else {
        return Err(BuildkitError::Connect {
            addr: default.to_string(),
            reason: "no BuildKit daemon answers and no buildkitd binary was found; pass \
                     --buildkit-addr, set BUILDKIT_HOST, or install one with scripts/buildkit.sh install"
                .into(),
        });
    };
    eprintln!(
        "melange2: no BuildKit daemon answers; starting {} in {} (stop it with `melange2 buildkit stop`)",
        bkd.display(),
        local.state_dir.display()
    );
    Ok((local.start(&bkd).await?, Reached::Started))
}
