//! Whole-repository helpers: re-signing packages (`melange sign`), verifying
//! packages/indexes in bulk, and [`RepoBuilder`], a small API to build a
//! signed repository (`<repo>/<arch>/APKINDEX.tar.gz` + packages) — meant for
//! test fixtures and simple publishing.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::index::{ApkIndex, IndexEntry, read_index};
use crate::keys::{Keyring, SignatureAlgorithm, SigningKey};
use crate::pkginfo::PkgInfo;
use crate::reader::{PackageReader, verify_package};
use crate::tree::PackageTree;
use crate::writer::{ControlFiles, WriteOptions, WrittenPackage, signature_member, write_package};

/// Re-sign a package in place (`melange sign`): existing signatures are
/// dropped, the control member is signed (SHA-256 by default), data is kept
/// byte for byte. The signature entry's mtime is the `.PKGINFO` mtime.
///
/// # Errors
/// I/O, malformed package, signing failure.
pub fn sign_package_file(
    path: &Path,
    key: &SigningKey,
    algorithms: &[SignatureAlgorithm],
) -> Result<()> {
    let ctx = path.display().to_string();
    let (sig_len, control_len, mtime) = {
        let r = PackageReader::open(path)?;
        let (s, c) = r.member_lengths();
        (s, c, r.pkginfo_mtime())
    };
    let mut f = BufReader::new(File::open(path).map_err(|e| Error::io_path(path, e))?);
    let to_usize =
        |v: u64| usize::try_from(v).map_err(|_| Error::malformed(&ctx, "member too large"));
    let mut skip = vec![0u8; to_usize(sig_len)?];
    f.read_exact(&mut skip)
        .map_err(|e| Error::io_path(path, e))?;
    let mut control = vec![0u8; to_usize(control_len)?];
    f.read_exact(&mut control)
        .map_err(|e| Error::io_path(path, e))?;
    let sig = signature_member(key, algorithms, &control, mtime)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| Error::io_path(&dir, e))?;
    {
        use std::io::Write as _;
        let out = tmp.as_file_mut();
        out.write_all(&sig).map_err(|e| Error::io_path(path, e))?;
        out.write_all(&control)
            .map_err(|e| Error::io_path(path, e))?;
        std::io::copy(&mut f, out).map_err(|e| Error::io_path(path, e))?;
    }
    crate::writer::set_public(tmp.as_file(), path)?;
    tmp.persist(path)
        .map_err(|e| Error::io_path(path, e.error))?;
    Ok(())
}

/// What kind of file [`verify_file`] checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifiedFile {
    /// A package, with its name-version and the trusted key.
    Package {
        /// `name-version`.
        id: String,
        /// Key that verified the signature.
        key: String,
    },
    /// An index, with its record count and the trusted key.
    Index {
        /// Number of records.
        packages: usize,
        /// Key that verified the signature.
        key: String,
    },
}

/// Verify a package or an index (detected from content) against a keyring.
///
/// # Errors
/// [`Error::Verification`] or malformed input, naming the file.
pub fn verify_file(path: &Path, keyring: &Keyring) -> Result<VerifiedFile> {
    if looks_like_index(path)? {
        let (idx, sigs) = read_index(path, Some(keyring))?;
        return Ok(VerifiedFile::Index {
            packages: idx.entries.len(),
            key: sigs.trusted_key.unwrap_or_default(),
        });
    }
    let c = verify_package(path, keyring, None)?;
    Ok(VerifiedFile::Package {
        id: format!("{}-{}", c.pkginfo.name, c.pkginfo.version),
        key: c.trusted_key.unwrap_or_default(),
    })
}

/// Peek into a file: true when its (non-signature) first tar entry is
/// `APKINDEX` or `DESCRIPTION`.
fn looks_like_index(path: &Path) -> Result<bool> {
    use crate::gzip::{MemberReader, at_eof};
    let mut f = BufReader::new(File::open(path).map_err(|e| Error::io_path(path, e))?);
    for _ in 0..2 {
        if at_eof(&mut f).map_err(|e| Error::io_path(path, e))? {
            return Ok(false);
        }
        let Ok(mut m) = MemberReader::new(&mut f) else {
            return Ok(false);
        };
        let mut block = [0u8; 512];
        if m.read_exact(&mut block).is_err() {
            return Ok(false);
        }
        let name_end = block[..100].iter().position(|&b| b == 0).unwrap_or(100);
        let name = &block[..name_end];
        if name.starts_with(b".SIGN.") {
            if m.skip_to_end().is_err() {
                return Ok(false);
            }
            continue;
        }
        return Ok(name == b"APKINDEX" || name == b"DESCRIPTION");
    }
    Ok(false)
}

