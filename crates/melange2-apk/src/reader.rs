//! Reading and verifying `.apk` files.
//!
//! [`PackageReader`] splits a package into its gzip members while hashing the
//! compressed bytes: the optional signature member, the control member (whose
//! SHA-1 is the index checksum `Q1…`) and the data member (whose SHA-256 must
//! equal `.PKGINFO datahash`). Data entries are streamed to a callback with
//! every regular file checked against its `APK-TOOLS.checksum.SHA1` record.
//! Nothing is trusted: sizes of metadata are capped, paths are validated, and
//! [`PackageReader::extract_to`] never writes outside its target directory.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use sha1::{Digest as _, Sha1};
use sha2::Sha256;

use crate::error::{Error, Result, from_stream_io};
use crate::gzip::{MemberReader, TapReader, at_eof};
use crate::keys::{Digests, Keyring, MultiDigest, SignatureAlgorithm, verify_digest};
use crate::pkginfo::PkgInfo;
use crate::tar::{self, EntryType, Header};
use crate::writer::q1_checksum;

/// Largest control file accepted (64 MiB).
pub const MAX_CONTROL_FILE: u64 = 64 << 20;
/// Largest decompressed signature/control member accepted (128 MiB).
pub const MAX_CONTROL_TOTAL: u64 = 128 << 20;
/// Signature entries larger than this are ignored (apk-tools rule).
pub const MAX_SIGNATURE_SIZE: usize = 64 * 1024;

/// One `.SIGN.<ALG>.<KEYNAME>` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureEntry {
    /// Algorithm, `None` for unknown/unsupported tags (e.g. `DSA`).
    pub algorithm: Option<SignatureAlgorithm>,
    /// Algorithm tag as written (`RSA256`).
    pub tag: String,
    /// Public key file name (`melange.rsa.pub`).
    pub key_name: String,
    /// Raw signature bytes.
    pub signature: Vec<u8>,
}

/// Parse `.SIGN.<ALG>.<KEYNAME>` into (tag, key name).
pub fn parse_signature_name(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix(".SIGN.")?;
    let (tag, key) = rest.split_once('.')?;
    if tag.is_empty() || key.is_empty() {
        return None;
    }
    Some((tag, key))
}

/// Check signatures over `digests` against a keyring. One valid signature by a
/// trusted key suffices; returns that key's name.
///
/// # Errors
/// [`Error::Verification`] explaining why nothing verified.
pub fn verify_signatures(
    signatures: &[SignatureEntry],
    digests: &Digests,
    keyring: &Keyring,
    context: &str,
) -> Result<String> {
    if signatures.is_empty() {
        return Err(Error::verification(context, "not signed"));
    }
    let mut tried = Vec::new();
    for s in signatures {
        let Some(alg) = s.algorithm else { continue };
        let Some((name, key)) = keyring.get(&s.key_name) else {
            continue;
        };
        if verify_digest(key, alg, digests.for_algorithm(alg), &s.signature, context).is_ok() {
            return Ok(name.to_string());
        }
        tried.push(format!("{} ({})", s.key_name, s.tag));
    }
    if tried.is_empty() {
        let signed_by: Vec<String> = signatures
            .iter()
            .map(|s| format!("{} ({})", s.key_name, s.tag))
            .collect();
        let trusted: Vec<&str> = keyring.names().collect();
        Err(Error::verification(
            context,
            format!(
                "no signature by a trusted key (signed by {}; keyring has {})",
                signed_by.join(", "),
                if trusted.is_empty() {
                    "no keys".to_string()
                } else {
                    trusted.join(", ")
                }
            ),
        ))
    } else {
        Err(Error::verification(
            context,
            format!(
                "signature by {} does not match (wrong key or tampered content)",
                tried.join(", ")
            ),
        ))
    }
}

/// One decoded tar member kept in memory (signature or control section).
#[derive(Debug)]
pub(crate) struct SmallMember {
    pub entries: Vec<(Header, Vec<u8>)>,
    pub digests: Digests,
    pub state: MultiDigest,
    pub len: u64,
}

type SharedDigest = Arc<Mutex<MultiDigest>>;

