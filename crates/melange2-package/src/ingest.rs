//! Reading the build output into one [`PackageTree`] per package.
//!
//! * From a tar stream (BuildKit's tar export of `/home/build/melange-out`):
//!   the first path component names the package; everything below it is the
//!   package's tree. Ownership, modes, xattrs (`SCHILY.xattr.*`), hard links
//!   and device nodes come from the tar headers, so nothing is lost to the
//!   permissions of the user running melange2. Small file contents stay in
//!   memory (bounded budget); larger ones are spooled to files in a spool
//!   directory (inside the staging directory of the output).
//! * From a directory (`package_dir`): [`PackageTree::from_dir`] per package.
//!
//! Either way every regular file's content stays readable by the SCA
//! (`Content::Memory` or `Content::Disk`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use melange2_apk::PackageTree;
use melange2_apk::tree::{Content, EntryKind, TreeEntry, normalize_path};
use sha1::{Digest as _, Sha1};

use crate::error::{PackageError, Result};

/// Files up to this size are kept in memory (while the budget lasts).
const MEMORY_FILE_MAX: u64 = 1 << 20;
/// Total bytes of file content kept in memory: the rest is spooled, so the client's memory
/// stays bounded whatever the size of the build output (docs/packaging.md, "Performance").
const MEMORY_BUDGET: u64 = 32 << 20;

/// What [`split_tar`] found besides the trees.
#[derive(Debug, Default)]
pub(crate) struct Ingested {
    /// One tree per requested package (empty when the stream has nothing for it).
    pub trees: BTreeMap<String, PackageTree>,
    /// Things skipped, for the caller's warnings.
    pub warnings: Vec<String>,
}

/// A stored regular file, for resolving hard links.
#[derive(Clone)]
struct Stored {
    content: Content,
    size: u64,
    sha1: [u8; 20],
    group: u64,
    xattrs: BTreeMap<String, Vec<u8>>,
}

fn tar_err(ctx: &str, e: io::Error) -> PackageError {
    PackageError::tar(ctx, e.to_string())
}

