//! The neutral input of the linters: a package's entries (path, type, mode,
//! owner, link target, size) and a way to read the bytes of its regular files.
//!
//! [`PackageFiles::from_tree`] wraps a [`PackageTree`] (the packager's
//! in-memory trees); [`crate::apk::read_apk`] builds one from an `.apk` on
//! disk; [`PackageFiles::new`] takes any entries with any [`ContentSource`].

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt as _;

use melange2_apk::PackageTree;
use melange2_apk::tree::{Content, EntryKind};
use serde::Serialize;

/// Type of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileType {
    /// Directory.
    Directory,
    /// Regular file (hard links included: they share a [`FileEntry::link_group`]).
    Regular,
    /// Symbolic link.
    Symlink,
    /// Character device.
    CharDevice,
    /// Block device.
    BlockDevice,
    /// Named pipe.
    Fifo,
}

/// One entry of a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative path without leading `/` or `./` and without trailing `/`
    /// (`usr/bin/foo`).
    pub path: String,
    /// Entry type.
    pub file_type: FileType,
    /// Permission bits including setuid, setgid and sticky (`0o7777`).
    pub mode: u32,
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Content size of a regular file (0 otherwise).
    pub size: u64,
    /// Target of a symbolic link.
    pub link_target: Option<String>,
    /// SHA-1 of a regular file's content when already known.
    pub sha1: Option<[u8; 20]>,
    /// Regular files sharing a group are hard links of one inode.
    pub link_group: Option<u64>,
}

impl FileEntry {
    /// Base name (the last path component).
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    /// Parent directory (`""` for a top-level entry).
    pub fn parent(&self) -> &str {
        self.path.rsplit_once('/').map_or("", |(p, _)| p)
    }

    /// True for regular files.
    pub fn is_regular(&self) -> bool {
        self.file_type == FileType::Regular
    }

    /// True for directories.
    pub fn is_dir(&self) -> bool {
        self.file_type == FileType::Directory
    }
}

/// Random access to the content of a package's regular files.
pub trait ContentSource {
    /// Read bytes of the regular file `entry` (at `index` in the entry list)
    /// starting at `offset` into `buf`; returns the number of bytes read, 0
    /// at the end of the file.
    ///
    /// # Errors
    /// I/O errors, or content this source cannot reach.
    fn read_at(
        &self,
        index: usize,
        entry: &FileEntry,
        offset: u64,
        buf: &mut [u8],
    ) -> io::Result<usize>;
}

/// A package's entries and their content: what every linter works on.
pub struct PackageFiles<'a> {
    entries: Vec<FileEntry>,
    source: Box<dyn ContentSource + 'a>,
}

impl std::fmt::Debug for PackageFiles<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackageFiles")
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

impl<'a> PackageFiles<'a> {
    /// Entries (any order; paths as documented on [`FileEntry::path`]) with
    /// the source of their content.
    pub fn new(entries: Vec<FileEntry>, source: impl ContentSource + 'a) -> Self {
        PackageFiles {
            entries,
            source: Box::new(source),
        }
    }

    /// Lint view of a [`PackageTree`]: in-memory and on-disk contents are
    /// read directly. Contents spooled by [`PackageTree::split_tar`] cannot be
    /// reached from outside `melange2-apk`; reading them is an error (the
    /// linters record it as a note and skip the file).
    pub fn from_tree(tree: &'a PackageTree) -> Self {
        let mut entries = Vec::with_capacity(tree.len());
        let mut contents = Vec::with_capacity(tree.len());
        for e in tree.entries() {
            let (file_type, size, link_target, sha1, content) = match &e.kind {
                EntryKind::Directory => (FileType::Directory, 0, None, None, None),
                EntryKind::File {
                    size,
                    content,
                    sha1,
                } => (FileType::Regular, *size, None, *sha1, Some(content)),
                EntryKind::Symlink(t) => (FileType::Symlink, 0, Some(t.clone()), None, None),
                EntryKind::CharDevice { .. } => (FileType::CharDevice, 0, None, None, None),
                EntryKind::BlockDevice { .. } => (FileType::BlockDevice, 0, None, None, None),
                EntryKind::Fifo => (FileType::Fifo, 0, None, None, None),
            };
            entries.push(FileEntry {
                path: e.path.clone(),
                file_type,
                mode: e.mode & 0o7777,
                uid: e.uid,
                gid: e.gid,
                size,
                link_target,
                sha1,
                link_group: e.link_group,
            });
            contents.push(content);
        }
        PackageFiles::new(entries, TreeContents { contents })
    }

    /// Every entry.
    pub fn entries(&self) -> &[FileEntry] {
        &self.entries
    }

    /// Read up to `buf.len()` bytes at `offset` (fewer only at the end of
    /// the file).
    ///
    /// # Errors
    /// As [`ContentSource::read_at`].
    pub fn read_at(&self, index: usize, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let entry = self
            .entries
            .get(index)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such entry"))?;
        if !entry.is_regular() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a regular file", entry.path),
            ));
        }
        let mut done = 0;
        while done < buf.len() {
            let n = self
                .source
                .read_at(index, entry, offset + done as u64, &mut buf[done..])?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }

    /// Up to `limit` bytes from `offset`.
    ///
    /// # Errors
    /// As [`ContentSource::read_at`].
    pub fn read_range(&self, index: usize, offset: u64, limit: usize) -> io::Result<Vec<u8>> {
        let size = self.entries.get(index).map_or(0, |e| e.size);
        let want = usize::try_from(size.saturating_sub(offset))
            .unwrap_or(usize::MAX)
            .min(limit);
        let mut buf = vec![0u8; want];
        let n = self.read_at(index, offset, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }
}

/// Content of a [`PackageTree`]'s entries, by index.
struct TreeContents<'a> {
    contents: Vec<Option<&'a Content>>,
}

impl ContentSource for TreeContents<'_> {
    fn read_at(
        &self,
        index: usize,
        entry: &FileEntry,
        offset: u64,
        buf: &mut [u8],
    ) -> io::Result<usize> {
        match self.contents.get(index).copied().flatten() {
            Some(Content::Memory(m)) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX).min(m.len());
                let n = buf.len().min(m.len() - start);
                buf[..n].copy_from_slice(&m[start..start + n]);
                Ok(n)
            }
            Some(Content::Disk(p)) => {
                let f = File::open(p)?;
                f.read_at(buf, offset)
            }
            Some(Content::Spool { .. }) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{}: spooled tree content cannot be read here", entry.path),
            )),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} has no content", entry.path),
            )),
        }
    }
}

/// Content of files packed one after another into one spool file (used for
/// `.apk` input): `(offset, size)` per entry index.
pub(crate) struct SpoolContents {
    pub(crate) file: File,
    pub(crate) ranges: Vec<Option<(u64, u64)>>,
}

impl ContentSource for SpoolContents {
    fn read_at(
        &self,
        index: usize,
        entry: &FileEntry,
        offset: u64,
        buf: &mut [u8],
    ) -> io::Result<usize> {
        let Some((start, size)) = self.ranges.get(index).copied().flatten() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} has no content", entry.path),
            ));
        };
        if offset >= size {
            return Ok(0);
        }
        let want = usize::try_from(size - offset)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        self.file.read_at(&mut buf[..want], start + offset)
    }
}
