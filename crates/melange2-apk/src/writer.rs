//! The package writer: [`PackageTree`] + [`PkgInfo`] (+ scriptlets) → `.apk`.
//!
//! Layout: `[signature gzip] control gzip data gzip`. The data tar is
//! streamed through the parallel [`GzWriter`] into an anonymous temporary file
//! while its SHA-256 (`datahash`) is computed, so memory stays bounded; the
//! control member is built afterwards (it carries `datahash` and `size`),
//! signed, and the three members are written to a temporary file next to the
//! output that is renamed into place.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha1::{Digest as _, Sha1};
use sha2::Sha256;

use crate::error::{Error, Result};
use crate::gzip::{self, GzOptions, GzWriter};
use crate::index::IndexEntry;
use crate::keys::{SignatureAlgorithm, SigningKey};
use crate::pkginfo::PkgInfo;
use crate::tar::{self, EntryType, Header};
use crate::tree::{EntryKind, PackageTree};

/// Scriptlets and other control files besides `.PKGINFO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scriptlet {
    /// `.pre-install`
    PreInstall,
    /// `.post-install`
    PostInstall,
    /// `.pre-deinstall`
    PreDeinstall,
    /// `.post-deinstall`
    PostDeinstall,
    /// `.pre-upgrade`
    PreUpgrade,
    /// `.post-upgrade`
    PostUpgrade,
    /// `.trigger` (paths come from `PkgInfo::triggers`)
    Trigger,
}

impl Scriptlet {
    /// All scriptlets.
    pub const ALL: [Scriptlet; 7] = [
        Scriptlet::PreInstall,
        Scriptlet::PostInstall,
        Scriptlet::PreDeinstall,
        Scriptlet::PostDeinstall,
        Scriptlet::PreUpgrade,
        Scriptlet::PostUpgrade,
        Scriptlet::Trigger,
    ];

    /// Control entry name (`.post-install`, …).
    pub fn file_name(self) -> &'static str {
        match self {
            Scriptlet::PreInstall => ".pre-install",
            Scriptlet::PostInstall => ".post-install",
            Scriptlet::PreDeinstall => ".pre-deinstall",
            Scriptlet::PostDeinstall => ".post-deinstall",
            Scriptlet::PreUpgrade => ".pre-upgrade",
            Scriptlet::PostUpgrade => ".post-upgrade",
            Scriptlet::Trigger => ".trigger",
        }
    }

    /// Parse a control entry name.
    pub fn from_file_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.file_name() == name)
    }
}

/// Control files other than `.PKGINFO`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlFiles {
    /// `.melange.yaml`: the compiled build configuration (optional).
    pub melange_yaml: Option<Vec<u8>>,
    /// Scriptlets (mode 0755).
    pub scripts: BTreeMap<Scriptlet, Vec<u8>>,
}

/// Package writing options.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// mtime of every entry (SOURCE_DATE_EPOCH).
    pub source_date_epoch: u64,
    /// Build user id remapped to 0 (melange: 1000). `None` keeps ids.
    pub build_uid: Option<u32>,
    /// Build group id remapped to 0 (melange: 1000). `None` keeps ids.
    pub build_gid: Option<u32>,
    /// uid → user name for tar `uname` (after remapping). Unknown ids get an empty name.
    pub users: BTreeMap<u32, String>,
    /// gid → group name for tar `gname` (after remapping).
    pub groups: BTreeMap<u32, String>,
    /// Compression settings (thread count never changes the bytes).
    pub gzip: GzOptions,
    /// Signature algorithms used when a key is given (default: SHA-256 only).
    pub signature_algorithms: Vec<SignatureAlgorithm>,
    /// Directory for the temporary data spool (default: next to the output,
    /// or the system temp dir when writing to a stream).
    pub temp_dir: Option<PathBuf>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            source_date_epoch: 0,
            build_uid: Some(1000),
            build_gid: Some(1000),
            users: BTreeMap::from([(0, "root".to_string())]),
            groups: BTreeMap::from([(0, "root".to_string())]),
            gzip: GzOptions::default(),
            signature_algorithms: vec![SignatureAlgorithm::RsaSha256],
            temp_dir: None,
        }
    }
}

impl WriteOptions {
    /// Options with `SOURCE_DATE_EPOCH` taken from the environment (0 if
    /// unset or invalid).
    pub fn from_env() -> Self {
        let epoch = std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        WriteOptions {
            source_date_epoch: epoch,
            ..Self::default()
        }
    }

