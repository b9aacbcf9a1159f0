//! All-or-nothing output: everything is written into a staging directory
//! inside the output directory, then renamed into `<out>/<arch>/` (packages
//! first, the index last). Files replaced in the target are first moved
//! aside into the staging directory so a failed commit can put them back;
//! directories created along the way are removed again on failure.
//!
//! Concurrent runs: the commit (and whatever the caller does between
//! [`Staging::lock_arch`] and the commit, such as merging the index) runs
//! under the out-dir's per-arch lock ([`crate::ArchLock`]). Each staging
//! directory holds its own lock file, locked for the staging's lifetime;
//! [`Staging::begin`] removes the staging directories whose lock nobody
//! holds — their run was interrupted (killed, crashed, power loss).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use melange2_apk::index::LOCK_FILE_NAME;

use crate::error::{PackageError, Result};
use crate::outdir::{ArchLock, lock_arch_dir};

/// Name prefix of the staging directories inside the out-dir.
pub(crate) const STAGING_PREFIX: &str = ".melange2-staging-";

/// A staging area for one packaging run.
pub(crate) struct Staging {
    out_dir: PathBuf,
    arch_dir: PathBuf,
    /// Directories this run created (outermost first).
    created: Vec<PathBuf>,
    dir: Option<tempfile::TempDir>,
    /// The staging directory's own lock (held while the directory lives).
    lock: Option<fs::File>,
    /// The out-dir's per-arch lock, once taken.
    arch_lock: Option<ArchLock>,
    /// Files staged for the commit: (file name in the arch dir, staged path).
    staged: Vec<(String, PathBuf)>,
}

