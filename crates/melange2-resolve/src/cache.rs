//! The download cache.
//!
//! ```text
//! <cache>/packages/<name>-<version>.<sha1 hex of the control section>.apk   verified packages
//! <cache>/indexes/<sha256(url)>/APKINDEX.tar.gz + meta.json              HTTP indexes (ETag/Last-Modified)
//! <cache>/keys/<sha256(url)>/<key file name>                             keys given as URLs
//! ```
//!
//! Package files are keyed by the index checksum (`C:Q1…`, hex-encoded so
//! it is safe in a file name): two packages with the same name and version
//! but different contents never share a file. Everything is written to a
//! temporary file in the same directory and renamed into place once
//! verified, so a reader never sees a partial file.
//!
//! Temporary files (`.download-*` for downloads, `.tmp-*` for small metadata)
//! are `flock`ed by the process writing them for as long as they exist. A
//! process that was killed leaves its temporary files behind, unlocked: the
//! next run sweeps them ([`sweep_stale`]) from `packages/` when it opens the
//! cache and from a URL's directory when it uses it, removing only files whose
//! lock it can take at once.

use std::fs::File;
use std::path::{Path, PathBuf};

use melange2_apk::IndexEntry;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// A cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// Default cache directory: `$XDG_CACHE_HOME/melange2/apk`, else
/// `$HOME/.cache/melange2/apk`.
///
/// # Errors
/// [`Error::Config`] when none of these variables is set.
pub fn default_cache_dir() -> Result<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = var("XDG_CACHE_HOME") {
        return Ok(d.join("melange2").join("apk"));
    }
    if let Some(h) = var("HOME") {
        return Ok(h.join(".cache").join("melange2").join("apk"));
    }
    Err(Error::config(
        "APK cache",
        "cannot choose a cache directory: set XDG_CACHE_HOME or HOME, or pass --apk-cache-dir",
    ))
}

/// `<name>-<version>.<hex checksum>.apk` for an index record.
///
/// # Errors
/// [`Error::Config`] for names/versions that are not safe file names or a
/// checksum that is not `Q1` + base64(SHA-1).
pub fn package_file_name(e: &IndexEntry) -> Result<String> {
    let ctx = format!("index record {}-{}", e.name, e.version);
    if !melange2_apk::pkginfo::is_valid_name(&e.name) {
        return Err(Error::config(ctx, "invalid package name"));
    }
    if e.version.is_empty()
        || e.version.starts_with('.')
        || !e
            .version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-~+".contains(c))
    {
        return Err(Error::config(ctx, "invalid version"));
    }
    let sha1 = melange2_apk::decode_q1(&e.checksum).ok_or_else(|| {
        Error::config(
            &ctx,
            format!("checksum {:?} is not a Q1 (SHA-1) checksum", e.checksum),
        )
    })?;
    Ok(format!(
        "{}-{}.{}.apk",
        e.name,
        e.version,
        hex::encode(sha1)
    ))
}

fn url_key(url: &str) -> String {
    hex::encode(&Sha256::digest(url.as_bytes())[..16])
}

