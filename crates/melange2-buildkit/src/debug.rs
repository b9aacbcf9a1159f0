//! What to do with a failed step's container (docs/debug.md): open a shell in it on this
//! process's terminal (`--interactive`), or write its root filesystem out
//! (`--export-on-failure`). Both run from a [`FailureHook`], while the daemon still holds the
//! step's mounts as they were at the failure.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bollard_buildkit_proto::fsutil::types::Stat;
use futures::FutureExt;

use crate::BuildkitError;
use crate::gateway::{Container, FailedStep, FailureHook, ProcessEvent, ProcessInput, ProcessSpec};

/// The shell opened in a failed step (melange's choice too).
const SHELL: &str = "/bin/sh";

/// How a failed step's root filesystem is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// One tar file.
    Tarball,
    /// A directory tree.
    Dir,
}

impl std::str::FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tarball" => Ok(Self::Tarball),
            "dir" => Ok(Self::Dir),
            _ => Err(format!("{s:?} is not an export format (tarball, dir)")),
        }
    }
}

/// What happens when a step fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OnFailure {
    /// A shell in the step's container on this terminal.
    Interactive,
    /// The step's root filesystem written to `path`.
    Export {
        /// Tarball or directory.
        format: ExportFormat,
        /// Where.
        path: PathBuf,
    },
}

/// Failures of several builds at once take the terminal one after the other.
fn terminal_lock() -> &'static tokio::sync::Mutex<()> {
    static LOCK: OnceLock<tokio::sync::Mutex<()>> = OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::Mutex::new(()))
}

/// The hook that carries out `action` for a failed step of `label` (recipe and arch).
pub fn failure_hook(action: OnFailure, label: String) -> FailureHook {
    Box::new(move |step: &FailedStep| {
        async move {
            let _term = terminal_lock().lock().await;
            let what = step.error.step.clone().unwrap_or_else(|| "a step".into());
            let done = match &action {
                OnFailure::Interactive => {
                    eprintln!(
                        "\nmelange2: {label}: {what} failed; opening {SHELL} in its container \
                         (exit the shell to end the build)"
                    );
                    shell(step).await.map(|code| {
                        eprintln!(
                            "melange2: shell exited ({code}); the build fails with the step's error"
                        );
                    })
                }
                OnFailure::Export { format, path } => export(step, *format, path)
                    .await
                    .map(|n| print_how_to_enter(&label, &what, *format, path, n)),
            };
            if let Err(e) = done {
                tracing::error!("{label}: {e}");
                eprintln!("melange2: {label}: {e}");
            }
        }
        .boxed()
    })
}

fn print_how_to_enter(label: &str, what: &str, format: ExportFormat, path: &Path, n: usize) {
    let p = path.display();
    eprintln!("melange2: {label}: {what} failed; its root filesystem ({n} entries) is in {p}");
    match format {
        ExportFormat::Dir => eprintln!("  enter it with: sudo chroot {p} {SHELL}"),
        ExportFormat::Tarball => {
            eprintln!(
                "  enter it with: docker import {p} melange2-debug && docker run --rm -it melange2-debug {SHELL}"
            );
            eprintln!(
                "  or: mkdir rootfs && sudo tar -xpf {p} -C rootfs && sudo chroot rootfs {SHELL}"
            );
        }
    }
}

/// The step's process as it was started, for a new process in its container.
fn step_process(
    step: &FailedStep,
    args: Vec<String>,
    tty: bool,
) -> Result<ProcessSpec, BuildkitError> {
    let meta = step
        .process()
        .ok_or_else(|| BuildkitError::Debug("the failed step did not run a process".into()))?;
    let mut env = meta.env.clone();
    if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        let term = std::env::var("TERM").unwrap_or_else(|_| "xterm".into());
        env.push(format!("TERM={term}"));
    }
    Ok(ProcessSpec {
        args,
        env,
        cwd: meta.cwd.clone(),
        user: meta.user.clone(),
        tty,
        secret_env: step.secret_env(),
    })
}

