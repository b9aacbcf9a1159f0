//! Minimal, strict tar encoder/decoder for APK segments.
//!
//! The encoder emits POSIX ustar headers (Go `archive/tar` layout: zero-padded
//! octal fields, PAX `x` headers named `<dir>/PaxHeaders.0/<base>` with sorted
//! records) and never writes end-of-archive blocks unless asked, because the
//! signature and control parts of an APK must not contain them.
//!
//! The decoder accepts ustar/GNU headers, PAX (`x`/`g`) records and GNU long
//! names, enforces size limits on metadata and rejects v7 headers, bad
//! checksums and unsupported entry types.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

/// Tar block size.
pub const BLOCK: usize = 512;

/// Largest PAX/long-name payload accepted by the reader (1 MiB).
pub const MAX_META_SIZE: u64 = 1 << 20;

/// PAX key carrying the SHA-1 of a file's content (hex).
pub const PAX_CHECKSUM: &str = "APK-TOOLS.checksum.SHA1";
/// PAX key prefix for extended attributes.
pub const PAX_XATTR: &str = "SCHILY.xattr.";

/// Type of a tar entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntryType {
    /// Regular file (`0`, NUL or `7`).
    File,
    /// Hard link to an earlier entry (`1`).
    HardLink,
    /// Symbolic link (`2`).
    Symlink,
    /// Character device (`3`).
    CharDevice,
    /// Block device (`4`).
    BlockDevice,
    /// Directory (`5`).
    Directory,
    /// FIFO (`6`).
    Fifo,
}

impl EntryType {
    fn flag(self) -> u8 {
        match self {
            EntryType::File => b'0',
            EntryType::HardLink => b'1',
            EntryType::Symlink => b'2',
            EntryType::CharDevice => b'3',
            EntryType::BlockDevice => b'4',
            EntryType::Directory => b'5',
            EntryType::Fifo => b'6',
        }
    }
}

/// A decoded (or to-be-encoded) tar header with PAX records applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Entry path as stored (no normalisation).
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
    /// Modification time (Unix seconds).
    pub mtime: u64,
    /// Content size (0 for everything but regular files).
    pub size: u64,
    /// Link target (symlinks and hard links).
    pub link: String,
    /// Device major number.
    pub devmajor: u32,
    /// Device minor number.
    pub devminor: u32,
    /// PAX records that are not one of the standard header overrides
    /// (checksum, xattrs, unknown keys), sorted by key.
    pub pax: BTreeMap<String, Vec<u8>>,
}

impl Header {
    /// A header with defaults (root-owned, mode 0644, mtime 0).
    pub fn new(path: impl Into<String>, kind: EntryType) -> Self {
        Header {
            path: path.into(),
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            uname: String::new(),
            gname: String::new(),
            mtime: 0,
            size: 0,
            link: String::new(),
            devmajor: 0,
            devminor: 0,
            pax: BTreeMap::new(),
        }
    }
}

// ---------------------------------------------------------------- encoding

fn put_str(field: &mut [u8], s: &[u8]) {
    let n = s.len().min(field.len());
    field[..n].copy_from_slice(&s[..n]);
}

/// Zero-padded octal with a trailing NUL (Go style). Caller checks it fits.
fn put_octal(field: &mut [u8], v: u64) {
    let digits = field.len() - 1;
    let s = format!("{v:0digits$o}");
    put_str(field, s.as_bytes());
    field[digits] = 0;
}

fn fits_octal(v: u64, field_len: usize) -> bool {
    let digits = u32::try_from(field_len - 1).unwrap_or(0);
    v < 8u64.saturating_pow(digits)
}

/// One PAX record `"<len> <key>=<value>\n"` where len counts the whole record.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // ' ' '=' '\n'
    let mut len = body + 1;
    loop {
        let total = body + len.to_string().len();
        if total == len {
            break;
        }
        len = total;
    }
    let mut rec = Vec::with_capacity(len);
    rec.extend_from_slice(len.to_string().as_bytes());
    rec.push(b' ');
    rec.extend_from_slice(key.as_bytes());
    rec.push(b'=');
    rec.extend_from_slice(value);
    rec.push(b'\n');
    rec
}

