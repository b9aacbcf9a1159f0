//! What a build reads on the client from a bootstrap root filesystem (`--bootstrap-rootfs`,
//! see `docs/build.md`, "Bootstrapping a distribution").
//!
//! Contract:
//! * [`scan`] reads a root filesystem given as a directory or as a tar (plain, gzip, zstd or
//!   xz, recognised by its first bytes) without changing it, and returns every entry (path,
//!   kind, link target, mode, owner) sorted by path, the packages its apk database lists as
//!   installed (`lib/apk/db/installed`), and its `/etc/passwd` and `/etc/group`.
//! * Those files are found through the tree's own symlinks, an absolute link pointing inside
//!   the tree and never to the host: a usrmerged `/lib → usr/lib` finds
//!   `usr/lib/apk/db/installed`. A tree without them is not an error (a Debian tree has no
//!   apk database).
//! * Errors name the root filesystem, the file inside it and what is wrong.

mod resolve;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use melange2_apk::IndexEntry;

pub use resolve::normalize;

/// The apk database of installed packages.
pub const INSTALLED_DB: &str = "lib/apk/db/installed";
/// The account files.
pub const PASSWD: &str = "etc/passwd";
/// The group file.
pub const GROUP: &str = "etc/group";
/// Larger files are not read (an apk database of a big tree is a few MB).
const MAX_READ: u64 = 256 << 20;

/// Errors of reading a root filesystem.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// The tree or tar cannot be read.
    #[error("bootstrap rootfs {}: {message}", path.display())]
    Read {
        /// The root filesystem.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A file inside it is malformed.
    #[error("bootstrap rootfs {}: {file}: {message}", path.display())]
    File {
        /// The root filesystem.
        path: PathBuf,
        /// The file inside it.
        file: String,
        /// What is wrong.
        message: String,
    },
}

/// Kind of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// Anything else (regular file, device, hard link, …).
    Other,
}

/// One entry of the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Relative path without a leading `/` or `./`.
    pub path: String,
    /// Its kind.
    pub kind: Kind,
    /// Link target (symlinks only).
    pub link: String,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// What a build needs to know about a root filesystem.
#[derive(Clone, Debug, Default)]
pub struct Scan {
    /// Every entry, sorted by path.
    pub entries: Vec<Entry>,
    /// Packages of its apk database, in database order.
    pub installed: Vec<IndexEntry>,
    /// The apk database's text (empty without one).
    pub installed_db: String,
    /// `/etc/passwd`, if any.
    pub passwd: Option<String>,
    /// `/etc/group`, if any.
    pub group: Option<String>,
}

/// Read a root filesystem: a directory, or a tar file (compressed or not).
///
/// # Errors
/// [`RootfsError`] when the tree or tar cannot be read, or the apk database is malformed.
pub fn scan(path: &Path) -> Result<Scan, RootfsError> {
    let meta = std::fs::metadata(path).map_err(|e| read_err(path, e))?;
    let (entries, mut files) = if meta.is_dir() {
        scan_dir(path)?
    } else {
        scan_tar(path)?
    };
    let view = resolve::View::new(&entries);
    let mut take = |name: &str| -> Option<String> {
        let at = view.resolve(name)?;
        files.remove(&at)
    };
    let installed_db = take(INSTALLED_DB).unwrap_or_default();
    let passwd = take(PASSWD);
    let group = take(GROUP);
    let installed =
        melange2_apk::index::parse_index_text(&installed_db).map_err(|e| RootfsError::File {
            path: path.to_path_buf(),
            file: INSTALLED_DB.to_string(),
            message: e.to_string(),
        })?;
    Ok(Scan {
        entries,
        installed,
        installed_db,
        passwd,
        group,
    })
}

fn read_err(path: &Path, e: impl std::fmt::Display) -> RootfsError {
    RootfsError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Whether a path may be one of the files [`scan`] reads (wherever links put it).
fn wanted(path: &str) -> bool {
    [INSTALLED_DB, PASSWD, GROUP].iter().any(|w| {
        path == *w || path.ends_with(&format!("/{w}")) || path.ends_with("apk/db/installed")
    })
}

type Files = BTreeMap<String, String>;

fn scan_dir(root: &Path) -> Result<(Vec<Entry>, Files), RootfsError> {
    let mut entries = Vec::new();
    let mut files = Files::new();
    let walk = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1);
    for item in walk {
        let item = item.map_err(|e| read_err(root, e))?;
        let meta = item.metadata().map_err(|e| read_err(root, e))?;
        let rel = item.path().strip_prefix(root).unwrap_or(item.path());
        let path = rel.to_string_lossy().into_owned();
        let ft = meta.file_type();
        let (kind, link) = if ft.is_dir() {
            (Kind::Dir, String::new())
        } else if ft.is_symlink() {
            let t = std::fs::read_link(item.path()).map_err(|e| read_err(root, e))?;
            (Kind::Symlink, t.to_string_lossy().into_owned())
        } else {
            (Kind::Other, String::new())
        };
        if ft.is_file() && wanted(&path) && meta.len() <= MAX_READ {
            let bytes = std::fs::read(item.path()).map_err(|e| read_err(root, e))?;
            files.insert(path.clone(), text(root, &path, bytes)?);
        }
        entries.push(Entry {
            path,
            kind,
            link,
            mode: meta.permissions().mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
        });
    }
    Ok((entries, files))
}

