//! All-or-nothing output: everything is written into a staging directory
//! inside the output directory, then renamed into `<out>/<arch>/` (packages
//! first, the index last). Files replaced in the target are first moved
//! aside into the staging directory so a failed commit can put them back;
//! directories created along the way are removed again on failure.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{PackageError, Result};

/// A staging area for one packaging run.
pub(crate) struct Staging {
    out_dir: PathBuf,
    arch_dir: PathBuf,
    /// Directories this run created (outermost first).
    created: Vec<PathBuf>,
    dir: Option<tempfile::TempDir>,
    /// Files staged for the commit: (file name in the arch dir, staged path).
    staged: Vec<(String, PathBuf)>,
}

fn create_dirs(path: &Path, created: &mut Vec<PathBuf>) -> Result<()> {
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
    /// Create `out_dir` if needed and a fresh staging directory inside it.
    pub fn begin(out_dir: &Path, arch: &str) -> Result<Self> {
        let mut created = Vec::new();
        create_dirs(out_dir, &mut created)?;
        let dir = tempfile::Builder::new()
            .prefix(".melange2-staging-")
            .tempdir_in(out_dir);
        let dir = match dir {
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
        // success: keep the directories, drop the staging directory (with
        // the replaced files)
        self.created.clear();
        if let Some(d) = self.dir.take()
            && let Err(e) = d.close()
        {
            tracing::warn!(error = %e, "cannot remove the staging directory");
        }
        Ok(())
    }

    /// Remove the staging directory and every directory this run created.
    pub fn abort(&mut self) {
        if let Some(d) = self.dir.take() {
            let _ = d.close();
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