/// Split a tar stream whose top-level directories are package names.
pub(crate) fn split_tar<R: Read>(
    reader: R,
    packages: &[&str],
    spool_dir: &Path,
) -> Result<Ingested> {
    let wanted: BTreeSet<&str> = packages.iter().copied().collect();
    let mut out = Ingested {
        trees: packages
            .iter()
            .map(|p| ((*p).to_string(), PackageTree::new()))
            .collect(),
        warnings: Vec::new(),
    };
    let mut skipped_top: BTreeSet<String> = BTreeSet::new();
    let mut stored: HashMap<String, Stored> = HashMap::new();
    let mut group_counter: u64 = 0;
    let mut memory_used: u64 = 0;
    let mut spool_counter: u64 = 0;
    let mut buf = vec![0u8; 256 * 1024];

    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| tar_err("reading the stream", e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| tar_err("reading the next entry", e))?;
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            continue;
        }
        let raw_path = entry.path_bytes().into_owned();
        let raw_path = String::from_utf8(raw_path).map_err(|e| {
            PackageError::tar(
                format!("entry {:?}", String::from_utf8_lossy(e.as_bytes())),
                "path is not valid UTF-8",
            )
        })?;
        let ctx = format!("entry {raw_path:?}");
        let Some(path) =
            normalize_path(&raw_path).map_err(|e| PackageError::tar(&ctx, e.to_string()))?
        else {
            continue;
        };
        let (pkg, rel) = match path.split_once('/') {
            Some((p, r)) => (p.to_string(), Some(r.to_string())),
            None => (path.clone(), None),
        };
        let in_plan = wanted.contains(pkg.as_str());
        if !in_plan && skipped_top.insert(pkg.clone()) {
            out.warnings.push(format!(
                "build output {pkg:?} is not a package of this build; it was not packaged"
            ));
        }

        // xattrs
        let mut xattrs = BTreeMap::new();
        if let Some(exts) = entry.pax_extensions().map_err(|e| tar_err(&ctx, e))? {
            for ext in exts {
                let ext = ext.map_err(|e| tar_err(&ctx, e))?;
                let Ok(key) = ext.key() else { continue };
                if let Some(name) = key.strip_prefix("SCHILY.xattr.")
                    && !melange2_apk::tree::is_ignored_xattr(name)
                {
                    xattrs.insert(name.to_string(), ext.value_bytes().to_vec());
                }
            }
        }
        let header = entry.header();
        let mode = header.mode().map_err(|e| tar_err(&ctx, e))? & 0o7777;
        let uid = u32::try_from(header.uid().map_err(|e| tar_err(&ctx, e))?)
            .map_err(|_| PackageError::tar(&ctx, "uid out of range"))?;
        let gid = u32::try_from(header.gid().map_err(|e| tar_err(&ctx, e))?)
            .map_err(|_| PackageError::tar(&ctx, "gid out of range"))?;
        let link_name = entry
            .link_name_bytes()
            .map(|b| String::from_utf8_lossy(&b).into_owned());

        use tar::EntryType as T;
        let (kind, group) = match kind {
            T::Directory => (EntryKind::Directory, None),
            T::Regular | T::Continuous | T::GNUSparse => {
                // read content (also for packages we skip: hard links may point at it)
                let size = entry.size();
                let mut hasher = Sha1::new();
                let content = if size <= MEMORY_FILE_MAX && memory_used + size <= MEMORY_BUDGET {
                    let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                    entry.read_to_end(&mut data).map_err(|e| tar_err(&ctx, e))?;
                    hasher.update(&data);
                    memory_used += data.len() as u64;
                    Content::Memory(Arc::from(data))
                } else {
                    spool_counter += 1;
                    let spool_path = spool_dir.join(format!("{spool_counter}"));
                    let mut f = File::create(&spool_path).map_err(|e| {
                        PackageError::io_path("creating spool file", &spool_path, e)
                    })?;
                    loop {
                        let n = entry.read(&mut buf).map_err(|e| tar_err(&ctx, e))?;
                        if n == 0 {
                            break;
                        }
                        hasher.update(&buf[..n]);
                        f.write_all(&buf[..n]).map_err(|e| {
                            PackageError::io_path("writing spool file", &spool_path, e)
                        })?;
                    }
                    Content::Disk(spool_path)
                };
                let real_size = match &content {
                    Content::Memory(m) => m.len() as u64,
                    Content::Disk(p) => std::fs::metadata(p)
                        .map_err(|e| PackageError::io_path("reading spool file", p, e))?
                        .len(),
                    Content::Spool { .. } => size,
                };
                if real_size != size {
                    return Err(PackageError::tar(
                        &ctx,
                        format!("truncated content ({real_size} of {size} bytes)"),
                    ));
                }
                let sha1: [u8; 20] = hasher.finalize().into();
                let g = group_counter;
                group_counter += 1;
                stored.insert(
                    path.clone(),
                    Stored {
                        content: content.clone(),
                        size,
                        sha1,
                        group: g,
                        xattrs: xattrs.clone(),
                    },
                );
                (
                    EntryKind::File {
                        size,
                        content,
                        sha1: Some(sha1),
                    },
                    Some(g),
                )
            }
            T::Link => {
                let target = link_name
                    .as_deref()
                    .ok_or_else(|| PackageError::tar(&ctx, "hard link without a target"))?;
                let target = normalize_path(target)
                    .map_err(|e| PackageError::tar(&ctx, e.to_string()))?
                    .ok_or_else(|| PackageError::tar(&ctx, "hard link to the root"))?;
                let s = stored.get(&target).cloned().ok_or_else(|| {
                    PackageError::tar(
                        &ctx,
                        format!("hard link target {target:?} is not an earlier regular file"),
                    )
                })?;
                if xattrs.is_empty() {
                    xattrs = s.xattrs.clone();
                }
                stored.insert(
                    path.clone(),
                    Stored {
                        xattrs: xattrs.clone(),
                        ..s.clone()
                    },
                );
                (
                    EntryKind::File {
                        size: s.size,
                        content: s.content,
                        sha1: Some(s.sha1),
                    },
                    Some(s.group),
                )
            }
            T::Symlink => {
                let target = link_name.unwrap_or_default();
                if target.is_empty() || target.contains('\0') {
                    return Err(PackageError::tar(&ctx, "symlink with an empty target"));
                }
                (EntryKind::Symlink(target), None)
            }
            T::Char | T::Block => {
                let major = header
                    .device_major()
                    .map_err(|e| tar_err(&ctx, e))?
                    .unwrap_or(0);
                let minor = header
                    .device_minor()
                    .map_err(|e| tar_err(&ctx, e))?
                    .unwrap_or(0);
                if matches!(kind, T::Char) {
                    (EntryKind::CharDevice { major, minor }, None)
                } else {
                    (EntryKind::BlockDevice { major, minor }, None)
                }
            }
            T::Fifo => (EntryKind::Fifo, None),
            other => {
                return Err(PackageError::tar(
                    &ctx,
                    format!("unsupported entry type {:?}", other.as_byte() as char),
                ));
            }
        };
        if !in_plan {
            continue;
        }
        let Some(rel) = rel else {
            if !matches!(kind, EntryKind::Directory) {
                return Err(PackageError::tar(
                    &ctx,
                    format!("package output {pkg:?} is not a directory"),
                ));
            }
            continue;
        };
        let xattrs = if matches!(kind, EntryKind::Directory | EntryKind::File { .. }) {
            xattrs
        } else {
            BTreeMap::new()
        };
        let entry = TreeEntry {
            path: rel,
            kind,
            mode,
            uid,
            gid,
            xattrs,
            link_group: group,
        };
        if let Some(tree) = out.trees.get_mut(&pkg) {
            tree.insert(entry)
                .map_err(|e| PackageError::tar(&ctx, e.to_string()))?;
        }
    }
    for tree in out.trees.values_mut() {
        finish_tree(tree)?;
    }
    Ok(out)
}