fn install_tap<R: BufRead>(tap: &mut TapReader<R>) -> SharedDigest {
    let d: SharedDigest = Arc::new(Mutex::new(MultiDigest::new()));
    let d2 = Arc::clone(&d);
    tap.set_tap(Some(Box::new(move |b: &[u8]| {
        if let Ok(mut g) = d2.lock() {
            g.update(b);
        }
    })));
    d
}

fn take_digest(d: &SharedDigest) -> MultiDigest {
    d.lock()
        .map(|mut g| std::mem::take(&mut *g))
        .unwrap_or_default()
}

/// Read a whole gzip member holding a small tar part (no EOA needed).
pub(crate) fn read_small_member<R: BufRead>(
    tap: &mut TapReader<R>,
    what: &str,
    total_cap: u64,
) -> Result<SmallMember> {
    let d = install_tap(tap);
    let start = tap.consumed();
    let res = (|| -> Result<Vec<(Header, Vec<u8>)>> {
        let member = MemberReader::new(tap).map_err(|e| from_stream_io(what, e))?;
        let mut tr = tar::Reader::new(member.take(total_cap + 1));
        let mut entries = Vec::new();
        let mut total = 0u64;
        while let Some(h) = tr.next_header().map_err(|e| from_stream_io(what, e))? {
            if h.size > MAX_CONTROL_FILE {
                return Err(Error::malformed(
                    what,
                    format!("entry {:?} is too large ({} bytes)", h.path, h.size),
                ));
            }
            total += h.size;
            if total > total_cap {
                return Err(Error::malformed(what, "section too large"));
            }
            let mut data = Vec::with_capacity(usize::try_from(h.size).unwrap_or(0));
            tr.content()
                .read_to_end(&mut data)
                .map_err(|e| from_stream_io(&format!("{what}: {}", h.path), e))?;
            entries.push((h, data));
        }
        let mut rest = tr.into_inner();
        io::copy(&mut rest, &mut io::sink()).map_err(|e| from_stream_io(what, e))?;
        if rest.limit() == 0 {
            return Err(Error::malformed(what, "section too large"));
        }
        Ok(entries)
    })();
    tap.set_tap(None);
    let entries = res?;
    let state = take_digest(&d);
    Ok(SmallMember {
        entries,
        digests: state.clone().finish(),
        state,
        len: tap.consumed() - start,
    })
}

/// True for names apk-tools treats as control files (top-level hidden files).
pub fn is_control_name(name: &str) -> bool {
    name.starts_with('.') && !name.contains('/') && name != "." && name != ".."
}

/// Metadata of one data entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataEntry {
    /// Normalised relative path (`usr/bin/foo`).
    pub path: String,
    /// Entry type.
    pub kind: EntryType,
    /// Permission bits (07777).
    pub mode: u32,
    /// Numeric owner.
    pub uid: u64,
    /// Numeric group.
    pub gid: u64,
    /// Owner name.
    pub uname: String,
    /// Group name.
    pub gname: String,
    /// Modification time.
    pub mtime: u64,
    /// Content size (regular files).
    pub size: u64,
    /// Symlink target, or hard link target path (normalised).
    pub link: String,
    /// Device numbers.
    pub devmajor: u32,
    /// Device numbers.
    pub devminor: u32,
    /// Extended attributes.
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// SHA-1 from the `APK-TOOLS.checksum.SHA1` record (verified for regular
    /// files and symlinks).
    pub sha1: Option<[u8; 20]>,
}

/// Result of the data pass.
#[derive(Debug, Clone)]
pub struct DataSummary {
    /// All data entries in archive order.
    pub entries: Vec<DataEntry>,
    /// SHA-256 of the data member's compressed bytes.
    pub datahash: [u8; 32],
    /// Compressed length of the data member.
    pub data_len: u64,
    /// For packages without `datahash`: digests of control+data members
    /// (what legacy signatures cover).
    pub legacy_digests: Option<Digests>,
}

/// Everything learnt from reading a whole package.
#[derive(Debug, Clone)]
pub struct PackageContents {
    /// Signatures found (verified only by [`verify_package`]).
    pub signatures: Vec<SignatureEntry>,
    /// Parsed `.PKGINFO`.
    pub pkginfo: PkgInfo,
    /// Other control files (`.melange.yaml`, scriptlets) by entry name.
    pub control_files: BTreeMap<String, Vec<u8>>,
    /// Index checksum `Q1…`.
    pub checksum: String,
    /// Data pass result.
    pub data: DataSummary,
    /// Total size of the `.apk`.
    pub file_size: u64,
    /// Name of the key whose signature verified (set by [`verify_package`]).
    pub trusted_key: Option<String>,
}

