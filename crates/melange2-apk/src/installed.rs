//! Installed-database records (`usr/lib/apk/db/installed`, apko layout).
//!
//! A record is the package's index-style fields (`P V A L T o m U D p r c i t
//! S I k C`, plus `q` when set) followed by its file list: `F:<dir>` per
//! directory (with `M:uid:gid:mode` when not `0:0:755`) and, under it,
//! `R:<name>` per file or symlink (with `a:uid:gid:mode` when not `0:0:644`
//! and `Z:Q1<base64 sha1>`). Records end with a blank line.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::index::IndexEntry;
use crate::reader::DataEntry;
use crate::tar::EntryType;
use crate::writer::q1_checksum;

/// One file-system object of an installed package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledFile {
    /// Relative path (`usr/bin/foo`).
    pub path: String,
    /// Whether this is a directory.
    pub is_dir: bool,
    /// Numeric owner.
    pub uid: u64,
    /// Numeric group.
    pub gid: u64,
    /// Permission bits.
    pub mode: u32,
    /// SHA-1 of the content (files) or target (symlinks).
    pub sha1: Option<[u8; 20]>,
}

impl InstalledFile {
    /// From a data entry of a package (devices and FIFOs are recorded as files
    /// without checksum, like apk).
    pub fn from_data_entry(e: &DataEntry) -> Self {
        InstalledFile {
            path: e.path.clone(),
            is_dir: e.kind == EntryType::Directory,
            uid: e.uid,
            gid: e.gid,
            mode: e.mode,
            sha1: e.sha1,
        }
    }
}

fn parent_and_name(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

/// Render one installed-db record from the package's index record and file
/// list (in package order). Files are grouped under their parent directory.
pub fn render_installed_entry(pkg: &IndexEntry, files: &[InstalledFile]) -> String {
    let mut s = String::new();
    let mut line = |k: char, v: &str| {
        let _ = writeln!(s, "{k}:{v}");
    };
    line('P', &pkg.name);
    line('V', &pkg.version);
    line('A', &pkg.arch);
    if !pkg.license.is_empty() {
        line('L', &pkg.license);
    }
    line('T', &pkg.description);
    if !pkg.origin.is_empty() {
        line('o', &pkg.origin);
    }
    if !pkg.maintainer.is_empty() {
        line('m', &pkg.maintainer);
    }
    if !pkg.url.is_empty() {
        line('U', &pkg.url);
    }
    if !pkg.depends.is_empty() {
        line('D', &pkg.depends.join(" "));
    }
    if !pkg.provides.is_empty() {
        line('p', &pkg.provides.join(" "));
    }
    if !pkg.replaces.is_empty() {
        line('r', &pkg.replaces.join(" "));
    }
    if !pkg.commit.is_empty() {
        line('c', &pkg.commit);
    }
    if !pkg.install_if.is_empty() {
        line('i', &pkg.install_if.join(" "));
    }
    line('t', &pkg.build_time.to_string());
    line('S', &pkg.size.to_string());
    line('I', &pkg.installed_size.to_string());
    if let Some(k) = pkg.provider_priority.filter(|&k| k != 0) {
        line('k', &k.to_string());
    }
    if let Some(q) = pkg.replaces_priority {
        line('q', &q.to_string());
    }
    line('C', &pkg.checksum);

    // group: directory path -> (dir entry if any, files)
    let mut order: Vec<String> = Vec::new();
    let mut dirs: BTreeMap<String, (Option<&InstalledFile>, Vec<&InstalledFile>)> = BTreeMap::new();
    for f in files {
        if f.is_dir {
            let slot = dirs.entry(f.path.clone()).or_insert_with(|| {
                order.push(f.path.clone());
                (None, Vec::new())
            });
            slot.0 = Some(f);
        } else {
            let (parent, _) = parent_and_name(&f.path);
            dirs.entry(parent.to_string())
                .or_insert_with(|| {
                    order.push(parent.to_string());
                    (None, Vec::new())
                })
                .1
                .push(f);
        }
    }
    for d in &order {
        let Some((dir, members)) = dirs.get(d) else {
            continue;
        };
        let _ = writeln!(s, "F:{d}");
        if let Some(dir) = dir
            && !(dir.uid == 0 && dir.gid == 0 && dir.mode == 0o755)
        {
            let _ = writeln!(s, "M:{}:{}:{:o}", dir.uid, dir.gid, dir.mode);
        }
        for f in members {
            let (_, name) = parent_and_name(&f.path);
            let _ = writeln!(s, "R:{name}");
            if !(f.uid == 0 && f.gid == 0 && f.mode == 0o644) {
                let _ = writeln!(s, "a:{}:{}:{:o}", f.uid, f.gid, f.mode);
            }
            if let Some(h) = f.sha1 {
                let _ = writeln!(s, "Z:{}", q1_checksum(&h));
            }
        }
    }
    s.push('\n');
    s
}

/// Render a record directly from a package's data entries.
pub fn render_installed_entry_from_data(pkg: &IndexEntry, entries: &[DataEntry]) -> String {
    let files: Vec<InstalledFile> = entries.iter().map(InstalledFile::from_data_entry).collect();
    render_installed_entry(pkg, &files)
}
