//! `APKINDEX.tar.gz`: parse, write, merge, sign and verify repository indexes.
//!
//! File layout: `[signature gzip] index gzip`, where the index member is a tar
//! (with end-of-archive) holding `APKINDEX` (the records) and `DESCRIPTION`.
//! Signatures cover the compressed index member bytes. Adding packages to an
//! index only reads the new packages ([`ApkIndex::add_package_file`]); the
//! existing records are kept as parsed.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, from_stream_io};
use crate::gzip::{GzOptions, MemberReader, TapReader, at_eof};
use crate::keys::{Digests, Keyring, SignatureAlgorithm, SigningKey};
use crate::pkginfo::PkgInfo;
use crate::reader::{
    PackageReader, SignatureEntry, parse_signature_name, read_small_member, verify_signatures,
};
use crate::tar::{self, EntryType, Header};
use crate::writer::signature_member;

/// Largest decompressed index accepted (300 MiB, like apko).
pub const MAX_INDEX_SIZE: u64 = 300 << 20;

/// One package record of an APKINDEX.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexEntry {
    /// `C:` control checksum (`Q1…`).
    pub checksum: String,
    /// `P:` name.
    pub name: String,
    /// `V:` full version.
    pub version: String,
    /// `A:` architecture.
    pub arch: String,
    /// `S:` size of the .apk file.
    pub size: u64,
    /// `I:` installed size.
    pub installed_size: u64,
    /// `T:` description.
    pub description: String,
    /// `U:` URL.
    pub url: String,
    /// `L:` license.
    pub license: String,
    /// `o:` origin.
    pub origin: String,
    /// `m:` maintainer.
    pub maintainer: String,
    /// `t:` build time (0 = unknown; still written as `t:0` like melange).
    pub build_time: u64,
    /// `c:` commit.
    pub commit: String,
    /// `k:` provider priority (written when non-zero).
    pub provider_priority: Option<u64>,
    /// `D:` dependencies.
    pub depends: Vec<String>,
    /// `p:` provides.
    pub provides: Vec<String>,
    /// `i:` install_if.
    pub install_if: Vec<String>,
    /// `r:` replaces (installed-db field, kept if present).
    pub replaces: Vec<String>,
    /// `q:` replaces priority (installed-db field, kept if present).
    pub replaces_priority: Option<u64>,
    /// Unknown fields in order (letter, value).
    pub extra: Vec<(char, String)>,
}

impl IndexEntry {
    /// Record for a package from its metadata, control checksum and file size.
    pub fn from_pkginfo(p: &PkgInfo, checksum: &str, file_size: u64) -> Self {
        IndexEntry {
            checksum: checksum.to_string(),
            name: p.name.clone(),
            version: p.version.clone(),
            arch: p.arch.clone(),
            size: file_size,
            installed_size: p.size,
            description: p.description.clone(),
            url: p.url.clone(),
            license: p.license(),
            origin: p.origin.clone(),
            maintainer: p.maintainer.clone(),
            build_time: p.build_date,
            commit: p.commit.clone(),
            provider_priority: p.provider_priority,
            depends: p.depends.clone(),
            provides: p.provides.clone(),
            install_if: p.install_if.clone(),
            replaces: Vec::new(),
            replaces_priority: None,
            extra: Vec::new(),
        }
    }

    /// Read a package file and build its record (reads only the signature
    /// and control sections; the data section is not decompressed).
    ///
    /// # Errors
    /// I/O or malformed package.
    pub fn from_package_file(path: &Path) -> Result<Self> {
        let size = std::fs::metadata(path)
            .map_err(|e| Error::io_path(path, e))?
            .len();
        let r = PackageReader::open(path)?;
        Ok(IndexEntry::from_pkginfo(r.pkginfo(), &r.checksum(), size))
    }