fn text(root: &Path, file: &str, bytes: Vec<u8>) -> Result<String, RootfsError> {
    String::from_utf8(bytes).map_err(|_| RootfsError::File {
        path: root.to_path_buf(),
        file: file.to_string(),
        message: "not UTF-8 text".into(),
    })
}

/// The tar's bytes, decompressed as its magic says.
fn open_tar(path: &Path) -> Result<Box<dyn Read + Send>, RootfsError> {
    let f = std::fs::File::open(path).map_err(|e| read_err(path, e))?;
    let mut r = BufReader::with_capacity(1 << 16, f);
    let head = r.fill_buf().map_err(|e| read_err(path, e))?.to_vec();
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(Box::new(flate2::read::MultiGzDecoder::new(r)));
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let d = ruzstd::decoding::StreamingDecoder::new(r).map_err(|e| read_err(path, e))?;
        return Ok(Box::new(d));
    }
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        // lzma-rs writes into a writer: decompress on a thread into a pipe.
        let (pipe, mut writer) = std::io::pipe().map_err(|e| read_err(path, e))?;
        let thread = std::thread::spawn(move || {
            let mut r = r;
            lzma_rs::xz_decompress(&mut r, &mut writer).map_err(|e| e.to_string())
        });
        return Ok(Box::new(XzReader {
            pipe,
            thread: Some(thread),
        }));
    }
    if head.starts_with(b"BZh") {
        return Err(read_err(
            path,
            "bzip2-compressed tars are not supported; use a directory or a plain, gzip, zstd \
             or xz tar",
        ));
    }
    Ok(Box::new(r))
}

/// The decompressed side of an xz tar; at the end of the stream, a decompression error
/// (a truncated or corrupt file) is a read error rather than a short tar.
struct XzReader {
    pipe: std::io::PipeReader,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl Read for XzReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.pipe.read(buf)?;
        if n == 0
            && let Some(t) = self.thread.take()
        {
            let failed = match t.join() {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => Some("the xz decoder stopped".to_string()),
            };
            if let Some(e) = failed {
                return Err(std::io::Error::other(format!("xz: {e}")));
            }
        }
        Ok(n)
    }
}