fn parse_pax_checksum(v: &[u8]) -> Option<[u8; 20]> {
    let s = std::str::from_utf8(v).ok()?;
    if let Some(b) = s.strip_prefix("Q1") {
        let d = base64::engine::general_purpose::STANDARD.decode(b).ok()?;
        return d.try_into().ok();
    }
    let d = hex::decode(s).ok()?;
    d.try_into().ok()
}

/// Validate a data path: relative, no `..`, no empty components after
/// normalisation. Returns the normalised path.
fn safe_path(raw: &str) -> Result<String> {
    if raw.starts_with('/') {
        return Err(Error::malformed(
            format!("entry {raw:?}"),
            "absolute path in package",
        ));
    }
    match crate::tree::normalize_path(raw) {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Ok(String::new()),
        Err(e) => Err(Error::malformed(format!("entry {raw:?}"), e.to_string())),
    }
}

/// Streaming package reader; see the module docs.
pub struct PackageReader<R: BufRead> {
    tap: TapReader<R>,
    context: String,
    signatures: Vec<SignatureEntry>,
    signature_len: u64,
    pkginfo: PkgInfo,
    pkginfo_mtime: u64,
    control_files: BTreeMap<String, Vec<u8>>,
    control_digests: Digests,
    control_state: MultiDigest,
    control_len: u64,
}

impl<R: BufRead> std::fmt::Debug for PackageReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackageReader")
            .field("context", &self.context)
            .field("pkginfo", &self.pkginfo)
            .finish_non_exhaustive()
    }
}

impl PackageReader<BufReader<File>> {
    /// Open a package file and read its signature and control sections.
    ///
    /// # Errors
    /// I/O, malformed input (errors name the file).
    pub fn open(path: &Path) -> Result<Self> {
        let f = File::open(path).map_err(|e| Error::io_path(path, e))?;
        PackageReader::new(
            BufReader::with_capacity(256 * 1024, f),
            &path.display().to_string(),
        )
    }
}

impl<R: BufRead> PackageReader<R> {
    /// Read the signature and control sections from `reader`; `context`
    /// (usually the file name) prefixes error messages.
    ///
    /// # Errors
    /// Malformed input.
    pub fn new(reader: R, context: &str) -> Result<Self> {
        let mut tap = TapReader::new(reader);
        let ctx = context.to_string();
        if at_eof(&mut tap).map_err(|e| Error::io(&ctx, e))? {
            return Err(Error::malformed(&ctx, "empty file"));
        }
        let first = read_small_member(&mut tap, "first gzip member", MAX_CONTROL_TOTAL)
            .map_err(|e| e.within(&ctx))?;
        let is_sig = first
            .entries
            .first()
            .is_some_and(|(h, _)| h.path.starts_with(".SIGN."));
        let (signatures, signature_len, control) = if is_sig {
            let mut sigs = Vec::new();
            for (h, data) in first.entries {
                let Some((tag, key)) = parse_signature_name(&h.path) else {
                    return Err(Error::malformed(
                        &ctx,
                        format!("unexpected entry {:?} in signature section", h.path),
                    ));
                };
                if data.len() > MAX_SIGNATURE_SIZE {
                    tracing::warn!(file = %ctx, entry = %h.path, "ignoring oversized signature");
                    continue;
                }
                sigs.push(SignatureEntry {
                    algorithm: SignatureAlgorithm::from_tag(tag),
                    tag: tag.to_string(),
                    key_name: key.to_string(),
                    signature: data,
                });
            }
            if at_eof(&mut tap).map_err(|e| Error::io(&ctx, e))? {
                return Err(Error::malformed(
                    &ctx,
                    "truncated package: no control section after the signature",
                ));
            }
            let control = read_small_member(&mut tap, "control section", MAX_CONTROL_TOTAL)
                .map_err(|e| e.within(&ctx))?;
            (sigs, first.len, control)
        } else {
            (Vec::new(), 0, first)
        };
        let mut pkginfo = None;
        let mut pkginfo_mtime = 0;
        let mut files = BTreeMap::new();
        for (h, data) in control.entries {
            if !is_control_name(&h.path) {
                return Err(Error::malformed(
                    &ctx,
                    format!("unexpected entry {:?} in control section", h.path),
                ));
            }
            if h.path == ".PKGINFO" {
                let text = String::from_utf8(data)
                    .map_err(|_| Error::malformed(format!("{ctx}: .PKGINFO"), "not valid UTF-8"))?;
                let (info, notes) = PkgInfo::parse_with_notes(&text).map_err(|e| e.within(&ctx))?;
                for n in notes {
                    tracing::warn!("{ctx}: {n}");
                }
                pkginfo = Some(info);
                pkginfo_mtime = h.mtime;
            } else if h.path.starts_with(".SIGN.") {
                return Err(Error::malformed(
                    &ctx,
                    "signature entry inside the control section",
                ));
            } else {
                files.insert(h.path, data);
            }
        }
        let pkginfo = pkginfo.ok_or_else(|| {
            Error::malformed(&ctx, "control section has no .PKGINFO (not an APK?)")
        })?;
        Ok(PackageReader {
            tap,
            context: ctx,
            signatures,
            signature_len,
            pkginfo,
            pkginfo_mtime,
            control_files: files,
            control_digests: control.digests,
            control_state: control.state,
            control_len: control.len,
        })
    }