    /// `<name>-<version>.apk`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.apk", self.name, self.version)
    }

    /// Render one record (without the separating blank line), melange order:
    /// `C P V A S I T U L o m t c D i p k` (+ `r q` and unknown fields).
    pub fn render(&self) -> String {
        let mut s = String::new();
        let mut line = |k: char, v: &str| {
            s.push(k);
            s.push(':');
            s.push_str(v);
            s.push('\n');
        };
        line('C', &self.checksum);
        line('P', &self.name);
        line('V', &self.version);
        if !self.arch.is_empty() {
            line('A', &self.arch);
        }
        line('S', &self.size.to_string());
        line('I', &self.installed_size.to_string());
        line('T', &self.description);
        if !self.url.is_empty() {
            line('U', &self.url);
        }
        if !self.license.is_empty() {
            line('L', &self.license);
        }
        if !self.origin.is_empty() {
            line('o', &self.origin);
        }
        if !self.maintainer.is_empty() {
            line('m', &self.maintainer);
        }
        line('t', &self.build_time.to_string());
        if !self.commit.is_empty() {
            line('c', &self.commit);
        }
        if !self.depends.is_empty() {
            line('D', &self.depends.join(" "));
        }
        if !self.install_if.is_empty() {
            line('i', &self.install_if.join(" "));
        }
        if !self.provides.is_empty() {
            line('p', &self.provides.join(" "));
        }
        if let Some(k) = self.provider_priority.filter(|&k| k != 0) {
            line('k', &k.to_string());
        }
        if !self.replaces.is_empty() {
            line('r', &self.replaces.join(" "));
        }
        if let Some(q) = self.replaces_priority {
            line('q', &q.to_string());
        }
        for (k, v) in &self.extra {
            line(*k, v);
        }
        s
    }

    /// Same identity (name, version, arch).
    pub fn same_package(&self, other: &IndexEntry) -> bool {
        self.name == other.name && self.version == other.version && self.arch == other.arch
    }
}

fn split_list(v: &str) -> Vec<String> {
    v.split_whitespace().map(str::to_string).collect()
}

/// Parse APKINDEX text into records; what
/// [`parse_index_text_with_notes`] notes is logged as warnings.
///
/// # Errors
/// As [`parse_index_text_with_notes`].
pub fn parse_index_text(text: &str) -> Result<Vec<IndexEntry>> {
    let (entries, notes) = parse_index_text_with_notes(text)?;
    for n in notes {
        tracing::warn!("{n}");
    }
    Ok(entries)
}

/// Parse APKINDEX text into records as leniently as apk-tools reads fields
/// that are not security-relevant (docs/apk.md, "Reading what other tools
/// write"), returning notes about what was read differently from how it is
/// written: a `t:` that is zero, negative (Go's zero time, written by
/// go-apk as `t:-62135596800`) or not a number reads as unknown (0); an `I:`,
/// `k:` or `q:` that is not a number reads as unset. Unknown letters are
/// kept in [`IndexEntry::extra`].
///
/// # Errors
/// [`Error::Malformed`] with the line number for lines that are not
/// `X:value`, records without `P:`/`V:`, or an `S:` (the file size a
/// download is checked against) that is not a number.
pub fn parse_index_text_with_notes(text: &str) -> Result<(Vec<IndexEntry>, Vec<String>)> {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    let mut cur: Option<(usize, IndexEntry)> = None;
    let finish = |cur: Option<(usize, IndexEntry)>, out: &mut Vec<IndexEntry>| -> Result<()> {
        if let Some((line, e)) = cur {
            if e.name.is_empty() || e.version.is_empty() {
                return Err(Error::malformed(
                    format!("APKINDEX record starting at line {line}"),
                    "missing P: or V:",
                ));
            }
            out.push(e);
        }
        Ok(())
    };
    for (i, raw) in text.split('\n').enumerate() {
        let lineno = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.is_empty() {
            finish(cur.take(), &mut out)?;
            continue;
        }
        let bytes = line.as_bytes();
        if bytes.len() < 2 || bytes[1] != b':' || !bytes[0].is_ascii() {
            return Err(Error::malformed(
                format!("APKINDEX line {lineno}"),
                format!(
                    "expected `X:value`, got {:?}",
                    line.chars().take(80).collect::<String>()
                ),
            ));
        }
        let e = &mut cur.get_or_insert_with(|| (lineno, IndexEntry::default())).1;
        set_index_field(e, char::from(bytes[0]), &line[2..], &mut |m| {
            notes.push(format!("APKINDEX line {lineno}: {m}"));
        })
        .map_err(|m| Error::malformed(format!("APKINDEX line {lineno}"), m))?;
    }
    finish(cur.take(), &mut out)?;
    Ok((out, notes))
}

