//! Package file trees: the input of the package writer.
//!
//! A [`PackageTree`] is an ordered set of entries (directories, files,
//! symlinks, devices, FIFOs) with ownership, mode, xattrs and hard-link
//! groups. It can be built from
//! * a directory on disk ([`PackageTree::from_dir`]; file contents are read
//!   when the package is written),
//! * a tar stream ([`PackageTree::from_tar`], [`PackageTree::split_tar`] for
//!   one stream holding several package directories, as BuildKit's tar
//!   exporter produces); file contents are spooled to an anonymous temporary
//!   file so memory stays bounded,
//! * code ([`PackageTree::add_file`] and friends; handy for fixtures).
//!
//! Entries are kept in depth-first pre-order with siblings sorted byte-wise,
//! the order melange writes them in.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha1::{Digest as _, Sha1};

use crate::error::{Error, Result, from_stream_io};
use crate::tar::{self, EntryType};

/// Extended attributes never copied into packages.
pub fn is_ignored_xattr(name: &str) -> bool {
    matches!(
        name,
        "security.selinux"
            | "security.csm"
            | "com.apple.provenance"
            | "com.docker.grpcfuse.ownership"
    ) || name.starts_with("trusted.")
}

/// Where a regular file's bytes come from.
#[derive(Debug, Clone)]
pub enum Content {
    /// A file on disk, read when the package is written.
    Disk(PathBuf),
    /// A range of the tree's spool file.
    Spool {
        /// Byte offset in the spool.
        offset: u64,
    },
    /// In-memory bytes.
    Memory(Arc<[u8]>),
}

/// Entry kind with kind-specific data.
#[derive(Debug, Clone)]
pub enum EntryKind {
    /// Directory.
    Directory,
    /// Regular file.
    File {
        /// Size in bytes.
        size: u64,
        /// Content source.
        content: Content,
        /// SHA-1 of the content when already known.
        sha1: Option<[u8; 20]>,
    },
    /// Symbolic link with its raw target.
    Symlink(String),
    /// Character device.
    CharDevice {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// Block device.
    BlockDevice {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// Named pipe.
    Fifo,
}

/// One entry of a [`PackageTree`].
#[derive(Debug, Clone)]
pub struct TreeEntry {
    /// Relative path (`usr/bin/foo`): no leading `/` or `./`, no trailing `/`.
    pub path: String,
    /// Kind and content.
    pub kind: EntryKind,
    /// Permission bits including setuid/setgid/sticky (07777).
    pub mode: u32,
    /// Numeric owner as found in the input (remapped when writing).
    pub uid: u32,
    /// Numeric group as found in the input (remapped when writing).
    pub gid: u32,
    /// Extended attributes (regular files and directories only).
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// Hard-link group: regular files sharing a group are one inode.
    pub link_group: Option<u64>,
}

/// Sort key giving depth-first pre-order with byte-wise sorted siblings:
/// `/` is mapped to NUL, which sorts before every other byte.
fn sort_key(path: &str) -> Vec<u8> {
    path.bytes()
        .map(|b| if b == b'/' { 0 } else { b })
        .collect()
}

/// Normalise and validate a relative entry path. Returns `None` for the root.
///
/// # Errors
/// [`Error::Invalid`] for `..` components, NUL bytes or empty components.
pub fn normalize_path(raw: &str) -> Result<Option<String>> {
    let mut s = raw;
    loop {
        if let Some(r) = s.strip_prefix("./") {
            s = r;
        } else if let Some(r) = s.strip_prefix('/') {
            s = r;
        } else {
            break;
        }
    }
    let s = s.trim_end_matches('/');
    if s.is_empty() || s == "." {
        return Ok(None);
    }
    if s.contains('\0') {
        return Err(Error::invalid(
            format!("path {raw:?}"),
            "contains a NUL byte",
        ));
    }
    let mut out = Vec::new();
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(Error::invalid(
                    format!("path {raw:?}"),
                    "contains a `..` component",
                ));
            }
            c => out.push(c),
        }
    }
    if out.is_empty() {
        return Ok(None);
    }
    Ok(Some(out.join("/")))
}