/// A shell in the failed step's container, attached to this process's terminal (raw mode,
/// window size followed, every key passed on: Ctrl-C and Ctrl-D reach the shell). The exit
/// code of the shell.
pub async fn shell(step: &FailedStep) -> Result<u32, BuildkitError> {
    let spec = step_process(step, vec![SHELL.into()], true)?;
    let ctr = step.container().await?;
    let code = {
        let _raw = RawMode::enter(0)?;
        attach(&ctr, spec).await
    };
    let released = ctr.release().await;
    let code = code?;
    released?;
    Ok(code)
}

async fn attach(ctr: &Container, spec: ProcessSpec) -> Result<u32, BuildkitError> {
    let mut p = ctr.start(spec).await?;
    let input = p.input();
    if let Some((rows, cols)) = window_size(1) {
        input.resize(rows, cols).await?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    // Also when the build is cancelled while the shell runs: the thread stops reading.
    let _stop_on_drop = StopOnDrop(stop.clone());
    let reader = forward_stdin(input.clone(), stop.clone());
    let winch = AbortOnDrop(tokio::spawn(follow_window_size(input)));
    let mut code = 255;
    let mut out = std::io::stdout();
    let result = loop {
        match p.next().await {
            Ok(Some(ProcessEvent::Output { data, .. })) => {
                let _ = out.write_all(&data).and_then(|_| out.flush());
            }
            Ok(Some(ProcessEvent::Exit(c))) => code = c,
            Ok(None) => break Ok(code),
            Err(e) => break Err(e),
        }
    };
    stop.store(true, Ordering::SeqCst);
    drop(winch);
    let _ = reader.join();
    result
}

/// Ends its task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sets its flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Read this terminal's input on a thread of its own (it polls, so it ends soon after `stop`
/// is set and leaves nothing blocked on stdin) and hand it to the process.
fn forward_stdin(input: ProcessInput, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let handle = tokio::runtime::Handle::current();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while !stop.load(Ordering::SeqCst) {
            if !readable(0, Duration::from_millis(100)) {
                continue;
            }
            // SAFETY: reading into a buffer we own, of its length, from fd 0.
            let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            let sent = match n {
                n if n > 0 => handle.block_on(input.stdin(buf[..n as usize].to_vec())),
                0 => {
                    let _ = handle.block_on(input.close_stdin());
                    return;
                }
                _ if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {
                    Ok(())
                }
                _ => return,
            };
            if sent.is_err() {
                return;
            }
        }
    })
}

fn readable(fd: RawFd, timeout: Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd we own.
    let r = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as libc::c_int) };
    r > 0
}

async fn follow_window_size(input: ProcessInput) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut winch) = signal(SignalKind::window_change()) else {
        return;
    };
    while winch.recv().await.is_some() {
        if let Some((rows, cols)) = window_size(1)
            && input.resize(rows, cols).await.is_err()
        {
            return;
        }
    }
}

/// Rows and columns of the terminal on `fd`.
fn window_size(fd: RawFd) -> Option<(u32, u32)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills the winsize we pass.
    let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_row > 0).then(|| (u32::from(ws.ws_row), u32::from(ws.ws_col)))
}

/// The terminal on `fd` in raw mode until dropped.
struct RawMode {
    fd: RawFd,
    saved: libc::termios,
}