/// Clear single-member link groups and add missing parent directories.
fn finish_tree(tree: &mut PackageTree) -> Result<()> {
    let mut counts: HashMap<u64, usize> = HashMap::new();
    for e in tree.entries() {
        if let Some(g) = e.link_group {
            *counts.entry(g).or_default() += 1;
        }
    }
    let mut fix: Vec<TreeEntry> = Vec::new();
    let mut missing: BTreeSet<String> = BTreeSet::new();
    for e in tree.entries() {
        if e.link_group
            .is_some_and(|g| counts.get(&g).copied().unwrap_or(0) < 2)
        {
            let mut e = e.clone();
            e.link_group = None;
            fix.push(e);
        }
        let mut p = e.path.as_str();
        while let Some((parent, _)) = p.rsplit_once('/') {
            if tree.get(parent).is_none() {
                missing.insert(parent.to_string());
            }
            p = parent;
        }
    }
    for e in fix {
        tree.insert(e)
            .map_err(|e| PackageError::tar("tree", e.to_string()))?;
    }
    for dir in missing {
        tree.insert(TreeEntry {
            path: dir,
            kind: EntryKind::Directory,
            mode: 0o755,
            uid: 0,
            gid: 0,
            xattrs: BTreeMap::new(),
            link_group: None,
        })
        .map_err(|e| PackageError::tar("tree", e.to_string()))?;
    }
    Ok(())
}