    /// Load user/group names from `passwd`/`group` file contents (as found in
    /// the build environment), replacing the defaults.
    pub fn set_names_from_files(&mut self, passwd: &str, group: &str) {
        let parse = |text: &str| -> BTreeMap<u32, String> {
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| {
                    let mut f = l.split(':');
                    let name = f.next()?;
                    let _pw = f.next()?;
                    let id = f.next()?.parse().ok()?;
                    Some((id, name.to_string()))
                })
                .fold(BTreeMap::new(), |mut m, (id, n)| {
                    m.entry(id).or_insert(n);
                    m
                })
        };
        self.users = parse(passwd);
        self.groups = parse(group);
    }
}

/// What [`write_package`] produced.
#[derive(Debug, Clone)]
pub struct WrittenPackage {
    /// Final metadata (with `size` and `datahash`).
    pub info: PkgInfo,
    /// Index checksum `Q1<base64 sha1 of control member>`.
    pub checksum: String,
    /// Size of the `.apk` in bytes.
    pub file_size: u64,
    /// Where it was written (for [`write_package`]).
    pub path: Option<PathBuf>,
}

impl WrittenPackage {
    /// The APKINDEX record for this package (no need to re-read the file).
    pub fn index_entry(&self) -> IndexEntry {
        IndexEntry::from_pkginfo(&self.info, &self.checksum, self.file_size)
    }
}

/// `Q1` + base64(SHA-1) as used by APKINDEX `C:` and the installed db.
pub fn q1_checksum(sha1: &[u8]) -> String {
    format!(
        "Q1{}",
        base64::engine::general_purpose::STANDARD.encode(sha1)
    )
}

/// Decode a `Q1…` checksum into the SHA-1 bytes.
pub fn decode_q1(s: &str) -> Option<[u8; 20]> {
    let b = s.strip_prefix("Q1")?;
    let v = base64::engine::general_purpose::STANDARD.decode(b).ok()?;
    v.try_into().ok()
}

/// Writer adaptor hashing everything written with SHA-256.
struct Sha256Writer<W: Write> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> Write for Sha256Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn root_header(path: &str, kind: EntryType, mode: u32, epoch: u64) -> Header {
    let mut h = Header::new(path, kind);
    h.mode = mode;
    h.uname = "root".into();
    h.gname = "root".into();
    h.mtime = epoch;
    h
}

/// Build a tar part (no end-of-archive) with root-owned entries, sorted by name.
pub(crate) fn control_like_tar(
    files: &BTreeMap<String, (u32, Vec<u8>)>,
    epoch: u64,
) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    for (name, (mode, data)) in files {
        tar::write_entry(
            &mut out,
            &root_header(name, EntryType::File, *mode, epoch),
            data,
        )?;
    }
    Ok(out)
}

/// Build the signature member for a control (or index) member.
///
/// # Errors
/// Signing failures.
pub fn signature_member(
    key: &SigningKey,
    algorithms: &[SignatureAlgorithm],
    signed_member: &[u8],
    mtime: u64,
) -> Result<Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut algs = algorithms.to_vec();
    if algs.is_empty() {
        algs.push(SignatureAlgorithm::RsaSha256);
    }
    for alg in algs {
        let sig = key.sign(alg, signed_member)?;
        files.insert(key.signature_entry_name(alg), (0o644, sig));
    }
    let tar = control_like_tar(&files, mtime).map_err(|e| Error::io("signature tar", e))?;
    gzip::compress(&tar, GzOptions::default()).map_err(|e| Error::io("signature gzip", e))
}

/// Build the control member (gzip of the control tar without end-of-archive).
///
/// # Errors
/// Invalid metadata.
pub fn control_member(
    info: &PkgInfo,
    control: &ControlFiles,
    epoch: u64,
    gz: GzOptions,
) -> Result<Vec<u8>> {
    info.validate()?;
    let mut files: BTreeMap<String, (u32, Vec<u8>)> = BTreeMap::new();
    files.insert(".PKGINFO".into(), (0o644, info.render().into_bytes()));
    if let Some(y) = &control.melange_yaml {
        files.insert(".melange.yaml".into(), (0o644, y.clone()));
    }
    for (s, data) in &control.scripts {
        files.insert(s.file_name().into(), (0o755, data.clone()));
    }
    let tar = control_like_tar(&files, epoch).map_err(|e| Error::io("control tar", e))?;
    gzip::compress(&tar, gz).map_err(|e| Error::io("control gzip", e))
}