/// Split a path into ustar (prefix, name) if possible.
fn split_ustar(path: &str) -> Option<(&str, &str)> {
    if path.len() <= 100 {
        return Some(("", path));
    }
    if path.len() > 256 {
        return None;
    }
    // find a '/' such that prefix <= 155 and name <= 100 and name non-empty
    let bytes = path.as_bytes();
    let start = path.len().saturating_sub(101);
    (start..path.len().min(156))
        .find(|&i| bytes[i] == b'/' && path.len() - i - 1 <= 100 && i + 1 < path.len())
        .map(|i| (&path[..i], &path[i + 1..]))
}

fn pax_header_name(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    let name = match trimmed.rfind('/') {
        Some(i) => format!("{}/PaxHeaders.0/{}", &trimmed[..i], &trimmed[i + 1..]),
        None => format!("PaxHeaders.0/{trimmed}"),
    };
    let mut end = name.len().min(100);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

fn checksum_field(block: &mut [u8; BLOCK]) {
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    block[148..156].copy_from_slice(s.as_bytes());
}

fn raw_header(
    name: &str,
    prefix: &str,
    h: &Header,
    flag: u8,
    size: u64,
    ustar_numbers: bool,
) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    put_str(&mut b[0..100], name.as_bytes());
    let num = |v: u64, len: usize| if fits_octal(v, len) { v } else { 0 };
    put_octal(&mut b[100..108], u64::from(h.mode & 0o7777));
    put_octal(&mut b[108..116], num(h.uid, 8));
    put_octal(&mut b[116..124], num(h.gid, 8));
    put_octal(&mut b[124..136], num(size, 12));
    put_octal(&mut b[136..148], num(h.mtime, 12));
    b[156] = flag;
    put_str(&mut b[157..257], h.link.as_bytes());
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    put_str(&mut b[265..297], h.uname.as_bytes());
    put_str(&mut b[297..329], h.gname.as_bytes());
    if ustar_numbers {
        put_octal(&mut b[329..337], u64::from(h.devmajor));
        put_octal(&mut b[337..345], u64::from(h.devminor));
    }
    put_str(&mut b[345..500], prefix.as_bytes());
    checksum_field(&mut b);
    b
}

/// Zero padding needed after `size` bytes of content.
pub fn padding(size: u64) -> usize {
    let rem = (size % BLOCK as u64) as usize;
    if rem == 0 { 0 } else { BLOCK - rem }
}