/// Store one `X:value` line of a record; `note` receives what was read
/// leniently. Errors are messages for the caller to place.
fn set_index_field(
    e: &mut IndexEntry,
    key: char,
    v: &str,
    note: &mut dyn FnMut(String),
) -> std::result::Result<(), String> {
    let mut lenient = |v: &str| -> Option<u64> {
        let n = v.trim().parse().ok();
        if n.is_none() {
            note(format!("{key}: {v:?} is not a number; read as unset"));
        }
        n
    };
    match key {
        'C' => e.checksum = v.to_string(),
        'P' => e.name = v.to_string(),
        'V' => e.version = v.to_string(),
        'A' => e.arch = v.to_string(),
        'S' => {
            e.size = v
                .trim()
                .parse()
                .map_err(|_| format!("S: {v:?} is not a number"))?;
        }
        'I' => e.installed_size = lenient(v).unwrap_or(0),
        'T' => e.description = v.to_string(),
        'U' => e.url = v.to_string(),
        'L' => e.license = v.to_string(),
        'o' => e.origin = v.to_string(),
        'm' => e.maintainer = v.to_string(),
        't' => e.build_time = crate::pkginfo::build_time(v, note),
        'c' => e.commit = v.to_string(),
        'k' => e.provider_priority = lenient(v),
        'D' => e.depends = split_list(v),
        'p' => e.provides = split_list(v),
        'i' => e.install_if = split_list(v),
        'r' => e.replaces = split_list(v),
        'q' => e.replaces_priority = lenient(v),
        other => e.extra.push((other, v.to_string())),
    }
    Ok(())
}

/// A repository index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApkIndex {
    /// Records in file order.
    pub entries: Vec<IndexEntry>,
    /// `DESCRIPTION` content.
    pub description: String,
}

/// How an index file was signed (returned by [`read_index`]).
#[derive(Debug, Clone, Default)]
pub struct IndexSignatures {
    /// Signature entries found.
    pub signatures: Vec<SignatureEntry>,
    /// Digests of the index member bytes.
    pub digests: Option<Digests>,
    /// Key that verified (when a keyring was given).
    pub trusted_key: Option<String>,
}

