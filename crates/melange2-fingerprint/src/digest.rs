//! Content digests of local inputs: the source folder (per file) and the bootstrap root
//! filesystem (one digest for a directory tree or a tar file).

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use globset::GlobMatcher;
use sha2::{Digest, Sha256};

use crate::FingerprintError;

fn hash_file(path: &Path) -> Result<String, FingerprintError> {
    let mut f = std::fs::File::open(path).map_err(|e| FingerprintError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| FingerprintError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// One entry's digest: kind, permission bits and content (file bytes or link target).
fn entry_digest(path: &Path, meta: &std::fs::Metadata) -> Result<String, FingerprintError> {
    let mode = meta.permissions().mode() & 0o7777;
    let ft = meta.file_type();
    Ok(if ft.is_symlink() {
        let target = std::fs::read_link(path).map_err(|e| FingerprintError::io(path, e))?;
        format!("l {mode:o} {}", target.display())
    } else if ft.is_dir() {
        format!("d {mode:o}")
    } else if ft.is_file() {
        format!("f {mode:o} {}", hash_file(path)?)
    } else {
        format!("s {mode:o} {}", meta.rdev())
    })
}

/// `.melangeignore` rules in order; a later `!pattern` re-includes.
struct Ignore {
    rules: Vec<(bool, GlobMatcher)>,
}

impl Ignore {
    fn load(dir: &Path) -> Result<Ignore, FingerprintError> {
        let path = dir.join(".melangeignore");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(FingerprintError::io(&path, e)),
        };
        let mut rules = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negate, pat) = match line.strip_prefix('!') {
                Some(p) => (true, p),
                None => (false, line),
            };
            let pat = pat.trim_start_matches('/').trim_end_matches('/');
            let glob = globset::GlobBuilder::new(pat)
                .literal_separator(true)
                .build()
                .map_err(|e| FingerprintError::Pattern {
                    path: path.clone(),
                    pattern: line.to_string(),
                    message: e.to_string(),
                })?;
            rules.push((negate, glob.compile_matcher()));
        }
        Ok(Ignore { rules })
    }

    /// Excluded when the last rule matching the path or one of its parents excludes it.
    fn excluded(&self, rel: &str) -> bool {
        let mut out = false;
        for (negate, m) in &self.rules {
            let mut p = Some(rel);
            while let Some(cur) = p {
                if m.is_match(cur) {
                    out = !negate;
                    break;
                }
                p = cur.rsplit_once('/').map(|(parent, _)| parent);
            }
        }
        out
    }
}

/// Digest of every entry of a source folder (relative path → digest), honouring
/// `.melangeignore` as the build does.
pub fn digest_source_dir(dir: &Path) -> Result<BTreeMap<String, String>, FingerprintError> {
    let ignore = Ignore::load(dir)?;
    let mut out = BTreeMap::new();
    walk(dir, |rel, path, meta| {
        if !ignore.excluded(rel) {
            out.insert(rel.to_string(), entry_digest(path, meta)?);
        }
        Ok(())
    })?;
    Ok(out)
}

/// Every entry below `dir` (not following links, sorted by name), with its path relative to
/// `dir` and its own metadata.
fn walk(
    dir: &Path,
    mut f: impl FnMut(&str, &Path, &std::fs::Metadata) -> Result<(), FingerprintError>,
) -> Result<(), FingerprintError> {
    let entries = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1);
    for entry in entries {
        let entry = entry.map_err(|e| {
            let p = e.path().unwrap_or(dir).to_path_buf();
            FingerprintError::io(&p, e.into())
        })?;
        let meta = entry
            .metadata()
            .map_err(|e| FingerprintError::io(entry.path(), e.into()))?;
        let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        f(&rel.to_string_lossy(), entry.path(), &meta)?;
    }
    Ok(())
}

/// One digest for a root filesystem: a directory tree (paths, kinds, modes, owners, content)
/// or a file's bytes (a tar, compressed or not). The path itself does not count.
pub fn digest_path(path: &Path) -> Result<String, FingerprintError> {
    let meta = std::fs::metadata(path).map_err(|e| FingerprintError::io(path, e))?;
    if !meta.is_dir() {
        return Ok(format!("sha256:{}", hash_file(path)?));
    }
    let mut h = Sha256::new();
    walk(path, |rel, entry, m| {
        let digest = entry_digest(entry, m)?;
        h.update(format!("{rel}\0{digest}\0{}:{}\n", m.uid(), m.gid()).as_bytes());
        Ok(())
    })?;
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}