impl RawMode {
    fn enter(fd: RawFd) -> Result<Self, BuildkitError> {
        // SAFETY: termios is plain data; tcgetattr fills it.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            return Err(BuildkitError::Debug(format!(
                "--interactive needs a terminal on stdin: {}",
                std::io::Error::last_os_error()
            )));
        }
        let mut raw = saved;
        // SAFETY: both point at termios values we own.
        unsafe { libc::cfmakeraw(&mut raw) };
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
            return Err(BuildkitError::Debug(format!(
                "setting the terminal to raw mode: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(Self { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the settings read in `enter`.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

/// Write the failed step's root filesystem to `path`; the number of entries written.
pub async fn export(
    step: &FailedStep,
    format: ExportFormat,
    path: &Path,
) -> Result<usize, BuildkitError> {
    let ctr = step.container().await?;
    let owners = owners(&ctr, step).await;
    let written = export_container(&ctr, &owners, format, path).await;
    let released = ctr.release().await;
    let n = written?;
    released?;
    Ok(n)
}

/// Owner and group of every entry not owned by root, by path relative to `/`.
type Owners = BTreeMap<String, (u32, u32)>;

/// Lists what root does not own, as `uid gid /path` lines (GNU or busybox find and stat).
const OWNERS_SCRIPT: &str = "if command -v find >/dev/null 2>&1 && command -v stat >/dev/null 2>&1; \
     then f=find; s=stat; else f='busybox find'; s='busybox stat'; fi; \
     $f / -xdev \\( ! -user 0 -o ! -group 0 \\) -exec $s -c '%u %g %n' {} +";

/// The owners the daemon's ReadDir does not report, asked of the container itself (its
/// first process, so it runs before the walk); empty, with a warning, when it has no shell,
/// `find` or `stat`: everything is then written owned by root.
async fn owners(ctr: &Container, step: &FailedStep) -> Owners {
    let listed = async {
        let mut spec = step_process(
            step,
            vec!["/bin/sh".into(), "-c".into(), OWNERS_SCRIPT.into()],
            false,
        )?;
        spec.user = "0:0".into();
        let (code, out) = ctr.start(spec).await?.wait_output().await?;
        let text = String::from_utf8_lossy(out.get(&1).map_or(&[][..], |v| v)).into_owned();
        let errors = String::from_utf8_lossy(out.get(&2).map_or(&[][..], |v| v)).into_owned();
        match code {
            0 => Ok(parse_owners(&text)),
            _ => Err(BuildkitError::Debug(format!(
                "exit code {code}: {}",
                errors.trim()
            ))),
        }
    };
    match listed.await {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(
                "owners of the exported files not read ({e}); all are written as root's"
            );
            eprintln!(
                "melange2: could not read the owners of the failed step's files ({e}); the export has them all owned by root"
            );
            Owners::new()
        }
    }
}

fn parse_owners(text: &str) -> Owners {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ' ');
            let uid = parts.next()?.parse().ok()?;
            let gid = parts.next()?.parse().ok()?;
            let path = parts.next()?.trim_start_matches('/');
            (!path.is_empty()).then(|| (path.to_string(), (uid, gid)))
        })
        .collect()
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> BuildkitError + '_ {
    move |e| BuildkitError::Debug(format!("--export-ref {}: {e}", path.display()))
}

async fn export_container(
    ctr: &Container,
    owners: &Owners,
    format: ExportFormat,
    path: &Path,
) -> Result<usize, BuildkitError> {
    match format {
        ExportFormat::Tarball => {
            let file = std::fs::File::create(path).map_err(io_err(path))?;
            let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
            let n = write_tree(ctr, &mut tar, path, owners).await?;
            tar.into_inner()
                .and_then(|mut w| w.flush())
                .map_err(io_err(path))?;
            Ok(n)
        }
        ExportFormat::Dir => {
            if path.exists()
                && std::fs::read_dir(path)
                    .map_err(io_err(path))?
                    .next()
                    .is_some()
            {
                return Err(BuildkitError::Debug(format!(
                    "--export-ref {} is a directory that is not empty; not writing into it",
                    path.display()
                )));
            }
            std::fs::create_dir_all(path).map_err(io_err(path))?;
            // The tree goes through a tar next to it, unpacked with modes and owners.
            let spool = tempfile::tempfile().map_err(io_err(path))?;
            let mut tar = tar::Builder::new(spool);
            let n = write_tree(ctr, &mut tar, path, owners).await?;
            let mut spool = tar.into_inner().map_err(io_err(path))?;
            std::io::Seek::rewind(&mut spool).map_err(io_err(path))?;
            let mut ar = tar::Archive::new(spool);
            ar.set_preserve_permissions(true);
            ar.set_preserve_ownerships(true);
            ar.unpack(path).map_err(io_err(path))?;
            Ok(n)
        }
    }
}

/// Go's `os.FileMode` bits, as fsutil's `Stat.mode` carries them.
mod go_mode {
    pub const DIR: u32 = 1 << 31;
    pub const SYMLINK: u32 = 1 << 27;
    pub const DEVICE: u32 = 1 << 26;
    pub const NAMED_PIPE: u32 = 1 << 25;
    pub const SOCKET: u32 = 1 << 24;
    pub const SETUID: u32 = 1 << 23;
    pub const SETGID: u32 = 1 << 22;
    pub const STICKY: u32 = 1 << 20;
}