    /// Parsed `.PKGINFO`.
    pub fn pkginfo(&self) -> &PkgInfo {
        &self.pkginfo
    }

    /// Signatures (unverified).
    pub fn signatures(&self) -> &[SignatureEntry] {
        &self.signatures
    }

    /// Control files other than `.PKGINFO`.
    pub fn control_files(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.control_files
    }

    /// Digests of the control member's compressed bytes.
    pub fn control_digests(&self) -> &Digests {
        &self.control_digests
    }

    /// Index checksum `Q1<base64 sha1(control member)>`.
    pub fn checksum(&self) -> String {
        q1_checksum(&self.control_digests.sha1)
    }

    /// mtime of the `.PKGINFO` entry.
    pub fn pkginfo_mtime(&self) -> u64 {
        self.pkginfo_mtime
    }

    /// Byte lengths of the signature and control members.
    pub fn member_lengths(&self) -> (u64, u64) {
        (self.signature_len, self.control_len)
    }

    /// Verify the package signature against `keyring` (packages with a
    /// `datahash`; legacy packages are checked by [`verify_package`]).
    ///
    /// # Errors
    /// [`Error::Verification`].
    pub fn verify_signature(&self, keyring: &Keyring) -> Result<String> {
        if self.pkginfo.datahash.is_empty() {
            return Err(Error::verification(
                &self.context,
                "package has no datahash: its signature covers the data too; use verify_package",
            ));
        }
        verify_signatures(
            &self.signatures,
            &self.control_digests,
            keyring,
            &self.context,
        )
    }