/// Write the header block(s) for `h` (a PAX `x` entry first when needed).
/// The caller then writes exactly `h.size` content bytes and [`padding`].
///
/// # Errors
/// I/O errors of `w`.
pub fn write_header<W: Write>(w: &mut W, h: &Header) -> io::Result<()> {
    let mut records: BTreeMap<String, Vec<u8>> = h.pax.clone();
    let ascii = |s: &str| s.is_ascii();
    let mut name = h.path.as_str();
    let mut prefix = "";
    let need_pax_for_path = !ascii(&h.path) || (!records.is_empty() && h.path.len() > 100);
    if need_pax_for_path {
        records.insert("path".into(), h.path.as_bytes().to_vec());
    } else if let Some((p, n)) = split_ustar(&h.path) {
        prefix = p;
        name = n;
    } else {
        records.insert("path".into(), h.path.as_bytes().to_vec());
    }
    if !ascii(&h.link) || h.link.len() > 100 {
        records.insert("linkpath".into(), h.link.as_bytes().to_vec());
    }
    if !fits_octal(h.size, 12) {
        records.insert("size".into(), h.size.to_string().into_bytes());
    }
    if !fits_octal(h.uid, 8) {
        records.insert("uid".into(), h.uid.to_string().into_bytes());
    }
    if !fits_octal(h.gid, 8) {
        records.insert("gid".into(), h.gid.to_string().into_bytes());
    }
    if !fits_octal(h.mtime, 12) {
        records.insert("mtime".into(), h.mtime.to_string().into_bytes());
    }
    if !ascii(&h.uname) || h.uname.len() > 32 {
        records.insert("uname".into(), h.uname.as_bytes().to_vec());
    }
    if !ascii(&h.gname) || h.gname.len() > 32 {
        records.insert("gname".into(), h.gname.as_bytes().to_vec());
    }
    if records.contains_key("path") {
        // the ustar name field gets a truncated ASCII-safe copy
        prefix = "";
        name = "";
    }
    let truncated_name;
    if name.is_empty() && records.contains_key("path") {
        let mut end = h.path.len().min(100);
        while !h.path.is_char_boundary(end) {
            end -= 1;
        }
        truncated_name = h.path[..end].to_string();
        name = &truncated_name;
    }
    if !records.is_empty() {
        let mut data = Vec::new();
        for (k, v) in &records {
            data.extend_from_slice(&pax_record(k, v));
        }
        let ph = Header::new(pax_header_name(&h.path), EntryType::File);
        let ph = Header { mode: 0, ..ph };
        let block = raw_header(&ph.path, "", &ph, b'x', data.len() as u64, false);
        w.write_all(&block)?;
        w.write_all(&data)?;
        w.write_all(&[0u8; BLOCK][..padding(data.len() as u64)])?;
    }
    let size = if h.kind == EntryType::File { h.size } else { 0 };
    let mut hh = h.clone();
    if records.contains_key("linkpath") {
        let mut end = hh.link.len().min(100);
        while !hh.link.is_char_boundary(end) {
            end -= 1;
        }
        hh.link.truncate(end);
    }
    if records.contains_key("uname") {
        hh.uname.clear();
    }
    if records.contains_key("gname") {
        hh.gname.clear();
    }
    let block = raw_header(name, prefix, &hh, h.kind.flag(), size, true);
    w.write_all(&block)
}

/// Write a complete entry with in-memory content (`h.size` is set from it).
///
/// # Errors
/// I/O errors of `w`.
pub fn write_entry<W: Write>(w: &mut W, h: &Header, content: &[u8]) -> io::Result<()> {
    let mut h = h.clone();
    h.size = content.len() as u64;
    write_header(w, &h)?;
    w.write_all(content)?;
    w.write_all(&[0u8; BLOCK][..padding(h.size)])
}

/// Write the end-of-archive marker (two zero blocks).
///
/// # Errors
/// I/O errors of `w`.
pub fn write_end<W: Write>(w: &mut W) -> io::Result<()> {
    w.write_all(&[0u8; 2 * BLOCK])
}

// ---------------------------------------------------------------- decoding

fn malformed(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn field_str(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

fn parse_numeric(field: &[u8], what: &str) -> io::Result<u64> {
    if field.first().is_some_and(|&b| b & 0x80 != 0) {
        // GNU base-256
        if field[0] & 0x40 != 0 {
            return Err(malformed(format!("negative {what} in tar header")));
        }
        let mut v: u64 = u64::from(field[0] & 0x3f);
        for &b in &field[1..] {
            v = v
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(b)))
                .ok_or_else(|| malformed(format!("{what} overflows in tar header")))?;
        }
        return Ok(v);
    }
    let s = field_str(field);
    let s = s
        .iter()
        .copied()
        .skip_while(|&b| b == b' ')
        .take_while(|&b| b != b' ')
        .collect::<Vec<u8>>();
    if s.is_empty() {
        return Ok(0);
    }
    let mut v: u64 = 0;
    for &c in &s {
        if !(b'0'..=b'7').contains(&c) {
            return Err(malformed(format!("invalid octal {what} in tar header")));
        }
        v = v
            .checked_mul(8)
            .and_then(|v| v.checked_add(u64::from(c - b'0')))
            .ok_or_else(|| malformed(format!("{what} overflows in tar header")))?;
    }
    Ok(v)
}

