//! Sharing one output directory between concurrent processes: the per-arch
//! lock ([`lock_arch`]) and atomic writes of single files ([`write_atomic`]).
//!
//! Every read-modify-write of a file in `<out-dir>/<arch>/` (the packager's
//! index merge and commit, `melange2 index`, `melange2 sign-index`, the
//! build's and the scheduler's own bookkeeping files) runs under an
//! exclusive `flock` of `<out-dir>/<arch>/.melange2.lock`
//! ([`melange2_apk::index::lock_dir`]), so concurrent builds into one
//! out-dir never lose each other's index records.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use melange2_apk::index::DirLock;

use crate::error::{PackageError, Result};
use crate::staging::create_dirs;

/// The exclusive lock of one `<out-dir>/<arch>/` directory, shared by every
/// melange2 process (and thread: two locks of one directory exclude each
/// other inside a process too). Released when dropped. Not re-entrant:
/// taking it again while holding it blocks forever; the packaging functions
/// ([`crate::package_tar`], [`crate::package_dir`]) take it themselves, so
/// do not call them while holding it for the same directory.
#[derive(Debug)]
pub struct ArchLock {
    inner: DirLock,
    dir: PathBuf,
}

impl ArchLock {
    /// The locked directory (`<out-dir>/<arch>`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The lock file (`<out-dir>/<arch>/.melange2.lock`).
    pub fn lock_file(&self) -> &Path {
        self.inner.path()
    }

    /// Whether taking this lock created the lock file.
    pub(crate) fn created_file(&self) -> bool {
        self.inner.created_file()
    }

    /// Remove the lock file (while holding the lock), then release it.
    pub(crate) fn remove_file(self) {
        let path = self.inner.path().to_path_buf();
        if let Err(e) = self.inner.remove() {
            tracing::warn!(lock = %path.display(), error = %e, "cannot remove the lock file");
        }
    }
}

/// Take the lock of `<out_dir>/<arch>/`, creating both directories if
/// needed, blocking until no other process (or thread) holds it. Logs at
/// debug level when it has to wait. The lock file stays in place after the
/// lock is released.
///
/// # Errors
/// An invalid architecture (empty, with a path separator, starting with
/// `.`), or a directory or the lock file that cannot be created or locked.
pub fn lock_arch(out_dir: &Path, arch: &str) -> Result<ArchLock> {
    if !valid_arch(arch) {
        return Err(PackageError::io_path(
            "locking",
            &out_dir.join(arch),
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid architecture {arch:?}"),
            ),
        ));
    }
    lock_arch_dir(&out_dir.join(arch), &mut Vec::new())
}

/// An architecture usable as a directory name below the out-dir.
pub(crate) fn valid_arch(arch: &str) -> bool {
    !arch.is_empty() && !arch.contains(['/', '\\']) && !arch.starts_with('.')
}

/// [`lock_arch`] of a directory; directories it creates are appended to
/// `created` (outermost first).
pub(crate) fn lock_arch_dir(dir: &Path, created: &mut Vec<PathBuf>) -> Result<ArchLock> {
    let mut attempts = 0;
    loop {
        create_dirs(dir, created)?;
        match melange2_apk::index::lock_dir(dir) {
            Ok(inner) => {
                return Ok(ArchLock {
                    inner,
                    dir: dir.to_path_buf(),
                });
            }
            // a failed run that had created the directory removed it again
            // while we were waiting for its lock: create it anew
            Err(_) if attempts < 16 && !dir.is_dir() => attempts += 1,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Write `bytes` to `<dir>/<name>` atomically: a temporary file in `dir`,
/// flushed to disk (`fsync`), mode 0644, renamed over the target; the
/// directory is synced too. Readers see the old or the new content, never a
/// mix. Returns the final path. Take the [`ArchLock`] around it when the new
/// content depends on the old one.
///
/// # Errors
/// `name` is not a plain file name, or an I/O failure (the target is then
/// unchanged and no temporary file is left).
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let target = dir.join(name);
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(PackageError::io_path(
            "writing",
            &target,
            io::Error::new(io::ErrorKind::InvalidInput, "not a plain file name"),
        ));
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".melange2-tmp-")
        .tempfile_in(dir)
        .map_err(|e| PackageError::io_path("creating a temporary file in", dir, e))?;
    let io_err = |e| PackageError::io_path("writing", &target, e);
    tmp.write_all(bytes).map_err(io_err)?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))
        .map_err(io_err)?;
    tmp.as_file().sync_all().map_err(io_err)?;
    tmp.persist(&target)
        .map_err(|e| PackageError::io_path("renaming into place", &target, e.error))?;
    // make the rename itself durable (best effort: not every file system
    // can sync a directory)
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_arch_creates_dirs_and_excludes_others() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("a/packages");
        let l = lock_arch(&out, "x86_64").unwrap();
        assert_eq!(l.dir(), out.join("x86_64"));
        assert!(l.lock_file().is_file());
        // another open file description cannot take it meanwhile
        let f = fs::File::open(l.lock_file()).unwrap();
        assert!(matches!(f.try_lock(), Err(fs::TryLockError::WouldBlock)));
        drop(l);
        f.try_lock().unwrap();
        f.unlock().unwrap();
        for bad in ["", "../x", "a/b", ".hidden"] {
            assert!(lock_arch(&out, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn removed_lock_file_is_not_shared() {
        // a waiter that locked a file its holder removed must lock the new one
        let tmp = tempfile::tempdir().unwrap();
        let first = lock_arch(tmp.path(), "x86_64").unwrap();
        let waiter = std::thread::spawn({
            let out = tmp.path().to_path_buf();
            move || lock_arch(&out, "x86_64").unwrap()
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        first.remove_file();
        let second = waiter.join().unwrap();
        assert!(second.lock_file().is_file());
        let f = fs::File::open(second.lock_file()).unwrap();
        assert!(matches!(f.try_lock(), Err(fs::TryLockError::WouldBlock)));
    }

    #[test]
    fn write_atomic_replaces_and_refuses_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let p = write_atomic(tmp.path(), "state.json", b"one").unwrap();
        assert_eq!(p, tmp.path().join("state.json"));
        write_atomic(tmp.path(), "state.json", b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        for bad in ["", ".", "..", "a/b"] {
            assert!(write_atomic(tmp.path(), bad, b"x").is_err(), "{bad:?}");
        }
        assert_eq!(
            fs::read_dir(tmp.path()).unwrap().count(),
            1,
            "no temp file left"
        );
        assert!(write_atomic(&tmp.path().join("missing"), "x", b"x").is_err());
    }
}