/// One tree per package from an extracted `melange-out` directory; a package
/// without a directory gets an empty tree.
pub(crate) fn from_dir(dir: &Path, packages: &[&str]) -> Result<Ingested> {
    let md = std::fs::metadata(dir).map_err(|e| PackageError::io_path("reading", dir, e))?;
    if !md.is_dir() {
        return Err(PackageError::io_path(
            "reading",
            dir,
            io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        ));
    }
    let mut out = Ingested::default();
    for p in packages {
        let sub: PathBuf = dir.join(p);
        let tree = match std::fs::symlink_metadata(&sub) {
            Ok(m) if m.is_dir() => PackageTree::from_dir(&sub)?,
            Ok(_) => {
                return Err(PackageError::io_path(
                    "package output",
                    &sub,
                    io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => PackageTree::new(),
            Err(e) => return Err(PackageError::io_path("reading", &sub, e)),
        };
        out.trees.insert((*p).to_string(), tree);
    }
    let wanted: BTreeSet<&str> = packages.iter().copied().collect();
    let rd = std::fs::read_dir(dir).map_err(|e| PackageError::io_path("reading", dir, e))?;
    let mut extra = BTreeSet::new();
    for item in rd {
        let item = item.map_err(|e| PackageError::io_path("reading", dir, e))?;
        let name = item.file_name().to_string_lossy().into_owned();
        if !wanted.contains(name.as_str()) {
            extra.insert(name);
        }
    }
    for name in extra {
        out.warnings.push(format!(
            "build output {name:?} is not a package of this build; it was not packaged"
        ));
    }
    Ok(out)
}

/// Read the whole content of a regular file entry (`None` for other kinds or
/// content this crate cannot reach).
pub(crate) fn read_all(entry: &TreeEntry) -> io::Result<Option<Arc<[u8]>>> {
    let EntryKind::File { content, .. } = &entry.kind else {
        return Ok(None);
    };
    match content {
        Content::Memory(m) => Ok(Some(Arc::clone(m))),
        Content::Disk(p) => Ok(Some(Arc::from(std::fs::read(p)?))),
        Content::Spool { .. } => Ok(None),
    }
}

/// Run `f` on the whole content of a regular file entry without copying it:
/// spooled content is memory-mapped, so only the pages `f` touches are read
/// (the ELF reader looks at headers and the dynamic section of files that may
/// be hundreds of MB). `None` for other kinds or content this crate cannot reach.
pub(crate) fn with_content<T>(
    entry: &TreeEntry,
    f: impl FnOnce(&[u8]) -> T,
) -> io::Result<Option<T>> {
    let EntryKind::File { content, .. } = &entry.kind else {
        return Ok(None);
    };
    match content {
        Content::Memory(m) => Ok(Some(f(m))),
        Content::Disk(p) => {
            let file = File::open(p)?;
            if file.metadata()?.len() == 0 {
                return Ok(Some(f(&[])));
            }
            // SAFETY: the file is a spool file of `split_tar` (private to this process,
            // never written after ingestion) or a file of the build's output directory,
            // which nothing writes while it is packaged; so the mapping does not change
            // while `f` borrows it.
            let map = unsafe { memmap2::Mmap::map(&file)? };
            Ok(Some(f(&map)))
        }
        Content::Spool { .. } => Ok(None),
    }
}

/// Read up to `n` leading bytes of a regular file entry.
pub(crate) fn read_prefix(entry: &TreeEntry, n: usize) -> io::Result<Option<Vec<u8>>> {
    let EntryKind::File { content, .. } = &entry.kind else {
        return Ok(None);
    };
    match content {
        Content::Memory(m) => Ok(Some(m[..m.len().min(n)].to_vec())),
        Content::Disk(p) => {
            let f = File::open(p)?;
            let mut out = Vec::with_capacity(n);
            f.take(n as u64).read_to_end(&mut out)?;
            Ok(Some(out))
        }
        Content::Spool { .. } => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar stream of `count` files of `size` bytes under `pkg/`.
    fn stream(count: usize, size: usize) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for i in 0..count {
            let data = vec![(i % 251) as u8; size];
            let mut h = tar::Header::new_gnu();
            h.set_size(size as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, format!("pkg/f{i}"), &data[..])
                .expect("append");
        }
        b.into_inner().expect("tar")
    }

    #[test]
    fn memory_stays_within_the_budget() {
        let spool = tempfile::tempdir().expect("tempdir");
        // 96 MiB of files small enough for memory: a third fits the budget
        let files = 96;
        let size = 1 << 20;
        let out = split_tar(&stream(files, size)[..], &["pkg"], spool.path()).expect("ingest");
        let tree = &out.trees["pkg"];
        let (mut in_memory, mut on_disk) = (0u64, 0u64);
        for e in tree.entries() {
            match &e.kind {
                EntryKind::File {
                    content: Content::Memory(m),
                    ..
                } => in_memory += m.len() as u64,
                EntryKind::File {
                    content: Content::Disk(p),
                    size,
                    ..
                } => {
                    assert_eq!(std::fs::metadata(p).expect("spool file").len(), *size);
                    on_disk += size;
                }
                _ => {}
            }
        }
        assert_eq!(in_memory, MEMORY_BUDGET);
        assert_eq!(in_memory + on_disk, (files * size) as u64);
    }

    #[test]
    fn with_content_maps_spooled_files_and_reads_memory_ones() {
        let spool = tempfile::tempdir().expect("tempdir");
        // 40 files of 2 MiB: larger than the in-memory limit, so all are spooled
        let out = split_tar(&stream(40, 2 << 20)[..], &["pkg"], spool.path()).expect("ingest");
        let small = split_tar(&stream(2, 100)[..], &["pkg"], spool.path()).expect("ingest");
        let mut spooled = 0;
        for e in out.trees["pkg"]
            .entries()
            .chain(small.trees["pkg"].entries())
        {
            let Some(whole) = read_all(e).expect("read") else {
                continue;
            };
            spooled += usize::from(matches!(
                &e.kind,
                EntryKind::File {
                    content: Content::Disk(_),
                    ..
                }
            ));
            let mapped = with_content(e, <[u8]>::to_vec)
                .expect("map")
                .expect("a file");
            assert_eq!(mapped, whole.to_vec(), "{}", e.path);
        }
        assert_eq!(spooled, 40);
        // an empty spooled file cannot be mapped; it reads as empty
        let empty = spool.path().join("empty");
        std::fs::write(&empty, b"").expect("write");
        let mut entry = out.trees["pkg"].entries().next().expect("entry").clone();
        entry.kind = match entry.kind {
            EntryKind::File { .. } => EntryKind::File {
                size: 0,
                content: Content::Disk(empty),
                sha1: None,
            },
            other => other,
        };
        assert_eq!(with_content(&entry, <[u8]>::len).expect("map"), Some(0));
    }
}