    /// Stream the data entries: `f` gets each entry and a reader over its
    /// content (empty for non-files). File contents are verified against
    /// their SHA-1 record even if `f` does not read them, the data member
    /// against `datahash`, and trailing garbage is refused.
    ///
    /// # Errors
    /// Malformed data, checksum mismatches, errors returned by `f`.
    pub fn read_data<F>(mut self, mut f: F) -> Result<DataSummary>
    where
        F: FnMut(&DataEntry, &mut dyn Read) -> Result<()>,
    {
        let ctx = self.context.clone();
        let dctx = format!("{ctx}: data section");
        if at_eof(&mut self.tap).map_err(|e| Error::io(&ctx, e))? {
            return Err(Error::malformed(&ctx, "truncated package: no data section"));
        }
        let legacy = self.pkginfo.datahash.is_empty();
        let sha = Arc::new(Mutex::new(Sha256::new()));
        let legacy_state = Arc::new(Mutex::new(self.control_state.clone()));
        {
            let sha = Arc::clone(&sha);
            let legacy_state = Arc::clone(&legacy_state);
            self.tap.set_tap(Some(Box::new(move |b: &[u8]| {
                if let Ok(mut s) = sha.lock() {
                    s.update(b);
                }
                if legacy && let Ok(mut l) = legacy_state.lock() {
                    l.update(b);
                }
            })));
        }
        let start = self.tap.consumed();
        let mut entries = Vec::new();
        let res = (|| -> Result<()> {
            let member = MemberReader::new(&mut self.tap).map_err(|e| from_stream_io(&dctx, e))?;
            let mut tr = tar::Reader::new(member);
            let mut in_control_prefix = true;
            let mut buf = vec![0u8; 128 * 1024];
            while let Some(h) = tr.next_header().map_err(|e| from_stream_io(&dctx, e))? {
                if in_control_prefix && is_control_name(&h.path) && h.kind == EntryType::File {
                    continue;
                }
                in_control_prefix = false;
                let path = safe_path(&h.path).map_err(|e| e.within(&dctx))?;
                if path.is_empty() {
                    continue;
                }
                let ectx = format!("{dctx}: {path}");
                let link = match h.kind {
                    EntryType::HardLink => {
                        let t = safe_path(&h.link).map_err(|e| e.within(&ectx))?;
                        if t.is_empty() {
                            return Err(Error::malformed(&ectx, "hard link to the root"));
                        }
                        t
                    }
                    _ => h.link.clone(),
                };
                let mut xattrs = BTreeMap::new();
                let mut sha1 = None;
                for (k, v) in &h.pax {
                    if let Some(name) = k.strip_prefix(tar::PAX_XATTR) {
                        xattrs.insert(name.to_string(), v.clone());
                    } else if k == tar::PAX_CHECKSUM {
                        sha1 = Some(parse_pax_checksum(v).ok_or_else(|| {
                            Error::malformed(&ectx, "invalid APK-TOOLS.checksum.SHA1 record")
                        })?);
                    }
                }
                let entry = DataEntry {
                    path,
                    kind: h.kind,
                    mode: h.mode,
                    uid: h.uid,
                    gid: h.gid,
                    uname: h.uname.clone(),
                    gname: h.gname.clone(),
                    mtime: h.mtime,
                    size: h.size,
                    link,
                    devmajor: h.devmajor,
                    devminor: h.devminor,
                    xattrs,
                    sha1,
                };
                match h.kind {
                    EntryType::File => {
                        let mut hashing = HashingReader {
                            inner: tr.content(),
                            hasher: Sha1::new(),
                        };
                        f(&entry, &mut hashing).map_err(|e| e.within(&ectx))?;
                        loop {
                            let n = hashing
                                .read(&mut buf)
                                .map_err(|e| from_stream_io(&ectx, e))?;
                            if n == 0 {
                                break;
                            }
                        }
                        let got: [u8; 20] = hashing.hasher.finalize().into();
                        if let Some(want) = entry.sha1
                            && want != got
                        {
                            return Err(Error::verification(
                                &ectx,
                                "file content does not match its SHA-1 checksum",
                            ));
                        }
                    }
                    EntryType::Symlink => {
                        if let Some(want) = entry.sha1 {
                            let got: [u8; 20] = Sha1::digest(entry.link.as_bytes()).into();
                            if want != got {
                                return Err(Error::verification(
                                    &ectx,
                                    "symlink target does not match its SHA-1 checksum",
                                ));
                            }
                        }
                        f(&entry, &mut io::empty()).map_err(|e| e.within(&ectx))?;
                    }
                    _ => f(&entry, &mut io::empty()).map_err(|e| e.within(&ectx))?,
                }
                entries.push(entry);
            }
            let mut member = tr.into_inner();
            // zero padding after the end-of-archive marker, if any
            io::copy(&mut member, &mut io::sink()).map_err(|e| from_stream_io(&dctx, e))?;
            Ok(())
        })();
        self.tap.set_tap(None);
        res?;
        let data_len = self.tap.consumed() - start;
        let datahash: [u8; 32] = sha
            .lock()
            .map(|g| g.clone().finalize().into())
            .unwrap_or_default();
        if !at_eof(&mut self.tap).map_err(|e| Error::io(&ctx, e))? {
            return Err(Error::malformed(
                &ctx,
                "unexpected bytes after the data section",
            ));
        }
        let legacy_digests = if legacy {
            Some(take_digest(&legacy_state).finish())
        } else {
            let want = self.pkginfo.datahash.to_ascii_lowercase();
            if hex::encode(datahash) != want {
                return Err(Error::verification(
                    &ctx,
                    format!(
                        "data section SHA-256 {} does not match .PKGINFO datahash {want}",
                        hex::encode(datahash)
                    ),
                ));
            }
            None
        };
        Ok(DataSummary {
            entries,
            datahash,
            data_len,
            legacy_digests,
        })
    }