impl Cache {
    /// Open (creating) a cache directory; the path is made absolute.
    ///
    /// # Errors
    /// I/O errors naming the directory.
    pub fn open(root: &Path) -> Result<Cache> {
        let root =
            std::path::absolute(root).map_err(|e| Error::io(root.display().to_string(), e))?;
        for sub in ["packages", "indexes", "keys"] {
            let d = root.join(sub);
            std::fs::create_dir_all(&d).map_err(|e| Error::io(d.display().to_string(), e))?;
        }
        sweep_stale(&root.join("packages"));
        Ok(Cache { root })
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Directory of verified packages.
    pub fn packages_dir(&self) -> PathBuf {
        self.root.join("packages")
    }

    /// Where a package with this record is (or will be) cached.
    ///
    /// # Errors
    /// As [`package_file_name`].
    pub fn package_path(&self, e: &IndexEntry) -> Result<PathBuf> {
        Ok(self.packages_dir().join(package_file_name(e)?))
    }

    /// Per-URL directory under `indexes/` or `keys/` (created).
    pub(crate) fn url_dir(&self, kind: &str, url: &str) -> Result<PathBuf> {
        let d = self.root.join(kind).join(url_key(url));
        std::fs::create_dir_all(&d).map_err(|e| Error::io(d.display().to_string(), e))?;
        sweep_stale(&d);
        Ok(d)
    }
}

/// Name prefixes of the cache's temporary files.
pub(crate) const TEMP_PREFIXES: [&str; 2] = [".download-", ".tmp-"];

/// Whether `file` is the file at `path` (same device and inode).
fn is_file_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// A new temporary file in `dir` named `<prefix>…`, locked (`flock`) for its
/// whole life, so that [`sweep_stale`] leaves it alone.
pub(crate) fn locked_tempfile(dir: &Path, prefix: &str) -> Result<tempfile::NamedTempFile> {
    let err = |e| Error::io(dir.display().to_string(), e);
    for _ in 0..16 {
        let tmp = tempfile::Builder::new()
            .prefix(prefix)
            .tempfile_in(dir)
            .map_err(err)?;
        // only a sweeper can hold it, and only for a moment
        tmp.as_file().lock().map_err(err)?;
        // a sweeper removed it between its creation and our lock: make another
        if is_file_at(tmp.as_file(), tmp.path()) {
            return Ok(tmp);
        }
    }
    Err(err(std::io::Error::other(
        "temporary files were removed again and again by other processes",
    )))
}

/// Remove the temporary files in `dir` left by processes that are gone: those
/// whose lock can be taken without waiting. Never fails: what cannot be
/// checked or removed is left alone.
pub(crate) fn sweep_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !TEMP_PREFIXES.iter().any(|p| name.starts_with(p))
            || !entry.file_type().is_ok_and(|t| t.is_file())
        {
            continue;
        }
        let path = entry.path();
        let Ok(file) = File::open(&path) else {
            continue; // removed meanwhile
        };
        match file.try_lock() {
            Ok(()) if is_file_at(&file, &path) => {
                tracing::info!(file = %path.display(), "removing a download left by an interrupted run");
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!(file = %path.display(), error = %e, "cannot remove a stale download");
                }
            }
            Ok(()) => {} // removed meanwhile by another sweeper
            Err(e) => {
                tracing::debug!(file = %path.display(), error = %e, "temporary file in use; leaving it");
            }
        }
    }
}

/// Write `data` to `path` through a temporary file + rename.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = locked_tempfile(dir, ".tmp-")?;
    tmp.write_all(data)
        .map_err(|e| Error::io(path.display().to_string(), e))?;
    tmp.persist(path)
        .map_err(|e| Error::io(path.display().to_string(), e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let mut e = IndexEntry {
            name: "libstdc++".into(),
            version: "13.2.0-r3".into(),
            checksum: melange2_apk::q1_checksum(&[7u8; 20]),
            ..IndexEntry::default()
        };
        assert_eq!(
            package_file_name(&e).unwrap(),
            format!("libstdc++-13.2.0-r3.{}.apk", "07".repeat(20))
        );
        e.name = "../evil".into();
        assert!(package_file_name(&e).is_err());
        e.name = "ok".into();
        e.version = "1/../../x".into();
        assert!(package_file_name(&e).is_err());
        e.version = "1".into();
        e.checksum = "sha256:abc".into();
        assert!(package_file_name(&e).is_err());
    }

    /// A temporary file whose owner is gone (unlocked) is swept; one that is
    /// being written (locked, here by this process) and other files stay.
    #[test]
    fn stale_temporary_files_are_swept_live_ones_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::open(tmp.path()).unwrap();
        let pkgs = cache.packages_dir();
        let live = locked_tempfile(&pkgs, ".download-").unwrap();
        std::fs::write(pkgs.join(".download-dead"), b"half").unwrap();
        std::fs::write(pkgs.join(".tmp-dead"), b"half").unwrap();
        std::fs::write(pkgs.join("kept.apk"), b"done").unwrap();
        Cache::open(tmp.path()).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&pkgs)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let live_name = live
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert_eq!(left, vec![live_name, "kept.apk".to_string()]);
        // a URL's directory is swept when it is used
        let d = cache.url_dir("indexes", "http://127.0.0.1:1/x").unwrap();
        std::fs::write(d.join(".download-dead"), b"half").unwrap();
        let d2 = cache.url_dir("indexes", "http://127.0.0.1:1/x").unwrap();
        assert_eq!(std::fs::read_dir(d2).unwrap().count(), 0);
    }
}