/// The unix permission bits (with setuid, setgid, sticky) of a Go file mode.
fn unix_perm(mode: u32) -> u32 {
    let mut p = mode & 0o777;
    if mode & go_mode::SETUID != 0 {
        p |= 0o4000;
    }
    if mode & go_mode::SETGID != 0 {
        p |= 0o2000;
    }
    if mode & go_mode::STICKY != 0 {
        p |= 0o1000;
    }
    p
}

/// Every entry of the container's root filesystem into `tar`, directories first.
async fn write_tree<W: Write>(
    ctr: &Container,
    tar: &mut tar::Builder<W>,
    dest: &Path,
    owners: &Owners,
) -> Result<usize, BuildkitError> {
    let mut dirs = vec![String::new()];
    let mut n = 0;
    while let Some(dir) = dirs.pop() {
        let listed = if dir.is_empty() {
            "/".to_string()
        } else {
            format!("/{dir}")
        };
        for st in ctr.read_dir(&listed).await? {
            let rel = if dir.is_empty() {
                st.path.clone()
            } else {
                format!("{dir}/{}", st.path)
            };
            if append_entry(ctr, tar, &rel, &st, dest, owners).await? {
                n += 1;
            }
            if st.mode & go_mode::DIR != 0 {
                dirs.push(rel);
            }
        }
    }
    Ok(n)
}

/// One entry; `false` for what is not exported (devices: the daemon reports no device
/// numbers; sockets). Owners come from `owners` (the daemon's ReadDir reports none).
async fn append_entry<W: Write>(
    ctr: &Container,
    tar: &mut tar::Builder<W>,
    rel: &str,
    st: &Stat,
    dest: &Path,
    owners: &Owners,
) -> Result<bool, BuildkitError> {
    let mut h = tar::Header::new_gnu();
    h.set_mode(unix_perm(st.mode));
    let (uid, gid) = owners.get(rel).copied().unwrap_or((st.uid, st.gid));
    h.set_uid(u64::from(uid));
    h.set_gid(u64::from(gid));
    h.set_mtime(u64::try_from(st.mod_time / 1_000_000_000).unwrap_or(0));
    h.set_size(0);
    let m = st.mode;
    let mut data = Vec::new();
    if m & go_mode::DIR != 0 {
        h.set_entry_type(tar::EntryType::Directory);
    } else if m & go_mode::SYMLINK != 0 {
        h.set_entry_type(tar::EntryType::Symlink);
    } else if m & go_mode::NAMED_PIPE != 0 {
        h.set_entry_type(tar::EntryType::Fifo);
    } else if m & (go_mode::SOCKET | go_mode::DEVICE) != 0 {
        // The daemon reports no device numbers; a socket has no tar form.
        tracing::debug!(path = rel, "not exported (device or socket)");
        return Ok(false);
    } else {
        h.set_entry_type(tar::EntryType::Regular);
        data = ctr.read_file(&format!("/{rel}"), st.size).await?;
        h.set_size(data.len() as u64);
    }
    if m & go_mode::SYMLINK != 0 {
        tar.append_link(&mut h, rel, &st.linkname)
            .map_err(io_err(dest))?;
    } else {
        tar.append_data(&mut h, rel, data.as_slice())
            .map_err(io_err(dest))?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_lines_by_path() {
        let o = parse_owners("1000 1000 /home/build\n0 42 /etc/shadow file\nnoise\n1 2 /\n");
        assert_eq!(o.len(), 2);
        assert_eq!(o["home/build"], (1000, 1000));
        assert_eq!(o["etc/shadow file"], (0, 42));
    }

    #[test]
    fn go_modes_become_unix_permissions() {
        assert_eq!(unix_perm(go_mode::DIR | 0o755), 0o755);
        assert_eq!(unix_perm(go_mode::SETUID | 0o755), 0o4755);
        assert_eq!(unix_perm(go_mode::DIR | go_mode::STICKY | 0o777), 0o1777);
        assert_eq!(unix_perm(go_mode::SETGID | 0o640), 0o2640);
    }
}
