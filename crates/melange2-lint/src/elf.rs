//! Just enough ELF to lint: the header (type, machine) and the section
//! names, read with positional reads so a 500 MiB binary costs a few
//! kilobytes of I/O.

use std::io;

use crate::input::PackageFiles;

/// `e_type` values.
pub(crate) const ET_EXEC: u16 = 2;
pub(crate) const ET_DYN: u16 = 3;

/// `e_machine` values the linters care about.
pub(crate) const EM_NONE: u16 = 0;
pub(crate) const EM_X86_64: u16 = 62;
pub(crate) const EM_AARCH64: u16 = 183;
pub(crate) const EM_BPF: u16 = 247;

const SHN_XINDEX: u32 = 0xffff;
/// Limits against hostile headers.
const MAX_SECTION_TABLE: u64 = 64 << 20;
const MAX_STRTAB: u64 = 16 << 20;

/// The ELF header fields used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) is64: bool,
    pub(crate) le: bool,
    pub(crate) e_type: u16,
    pub(crate) machine: u16,
    shoff: u64,
    shentsize: u16,
    shnum: u16,
    shstrndx: u16,
}

fn u16_at(b: &[u8], off: usize, le: bool) -> Option<u16> {
    let s: [u8; 2] = b.get(off..off + 2)?.try_into().ok()?;
    Some(if le {
        u16::from_le_bytes(s)
    } else {
        u16::from_be_bytes(s)
    })
}

fn u32_at(b: &[u8], off: usize, le: bool) -> Option<u32> {
    let s: [u8; 4] = b.get(off..off + 4)?.try_into().ok()?;
    Some(if le {
        u32::from_le_bytes(s)
    } else {
        u32::from_be_bytes(s)
    })
}

fn u64_at(b: &[u8], off: usize, le: bool) -> Option<u64> {
    let s: [u8; 8] = b.get(off..off + 8)?.try_into().ok()?;
    Some(if le {
        u64::from_le_bytes(s)
    } else {
        u64::from_be_bytes(s)
    })
}

/// Parse the ELF header from the first bytes of a file (`None`: not ELF).
pub(crate) fn parse_header(b: &[u8]) -> Option<Header> {
    if b.get(..4)? != b"\x7fELF" {
        return None;
    }
    let is64 = match b.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let le = match b.get(5)? {
        1 => true,
        2 => false,
        _ => return None,
    };
    let e_type = u16_at(b, 16, le)?;
    let machine = u16_at(b, 18, le)?;
    let (shoff, rest) = if is64 {
        (u64_at(b, 0x28, le)?, 0x3A)
    } else {
        (u64::from(u32_at(b, 0x20, le)?), 0x2E)
    };
    Some(Header {
        is64,
        le,
        e_type,
        machine,
        shoff,
        shentsize: u16_at(b, rest, le)?,
        shnum: u16_at(b, rest + 2, le)?,
        shstrndx: u16_at(b, rest + 4, le)?,
    })
}

/// Bytes needed by [`parse_header`].
pub(crate) const HEADER_LEN: usize = 64;

/// One section (only its name matters to the linters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Section {
    pub(crate) name: String,
}

/// Every section of the file (empty when it has no section table).
pub(crate) fn sections(files: &PackageFiles, index: usize, h: &Header) -> io::Result<Vec<Section>> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    if h.shoff == 0 {
        return Ok(Vec::new());
    }
    let entsize = u64::from(h.shentsize);
    let min = if h.is64 { 64 } else { 40 };
    if entsize < min {
        return Err(bad("section header entries too small"));
    }
    // section 0 holds the real count / string table index when they overflow
    let first = files.read_range(index, h.shoff, usize::try_from(entsize).unwrap_or(64))?;
    if first.len() < min as usize {
        return Err(bad("truncated section header table"));
    }
    let (size_off, link_off) = if h.is64 { (0x20, 0x28) } else { (0x14, 0x18) };
    let mut count = u64::from(h.shnum);
    if count == 0 {
        count = if h.is64 {
            u64_at(&first, size_off, h.le).unwrap_or(0)
        } else {
            u64::from(u32_at(&first, size_off, h.le).unwrap_or(0))
        };
    }
    let mut strndx = u32::from(h.shstrndx);
    if strndx == SHN_XINDEX {
        strndx = u32_at(&first, link_off, h.le).unwrap_or(0);
    }
    let table_len = count
        .checked_mul(entsize)
        .filter(|n| *n <= MAX_SECTION_TABLE)
        .ok_or_else(|| bad("section header table too large"))?;
    let table = files.read_range(index, h.shoff, usize::try_from(table_len).unwrap_or(0))?;
    if (table.len() as u64) < table_len {
        return Err(bad("truncated section header table"));
    }
    let es = usize::try_from(entsize).unwrap_or(64);
    let raw: Vec<(u32, u64, u64)> = table
        .chunks_exact(es)
        .filter_map(|s| {
            let name = u32_at(s, 0, h.le)?;
            let (off, size) = if h.is64 {
                (u64_at(s, 0x18, h.le)?, u64_at(s, 0x20, h.le)?)
            } else {
                (
                    u64::from(u32_at(s, 0x10, h.le)?),
                    u64::from(u32_at(s, 0x14, h.le)?),
                )
            };
            Some((name, off, size))
        })
        .collect();
    let strtab = match raw.get(strndx as usize) {
        Some(&(_, off, size)) if size <= MAX_STRTAB => {
            files.read_range(index, off, usize::try_from(size).unwrap_or(0))?
        }
        _ => Vec::new(),
    };
    Ok(raw
        .into_iter()
        .map(|(name, _, _)| {
            let name = strtab
                .get(name as usize..)
                .map(|s| {
                    let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
                    String::from_utf8_lossy(&s[..end]).into_owned()
                })
                .unwrap_or_default();
            Section { name }
        })
        .collect())
}

/// Why a file counts as unstripped (`None`: stripped). As melange, only debug
/// information counts: a section named `.debug*` or `.zdebug*` (compressed
/// DWARF), whatever its size. The symbol table (`.symtab`) is not debug
/// information: `strip -g`, which the `strip` pipeline runs, keeps it.
pub(crate) fn unstripped_reason(sections: &[Section]) -> Option<String> {
    let debug: Vec<&str> = sections
        .iter()
        .filter(|s| is_debug_section(&s.name))
        .map(|s| s.name.as_str())
        .collect();
    if debug.is_empty() {
        None
    } else {
        Some(format!("debug sections ({})", debug.join(", ")))
    }
}

/// `.debug`, `.debug_info`, `.zdebug_line`, … (not `.gnu_debuglink`, which only
/// names a separate debug file).
fn is_debug_section(name: &str) -> bool {
    name.starts_with(".debug") || name.starts_with(".zdebug")
}

/// Human name of an `e_machine` value.
pub(crate) fn machine_name(m: u16) -> String {
    let n = match m {
        3 => "i386",
        8 => "mips",
        20 => "powerpc",
        21 => "powerpc64",
        22 => "s390",
        40 => "arm",
        2 => "sparc",
        43 => "sparcv9",
        50 => "ia64",
        62 => "x86_64",
        183 => "aarch64",
        243 => "riscv",
        258 => "loongarch",
        _ => return format!("machine {m}"),
    };
    n.to_string()
}
