//! The facts the ELF generator needs from one file, read with `goblin`:
//! `PT_INTERP`, `DT_NEEDED`, `DT_SONAME`, `DT_RPATH`/`DT_RUNPATH`, Go build
//! settings and, for kernel modules, the `vermagic` of `.modinfo`.
//!
//! Only the ELF header, the program headers, the dynamic array and its string
//! table (and, for Go, the section headers) are parsed, so symbol tables or
//! relocations that goblin cannot read do not hide dependencies.

use goblin::container::{Container, Ctx};
use goblin::elf::dynamic::{DT_NEEDED, DT_RPATH, DT_RUNPATH, DT_SONAME, Dynamic};
use goblin::elf::program_header::{PF_W, PT_INTERP, PT_LOAD, ProgramHeader};
use goblin::elf::section_header::SectionHeader;
use goblin::elf::{Elf, Header};

/// What one ELF file says about its dependencies.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ElfFacts {
    /// `PT_INTERP` (NUL bytes trimmed).
    pub interpreter: Option<String>,
    /// `DT_NEEDED` entries in order.
    pub needed: Vec<String>,
    /// `DT_SONAME` entries in order.
    pub sonames: Vec<String>,
    /// Directories of `DT_RUNPATH` and `DT_RPATH` (split at `:`, in order,
    /// `$ORIGIN` not expanded).
    pub search_paths: Vec<String>,
    /// `build` settings of a Go binary (`CGO_ENABLED`, `GOEXPERIMENT`, …),
    /// `None` when the file has no (readable) Go build information.
    pub go_settings: Option<Vec<(String, String)>>,
}

/// True when `prefix` starts with the ELF magic.
pub(crate) fn has_elf_magic(prefix: &[u8]) -> bool {
    prefix.starts_with(b"\x7fELF")
}

/// NUL-terminated string at `off` (lossy UTF-8).
fn cstr(bytes: &[u8], off: usize) -> Option<String> {
    let rest = bytes.get(off..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

/// Parse the dependency facts of an ELF file. `None` when it is not an ELF
/// file goblin can read (such files are skipped, as melange does).
pub(crate) fn analyze(bytes: &[u8]) -> Option<ElfFacts> {
    if !has_elf_magic(bytes) {
        return None;
    }
    let header: Header = Elf::parse_header(bytes).ok()?;
    let container = header.container().ok()?;
    let le = header.endianness().ok()?;
    let ctx = Ctx::new(container, le);
    let phdrs =
        ProgramHeader::parse(bytes, header.e_phoff as usize, header.e_phnum as usize, ctx).ok()?;
    let mut facts = ElfFacts::default();
    for ph in &phdrs {
        if ph.p_type == PT_INTERP && ph.p_filesz > 0 {
            let start = usize::try_from(ph.p_offset).ok()?;
            let len = usize::try_from(ph.p_filesz).ok()?;
            let raw = bytes.get(start..start.checked_add(len)?)?;
            let s = String::from_utf8_lossy(raw);
            facts.interpreter = Some(s.trim_matches('\0').to_string());
            break;
        }
    }
    if let Ok(Some(dynamic)) = Dynamic::parse(bytes, &phdrs, ctx) {
        let strtab = dynamic.info.strtab;
        let strsz = dynamic.info.strsz;
        let table = bytes.get(strtab..strtab.saturating_add(strsz).min(bytes.len()));
        if let Some(table) = table {
            for d in &dynamic.dyns {
                let Ok(off) = usize::try_from(d.d_val) else {
                    continue;
                };
                if d.d_tag == DT_NEEDED {
                    if let Some(s) = cstr(table, off) {
                        facts.needed.push(s);
                    }
                } else if d.d_tag == DT_SONAME
                    && let Some(s) = cstr(table, off)
                {
                    facts.sonames.push(s);
                } else if (d.d_tag == DT_RUNPATH || d.d_tag == DT_RPATH)
                    && let Some(s) = cstr(table, off)
                {
                    for dir in s.split(':').filter(|d| !d.is_empty()) {
                        if !facts.search_paths.iter().any(|p| p == dir) {
                            facts.search_paths.push(dir.to_string());
                        }
                    }
                }
            }
        }
    }
    facts.go_settings = go_build_settings(bytes, &header, &phdrs, ctx);
    Some(facts)
}

/// The `vermagic` string of a kernel module (`.modinfo` section), `None`
/// when the file is not an ELF object with one.
pub(crate) fn module_vermagic(bytes: &[u8]) -> Option<String> {
    let info = section(bytes, ".modinfo")?;
    info.split(|&b| b == 0)
        .filter_map(|kv| kv.strip_prefix(b"vermagic="))
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .next()
}

/// Contents of the section called `name`.
fn section<'a>(bytes: &'a [u8], name: &str) -> Option<&'a [u8]> {
    if !has_elf_magic(bytes) {
        return None;
    }
    let header: Header = Elf::parse_header(bytes).ok()?;
    let ctx = Ctx::new(header.container().ok()?, header.endianness().ok()?);
    if header.e_shnum == 0 {
        return None;
    }
    let shdrs =
        SectionHeader::parse(bytes, header.e_shoff as usize, header.e_shnum as usize, ctx).ok()?;
    let strtab = shdrs.get(header.e_shstrndx as usize)?;
    let so = usize::try_from(strtab.sh_offset).ok()?;
    let ss = usize::try_from(strtab.sh_size).ok()?;
    let names = bytes.get(so..so.saturating_add(ss).min(bytes.len()))?;
    let sh = shdrs
        .iter()
        .find(|sh| cstr(names, sh.sh_name).as_deref() == Some(name))?;
    let o = usize::try_from(sh.sh_offset).ok()?;
    let s = usize::try_from(sh.sh_size).ok()?;
    bytes.get(o..o.checked_add(s)?)
}