fn utf8(bytes: &[u8], what: &str) -> io::Result<String> {
    if bytes.contains(&0) {
        return Err(malformed(format!("NUL byte in {what}")));
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| malformed(format!("{what} is not valid UTF-8")))
}

/// Parse PAX extended header data into records.
fn parse_pax(data: &[u8]) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        // trailing NUL padding is tolerated
        if rest.iter().all(|&b| b == 0) {
            break;
        }
        let sp = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| malformed("malformed PAX record"))?;
        let len: usize = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| malformed("malformed PAX record length"))?;
        if len <= sp + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(malformed("malformed PAX record"));
        }
        let rec = &rest[sp + 1..len - 1];
        let eq = rec
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| malformed("PAX record without '='"))?;
        let key = utf8(&rec[..eq], "PAX key")?;
        out.push((key, rec[eq + 1..].to_vec()));
        rest = &rest[len..];
    }
    Ok(out)
}

/// Streaming tar decoder over any reader.
pub struct Reader<R: Read> {
    inner: R,
    /// Content bytes of the current entry not yet consumed.
    remaining: u64,
    /// Padding after the current entry.
    pad: usize,
    finished: bool,
    /// True once an end-of-archive marker was seen.
    saw_end: bool,
}

impl<R: Read> std::fmt::Debug for Reader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("tar::Reader")
            .field("remaining", &self.remaining)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

