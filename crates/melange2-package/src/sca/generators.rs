//! The generators beyond shared objects, commands and pkg-config (spec F.3):
//! `-doc` packages, perl, python, ruby, shebang interpreters and kernel
//! images/modules. Each one appends [`ScaFinding`]s naming the file and the
//! reason.

use std::io::Read;

use melange2_apk::tree::{EntryKind, TreeEntry};

use super::{FindingKind, Generated, basename, elf, is_in_dir};
use crate::ingest;

/// Interpreters a shebang never turns into a `cmd:` depend (melange's list).
pub const IGNORED_INTERPRETERS: [&str; 5] = ["python3", "python", "sh", "awk", "luajit"];

/// Directory prefixes (recursive) whose scripts are scanned for shebangs.
pub const SHEBANG_DIRS: [&str; 3] = ["usr/bin/", "usr/local/bin/", "usr/local/sbin/"];

/// Bytes of a file read to find its `#!` line.
const SHEBANG_BYTES: usize = 80;

/// `-doc` packages: entries directly in `usr/share/man` need `man-db`, in
/// `usr/share/info` need `texinfo`.
pub(crate) fn doc(package: &str, entry: &TreeEntry, g: &mut Generated) {
    if !package.ends_with("-doc") {
        return;
    }
    for (dir, dep) in [("usr/share/man", "man-db"), ("usr/share/info", "texinfo")] {
        if is_in_dir(&entry.path, &[dir]) {
            g.add(
                FindingKind::Depend,
                dep.to_string(),
                &entry.path,
                "doc",
                format!("documentation in {dir} of a -doc package"),
            );
        }
    }
}

/// True when `declared` has an entry for which `pred` holds (a declared
/// interpreter dependency switches a language generator off).
fn declared(declared: &[String], pred: impl Fn(&str) -> bool) -> Option<&str> {
    declared.iter().map(String::as_str).find(|d| pred(d))
}

/// perl: a `usr/lib/perlN*/X_perl` (or `lib/…`) directory → `perl~N`,
/// unless `perl` is declared.
pub(crate) fn perl(entries: &[&TreeEntry], declared_runtime: &[String], g: &mut Generated) {
    let mut found = None;
    for e in entries {
        let parts: Vec<&str> = e.path.split('/').collect();
        let rest = match parts.as_slice() {
            ["usr", "lib", p, d] | ["lib", p, d] => Some((*p, *d)),
            _ => None,
        };
        let Some((perl_dir, sub)) = rest else {
            continue;
        };
        let Some(ver) = perl_dir.strip_prefix("perl") else {
            continue;
        };
        if !ver.starts_with(|c: char| c.is_ascii_digit()) || !sub.ends_with("_perl") {
            continue;
        }
        found = Some((e.path.clone(), ver.to_string()));
        break;
    }
    let Some((path, ver)) = found else { return };
    if let Some(d) = declared(declared_runtime, |d| d == "perl") {
        g.warnings.push(format!(
            "{path}: perl modules found, but {d:?} is declared; no perl~{ver} depend added"
        ));
        return;
    }
    g.add(
        FindingKind::Depend,
        format!("perl~{ver}"),
        &path,
        "perl",
        format!("perl module directory for perl {ver}"),
    );
}

/// python: a `…/pythonX.Y/site-packages` directory → `python-X.Y-base`,
/// unless a runtime dependency starting with `python` is declared.
pub(crate) fn python(entries: &[&TreeEntry], declared_runtime: &[String], g: &mut Generated) {
    let mut found = None;
    for e in entries {
        if !matches!(e.kind, EntryKind::Directory) || basename(&e.path) != "site-packages" {
            continue;
        }
        let Some((parent, _)) = e.path.rsplit_once('/') else {
            continue;
        };
        let Some(ver) = basename(parent).strip_prefix("python") else {
            continue;
        };
        if ver.is_empty() || !ver.chars().all(|c| c.is_ascii_digit() || c == '.') {
            continue;
        }
        found = Some((e.path.clone(), ver.to_string()));
        break;
    }
    let Some((path, ver)) = found else { return };
    if let Some(d) = declared(declared_runtime, |d| d.starts_with("python")) {
        g.warnings.push(format!(
            "{path}: Python modules found, but {d:?} is declared; no python-{ver}-base depend added"
        ));
        return;
    }
    g.add(
        FindingKind::Depend,
        format!("python-{ver}-base"),
        &path,
        "python",
        format!("Python {ver} site-packages directory"),
    );
}