/// Result of writing the data member.
struct DataMember {
    spool: File,
    len: u64,
    sha256: [u8; 32],
    installed_size: u64,
}

fn write_data_member(tree: &PackageTree, opts: &WriteOptions, spool: File) -> Result<DataMember> {
    let out = Sha256Writer {
        inner: BufWriter::with_capacity(256 * 1024, spool),
        hasher: Sha256::new(),
        len: 0,
    };
    let mut gz = GzWriter::new(out, opts.gzip);
    let io_err = |e: io::Error| Error::io("writing data member", e);
    let mut first_of_group: HashMap<u64, (String, [u8; 20])> = HashMap::new();
    let mut installed_size: u64 = 0;
    let mut buf = vec![0u8; 256 * 1024];
    for entry in tree.entries() {
        let ctx = || format!("package entry {:?}", entry.path);
        let remap = |id: u32, build: Option<u32>| if Some(id) == build { 0 } else { id };
        let uid = remap(entry.uid, opts.build_uid);
        let gid = remap(entry.gid, opts.build_gid);
        let mut h = Header::new(entry.path.clone(), EntryType::File);
        h.mode = entry.mode & 0o7777;
        h.uid = u64::from(uid);
        h.gid = u64::from(gid);
        h.uname = opts.users.get(&uid).cloned().unwrap_or_default();
        h.gname = opts.groups.get(&gid).cloned().unwrap_or_default();
        h.mtime = opts.source_date_epoch;
        let with_xattrs = |h: &mut Header| {
            for (k, v) in &entry.xattrs {
                h.pax.insert(format!("{}{k}", tar::PAX_XATTR), v.clone());
            }
        };
        match &entry.kind {
            EntryKind::Directory => {
                h.kind = EntryType::Directory;
                with_xattrs(&mut h);
                tar::write_header(&mut gz, &h).map_err(io_err)?;
            }
            EntryKind::Symlink(target) => {
                h.kind = EntryType::Symlink;
                h.link = target.clone();
                h.pax.insert(
                    tar::PAX_CHECKSUM.into(),
                    hex::encode(Sha1::digest(target.as_bytes())).into_bytes(),
                );
                installed_size += target.len() as u64;
                tar::write_header(&mut gz, &h).map_err(io_err)?;
            }
            EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
                h.kind = if matches!(entry.kind, EntryKind::CharDevice { .. }) {
                    EntryType::CharDevice
                } else {
                    EntryType::BlockDevice
                };
                h.devmajor = *major;
                h.devminor = *minor;
                tar::write_header(&mut gz, &h).map_err(io_err)?;
            }
            EntryKind::Fifo => {
                h.kind = EntryType::Fifo;
                tar::write_header(&mut gz, &h).map_err(io_err)?;
            }
            EntryKind::File { size, sha1, .. } => {
                installed_size += size;
                if let Some(g) = entry.link_group
                    && let Some((first, digest)) = first_of_group.get(&g)
                {
                    h.kind = EntryType::HardLink;
                    h.link = first.clone();
                    h.pax
                        .insert(tar::PAX_CHECKSUM.into(), hex::encode(digest).into_bytes());
                    tar::write_header(&mut gz, &h).map_err(io_err)?;
                    continue;
                }
                let digest: [u8; 20] = match sha1 {
                    Some(d) => *d,
                    None => {
                        let mut r = tree.open_content(entry)?;
                        let mut hasher = Sha1::new();
                        let mut n_total = 0u64;
                        loop {
                            let n = r.read(&mut buf).map_err(|e| Error::io(ctx(), e))?;
                            if n == 0 {
                                break;
                            }
                            hasher.update(&buf[..n]);
                            n_total += n as u64;
                        }
                        if n_total != *size {
                            return Err(Error::invalid(
                                ctx(),
                                "file changed size while being packaged",
                            ));
                        }
                        hasher.finalize().into()
                    }
                };
                h.kind = EntryType::File;
                h.size = *size;
                h.pax
                    .insert(tar::PAX_CHECKSUM.into(), hex::encode(digest).into_bytes());
                with_xattrs(&mut h);
                tar::write_header(&mut gz, &h).map_err(io_err)?;
                let mut r = tree.open_content(entry)?;
                let mut left = *size;
                while left > 0 {
                    let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
                    let n = r.read(&mut buf[..want]).map_err(|e| Error::io(ctx(), e))?;
                    if n == 0 {
                        return Err(Error::invalid(ctx(), "file shrank while being packaged"));
                    }
                    gz.write_all(&buf[..n]).map_err(io_err)?;
                    left -= n as u64;
                }
                gz.write_all(&[0u8; tar::BLOCK][..tar::padding(*size)])
                    .map_err(io_err)?;
                if let Some(g) = entry.link_group {
                    first_of_group.insert(g, (entry.path.clone(), digest));
                }
            }
        }
    }
    tar::write_end(&mut gz).map_err(io_err)?;
    let out = gz.finish().map_err(io_err)?;
    let sha256: [u8; 32] = out.hasher.finalize().into();
    let len = out.len;
    let spool = out
        .inner
        .into_inner()
        .map_err(|e| Error::io("writing data member", e.into_error()))?;
    Ok(DataMember {
        spool,
        len,
        sha256,
        installed_size,
    })
}