impl ApkIndex {
    /// Empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// APKINDEX text (records separated by blank lines).
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        for e in &self.entries {
            s.push_str(&e.render());
            s.push('\n');
        }
        s
    }

    /// Add or replace records: an existing record with the same name,
    /// version and arch is replaced; then records are sorted by name, version
    /// and arch, so an index does not depend on the order packages came in.
    pub fn merge<I: IntoIterator<Item = IndexEntry>>(&mut self, new: I) {
        for n in new {
            match self.entries.iter_mut().find(|e| e.same_package(&n)) {
                Some(slot) => *slot = n,
                None => self.entries.push(n),
            }
        }
        // The same packages give the same index, whatever order they were built in.
        self.entries.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then_with(|| crate::version::compare(&a.version, &b.version))
                .then_with(|| a.arch.cmp(&b.arch))
        });
    }

    /// Read one package (signature + control sections only) and merge it.
    ///
    /// # Errors
    /// I/O or malformed package.
    pub fn add_package_file(&mut self, path: &Path) -> Result<()> {
        let e = IndexEntry::from_package_file(path)?;
        self.merge([e]);
        Ok(())
    }

    /// Records for a name.
    pub fn find<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a IndexEntry> + 'a {
        self.entries.iter().filter(move |e| e.name == name)
    }

    /// The unsigned index member (gzip of the `APKINDEX` + `DESCRIPTION` tar
    /// with end-of-archive).
    ///
    /// # Errors
    /// Internal I/O errors only.
    pub fn index_member(&self) -> Result<Vec<u8>> {
        let mut tar_bytes = Vec::new();
        let mut files: Vec<(&str, Vec<u8>)> = vec![
            ("APKINDEX", self.render_text().into_bytes()),
            ("DESCRIPTION", self.description.clone().into_bytes()),
        ];
        for (name, data) in files.drain(..) {
            let mut h = Header::new(name, EntryType::File);
            h.mode = 0o644;
            h.uname = "root".into();
            h.gname = "root".into();
            tar::write_entry(&mut tar_bytes, &h, &data).map_err(|e| Error::io("index tar", e))?;
        }
        tar::write_end(&mut tar_bytes).map_err(|e| Error::io("index tar", e))?;
        crate::gzip::compress(&tar_bytes, GzOptions::default())
            .map_err(|e| Error::io("index gzip", e))
    }

    /// Encode the complete `APKINDEX.tar.gz` bytes, signed when a key is given.
    ///
    /// # Errors
    /// Signing failures.
    pub fn to_bytes(
        &self,
        signer: Option<&SigningKey>,
        algorithms: &[SignatureAlgorithm],
    ) -> Result<Vec<u8>> {
        let member = self.index_member()?;
        let mut out = match signer {
            Some(k) => signature_member(k, algorithms, &member, 0)?,
            None => Vec::new(),
        };
        out.extend_from_slice(&member);
        Ok(out)
    }

    /// Write `APKINDEX.tar.gz` atomically, signed (SHA-256) when a key is given.
    ///
    /// # Errors
    /// Signing or I/O failures.
    pub fn write(&self, path: &Path, signer: Option<&SigningKey>) -> Result<()> {
        let bytes = self.to_bytes(signer, &[SignatureAlgorithm::RsaSha256])?;
        crate::keys::write_atomic(path, &bytes, 0o644)
    }

    /// Read an index file without verifying signatures.
    ///
    /// # Errors
    /// I/O or malformed index.
    pub fn read(path: &Path) -> Result<Self> {
        Ok(read_index(path, None)?.0)
    }

    /// Read an index file and verify it against a keyring.
    ///
    /// # Errors
    /// I/O, malformed index, or [`Error::Verification`].
    pub fn read_verified(path: &Path, keyring: &Keyring) -> Result<Self> {
        Ok(read_index(path, Some(keyring))?.0)
    }
}