/// ruby: a `usr/lib/ruby/gems/X.Y.Z/gems` directory → `ruby-X.Y`, unless
/// `ruby` or `ruby-*` is declared.
pub(crate) fn ruby(entries: &[&TreeEntry], declared_runtime: &[String], g: &mut Generated) {
    let mut found = None;
    for e in entries {
        let Some(rest) = e.path.strip_prefix("usr/lib/ruby/gems/") else {
            continue;
        };
        let Some((ver, "gems")) = rest.split_once('/') else {
            continue;
        };
        let mut parts = ver.split('.');
        let (Some(major), Some(minor)) = (parts.next(), parts.next()) else {
            continue;
        };
        if major.is_empty() || minor.is_empty() {
            continue;
        }
        found = Some((e.path.clone(), format!("{major}.{minor}")));
        break;
    }
    let Some((path, ver)) = found else { return };
    if let Some(d) = declared(declared_runtime, |d| d == "ruby" || d.starts_with("ruby-")) {
        g.warnings.push(format!(
            "{path}: Ruby gems found, but {d:?} is declared; no ruby-{ver} depend added"
        ));
        return;
    }
    g.add(
        FindingKind::Depend,
        format!("ruby-{ver}"),
        &path,
        "ruby",
        format!("Ruby {ver} gem directory"),
    );
}

/// What a `#!` line asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Shebang {
    /// `cmd:<name>` is needed (`line` is the interpreter part as written).
    Command { name: String, line: String },
    /// An interpreter melange never depends on (`sh`, `python3`, …).
    Ignored(String),
    /// A form that cannot be read (`env -i …`, an empty line).
    Unsupported(String),
}

/// Parse the first bytes of a file; `None` when it has no `#!` line.
pub(crate) fn parse_shebang(prefix: &[u8]) -> Option<Shebang> {
    let rest = prefix.strip_prefix(b"#!")?;
    let line = rest.split(|&b| b == b'\n').next().unwrap_or(rest);
    let line = String::from_utf8_lossy(line).trim().to_string();
    let fields: Vec<&str> = line.split_whitespace().collect();
    let Some(first) = fields.first() else {
        return Some(Shebang::Unsupported(line));
    };
    let mut name = basename(first);
    if name == "env" {
        name = match fields.get(1).copied() {
            Some("-S") => match fields.get(2) {
                Some(x) => basename(x),
                None => return Some(Shebang::Unsupported(line)),
            },
            Some(x) if !x.starts_with('-') && !x.contains('=') => basename(x),
            _ => return Some(Shebang::Unsupported(line)),
        };
    }
    if IGNORED_INTERPRETERS.contains(&name) {
        return Some(Shebang::Ignored(name.to_string()));
    }
    Some(Shebang::Command {
        name: name.to_string(),
        line,
    })
}

/// Scripts under `usr/bin/`, `usr/local/bin/`, `usr/local/sbin/`: the
/// interpreter of their `#!` line → `cmd:<interpreter>`.
pub(crate) fn shebang(entry: &TreeEntry, g: &mut Generated) {
    if !matches!(entry.kind, EntryKind::File { .. })
        || !SHEBANG_DIRS.iter().any(|d| entry.path.starts_with(d))
    {
        return;
    }
    let Ok(Some(prefix)) = ingest::read_prefix(entry, SHEBANG_BYTES) else {
        return;
    };
    match parse_shebang(&prefix) {
        None | Some(Shebang::Ignored(_)) => {}
        Some(Shebang::Unsupported(line)) => g.warnings.push(format!(
            "{}: cannot read the interpreter of `#!{line}`; no depend added",
            entry.path
        )),
        Some(Shebang::Command { name, line }) => g.add(
            FindingKind::Depend,
            format!("cmd:{name}"),
            &entry.path,
            "shebang",
            format!("#!{line}"),
        ),
    }
}

/// Leading `[0-9A-Za-z._-]+` of a kernel version string.
pub(crate) fn kernel_version_token(s: &str) -> Option<String> {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .unwrap_or(s.len());
    (end > 0).then(|| s[..end].to_string())
}

/// Largest decompressed module read (kernel modules are a few MiB at most).
const MODULE_MAX: u64 = 256 << 20;

/// The module bytes, decompressed according to the file name.
fn module_bytes(path: &str, data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    if path.ends_with(".ko") {
        return Some(data.to_vec());
    } else if path.ends_with(".ko.gz") {
        flate2::read::GzDecoder::new(data)
            .take(MODULE_MAX)
            .read_to_end(&mut out)
            .ok()?;
    } else if path.ends_with(".ko.xz") {
        let mut r = std::io::BufReader::new(data);
        lzma_rs::xz_decompress(&mut r, &mut out).ok()?;
    } else if path.ends_with(".ko.zst") {
        ruzstd::decoding::StreamingDecoder::new(data)
            .ok()?
            .take(MODULE_MAX)
            .read_to_end(&mut out)
            .ok()?;
    } else {
        return None;
    }
    Some(out)
}