/// Read a full block; `Ok(false)` on clean EOF before any byte.
fn read_block<R: Read>(r: &mut R, block: &mut [u8; BLOCK]) -> io::Result<bool> {
    let mut got = 0;
    while got < BLOCK {
        match r.read(&mut block[got..]) {
            Ok(0) => {
                if got == 0 {
                    return Ok(false);
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "truncated tar header",
                ));
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

impl<R: Read> Reader<R> {
    /// Start decoding.
    pub fn new(inner: R) -> Self {
        Reader {
            inner,
            remaining: 0,
            pad: 0,
            finished: false,
            saw_end: false,
        }
    }

    /// Whether an end-of-archive marker was read.
    pub fn saw_end_marker(&self) -> bool {
        self.saw_end
    }

    /// Unwrap.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Mutable access to the inner reader.
    pub fn inner_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    fn skip_current(&mut self) -> io::Result<()> {
        let n = self.remaining + self.pad as u64;
        let copied = io::copy(&mut (&mut self.inner).take(n), &mut io::sink())?;
        if copied != n {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated tar entry data",
            ));
        }
        self.remaining = 0;
        self.pad = 0;
        Ok(())
    }

    fn read_meta(&mut self, size: u64) -> io::Result<Vec<u8>> {
        if size > MAX_META_SIZE {
            return Err(malformed(format!(
                "tar metadata entry too large ({size} bytes)"
            )));
        }
        let total = size + padding(size) as u64;
        let mut data = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        (&mut self.inner).take(total).read_to_end(&mut data)?;
        if (data.len() as u64) != total {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated tar metadata entry",
            ));
        }
        data.truncate(usize::try_from(size).unwrap_or(0));
        Ok(data)
    }

    /// Advance to the next entry. Returns `Ok(None)` at end-of-archive or at a
    /// clean end of input on a block boundary (APK signature/control parts have
    /// no end-of-archive marker).
    ///
    /// # Errors
    /// `InvalidData` for malformed headers, `UnexpectedEof` for truncation.
    pub fn next_header(&mut self) -> io::Result<Option<Header>> {
        if self.finished {
            return Ok(None);
        }
        self.skip_current()?;
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut block = [0u8; BLOCK];
        loop {
            if !read_block(&mut self.inner, &mut block)? {
                if !pax.is_empty() || long_name.is_some() || long_link.is_some() {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "tar extended header not followed by an entry",
                    ));
                }
                self.finished = true;
                return Ok(None);
            }
            if block.iter().all(|&b| b == 0) {
                self.finished = true;
                self.saw_end = true;
                // consume the optional second zero block; ignore what follows
                let mut second = [0u8; BLOCK];
                let _ = read_block(&mut self.inner, &mut second);
                return Ok(None);
            }
            let stored = parse_numeric(&block[148..156], "checksum")?;
            let mut unsigned: u64 = 0;
            let mut signed: i64 = 0;
            for (i, &b) in block.iter().enumerate() {
                let b = if (148..156).contains(&i) { b' ' } else { b };
                unsigned += u64::from(b);
                signed += i64::from(b as i8);
            }
            if stored != unsigned && i64::try_from(stored).ok() != Some(signed) {
                return Err(malformed("tar header checksum mismatch"));
            }
            if &block[257..262] != b"ustar" {
                return Err(malformed(
                    "tar header without ustar magic (v7 tar is not supported)",
                ));
            }
            let gnu = &block[257..265] == b"ustar  \0";
            let flag = block[156];
            let size = parse_numeric(&block[124..136], "size")?;
            match flag {
                b'x' => {
                    let data = self.read_meta(size)?;
                    pax.extend(parse_pax(&data)?);
                    continue;
                }
                b'g' => {
                    // global records: parsed for validity, not applied
                    let data = self.read_meta(size)?;
                    parse_pax(&data)?;
                    continue;
                }
                b'L' => {
                    let data = self.read_meta(size)?;
                    long_name = Some(field_str(&data).to_vec());
                    continue;
                }
                b'K' => {
                    let data = self.read_meta(size)?;
                    long_link = Some(field_str(&data).to_vec());
                    continue;
                }
                _ => {}
            }
            let kind = match flag {
                b'0' | 0 | b'7' => EntryType::File,
                b'1' => EntryType::HardLink,
                b'2' => EntryType::Symlink,
                b'3' => EntryType::CharDevice,
                b'4' => EntryType::BlockDevice,
                b'5' => EntryType::Directory,
                b'6' => EntryType::Fifo,
                other => {
                    return Err(malformed(format!(
                        "unsupported tar entry type {:?}",
                        char::from(other)
                    )));
                }
            };
            let mut path_bytes = field_str(&block[0..100]).to_vec();
            if !gnu {
                let prefix = field_str(&block[345..500]);
                if !prefix.is_empty() {
                    let mut p = prefix.to_vec();
                    p.push(b'/');
                    p.extend_from_slice(&path_bytes);
                    path_bytes = p;
                }
            }
            if let Some(n) = long_name.take() {
                path_bytes = n;
            }
            let mut link_bytes = field_str(&block[157..257]).to_vec();
            if let Some(l) = long_link.take() {
                link_bytes = l;
            }
            let mut h = Header {
                path: String::new(),
                kind,
                mode: u32::try_from(parse_numeric(&block[100..108], "mode")? & 0o7777).unwrap_or(0),
                uid: parse_numeric(&block[108..116], "uid")?,
                gid: parse_numeric(&block[116..124], "gid")?,
                uname: String::from_utf8_lossy(field_str(&block[265..297])).into_owned(),
                gname: String::from_utf8_lossy(field_str(&block[297..329])).into_owned(),
                mtime: parse_numeric(&block[136..148], "mtime")?,
                size,
                link: String::new(),
                devmajor: u32::try_from(parse_numeric(&block[329..337], "devmajor")?)
                    .map_err(|_| malformed("devmajor out of range"))?,
                devminor: u32::try_from(parse_numeric(&block[337..345], "devminor")?)
                    .map_err(|_| malformed("devminor out of range"))?,
                pax: BTreeMap::new(),
            };
            for (k, v) in pax.drain(..) {
                let num = |v: &[u8], what: &str| -> io::Result<u64> {
                    let s =
                        std::str::from_utf8(v).map_err(|_| malformed(format!("bad PAX {what}")))?;
                    let int = s.split('.').next().unwrap_or("");
                    int.parse::<u64>()
                        .map_err(|_| malformed(format!("bad PAX {what} {s:?}")))
                };
                match k.as_str() {
                    "path" => path_bytes = v,
                    "linkpath" => link_bytes = v,
                    "size" => h.size = num(&v, "size")?,
                    "uid" => h.uid = num(&v, "uid")?,
                    "gid" => h.gid = num(&v, "gid")?,
                    "mtime" => h.mtime = num(&v, "mtime")?,
                    "uname" => h.uname = utf8(&v, "PAX uname")?,
                    "gname" => h.gname = utf8(&v, "PAX gname")?,
                    "atime" | "ctime" => {}
                    _ => {
                        h.pax.insert(k, v);
                    }
                }
            }
            h.path = utf8(&path_bytes, "tar entry path")?;
            h.link = utf8(&link_bytes, "tar link target")?;
            if h.kind != EntryType::File {
                h.size = 0;
            }
            self.remaining = h.size;
            self.pad = padding(h.size);
            return Ok(Some(h));
        }
    }

    /// Read content of the current entry (returns 0 at its end).
    ///
    /// # Errors
    /// I/O errors; `UnexpectedEof` if the archive ends inside the content.
    pub fn read_content(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = usize::try_from(self.remaining.min(buf.len() as u64)).unwrap_or(buf.len());
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated tar entry data",
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }

    /// A `Read` over the current entry's content.
    pub fn content(&mut self) -> Content<'_, R> {
        Content { r: self }
    }
}