/// Parse index bytes from a reader; verify when a keyring is given.
///
/// # Errors
/// Malformed index or failed verification.
pub fn read_index_from<R: BufRead>(
    reader: R,
    context: &str,
    keyring: Option<&Keyring>,
) -> Result<(ApkIndex, IndexSignatures)> {
    let ctx = context.to_string();
    let mut tap = TapReader::new(reader);
    if at_eof(&mut tap).map_err(|e| Error::io(&ctx, e))? {
        return Err(Error::malformed(&ctx, "empty file"));
    }
    // Peek at the first member: a signature member is small; an unsigned
    // index member may be large, so decode it only once.
    let first_is_sig = {
        let buf = tap.fill_buf().map_err(|e| Error::io(&ctx, e))?;
        first_member_is_signature(buf)
    };
    let mut sigs = IndexSignatures::default();
    if first_is_sig {
        let m = read_small_member(&mut tap, "signature section", 1 << 20)
            .map_err(|e| e.within(&ctx))?;
        for (h, data) in m.entries {
            let Some((tag, key)) = parse_signature_name(&h.path) else {
                return Err(Error::malformed(
                    &ctx,
                    format!("unexpected entry {:?} in signature section", h.path),
                ));
            };
            sigs.signatures.push(SignatureEntry {
                algorithm: SignatureAlgorithm::from_tag(tag),
                tag: tag.to_string(),
                key_name: key.to_string(),
                signature: data,
            });
        }
        if at_eof(&mut tap).map_err(|e| Error::io(&ctx, e))? {
            return Err(Error::malformed(
                &ctx,
                "truncated index: no index section after the signature",
            ));
        }
    }
    let digest = std::sync::Arc::new(std::sync::Mutex::new(crate::keys::MultiDigest::new()));
    {
        let d = std::sync::Arc::clone(&digest);
        tap.set_tap(Some(Box::new(move |b: &[u8]| {
            if let Ok(mut g) = d.lock() {
                g.update(b);
            }
        })));
    }
    let what = format!("{ctx}: index section");
    let parsed = (|| -> Result<ApkIndex> {
        let member = MemberReader::new(&mut tap).map_err(|e| from_stream_io(&what, e))?;
        let mut tr = tar::Reader::new(member.take(MAX_INDEX_SIZE + 1));
        let mut text = None;
        let mut description = None;
        while let Some(h) = tr.next_header().map_err(|e| from_stream_io(&what, e))? {
            let mut data = Vec::new();
            tr.content()
                .read_to_end(&mut data)
                .map_err(|e| from_stream_io(&what, e))?;
            match h.path.as_str() {
                "APKINDEX" => text = Some(data),
                "DESCRIPTION" => description = Some(data),
                p if p.starts_with(".SIGN.") => {
                    return Err(Error::malformed(
                        &what,
                        "signature entry inside the index section",
                    ));
                }
                p => return Err(Error::malformed(&what, format!("unexpected entry {p:?}"))),
            }
        }
        let mut rest = tr.into_inner();
        std::io::copy(&mut rest, &mut std::io::sink()).map_err(|e| from_stream_io(&what, e))?;
        if rest.limit() == 0 {
            return Err(Error::malformed(&what, "index larger than 300 MiB"));
        }
        let text = text.ok_or_else(|| Error::malformed(&what, "no APKINDEX entry"))?;
        let text = String::from_utf8(text)
            .map_err(|_| Error::malformed(&what, "APKINDEX is not valid UTF-8"))?;
        let (entries, notes) = parse_index_text_with_notes(&text).map_err(|e| e.within(&ctx))?;
        for n in notes {
            tracing::warn!("{ctx}: {n}");
        }
        let description = String::from_utf8_lossy(&description.unwrap_or_default()).into_owned();
        Ok(ApkIndex {
            entries,
            description,
        })
    })();
    tap.set_tap(None);
    let index = parsed?;
    if !at_eof(&mut tap).map_err(|e| Error::io(&ctx, e))? {
        return Err(Error::malformed(
            &ctx,
            "unexpected bytes after the index section",
        ));
    }
    let digests = digest
        .lock()
        .map(|g| g.clone().finish())
        .map_err(|_| Error::malformed(&ctx, "digest state"))?;
    if let Some(k) = keyring {
        sigs.trusted_key = Some(verify_signatures(&sigs.signatures, &digests, k, &ctx)?);
    }
    sigs.digests = Some(digests);
    Ok((index, sigs))
}