/// Anonymous temporary file holding spooled file contents.
#[derive(Debug)]
pub(crate) struct Spool {
    file: File,
    len: u64,
}

impl Spool {
    fn new(dir: Option<&Path>) -> Result<Self> {
        let file = match dir {
            Some(d) => tempfile::tempfile_in(d),
            None => tempfile::tempfile(),
        }
        .map_err(|e| Error::io("creating spool file", e))?;
        Ok(Spool { file, len: 0 })
    }

    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all_at(data, self.len)?;
        self.len += data.len() as u64;
        Ok(())
    }
}

/// `Read` over a range of a file using positional reads.
pub(crate) struct RangeReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.end {
            return Ok(0);
        }
        let want =
            usize::try_from((self.end - self.pos).min(buf.len() as u64)).unwrap_or(buf.len());
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "spool file truncated",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// An ordered package file tree; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct PackageTree {
    entries: BTreeMap<Vec<u8>, TreeEntry>,
    spool: Option<Arc<Spool>>,
    next_group: u64,
}

/// Options for reading a directory.
#[derive(Debug, Clone, Default)]
pub struct DirOptions {
    /// Do not read extended attributes.
    pub skip_xattrs: bool,
}

impl PackageTree {
    /// Empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Entries in package order.
    pub fn entries(&self) -> impl Iterator<Item = &TreeEntry> {
        self.entries.values()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the tree has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Look up an entry.
    pub fn get(&self, path: &str) -> Option<&TreeEntry> {
        self.entries.get(&sort_key(path))
    }

    /// Insert (or replace) an entry. The path is normalised.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an invalid path.
    pub fn insert(&mut self, mut entry: TreeEntry) -> Result<()> {
        let Some(p) = normalize_path(&entry.path)? else {
            return Err(Error::invalid(
                format!("path {:?}", entry.path),
                "empty path",
            ));
        };
        entry.path = p;
        self.entries.insert(sort_key(&entry.path), entry);
        Ok(())
    }

    fn ensure_parents(&mut self, path: &str) {
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            let dir = &path[..end + i];
            let key = sort_key(dir);
            self.entries.entry(key).or_insert_with(|| TreeEntry {
                path: dir.to_string(),
                kind: EntryKind::Directory,
                mode: 0o755,
                uid: 0,
                gid: 0,
                xattrs: BTreeMap::new(),
                link_group: None,
            });
            end += i + 1;
        }
    }

    fn simple(path: &str, kind: EntryKind, mode: u32) -> Result<TreeEntry> {
        let Some(p) = normalize_path(path)? else {
            return Err(Error::invalid(format!("path {path:?}"), "empty path"));
        };
        Ok(TreeEntry {
            path: p,
            kind,
            mode: mode & 0o7777,
            uid: 0,
            gid: 0,
            xattrs: BTreeMap::new(),
            link_group: None,
        })
    }

    /// Add a directory (parents created with mode 0755 as needed).
    ///
    /// # Errors
    /// [`Error::Invalid`] for an invalid path.
    pub fn add_dir(&mut self, path: &str, mode: u32) -> Result<&mut TreeEntry> {
        let e = Self::simple(path, EntryKind::Directory, mode)?;
        self.add_entry(e)
    }

    /// Add a regular file with in-memory content (parents created as needed).
    ///
    /// # Errors
    /// [`Error::Invalid`] for an invalid path.
    pub fn add_file(
        &mut self,
        path: &str,
        mode: u32,
        content: impl Into<Vec<u8>>,
    ) -> Result<&mut TreeEntry> {
        let data: Vec<u8> = content.into();
        let sha1: [u8; 20] = Sha1::digest(&data).into();
        let kind = EntryKind::File {
            size: data.len() as u64,
            content: Content::Memory(data.into()),
            sha1: Some(sha1),
        };
        let e = Self::simple(path, kind, mode)?;
        self.add_entry(e)
    }