const GO_MAGIC: &[u8] = b"\xff Go buildinf:";

/// Locate Go's build information: the `.go.buildinfo` section, else the
/// first writable `PT_LOAD` segment (stripped binaries), as Go's
/// `debug/buildinfo` does.
fn go_build_settings(
    bytes: &[u8],
    header: &Header,
    phdrs: &[ProgramHeader],
    ctx: Ctx,
) -> Option<Vec<(String, String)>> {
    let mut region: Option<&[u8]> = None;
    if header.e_shnum > 0
        && let Ok(shdrs) =
            SectionHeader::parse(bytes, header.e_shoff as usize, header.e_shnum as usize, ctx)
        && let Some(strtab_hdr) = shdrs.get(header.e_shstrndx as usize)
    {
        let so = usize::try_from(strtab_hdr.sh_offset).ok()?;
        let ss = usize::try_from(strtab_hdr.sh_size).ok()?;
        if let Some(names) = bytes.get(so..so.saturating_add(ss).min(bytes.len())) {
            for sh in &shdrs {
                if cstr(names, sh.sh_name).as_deref() == Some(".go.buildinfo") {
                    let o = usize::try_from(sh.sh_offset).ok()?;
                    let s = usize::try_from(sh.sh_size).ok()?;
                    region = bytes.get(o..o.saturating_add(s).min(bytes.len()));
                    break;
                }
            }
        }
    }
    if region.is_none() {
        for ph in phdrs {
            if ph.p_type == PT_LOAD && ph.p_flags & PF_W != 0 {
                let o = usize::try_from(ph.p_offset).ok()?;
                let s = usize::try_from(ph.p_filesz).ok()?;
                region = bytes.get(o..o.saturating_add(s).min(bytes.len()));
                break;
            }
        }
    }
    let region = region?;
    // the header is 16-byte aligned inside the region
    let mut pos = None;
    let mut i = 0;
    while i + GO_MAGIC.len() <= region.len() {
        if &region[i..i + GO_MAGIC.len()] == GO_MAGIC {
            pos = Some(i);
            break;
        }
        i += 16;
    }
    let data = region.get(pos?..)?;
    parse_go_buildinfo(data, matches!(ctx.container, Container::Big))
}

fn read_uvarint(data: &[u8], pos: &mut usize) -> Option<u64> {
    let mut x: u64 = 0;
    let mut shift = 0u32;
    loop {
        let b = *data.get(*pos)?;
        *pos += 1;
        if shift >= 64 {
            return None;
        }
        x |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(x);
        }
        shift += 7;
    }
}

fn read_varstring<'a>(data: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let n = usize::try_from(read_uvarint(data, pos)?).ok()?;
    let s = data.get(*pos..pos.checked_add(n)?)?;
    *pos += n;
    Some(s)
}

/// Parse the build-info blob (Go ≥ 1.18 inline-string format; older
/// pointer-based blobs give `None`). Returns the `build` settings.
pub(crate) fn parse_go_buildinfo(data: &[u8], _is_64: bool) -> Option<Vec<(String, String)>> {
    if data.len() < 32 || !data.starts_with(GO_MAGIC) {
        return None;
    }
    let flags = data[15];
    if flags & 0x2 == 0 {
        return None;
    }
    let mut pos = 32;
    let _version = read_varstring(data, &mut pos)?;
    let mut modinfo = read_varstring(data, &mut pos)?;
    // strip the 16-byte sentinels around the module info
    if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
        modinfo = &modinfo[16..modinfo.len() - 16];
    }
    let text = String::from_utf8_lossy(modinfo);
    let mut settings = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("build\t")
            && let Some((k, v)) = rest.split_once('=')
        {
            settings.push((k.to_string(), v.to_string()));
        }
    }
    Some(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(modinfo: &str) -> Vec<u8> {
        let mut d = GO_MAGIC.to_vec();
        d.push(8); // pointer size
        d.push(2); // flags: inline strings
        d.resize(32, 0);
        let version = b"go1.22.1";
        d.push(version.len() as u8);
        d.extend_from_slice(version);
        let mut m = vec![b'0'; 16];
        m.extend_from_slice(modinfo.as_bytes());
        m.extend_from_slice(&[b'1'; 16]);
        // uvarint length (may exceed 127)
        let mut n = m.len();
        while n >= 0x80 {
            d.push((n as u8) | 0x80);
            n >>= 7;
        }
        d.push(n as u8);
        d.extend_from_slice(&m);
        d
    }

    #[test]
    fn go_settings_are_read() {
        let info = "path\texample.com/x\nbuild\tCGO_ENABLED=1\nbuild\tGOEXPERIMENT=boringcrypto\n";
        let s = parse_go_buildinfo(&blob(info), true).unwrap();
        assert_eq!(
            s,
            vec![
                ("CGO_ENABLED".to_string(), "1".to_string()),
                ("GOEXPERIMENT".to_string(), "boringcrypto".to_string())
            ]
        );
        assert!(parse_go_buildinfo(b"not a blob", true).is_none());
    }

    #[test]
    fn non_elf_is_none() {
        assert!(analyze(b"#!/bin/sh\necho hi\n").is_none());
        assert!(analyze(b"\x7fELF garbage").is_none());
    }
}