/// Reader over the content of the current tar entry.
#[derive(Debug)]
pub struct Content<'a, R: Read> {
    r: &'a mut Reader<R>,
}

impl<R: Read> Read for Content<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.r.read_content(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths() {
        let r = pax_record("path", b"x");
        assert_eq!(r, b"9 path=x\n");
        let long = vec![b'a'; 95];
        let r = pax_record("path", &long);
        assert_eq!(
            r.len(),
            std::str::from_utf8(&r[..3])
                .unwrap()
                .parse::<usize>()
                .unwrap()
        );
    }

    #[test]
    fn roundtrip_headers_and_tar_crate_agrees() {
        let mut buf = Vec::new();
        let long_path = format!("usr/share/{}/file", "d".repeat(150));
        let mut h = Header::new("usr/bin/foo", EntryType::File);
        h.mode = 0o4755;
        h.uname = "root".into();
        h.pax.insert(PAX_CHECKSUM.into(), b"abcd".to_vec());
        write_entry(&mut buf, &h, b"hello").unwrap();
        let h2 = Header::new(long_path.clone(), EntryType::File);
        write_entry(&mut buf, &h2, b"").unwrap();
        let mut h3 = Header::new("usr/lib/x.so", EntryType::Symlink);
        h3.link = format!("/{}", "l".repeat(120));
        write_entry(&mut buf, &h3, b"").unwrap();
        write_end(&mut buf).unwrap();

        let mut r = Reader::new(&buf[..]);
        let a = r.next_header().unwrap().unwrap();
        assert_eq!(a.path, "usr/bin/foo");
        assert_eq!(a.mode, 0o4755);
        assert_eq!(a.pax.get(PAX_CHECKSUM).unwrap(), b"abcd");
        let mut s = String::new();
        r.content().read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
        assert_eq!(r.next_header().unwrap().unwrap().path, long_path);
        assert_eq!(r.next_header().unwrap().unwrap().link, h3.link);
        assert!(r.next_header().unwrap().is_none());
        assert!(r.saw_end_marker());

        let mut ar = ::tar::Archive::new(&buf[..]);
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            vec!["usr/bin/foo".to_string(), long_path, "usr/lib/x.so".into()]
        );
    }

    #[test]
    fn rejects_bad_headers() {
        let mut buf = Vec::new();
        write_entry(&mut buf, &Header::new("a", EntryType::File), b"x").unwrap();
        let mut bad = buf.clone();
        bad[0] = b'b'; // checksum now wrong
        assert!(Reader::new(&bad[..]).next_header().is_err());
        let mut v7 = buf.clone();
        v7[257..265].fill(0);
        assert!(Reader::new(&v7[..]).next_header().is_err());
        let trunc = &buf[..700];
        let mut r = Reader::new(trunc);
        r.next_header().unwrap();
        assert!(r.next_header().is_err());
    }
}