    /// Add a symlink (parents created as needed).
    ///
    /// # Errors
    /// [`Error::Invalid`] for an invalid path or an empty target.
    pub fn add_symlink(&mut self, path: &str, target: &str) -> Result<&mut TreeEntry> {
        if target.is_empty() || target.contains('\0') {
            return Err(Error::invalid(
                format!("symlink {path:?}"),
                "empty or NUL-containing target",
            ));
        }
        let e = Self::simple(path, EntryKind::Symlink(target.to_string()), 0o777)?;
        self.add_entry(e)
    }

    /// Add a hard link `path` to the existing regular file `target`.
    ///
    /// # Errors
    /// [`Error::Invalid`] when `target` is not a regular file of the tree.
    pub fn add_hardlink(&mut self, path: &str, target: &str) -> Result<&mut TreeEntry> {
        let ctx = || format!("hard link {path:?}");
        let new_path = normalize_path(path)?.ok_or_else(|| Error::invalid(ctx(), "empty path"))?;
        let tnorm =
            normalize_path(target)?.ok_or_else(|| Error::invalid(ctx(), "target is the root"))?;
        let candidate = self.next_group;
        let t = self.entries.get_mut(&sort_key(&tnorm)).ok_or_else(|| {
            Error::invalid(ctx(), format!("target {target:?} is not in the tree"))
        })?;
        if !matches!(t.kind, EntryKind::File { .. }) {
            return Err(Error::invalid(
                ctx(),
                format!("target {target:?} is not a regular file"),
            ));
        }
        let fresh = t.link_group.is_none();
        t.link_group.get_or_insert(candidate);
        let mut e = t.clone();
        e.path = new_path;
        if fresh {
            self.next_group += 1;
        }
        self.add_entry(e)
    }

    fn add_entry(&mut self, e: TreeEntry) -> Result<&mut TreeEntry> {
        self.ensure_parents(&e.path);
        let key = sort_key(&e.path);
        self.entries.insert(key.clone(), e);
        self.entries
            .get_mut(&key)
            .ok_or_else(|| Error::invalid("tree", "entry vanished"))
    }

    /// Read a directory tree (the root itself is not an entry). Symlinks are
    /// not followed; hard links are detected by inode; sockets are skipped.
    ///
    /// # Errors
    /// I/O errors naming the path, non-UTF-8 names.
    pub fn from_dir(root: &Path) -> Result<Self> {
        Self::from_dir_with(root, &DirOptions::default())
    }