/// Version of an x86 `bzImage` (`HdrS` boot header) or of an uncompressed
/// ELF `vmlinux` (`Linux version …` banner).
pub(crate) fn kernel_image_version(data: &[u8]) -> Option<String> {
    if data.get(0x202..0x206) == Some(b"HdrS") {
        let off = u16::from_le_bytes([*data.get(0x20e)?, *data.get(0x20f)?]) as usize + 0x200;
        let rest = data.get(off..)?;
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        return kernel_version_token(&String::from_utf8_lossy(&rest[..end]));
    }
    if elf::has_elf_magic(data) {
        const BANNER: &[u8] = b"Linux version ";
        let pos = data.windows(BANNER.len()).position(|w| w == BANNER)?;
        let rest = &data[pos + BANNER.len()..];
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        return kernel_version_token(&String::from_utf8_lossy(&rest[..end.min(256)]));
    }
    None
}

/// Kernel images in `boot/` provide `linux:<ver>`; modules under
/// `lib/modules/` or `usr/lib/modules/` (`.ko`, `.ko.gz`, `.ko.xz`,
/// `.ko.zst`) depend on `linux:<ver>` of their `vermagic`.
pub(crate) fn kernel(entry: &TreeEntry, g: &mut Generated) {
    let path = entry.path.as_str();
    if !matches!(entry.kind, EntryKind::File { .. }) {
        return;
    }
    let in_boot = path.starts_with("boot/");
    let in_modules = path.starts_with("lib/modules/") || path.starts_with("usr/lib/modules/");
    if !in_boot && !in_modules {
        return;
    }
    if in_modules && !path.contains(".ko") {
        return;
    }
    // images and modules are read in place (mapped when spooled): images can be large
    if in_boot {
        let Ok(Some(Some(ver))) = ingest::with_content(entry, kernel_image_version) else {
            return;
        };
        g.add(
            FindingKind::Provide,
            format!("linux:{ver}"),
            path,
            "kernel",
            format!("kernel image, version {ver}"),
        );
        return;
    }
    let vermagic = ingest::with_content(entry, |data| {
        module_bytes(path, data).and_then(|bytes| elf::module_vermagic(&bytes))
    });
    let Ok(Some(Some(vermagic))) = vermagic else {
        return;
    };
    if let Some(ver) = kernel_version_token(&vermagic) {
        g.add(
            FindingKind::Depend,
            format!("linux:{ver}"),
            path,
            "kernel",
            format!("kernel module, vermagic {vermagic}"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(s: &str) -> Option<String> {
        match parse_shebang(s.as_bytes()) {
            Some(Shebang::Command { name, .. }) => Some(name),
            _ => None,
        }
    }

    #[test]
    fn shebang_forms() {
        assert_eq!(
            cmd("#!/usr/bin/perl -w\nprint 1\n").as_deref(),
            Some("perl")
        );
        assert_eq!(cmd("#! /bin/bash\n").as_deref(), Some("bash"));
        assert_eq!(cmd("#!/usr/bin/env ruby\n").as_deref(), Some("ruby"));
        assert_eq!(
            cmd("#!/usr/bin/env -S node --harmony\n").as_deref(),
            Some("node")
        );
        assert_eq!(
            parse_shebang(b"#!/bin/sh\n"),
            Some(Shebang::Ignored("sh".into()))
        );
        assert_eq!(
            parse_shebang(b"#!/usr/bin/env python3\n"),
            Some(Shebang::Ignored("python3".into()))
        );
        assert!(matches!(
            parse_shebang(b"#!/usr/bin/env -i foo\n"),
            Some(Shebang::Unsupported(_))
        ));
        assert!(matches!(
            parse_shebang(b"#!/usr/bin/env A=1 foo\n"),
            Some(Shebang::Unsupported(_))
        ));
        assert!(matches!(
            parse_shebang(b"#!\n"),
            Some(Shebang::Unsupported(_))
        ));
        assert_eq!(parse_shebang(b"\x7fELF"), None);
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(
            kernel_version_token("6.1.0-13-amd64 SMP preempt mod_unload").as_deref(),
            Some("6.1.0-13-amd64")
        );
        assert_eq!(kernel_version_token(" x"), None);
        let mut img = vec![0u8; 0x400];
        img[0x202..0x206].copy_from_slice(b"HdrS");
        img[0x20e..0x210].copy_from_slice(&0x100u16.to_le_bytes());
        let banner = b"6.6.7-wolfi (builder@host) #1 SMP\0";
        img[0x300..0x300 + banner.len()].copy_from_slice(banner);
        assert_eq!(kernel_image_version(&img).as_deref(), Some("6.6.7-wolfi"));
        assert_eq!(kernel_image_version(b"not a kernel"), None);
    }
}