/// Decode the first tar header inside the gzip member starting at `buf` and
/// tell whether it is a `.SIGN.` entry. Only looks at buffered bytes.
fn first_member_is_signature(buf: &[u8]) -> bool {
    let mut r = buf;
    let Ok(mut m) = MemberReader::new(&mut r) else {
        return false;
    };
    let mut block = [0u8; 512];
    let mut got = 0;
    while got < 512 {
        match m.read(&mut block[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    got >= 6 && block.starts_with(b".SIGN.")
}

/// Read an index file; verify it when a keyring is given.
///
/// # Errors
/// I/O, malformed index, failed verification (messages name the file).
pub fn read_index(path: &Path, keyring: Option<&Keyring>) -> Result<(ApkIndex, IndexSignatures)> {
    let f = File::open(path).map_err(|e| Error::io_path(path, e))?;
    read_index_from(
        BufReader::with_capacity(256 * 1024, f),
        &path.display().to_string(),
        keyring,
    )
}

/// Sign an existing index file in place (`melange sign-index`). Does nothing
/// and returns `false` when it is already signed, unless `force`, in which
/// case old signatures are replaced. The rewrite runs under the lock of the
/// index's directory ([`lock_dir`]).
///
/// # Errors
/// I/O, malformed index, signing failures.
pub fn sign_index_file(path: &Path, key: &SigningKey, force: bool) -> Result<bool> {
    let ctx = path.display().to_string();
    let read = || std::fs::read(path).map_err(|e| Error::io_path(path, e));
    if !force && first_member_is_signature(&read()?) {
        return Ok(false);
    }
    // read-modify-write: under the directory's lock, like index_packages
    let _lock = lock_dir(&parent_dir(path))?;
    let bytes = read()?;
    let signed = first_member_is_signature(&bytes);
    if signed && !force {
        return Ok(false);
    }
    let member_start = if signed {
        let mut r = &bytes[..];
        let mut tap = TapReader::new(&mut r);
        read_small_member(&mut tap, "signature section", 1 << 20).map_err(|e| e.within(&ctx))?;
        usize::try_from(tap.consumed()).map_err(|_| Error::malformed(&ctx, "offset overflow"))?
    } else {
        0
    };
    let member = &bytes[member_start..];
    // validate before signing
    read_index_from(member, &ctx, None)?;
    let mut out = signature_member(key, &[SignatureAlgorithm::RsaSha256], member, 0)?;
    out.extend_from_slice(member);
    crate::keys::write_atomic(path, &out, 0o644)?;
    Ok(true)
}

/// Build (or update with `merge`) an index from package files, like
/// `melange index`. Packages whose arch differs from `arch` (when given) are
/// skipped with a warning. Returns the index written to `output`.
///
/// Every package is read completely and must pass the integrity checks of
/// [`crate::read_package`] (safe relative paths, per-file checksums,
/// `datahash`, no truncated or trailing data) — the checks `verify` makes,
/// except the signature. The read-merge-write of `output` runs under the
/// lock of its directory ([`lock_dir`]), so concurrent updates of one index
/// (by this function, [`sign_index_file`] or the packager) never lose
/// records; the packages are read before the lock is taken.
///
/// # Errors
/// I/O or malformed packages/index.
pub fn index_packages(
    packages: &[PathBuf],
    output: &Path,
    merge_from: Option<&Path>,
    arch: Option<&str>,
    signer: Option<&SigningKey>,
) -> Result<ApkIndex> {
    let mut new = Vec::new();
    for p in packages {
        let c = crate::reader::read_package(p)?;
        let e = IndexEntry::from_pkginfo(&c.pkginfo, &c.checksum, c.file_size);
        if let Some(a) = arch
            && e.arch != a
            && e.arch != "noarch"
        {
            tracing::warn!(package = %p.display(), arch = %e.arch, wanted = %a, "skipping package of another architecture");
            continue;
        }
        new.push(e);
    }
    let _lock = lock_dir(&parent_dir(output))?;
    let mut index = match merge_from {
        Some(src) if src.exists() => ApkIndex::read(src)?,
        _ => ApkIndex::new(),
    };
    index.merge(new);
    index.write(output, signer)?;
    Ok(index)
}

/// The directory of `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Name of the lock file that serialises the writers of a directory holding
/// an index (`<out-dir>/<arch>/.melange2.lock`).
pub const LOCK_FILE_NAME: &str = ".melange2.lock";

/// An exclusive, cross-process lock on a directory holding an index: an
/// exclusive `flock` on its [`LOCK_FILE_NAME`] file, released when this
/// value is dropped (or the process dies). Not re-entrant: taking it twice in
/// one process blocks forever.
///
/// The lock file is kept after release. A holder may remove it
/// ([`DirLock::remove`]); [`lock_dir`] then notices that the file it locked
/// is no longer the one at the path and locks the new one instead.
#[derive(Debug)]
pub struct DirLock {
    file: File,
    path: PathBuf,
    created: bool,
}

impl DirLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this lock created the lock file (it did not exist before).
    pub fn created_file(&self) -> bool {
        self.created
    }

    /// Remove the lock file while still holding the lock, then release it.
    ///
    /// # Errors
    /// The file cannot be removed (the lock is released anyway).
    pub fn remove(self) -> Result<()> {
        let r = std::fs::remove_file(&self.path).map_err(|e| Error::io_path(&self.path, e));
        drop(self.file);
        r
    }
}

/// Take the lock of `dir` (which must exist), blocking until it is
/// available; logs at debug level when it has to wait.
///
/// # Errors
/// The lock file cannot be created, opened or locked.
pub fn lock_dir(dir: &Path) -> Result<DirLock> {
    use std::os::unix::fs::MetadataExt as _;
    let path = dir.join(LOCK_FILE_NAME);
    loop {
        let (file, created) = open_lock_file(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                tracing::debug!(lock = %path.display(), "waiting for the lock held by another build");
                let start = std::time::Instant::now();
                file.lock()
                    .map_err(|e| Error::io(format!("locking {}", path.display()), e))?;
                tracing::debug!(lock = %path.display(), waited = ?start.elapsed(), "lock acquired");
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::io(format!("locking {}", path.display()), e));
            }
        }
        // the holder before us may have removed the file: then ours is stale
        let held = file.metadata().map_err(|e| Error::io_path(&path, e))?;
        match std::fs::metadata(&path) {
            Ok(m) if m.dev() == held.dev() && m.ino() == held.ino() => {
                return Ok(DirLock {
                    file,
                    path,
                    created,
                });
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io_path(&path, e)),
        }
    }
}