    /// [`PackageTree::from_dir`] with options.
    ///
    /// # Errors
    /// As [`PackageTree::from_dir`].
    pub fn from_dir_with(root: &Path, opts: &DirOptions) -> Result<Self> {
        let meta = std::fs::metadata(root).map_err(|e| Error::io_path(root, e))?;
        if !meta.is_dir() {
            return Err(Error::invalid(
                root.display().to_string(),
                "not a directory",
            ));
        }
        let mut tree = PackageTree::new();
        let mut inodes: HashMap<(u64, u64), u64> = HashMap::new();
        let walker = walkdir::WalkDir::new(root)
            .min_depth(1)
            .follow_links(false)
            .sort_by(|a, b| a.file_name().cmp(b.file_name()));
        for item in walker {
            let item = item.map_err(|e| {
                let p = e
                    .path()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| root.to_path_buf());
                match e.into_io_error() {
                    Some(io) => Error::io_path(&p, io),
                    None => Error::invalid(p.display().to_string(), "filesystem loop"),
                }
            })?;
            let path = item.path();
            let rel = path
                .strip_prefix(root)
                .map_err(|_| Error::invalid(path.display().to_string(), "outside root"))?;
            let rel = rel
                .to_str()
                .ok_or_else(|| {
                    Error::invalid(path.display().to_string(), "file name is not valid UTF-8")
                })?
                .to_string();
            let md = std::fs::symlink_metadata(path).map_err(|e| Error::io_path(path, e))?;
            let ft = md.file_type();
            use std::os::unix::fs::FileTypeExt as _;
            let rdev = md.rdev();
            let (major, minor) = dev_major_minor(rdev);
            let kind = if ft.is_dir() {
                EntryKind::Directory
            } else if ft.is_file() {
                EntryKind::File {
                    size: md.len(),
                    content: Content::Disk(path.to_path_buf()),
                    sha1: None,
                }
            } else if ft.is_symlink() {
                let t = std::fs::read_link(path).map_err(|e| Error::io_path(path, e))?;
                let t = t.to_str().ok_or_else(|| {
                    Error::invalid(
                        path.display().to_string(),
                        "symlink target is not valid UTF-8",
                    )
                })?;
                EntryKind::Symlink(t.to_string())
            } else if ft.is_char_device() {
                EntryKind::CharDevice { major, minor }
            } else if ft.is_block_device() {
                EntryKind::BlockDevice { major, minor }
            } else if ft.is_fifo() {
                EntryKind::Fifo
            } else {
                tracing::warn!(path = %path.display(), "skipping socket");
                continue;
            };
            let mut xattrs = BTreeMap::new();
            if !opts.skip_xattrs && (ft.is_dir() || ft.is_file()) {
                read_xattrs(path, &mut xattrs)?;
            }
            let link_group = if ft.is_file() && md.nlink() > 1 {
                let next = inodes.len() as u64;
                Some(*inodes.entry((md.dev(), md.ino())).or_insert(next))
            } else {
                None
            };
            let entry = TreeEntry {
                path: rel,
                kind,
                mode: md.mode() & 0o7777,
                uid: md.uid(),
                gid: md.gid(),
                xattrs,
                link_group,
            };
            tree.entries.insert(sort_key(&entry.path), entry);
        }
        tree.next_group = inodes.len() as u64;
        Ok(tree)
    }

    /// Read a tar stream into one tree (everything in the stream).
    ///
    /// # Errors
    /// Malformed tar, unsafe paths, dangling hard links, I/O.
    pub fn from_tar<R: Read>(reader: R) -> Result<Self> {
        let mut trees = Self::split_tar(reader, &[""])?;
        Ok(trees.remove("").unwrap_or_default())
    }

    /// Read a tar stream once and split it into one tree per directory prefix
    /// (e.g. `home/build/melange-out/foo`); entries are relative to their
    /// prefix and the prefix directory itself is not an entry. Entries under
    /// no prefix are skipped; with nested prefixes the longest match wins.
    /// Hard links whose target lies in another tree are written as a copy of
    /// the content (the first path of each link group in a tree becomes the
    /// regular file). Regular file contents are spooled to one temporary file
    /// shared by all returned trees.
    ///
    /// # Errors
    /// Malformed tar, unsafe paths, dangling hard links, I/O.
    pub fn split_tar<R: Read>(
        reader: R,
        prefixes: &[&str],
    ) -> Result<BTreeMap<String, PackageTree>> {
        Self::split_tar_in(reader, prefixes, None)
    }

    /// [`PackageTree::split_tar`] with the content spool created in
    /// `spool_dir` (default: the system temporary directory), e.g. on the
    /// same disk as the output when `/tmp` is small.
    ///
    /// # Errors
    /// As [`PackageTree::split_tar`].
    pub fn split_tar_in<R: Read>(
        reader: R,
        prefixes: &[&str],
        spool_dir: Option<&Path>,
    ) -> Result<BTreeMap<String, PackageTree>> {
        let mut norm_prefixes: Vec<(String, String)> = Vec::new();
        for p in prefixes {
            let n = normalize_path(p)?.unwrap_or_default();
            norm_prefixes.push(((*p).to_string(), n));
        }
        // longest prefix first
        norm_prefixes.sort_by_key(|p| std::cmp::Reverse(p.1.len()));
        let mut spool = Spool::new(spool_dir)?;
        let mut trees: BTreeMap<String, PackageTree> = prefixes
            .iter()
            .map(|p| ((*p).to_string(), PackageTree::new()))
            .collect();
        // every regular file in the stream: path -> (offset, size, sha1, group)
        struct Stored {
            offset: u64,
            size: u64,
            sha1: [u8; 20],
            group: u64,
            xattrs: BTreeMap<String, Vec<u8>>,
        }
        let mut stored: HashMap<String, Stored> = HashMap::new();
        let mut group_counter: u64 = 0;
        let mut tr = tar::Reader::new(reader);
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let h = match tr.next_header() {
                Ok(Some(h)) => h,
                Ok(None) => break,
                Err(e) => return Err(from_stream_io("tar stream", e)),
            };
            let ctx = || format!("tar stream entry {:?}", h.path);
            let Some(path) = normalize_path(&h.path).map_err(|e| e.within("tar stream"))? else {
                continue;
            };
            let mut xattrs = BTreeMap::new();
            for (k, v) in &h.pax {
                if let Some(name) = k.strip_prefix(tar::PAX_XATTR)
                    && !is_ignored_xattr(name)
                {
                    xattrs.insert(name.to_string(), v.clone());
                }
            }
            let mode = h.mode & 0o7777;
            let uid =
                u32::try_from(h.uid).map_err(|_| Error::invalid(ctx(), "uid out of range"))?;
            let gid =
                u32::try_from(h.gid).map_err(|_| Error::invalid(ctx(), "gid out of range"))?;
            let (kind, group) = match h.kind {
                EntryType::Directory => (EntryKind::Directory, None),
                EntryType::File => {
                    let offset = spool.len;
                    let mut hasher = Sha1::new();
                    let mut total = 0u64;
                    loop {
                        let n = tr
                            .read_content(&mut buf)
                            .map_err(|e| from_stream_io(&ctx(), e))?;
                        if n == 0 {
                            break;
                        }
                        hasher.update(&buf[..n]);
                        spool
                            .append(&buf[..n])
                            .map_err(|e| Error::io("writing spool file", e))?;
                        total += n as u64;
                    }
                    let sha1: [u8; 20] = hasher.finalize().into();
                    let g = group_counter;
                    group_counter += 1;
                    stored.insert(
                        path.clone(),
                        Stored {
                            offset,
                            size: total,
                            sha1,
                            group: g,
                            xattrs: xattrs.clone(),
                        },
                    );
                    (
                        EntryKind::File {
                            size: total,
                            content: Content::Spool { offset },
                            sha1: Some(sha1),
                        },
                        Some(g),
                    )
                }
                EntryType::HardLink => {
                    let target = normalize_path(&h.link)
                        .map_err(|e| e.within(ctx()))?
                        .ok_or_else(|| Error::invalid(ctx(), "hard link to the root"))?;
                    let s = stored.get(&target).ok_or_else(|| {
                        Error::invalid(
                            ctx(),
                            format!("hard link target {target:?} is not an earlier regular file"),
                        )
                    })?;
                    let (offset, size, sha1, g) = (s.offset, s.size, s.sha1, s.group);
                    // a hard link shares the inode: same xattrs
                    if xattrs.is_empty() {
                        xattrs = s.xattrs.clone();
                    }
                    stored.insert(
                        path.clone(),
                        Stored {
                            offset,
                            size,
                            sha1,
                            group: g,
                            xattrs: xattrs.clone(),
                        },
                    );
                    (
                        EntryKind::File {
                            size,
                            content: Content::Spool { offset },
                            sha1: Some(sha1),
                        },
                        Some(g),
                    )
                }
                EntryType::Symlink => {
                    if h.link.is_empty() {
                        return Err(Error::invalid(ctx(), "symlink with empty target"));
                    }
                    (EntryKind::Symlink(h.link.clone()), None)
                }
                EntryType::CharDevice => (
                    EntryKind::CharDevice {
                        major: h.devmajor,
                        minor: h.devminor,
                    },
                    None,
                ),
                EntryType::BlockDevice => (
                    EntryKind::BlockDevice {
                        major: h.devmajor,
                        minor: h.devminor,
                    },
                    None,
                ),
                EntryType::Fifo => (EntryKind::Fifo, None),
            };
            // route to the tree with the longest matching prefix
            let Some((orig, rel)) = norm_prefixes.iter().find_map(|(orig, pre)| {
                if pre.is_empty() {
                    Some((orig.clone(), path.clone()))
                } else {
                    path.strip_prefix(pre.as_str())
                        .and_then(|r| r.strip_prefix('/'))
                        .map(|r| (orig.clone(), r.to_string()))
                }
            }) else {
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
            let key = sort_key(&entry.path);
            if let Some(t) = trees.get_mut(&orig) {
                t.entries.insert(key, entry);
            }
        }
        let spool = Arc::new(spool);
        // link groups with a single member in a tree are plain files
        for tree in trees.values_mut() {
            let mut counts: HashMap<u64, usize> = HashMap::new();
            for e in tree.entries.values() {
                if let Some(g) = e.link_group {
                    *counts.entry(g).or_default() += 1;
                }
            }
            for e in tree.entries.values_mut() {
                if e.link_group
                    .is_some_and(|g| counts.get(&g).copied().unwrap_or(0) < 2)
                {
                    e.link_group = None;
                }
            }
            tree.spool = Some(Arc::clone(&spool));
            tree.next_group = group_counter;
        }
        Ok(trees)
    }

    /// Open a reader over a regular file's content.
    pub(crate) fn open_content<'a>(&'a self, entry: &'a TreeEntry) -> Result<Box<dyn Read + 'a>> {
        let EntryKind::File { size, content, .. } = &entry.kind else {
            return Err(Error::invalid(&entry.path, "not a regular file"));
        };
        Ok(match content {
            Content::Disk(p) => Box::new(File::open(p).map_err(|e| Error::io_path(p, e))?),
            Content::Memory(m) => Box::new(&m[..]),
            Content::Spool { offset } => {
                let spool = self.spool.as_ref().ok_or_else(|| {
                    Error::invalid(&entry.path, "spooled content without a spool file")
                })?;
                Box::new(RangeReader {
                    file: &spool.file,
                    pos: *offset,
                    end: offset + size,
                })
            }
        })
    }
}