/// Builds a repository on disk: `<root>/<arch>/<name>-<version>.apk` and a
/// signed `<root>/<arch>/APKINDEX.tar.gz` per architecture.
///
/// ```no_run
/// # fn main() -> melange2_apk::Result<()> {
/// use melange2_apk::{PkgInfo, PackageTree, RepoBuilder, generate_key};
/// let key = generate_key(2048, "test.rsa")?;
/// let mut repo = RepoBuilder::new("/tmp/repo").signer(key);
/// let mut tree = PackageTree::new();
/// tree.add_file("usr/bin/hello", 0o755, "#!/bin/sh\necho hi\n")?;
/// let mut info = PkgInfo::new("hello", "1.0-r0", "x86_64");
/// info.depends.push("busybox".into());
/// repo.add(&info, &tree)?;
/// repo.finish()?; // writes /tmp/repo/x86_64/APKINDEX.tar.gz
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RepoBuilder {
    root: PathBuf,
    signer: Option<SigningKey>,
    options: WriteOptions,
    added: BTreeMap<String, Vec<IndexEntry>>,
    description: String,
}

impl RepoBuilder {
    /// Repository rooted at `root` (created as needed).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RepoBuilder {
            root: root.into(),
            signer: None,
            options: WriteOptions::default(),
            added: BTreeMap::new(),
            description: String::new(),
        }
    }

    /// Sign packages and indexes with this key.
    #[must_use]
    pub fn signer(mut self, key: SigningKey) -> Self {
        self.signer = Some(key);
        self
    }

    /// Package writing options.
    #[must_use]
    pub fn options(mut self, options: WriteOptions) -> Self {
        self.options = options;
        self
    }

    /// Index `DESCRIPTION`.
    #[must_use]
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = d.into();
        self
    }

    /// Repository root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The signing key, if any (its public half goes into a keyring).
    pub fn signing_key(&self) -> Option<&SigningKey> {
        self.signer.as_ref()
    }

    /// Write a package (with control files) into `<root>/<arch>/`.
    ///
    /// # Errors
    /// Invalid metadata or I/O.
    pub fn add_with_control(
        &mut self,
        info: &PkgInfo,
        control: &ControlFiles,
        tree: &PackageTree,
    ) -> Result<WrittenPackage> {
        let dir = self.root.join(&info.arch);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io_path(&dir, e))?;
        let path = dir.join(info.file_name());
        let written = write_package(
            tree,
            info,
            control,
            self.signer.as_ref(),
            &self.options,
            &path,
        )?;
        let list = self.added.entry(info.arch.clone()).or_default();
        let entry = written.index_entry();
        list.retain(|e| !e.same_package(&entry));
        list.push(entry);
        Ok(written)
    }

    /// Write a package from a tree.
    ///
    /// # Errors
    /// Invalid metadata or I/O.
    pub fn add(&mut self, info: &PkgInfo, tree: &PackageTree) -> Result<WrittenPackage> {
        self.add_with_control(info, &ControlFiles::default(), tree)
    }

    /// Write a package from a directory.
    ///
    /// # Errors
    /// Invalid metadata or I/O.
    pub fn add_dir(&mut self, info: &PkgInfo, dir: &Path) -> Result<WrittenPackage> {
        let tree = PackageTree::from_dir(dir)?;
        self.add(info, &tree)
    }

    /// Write (merging into existing ones) the index of every architecture
    /// that received packages, and the public key as `<root>/<key>.pub`.
    /// Returns the index paths by arch.
    ///
    /// # Errors
    /// I/O or malformed existing index.
    pub fn finish(self) -> Result<BTreeMap<String, PathBuf>> {
        let mut out = BTreeMap::new();
        for (arch, entries) in self.added {
            let path = self.root.join(&arch).join("APKINDEX.tar.gz");
            let mut index = if path.exists() {
                ApkIndex::read(&path)?
            } else {
                ApkIndex::new()
            };
            index.description.clone_from(&self.description);
            index.merge(entries);
            index.write(&path, self.signer.as_ref())?;
            out.insert(arch, path);
        }
        if let Some(k) = &self.signer {
            let p = self.root.join(k.public_key_name());
            crate::keys::write_atomic(&p, k.public_key_pem()?.as_bytes(), 0o644)?;
        }
        Ok(out)
    }
}
