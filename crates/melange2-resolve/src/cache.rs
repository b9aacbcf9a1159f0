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
        Ok(d)
    }
}

/// Write `data` to `path` through a temporary file + rename.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir.display().to_string(), e))?;
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
}
