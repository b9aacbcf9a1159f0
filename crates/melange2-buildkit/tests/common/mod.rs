//! Fixtures shared by the daemon tests and the benchmark: a client for the daemon named by
//! BUILDKIT_HOST (as `make test` sets it) and busybox root filesystems.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use melange2_buildkit::llb::{CopyOptions, FileActions, LocalSource, OpOptions, State};
use melange2_buildkit::progress::{Progress, ProgressMode};
use melange2_buildkit::{Address, Client, Exporter, SolveOptions, SolveResult, TlsFiles};

/// Debian's busybox-static binary.
pub const BUSYBOX: &str = "/bin/busybox";

pub fn address() -> Address {
    let host = std::env::var("BUILDKIT_HOST").unwrap_or_else(|_| {
        panic!("BUILDKIT_HOST is not set: run these tests with `make test`, which starts buildkitd")
    });
    Address::parse(&host).expect("BUILDKIT_HOST is a valid address")
}

pub async fn client() -> Client {
    Client::connect(&address(), &TlsFiles::default())
        .await
        .expect("connect to buildkitd")
}

/// A directory holding a minimal busybox root filesystem.
pub fn busybox_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let bin = d.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(BUSYBOX, bin.join("busybox")).expect("busybox-static is installed");
    for applet in [
        "sh", "cat", "echo", "ls", "mkdir", "chmod", "chown", "ln", "cp", "test",
    ] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    std::fs::create_dir_all(d.path().join("tmp")).unwrap();
    d
}

/// The busybox rootfs brought in through a local source and copied into its own layer (the
/// copy is content-addressed, so it is cached across sessions).
pub fn rootfs_from_local(name: &str, dir: &Path) -> State {
    let local = LocalSource::new(name)
        .unique(format!("test:{}", dir.display()))
        .shared_key_hint(name)
        .options(OpOptions::named(format!("local {name}")))
        .build();
    State::scratch()
        .file(
            FileActions::new().copy(&local, "/", "/", CopyOptions::default()),
            OpOptions::named("copy rootfs"),
        )
        .unwrap()
}

/// The busybox rootfs written inline in the definition (no session needed: every op is
/// content-addressed).
pub fn rootfs_inline() -> State {
    let bb = std::fs::read(BUSYBOX).expect("busybox-static is installed");
    let mut fa = FileActions::new()
        .mkdir("/bin", 0o755)
        .mkdir("/tmp", 0o777)
        .mkfile("/bin/busybox", 0o755, bb);
    for applet in [
        "sh", "cat", "echo", "ls", "mkdir", "chmod", "chown", "ln", "cp", "test",
    ] {
        fa = fa.symlink("busybox", &format!("/bin/{applet}"));
    }
    State::scratch()
        .file(fa, OpOptions::named("busybox rootfs"))
        .unwrap()
}

pub fn local_dirs(pairs: &[(&str, &Path)]) -> BTreeMap<String, PathBuf> {
    pairs
        .iter()
        .map(|(n, p)| (n.to_string(), p.to_path_buf()))
        .collect()
}

/// Solve, exporting `state` as a tar into a file; return the result and the tar bytes.
pub async fn solve_to_tar(
    client: &Client,
    state: &State,
    mut opts: SolveOptions,
) -> Result<(SolveResult, Vec<u8>), melange2_buildkit::BuildkitError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.tar");
    let file = tokio::fs::File::create(&path).await.unwrap();
    opts.exporters.push(Exporter::tar(Box::new(file)));
    let def = state.marshal()?;
    let mut progress = Progress::to_writer(ProgressMode::Plain, false, Box::new(std::io::sink()));
    let res = client
        .solve(&def, opts, &mut |s| progress.handle(s))
        .await?;
    Ok((res, std::fs::read(&path).unwrap()))
}

/// Solve without exporting anything.
pub async fn solve(
    client: &Client,
    state: &State,
    opts: SolveOptions,
) -> Result<SolveResult, melange2_buildkit::BuildkitError> {
    let def = state.marshal()?;
    client.solve(&def, opts, &mut |_| {}).await
}

/// Entries of a tar: path → (header, content).
pub fn tar_entries(bytes: &[u8]) -> BTreeMap<String, (tar::Header, Vec<u8>)> {
    use std::io::Read;
    let mut out = BTreeMap::new();
    let mut ar = tar::Archive::new(bytes);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        let header = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.insert(path, (header, data));
    }
    out
}