    /// Read everything (contents are verified, not kept).
    ///
    /// # Errors
    /// As [`PackageReader::read_data`].
    pub fn into_contents(self) -> Result<PackageContents> {
        let signatures = self.signatures.clone();
        let pkginfo = self.pkginfo.clone();
        let control_files = self.control_files.clone();
        let checksum = self.checksum();
        let head = self.signature_len + self.control_len;
        let data = self.read_data(|_, _| Ok(()))?;
        Ok(PackageContents {
            signatures,
            pkginfo,
            control_files,
            checksum,
            file_size: head + data.data_len,
            data,
            trusted_key: None,
        })
    }

    /// Extract the data entries below `dest` (created if missing). Never
    /// follows symlinks inside `dest`, never writes outside it. Device nodes
    /// and FIFOs are skipped; ownership is not changed.
    ///
    /// # Errors
    /// Unsafe paths, verification failures, I/O.
    pub fn extract_to(self, dest: &Path) -> Result<DataSummary> {
        std::fs::create_dir_all(dest).map_err(|e| Error::io_path(dest, e))?;
        let mut ex = Extractor {
            root: dest.to_path_buf(),
            dirs: Vec::new(),
        };
        let summary = self.read_data(|entry, content| ex.entry(entry, content))?;
        ex.finish()?;
        Ok(summary)
    }
}

struct HashingReader<R: Read> {
    inner: R,
    hasher: Sha1,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

struct Extractor {
    root: PathBuf,
    dirs: Vec<(PathBuf, u32)>,
}

impl Extractor {
    /// Make sure every parent of `rel` exists as a real directory (no symlinks).
    fn prepare_parents(&self, rel: &str) -> Result<PathBuf> {
        let mut cur = self.root.clone();
        let comps: Vec<&str> = rel.split('/').collect();
        for c in &comps[..comps.len().saturating_sub(1)] {
            cur.push(c);
            match std::fs::symlink_metadata(&cur) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(Error::malformed(
                        format!("entry {rel:?}"),
                        "path goes through a symlink; refusing to write outside the target",
                    ));
                }
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(Error::malformed(
                        format!("entry {rel:?}"),
                        "parent is not a directory",
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    std::fs::create_dir(&cur).map_err(|e| Error::io_path(&cur, e))?;
                }
                Err(e) => return Err(Error::io_path(&cur, e)),
            }
        }
        Ok(self.root.join(rel))
    }

    fn remove_existing(path: &Path) -> Result<()> {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => Err(Error::malformed(
                path.display().to_string(),
                "a directory is in the way",
            )),
            Ok(_) => std::fs::remove_file(path).map_err(|e| Error::io_path(path, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io_path(path, e)),
        }
    }

    fn entry(&mut self, e: &DataEntry, content: &mut dyn Read) -> Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        let target = self.prepare_parents(&e.path)?;
        match e.kind {
            EntryType::Directory => {
                match std::fs::symlink_metadata(&target) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        Self::remove_existing(&target)?;
                        std::fs::create_dir(&target).map_err(|er| Error::io_path(&target, er))?;
                    }
                    Err(_) => {
                        std::fs::create_dir(&target).map_err(|er| Error::io_path(&target, er))?
                    }
                }
                self.dirs.push((target, e.mode));
            }
            EntryType::File => {
                Self::remove_existing(&target)?;
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .map_err(|er| Error::io_path(&target, er))?;
                io::copy(content, &mut f).map_err(|er| from_stream_io(&e.path, er))?;
                f.set_permissions(std::fs::Permissions::from_mode(e.mode & 0o7777))
                    .map_err(|er| Error::io_path(&target, er))?;
                let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(e.mtime);
                let _ = f.set_modified(t);
            }
            EntryType::Symlink => {
                Self::remove_existing(&target)?;
                std::os::unix::fs::symlink(&e.link, &target)
                    .map_err(|er| Error::io_path(&target, er))?;
            }
            EntryType::HardLink => {
                let src = self.prepare_parents(&e.link)?;
                match std::fs::symlink_metadata(&src) {
                    Ok(m) if m.is_file() => {}
                    _ => {
                        return Err(Error::malformed(
                            format!("entry {:?}", e.path),
                            format!(
                                "hard link target {:?} is not an extracted regular file",
                                e.link
                            ),
                        ));
                    }
                }
                Self::remove_existing(&target)?;
                std::fs::hard_link(&src, &target).map_err(|er| Error::io_path(&target, er))?;
            }
            EntryType::CharDevice | EntryType::BlockDevice | EntryType::Fifo => {
                tracing::debug!(path = %e.path, "not creating device node/FIFO");
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        for (d, mode) in self.dirs.iter().rev() {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode & 0o7777))
                .map_err(|e| Error::io_path(d, e))?;
        }
        Ok(())
    }
}