/// Open (creating it if needed) a lock file; tells whether it was created.
fn open_lock_file(path: &Path) -> Result<(File, bool)> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true);
    // bounded: a dangling symlink at the path exists for `create_new` but
    // not for `open`
    for _ in 0..16 {
        match opts.clone().create_new(true).open(path) {
            Ok(f) => return Ok((f, true)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(Error::io(
                    format!("creating lock file {}", path.display()),
                    e,
                ));
            }
        }
        match opts.open(path) {
            Ok(f) => return Ok((f, false)),
            // removed in between: create it
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::io(
                    format!("opening lock file {}", path.display()),
                    e,
                ));
            }
        }
    }
    Err(Error::io(
        format!("opening lock file {}", path.display()),
        std::io::Error::other("it keeps appearing and disappearing (a dangling symlink?)"),
    ))
}

#[cfg(test)]
mod lock_tests {
    use super::*;

    #[test]
    fn lock_dir_excludes_and_survives_removal() {
        let tmp = tempfile::tempdir().unwrap();
        let l = lock_dir(tmp.path()).unwrap();
        assert!(l.created_file());
        let other = File::open(l.path()).unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        // the holder removes the file: the next lock makes a new one
        l.remove().unwrap();
        let again = lock_dir(tmp.path()).unwrap();
        assert!(again.created_file());
        drop(again);
        assert!(!lock_dir(tmp.path()).unwrap().created_file());
    }

    #[test]
    fn lock_dir_refuses_a_dangling_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("nowhere", tmp.path().join(LOCK_FILE_NAME)).unwrap();
        let e = lock_dir(tmp.path()).unwrap_err();
        assert!(e.to_string().contains(LOCK_FILE_NAME), "{e}");
    }
}

#[cfg(test)]
mod lenient_tests {
    use super::*;

    #[test]
    fn reads_go_apk_records_and_notes_what_it_read_leniently() {
        let text = "P:old\nV:1.0-r0\nA:x86_64\nL:\nT:\no:\nm:\nU:\nD:\np:\nc:\ni:\n\
                    t:-62135596800\nS:10\nI:\nk:0\nC:Q1abc=\nq:x\n\n";
        let (e, notes) = parse_index_text_with_notes(text).unwrap();
        assert_eq!(e.len(), 1);
        let e = &e[0];
        assert_eq!((e.build_time, e.size, e.installed_size), (0, 10, 0));
        assert_eq!((e.provider_priority, e.replaces_priority), (Some(0), None));
        assert!(e.depends.is_empty() && e.provides.is_empty() && e.install_if.is_empty());
        let all = notes.join("\n");
        assert!(all.contains("line 13: build time -62135596800"), "{all}");
        assert!(all.contains("line 15: I: \"\""), "{all}");
        assert!(all.contains("line 18: q: \"x\""), "{all}");
        assert_eq!(notes.len(), 3, "{all}");
        // the size a download is checked against stays strict
        let err = parse_index_text("P:a\nV:1\nS:-1\n").unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
    }
}