fn scan_tar(path: &Path) -> Result<(Vec<Entry>, Files), RootfsError> {
    let mut ar = tar::Archive::new(open_tar(path)?);
    let mut by_path: BTreeMap<String, Entry> = BTreeMap::new();
    let mut files = Files::new();
    let bad = |e: std::io::Error| read_err(path, format!("not a readable tar: {e}"));
    for item in ar.entries().map_err(bad)? {
        let mut item = item.map_err(bad)?;
        let raw = item.path().map_err(bad)?.to_string_lossy().into_owned();
        let rel = normalize(&raw).join("/");
        if rel.is_empty() {
            continue;
        }
        let h = item.header();
        let et = h.entry_type();
        let (kind, link) = if et.is_dir() {
            (Kind::Dir, String::new())
        } else if et.is_symlink() {
            let t = item.link_name().map_err(bad)?.unwrap_or_default();
            (Kind::Symlink, t.to_string_lossy().into_owned())
        } else {
            (Kind::Other, String::new())
        };
        let entry = Entry {
            path: rel.clone(),
            kind,
            link,
            mode: h.mode().unwrap_or(0o755) & 0o7777,
            uid: h.uid().unwrap_or(0) as u32,
            gid: h.gid().unwrap_or(0) as u32,
        };
        if et.is_file() && wanted(&rel) && item.size() <= MAX_READ {
            let mut bytes = Vec::new();
            item.read_to_end(&mut bytes).map_err(bad)?;
            files.insert(rel.clone(), text(path, &rel, bytes)?);
        } else {
            files.remove(&rel);
        }
        // A later entry of the same path replaces the earlier one, as unpacking does.
        by_path.insert(rel, entry);
    }
    Ok((by_path.into_values().collect(), files))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &Path) {
        std::fs::create_dir_all(dir.join("usr/lib/apk/db")).unwrap();
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::os::unix::fs::symlink("/usr/lib", dir.join("lib")).unwrap();
        std::fs::write(
            dir.join("usr/lib/apk/db/installed"),
            "P:busybox\nV:1.36.1-r0\nA:x86_64\np:cmd:sh=1.36.1-r0\nF:bin\nR:busybox\n\nP:zlib\nV:1.3-r0\n\n",
        )
        .unwrap();
        std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    }

    #[test]
    fn reads_a_usrmerged_directory_and_the_same_tree_as_tar() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        tree(&root);
        let s = scan(&root).unwrap();
        let names: Vec<&str> = s.installed.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["busybox", "zlib"]);
        assert_eq!(s.installed[0].provides, ["cmd:sh=1.36.1-r0"]);
        assert_eq!(s.passwd.as_deref(), Some("root:x:0:0:root:/root:/bin/sh\n"));
        assert_eq!(s.group, None);
        let lib = s.entries.iter().find(|e| e.path == "lib").unwrap();
        assert_eq!((lib.kind, lib.link.as_str()), (Kind::Symlink, "/usr/lib"));

        let tgz = t.path().join("root.tar.gz");
        let st = std::process::Command::new("tar")
            .arg("-czf")
            .arg(&tgz)
            .arg("-C")
            .arg(&root)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        let s2 = scan(&tgz).unwrap();
        assert_eq!(s2.installed_db, s.installed_db);
        assert_eq!(s2.passwd, s.passwd);
        let paths = |s: &Scan| s.entries.iter().map(|e| e.path.clone()).collect::<Vec<_>>();
        assert_eq!(paths(&s2), paths(&s));
    }

    /// `tar -c` of `root`, piped through `filter` (a compressor reading stdin) into `out`.
    fn tar_through(root: &Path, filter: &[&str], out: &Path) {
        let sh = format!(
            "tar -cf - -C '{}' . | {} > '{}'",
            root.display(),
            filter.join(" "),
            out.display()
        );
        let st = std::process::Command::new("sh")
            .args(["-c", &sh])
            .status()
            .unwrap();
        assert!(st.success(), "{sh}");
    }

    #[test]
    fn zstd_and_xz_tars_read_as_the_directory_and_bad_ones_are_named() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        tree(&root);
        let dir = scan(&root).unwrap();
        for (name, filter) in [
            ("root.tar", &["cat"][..]),
            ("root.tar.zst", &["zstd", "-q", "-c"][..]),
            ("root.tar.xz", &["xz", "-c"][..]),
        ] {
            let file = t.path().join(name);
            tar_through(&root, filter, &file);
            let s = scan(&file).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(s.installed_db, dir.installed_db, "{name}");
            assert_eq!(s.passwd, dir.passwd, "{name}");
            assert_eq!(s.entries.len(), dir.entries.len(), "{name}");
        }
        // A truncated xz is an error, not a shorter tree.
        let xz = std::fs::read(t.path().join("root.tar.xz")).unwrap();
        let cut = t.path().join("cut.tar.xz");
        std::fs::write(&cut, &xz[..xz.len() / 2]).unwrap();
        let e = scan(&cut).unwrap_err().to_string();
        assert!(e.contains("cut.tar.xz") && e.contains(": xz: "), "{e}");
        // bzip2 is refused by name; a file that is no tar says so.
        let bz = t.path().join("root.tar.bz2");
        tar_through(&root, &["bzip2", "-c"], &bz);
        let e = scan(&bz).unwrap_err().to_string();
        assert!(e.contains("bzip2") && e.contains("root.tar.bz2"), "{e}");
        let junk = t.path().join("junk");
        std::fs::write(&junk, vec![7u8; 2048]).unwrap();
        let e = scan(&junk).unwrap_err().to_string();
        assert!(
            e.contains("junk") && e.contains("not a readable tar"),
            "{e}"
        );
    }

    #[test]
    fn a_link_out_of_the_tree_stays_inside() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        // /etc points at the host's /etc: the host's passwd must not be read.
        std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
        let s = scan(&root).unwrap();
        assert_eq!(s.passwd, None);
        let e = scan(&t.path().join("missing")).unwrap_err().to_string();
        assert!(e.contains("missing"), "{e}");
    }

    #[test]
    fn a_malformed_database_names_the_file() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("lib/apk/db")).unwrap();
        std::fs::write(t.path().join("lib/apk/db/installed"), "garbage\n").unwrap();
        let e = scan(t.path()).unwrap_err().to_string();
        assert!(e.contains("lib/apk/db/installed"), "{e}");
    }
}