/// Read a whole package, verifying its integrity (datahash, file checksums)
/// but not its signature.
///
/// # Errors
/// I/O, malformed input, integrity failures (messages name the file).
pub fn read_package(path: &Path) -> Result<PackageContents> {
    PackageReader::open(path)?.into_contents()
}

/// Fully verify a package: integrity (as [`read_package`]), a signature by a
/// key of `keyring`, and — when `expected_checksum` is given (the index
/// `C:Q1…` value) — the control checksum.
///
/// # Errors
/// [`Error::Verification`] naming the file and the failed check.
pub fn verify_package(
    path: &Path,
    keyring: &Keyring,
    expected_checksum: Option<&str>,
) -> Result<PackageContents> {
    let ctx = path.display().to_string();
    let reader = PackageReader::open(path)?;
    if let Some(want) = expected_checksum {
        let got = reader.checksum();
        if got != want {
            return Err(Error::verification(
                &ctx,
                format!("control checksum {got} does not match the index checksum {want}"),
            ));
        }
    }
    let non_legacy_key = if reader.pkginfo().datahash.is_empty() {
        None
    } else {
        Some(reader.verify_signature(keyring)?)
    };
    let signatures = reader.signatures().to_vec();
    let mut contents = reader.into_contents()?;
    let key = match non_legacy_key {
        Some(k) => k,
        None => {
            let d = contents
                .data
                .legacy_digests
                .clone()
                .ok_or_else(|| Error::verification(&ctx, "missing legacy digests"))?;
            verify_signatures(&signatures, &d, keyring, &ctx)?
        }
    };
    contents.trusted_key = Some(key);
    Ok(contents)
}

/// Verify a package fetched through an index (apko's transitive trust): its
/// control checksum must equal the record's `C:`, its size the record's `S:`
/// (when non-zero), and its data must match `datahash` and the per-file
/// checksums. No signature is needed; verify the index with a keyring first.
///
/// # Errors
/// [`Error::Verification`] naming the file and the failed check.
pub fn verify_package_from_index(
    path: &Path,
    entry: &crate::index::IndexEntry,
) -> Result<PackageContents> {
    let ctx = path.display().to_string();
    let reader = PackageReader::open(path)?;
    let got = reader.checksum();
    if got != entry.checksum {
        return Err(Error::verification(
            &ctx,
            format!(
                "control checksum {got} does not match the index checksum {}",
                entry.checksum
            ),
        ));
    }
    if reader.pkginfo().name != entry.name || reader.pkginfo().version != entry.version {
        return Err(Error::verification(
            &ctx,
            format!(
                "package is {}-{}, the index record is {}-{}",
                reader.pkginfo().name,
                reader.pkginfo().version,
                entry.name,
                entry.version
            ),
        ));
    }
    if reader.pkginfo().datahash.is_empty() {
        return Err(Error::verification(
            &ctx,
            "package has no datahash; its data cannot be checked",
        ));
    }
    let contents = reader.into_contents()?;
    if entry.size != 0 && contents.file_size != entry.size {
        return Err(Error::verification(
            &ctx,
            format!(
                "file size {} does not match the index size {}",
                contents.file_size, entry.size
            ),
        ));
    }
    Ok(contents)
}