/// Whether `file` is the file at `path` (same device and inode).
fn is_file_at(file: &fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn open_lock_file(path: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// Remove the staging directories in `out_dir` left by interrupted runs:
/// those whose lock file can be locked without waiting. Never fails: a
/// directory that cannot be checked or removed is left alone.
fn sweep_stale(out_dir: &Path) {
    let entries = match fs::read_dir(out_dir) {
        Ok(e) => e,
        Err(e) => {
            tracing::debug!(dir = %out_dir.display(), error = %e, "cannot list the output directory for stale staging directories");
            return;
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(STAGING_PREFIX)
            || !entry.file_type().is_ok_and(|t| t.is_dir())
        {
            continue;
        }
        let dir = entry.path();
        let lock_path = dir.join(LOCK_FILE_NAME);
        // a directory without a lock file (a run that is creating it right
        // now, or an older melange2) gets one: its owner locks that same
        // file, or finds its directory gone and makes a new one
        let file = match open_lock_file(&lock_path) {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(dir = %dir.display(), error = %e, "cannot open the lock of a staging directory; leaving it");
                continue;
            }
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                tracing::debug!(dir = %dir.display(), "staging directory in use by a running build");
                continue;
            }
            Err(fs::TryLockError::Error(e)) => {
                tracing::debug!(dir = %dir.display(), error = %e, "cannot lock a staging directory; leaving it");
                continue;
            }
        }
        if !is_file_at(&file, &lock_path) {
            continue; // removed meanwhile by another sweeper
        }
        tracing::info!(dir = %dir.display(), "removing a staging directory left by an interrupted build");
        if let Err(e) = fs::remove_dir_all(&dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a stale staging directory");
        }
        drop(file);
    }
}

/// Create a fresh staging directory in `out_dir` and lock its lock file.
fn create_locked_dir(out_dir: &Path) -> io::Result<(tempfile::TempDir, fs::File)> {
    for _ in 0..16 {
        let dir = tempfile::Builder::new()
            .prefix(STAGING_PREFIX)
            .tempdir_in(out_dir)?;
        let path = dir.path().join(LOCK_FILE_NAME);
        let file = match open_lock_file(&path) {
            Ok(f) => f,
            // a sweeper removed the directory before we could lock it
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        // only a sweeper can hold it, and only for a moment
        file.lock()?;
        if is_file_at(&file, &path) {
            return Ok((dir, file));
        }
    }
    Err(io::Error::other(
        "the staging directory was removed again and again by other builds",
    ))
}

pub(crate) fn create_dirs(path: &Path, created: &mut Vec<PathBuf>) -> Result<()> {
    let mut missing = Vec::new();
    let mut p = Some(path);
    while let Some(d) = p {
        match fs::symlink_metadata(d) {
            Ok(m) if m.is_dir() => break,
            Ok(m) if m.file_type().is_symlink() && d.is_dir() => break,
            Ok(_) => {
                return Err(PackageError::io_path(
                    "creating output directory",
                    d,
                    io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "exists and is not a directory",
                    ),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => missing.push(d.to_path_buf()),
            Err(e) => return Err(PackageError::io_path("reading", d, e)),
        }
        p = d.parent().filter(|x| !x.as_os_str().is_empty());
    }
    for d in missing.into_iter().rev() {
        match fs::create_dir(&d) {
            Ok(()) => created.push(d),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && d.is_dir() => {}
            Err(e) => return Err(PackageError::io_path("creating directory", &d, e)),
        }
    }
    Ok(())
}

impl Staging {
    /// Create `out_dir` if needed, remove the staging directories of
    /// interrupted runs from it, and create a fresh (locked) staging
    /// directory inside it.
    pub fn begin(out_dir: &Path, arch: &str) -> Result<Self> {
        let mut created = Vec::new();
        create_dirs(out_dir, &mut created)?;
        sweep_stale(out_dir);
        let (dir, lock) = match create_locked_dir(out_dir) {
            Ok(d) => d,
            Err(e) => {
                remove_created(&created);
                return Err(PackageError::io_path(
                    "creating staging directory in",
                    out_dir,
                    e,
                ));
            }
        };
        let s = Staging {
            out_dir: out_dir.to_path_buf(),
            arch_dir: out_dir.join(arch),
            created,
            dir: Some(dir),
            lock: Some(lock),
            arch_lock: None,
            staged: Vec::new(),
        };
        for sub in ["spool", "out", "backup"] {
            let p = s.path().join(sub);
            fs::create_dir(&p).map_err(|e| PackageError::io_path("creating", &p, e))?;
        }
        Ok(s)
    }

    /// The staging directory.
    pub fn path(&self) -> &Path {
        match &self.dir {
            Some(d) => d.path(),
            None => &self.out_dir,
        }
    }

    /// Where large file contents of the build output are spooled.
    pub fn spool_dir(&self) -> PathBuf {
        self.path().join("spool")
    }

    /// Where staged outputs are written.
    pub fn out_path(&self, file_name: &str) -> PathBuf {
        self.path().join("out").join(file_name)
    }

    /// The final directory (`<out>/<arch>`).
    pub fn arch_dir(&self) -> &Path {
        &self.arch_dir
    }

    /// Take the out-dir's lock of the target directory (creating it if
    /// needed); it is held until the commit ends or the run is aborted.
    /// Everything between this call and the commit is serialised with the
    /// other writers of the directory. Does nothing when already held.
    pub fn lock_arch(&mut self) -> Result<()> {
        if self.arch_lock.is_none() {
            let lock = lock_arch_dir(&self.arch_dir, &mut self.created)?;
            self.arch_lock = Some(lock);
        }
        Ok(())
    }

    /// Register a file written to [`Staging::out_path`] for the commit
    /// (commit order = registration order).
    pub fn stage(&mut self, file_name: &str) {
        let p = self.out_path(file_name);
        self.staged.push((file_name.to_string(), p));
    }

    /// Move every staged file into place. On failure everything is rolled
    /// back and the output directory is as before.
    pub fn commit(self) -> Result<()> {
        self.commit_inner(None)
    }

    /// [`Staging::commit`] that fails before moving file number `fail_at`
    /// (tests of the rollback).
    #[cfg(test)]
    pub fn commit_failing_at(self, fail_at: usize) -> Result<()> {
        self.commit_inner(Some(fail_at))
    }

    fn commit_inner(mut self, fail_at: Option<usize>) -> Result<()> {
        // every commit runs under the lock
        self.lock_arch()?;
        // Refuse anything but files/symlinks at the destinations before
        // touching anything.
        for (name, _) in &self.staged {
            let dest = self.arch_dir.join(name);
            if let Ok(m) = fs::symlink_metadata(&dest)
                && m.is_dir()
            {
                let e = PackageError::io_path(
                    "replacing",
                    &dest,
                    io::Error::new(io::ErrorKind::IsADirectory, "is a directory"),
                );
                self.abort();
                return Err(e);
            }
        }
        if let Err(e) = create_dirs(&self.arch_dir.clone(), &mut self.created) {
            self.abort();
            return Err(e);
        }
        let backup_dir = self.path().join("backup");
        // (dest, backup) for replaced files; dests placed so far
        let mut backups: Vec<(PathBuf, PathBuf)> = Vec::new();
        let mut placed: Vec<(PathBuf, PathBuf)> = Vec::new();
        let staged = std::mem::take(&mut self.staged);
        let mut result = Ok(());
        for (i, (name, src)) in staged.iter().enumerate() {
            let dest = self.arch_dir.join(name);
            let step = (|| -> Result<()> {
                if fail_at == Some(i) {
                    return Err(PackageError::io_path(
                        "moving into place",
                        &dest,
                        io::Error::other("injected failure"),
                    ));
                }
                if fs::symlink_metadata(&dest).is_ok() {
                    let b = backup_dir.join(name);
                    fs::rename(&dest, &b)
                        .map_err(|e| PackageError::io_path("moving aside", &dest, e))?;
                    backups.push((dest.clone(), b));
                }
                fs::rename(src, &dest)
                    .map_err(|e| PackageError::io_path("moving into place", &dest, e))?;
                placed.push((dest.clone(), src.clone()));
                Ok(())
            })();
            if let Err(e) = step {
                result = Err(e);
                break;
            }
        }
        if let Err(e) = result {
            for (dest, src) in placed.iter().rev() {
                if let Err(err) = fs::rename(dest, src) {
                    tracing::error!(path = %dest.display(), error = %err, "rollback: cannot remove new file");
                    let _ = fs::remove_file(dest);
                }
            }
            for (dest, b) in backups.iter().rev() {
                if let Err(err) = fs::rename(b, dest) {
                    tracing::error!(path = %dest.display(), error = %err, "rollback: cannot restore file");
                }
            }
            self.abort();
            return Err(e);
        }
        // success: keep the directories (and the lock file), let the other
        // writers in, then drop the staging directory (with the replaced
        // files)
        self.created.clear();
        self.arch_lock = None;
        if let Some(d) = self.dir.take()
            && let Err(e) = d.close()
        {
            tracing::warn!(error = %e, "cannot remove the staging directory");
        }
        Ok(())
    }

    /// Remove the staging directory, the lock file if this run created it,
    /// and every directory this run created.
    pub fn abort(&mut self) {
        if let Some(d) = self.dir.take() {
            let _ = d.close();
        }
        self.lock = None;
        if let Some(l) = self.arch_lock.take()
            && l.created_file()
        {
            l.remove_file();
        }
        remove_created(&self.created);
        self.created.clear();
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        self.abort();
    }
}

fn remove_created(created: &[PathBuf]) {
    for d in created.iter().rev() {
        // only empty directories: anything else was not ours
        let _ = fs::remove_dir(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for e in walk(dir) {
            let rel = e.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            let data = if e.is_file() {
                fs::read(&e).unwrap()
            } else {
                b"<dir>".to_vec()
            };
            out.push((rel, data));
        }
        out.sort();
        out
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut v = Vec::new();
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                v.extend(walk(&p));
            }
            v.push(p);
        }
        v
    }

    #[test]
    fn rollback_restores_everything() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("packages");
        fs::create_dir_all(out.join("x86_64")).unwrap();
        fs::write(out.join("x86_64/a.apk"), "old a").unwrap();
        fs::write(out.join("x86_64/keep.apk"), "keep").unwrap();
        let before = snapshot(&out);
        for fail_at in 0..3 {
            let mut s = Staging::begin(&out, "x86_64").unwrap();
            for (n, d) in [
                ("a.apk", "new a"),
                ("b.apk", "new b"),
                ("APKINDEX.tar.gz", "idx"),
            ] {
                fs::write(s.out_path(n), d).unwrap();
                s.stage(n);
            }
            let e = s.commit_failing_at(fail_at).unwrap_err();
            assert!(e.to_string().contains("injected failure"), "{e}");
            assert_eq!(snapshot(&out), before, "fail_at {fail_at}");
        }
        let mut s = Staging::begin(&out, "x86_64").unwrap();
        fs::write(s.out_path("a.apk"), "new a").unwrap();
        s.stage("a.apk");
        s.commit().unwrap();
        assert_eq!(fs::read(out.join("x86_64/a.apk")).unwrap(), b"new a");
        assert_eq!(fs::read(out.join("x86_64/keep.apk")).unwrap(), b"keep");
        assert_eq!(
            fs::read_dir(&out).unwrap().count(),
            1,
            "staging dir removed"
        );
    }

    #[test]
    fn created_dirs_are_removed_on_failure() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("a/b/packages");
        let mut s = Staging::begin(&out, "aarch64").unwrap();
        fs::write(s.out_path("x.apk"), "x").unwrap();
        s.stage("x.apk");
        s.commit_failing_at(0).unwrap_err();
        assert!(!tmp.path().join("a").exists());
    }
}