/// Write a package into `out` (any writer). The data member is spooled to a
/// temporary file first.
///
/// # Errors
/// Invalid metadata, unreadable input files, I/O.
pub fn write_package_to<W: Write>(
    tree: &PackageTree,
    info: &PkgInfo,
    control: &ControlFiles,
    signer: Option<&SigningKey>,
    opts: &WriteOptions,
    out: &mut W,
) -> Result<WrittenPackage> {
    let ctx = format!("package {}-{}", info.name, info.version);
    info.validate()?;
    let spool = match &opts.temp_dir {
        Some(d) => tempfile::tempfile_in(d),
        None => tempfile::tempfile(),
    }
    .map_err(|e| Error::io("creating temporary data file", e))?;
    let data = write_data_member(tree, opts, spool).map_err(|e| e.within(&ctx))?;
    let mut info = info.clone();
    info.size = data.installed_size;
    info.datahash = hex::encode(data.sha256);
    let control_gz = control_member(&info, control, opts.source_date_epoch, opts.gzip)?;
    let control_sha1 = Sha1::digest(&control_gz);
    let sig = match signer {
        Some(k) => signature_member(
            k,
            &opts.signature_algorithms,
            &control_gz,
            opts.source_date_epoch,
        )?,
        None => Vec::new(),
    };
    let io_err = |e: io::Error| Error::io(format!("{ctx}: writing output"), e);
    out.write_all(&sig).map_err(io_err)?;
    out.write_all(&control_gz).map_err(io_err)?;
    let mut spool = data.spool;
    spool.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let copied = io::copy(&mut spool, out).map_err(io_err)?;
    if copied != data.len {
        return Err(Error::invalid(ctx, "temporary data file changed size"));
    }
    out.flush().map_err(io_err)?;
    Ok(WrittenPackage {
        info,
        checksum: q1_checksum(&control_sha1),
        file_size: (sig.len() + control_gz.len()) as u64 + data.len,
        path: None,
    })
}

/// Write a package to `path` atomically (temporary file in the same
/// directory, renamed on success; nothing is left behind on failure).
///
/// # Errors
/// As [`write_package_to`].
pub fn write_package(
    tree: &PackageTree,
    info: &PkgInfo,
    control: &ControlFiles,
    signer: Option<&SigningKey>,
    opts: &WriteOptions,
    path: &Path,
) -> Result<WrittenPackage> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut opts = opts.clone();
    if opts.temp_dir.is_none() {
        opts.temp_dir = Some(dir.clone());
    }
    let tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| Error::io_path(&dir, e))?;
    let mut w = BufWriter::with_capacity(256 * 1024, tmp);
    let mut written = write_package_to(tree, info, control, signer, &opts, &mut w)?;
    let tmp = w
        .into_inner()
        .map_err(|e| Error::io_path(path, e.into_error()))?;
    // Packages are public artefacts; temp files start out 0600.
    set_public(tmp.as_file(), path)?;
    tmp.persist(path)
        .map_err(|e| Error::io_path(path, e.error))?;
    written.path = Some(path.to_path_buf());
    Ok(written)
}

/// Write a package built from a directory (see [`PackageTree::from_dir`]).
///
/// # Errors
/// As [`write_package`].
pub fn write_package_from_dir(
    dir: &Path,
    info: &PkgInfo,
    control: &ControlFiles,
    signer: Option<&SigningKey>,
    opts: &WriteOptions,
    path: &Path,
) -> Result<WrittenPackage> {
    let tree = PackageTree::from_dir(dir)?;
    write_package(&tree, info, control, signer, opts, path)
}

/// Give a finished package file mode 0644.
pub(crate) fn set_public(f: &std::fs::File, path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    f.set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(|e| Error::io_path(path, e))
}