fn read_xattrs(path: &Path, out: &mut BTreeMap<String, Vec<u8>>) -> Result<()> {
    let names = match xattr::list(path) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::Unsupported || e.raw_os_error() == Some(95) => {
            return Ok(());
        }
        Err(e) => return Err(Error::io(format!("{}: listing xattrs", path.display()), e)),
    };
    for name in names {
        let Some(n) = name.to_str() else { continue };
        if is_ignored_xattr(n) {
            continue;
        }
        match xattr::get(path, &name) {
            Ok(Some(v)) => {
                out.insert(n.to_string(), v);
            }
            Ok(None) => {}
            Err(e) => {
                return Err(Error::io(
                    format!("{}: reading xattr {n}", path.display()),
                    e,
                ));
            }
        }
    }
    Ok(())
}

/// glibc's `gnu_dev_major`/`gnu_dev_minor` decomposition.
fn dev_major_minor(dev: u64) -> (u32, u32) {
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff);
    (
        u32::try_from(major).unwrap_or(0),
        u32::try_from(minor).unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_preorder() {
        let mut t = PackageTree::new();
        t.add_file("usr/bin-foo/a", 0o644, "x").unwrap();
        t.add_file("usr/bin/x", 0o755, "y").unwrap();
        t.add_dir("etc", 0o755).unwrap();
        let order: Vec<&str> = t.entries().map(|e| e.path.as_str()).collect();
        assert_eq!(
            order,
            [
                "etc",
                "usr",
                "usr/bin",
                "usr/bin/x",
                "usr/bin-foo",
                "usr/bin-foo/a"
            ]
        );
    }

    #[test]
    fn normalize() {
        assert_eq!(normalize_path("./usr/bin/").unwrap().unwrap(), "usr/bin");
        assert_eq!(normalize_path("/a//b/./c").unwrap().unwrap(), "a/b/c");
        assert!(normalize_path("./").unwrap().is_none());
        assert!(normalize_path("a/../b").is_err());
    }

    #[test]
    fn dev_numbers() {
        // makedev(8, 1) on Linux = 0x801
        assert_eq!(dev_major_minor(0x801), (8, 1));
    }
}
