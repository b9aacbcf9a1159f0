//! The SCA run again on packages that were already built (`melange2 scan`): each `.apk` is
//! read back into a [`PackageTree`] and the generators and the merge of [`crate::sca`] run
//! over the packages of one build, exactly as during the build. The `.PKGINFO` that results
//! keeps the original's `size` and `datahash` (the data is not rewritten), its `maintainer`
//! and `builddate`; everything else comes from the plan and the SCA.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use melange2_apk::tree::{Content, EntryKind, TreeEntry};
use melange2_apk::{EntryType, PackageReader, PackageTree, PkgInfo};
use melange2_config::plan::Plan;

use crate::error::Result;
use crate::sca::{self, BuildEnvironment};

/// Files up to this size are read into memory; larger ones go to the spool directory.
const MEMORY_FILE_MAX: u64 = 1 << 20;

/// A built package read back: its `.PKGINFO`, control files and data tree.
#[derive(Debug)]
pub struct BuiltPackage {
    /// The `.PKGINFO`.
    pub pkginfo: PkgInfo,
    /// Control files other than `.PKGINFO` (`.melange.yaml`, scriptlets).
    pub control_files: BTreeMap<String, Vec<u8>>,
    /// The data section.
    pub tree: PackageTree,
}

/// Read an `.apk` (integrity checked, signature not) into a [`BuiltPackage`]. Files larger
/// than 1 MiB are spooled into `spool_dir`, which must outlive the package.
///
/// # Errors
/// Unreadable or malformed packages, spool I/O.
pub fn read_built(path: &Path, spool_dir: &Path) -> Result<BuiltPackage> {
    let reader = PackageReader::open(path)?;
    let pkginfo = reader.pkginfo().clone();
    let control_files = reader.control_files().clone();
    let mut tree = PackageTree::new();
    let mut spooled = 0u64;
    let ctx = path.display().to_string();
    reader.read_data(|e, content| {
        let fail = |err: std::io::Error| melange2_apk::Error::io(format!("{ctx}: {}", e.path), err);
        let kind = match e.kind {
            EntryType::Directory => EntryKind::Directory,
            EntryType::Symlink => EntryKind::Symlink(e.link.clone()),
            EntryType::HardLink => {
                tree.add_hardlink(&e.path, &e.link)?;
                return Ok(());
            }
            EntryType::CharDevice | EntryType::BlockDevice | EntryType::Fifo => return Ok(()),
            EntryType::File => {
                let content = if e.size <= MEMORY_FILE_MAX {
                    let mut buf = Vec::with_capacity(e.size as usize);
                    content.read_to_end(&mut buf).map_err(fail)?;
                    Content::Memory(buf.into())
                } else {
                    spooled += 1;
                    let file = spool_dir.join(format!("{spooled}"));
                    let mut out = std::fs::File::create(&file).map_err(fail)?;
                    std::io::copy(content, &mut out).map_err(fail)?;
                    out.flush().map_err(fail)?;
                    Content::Disk(file)
                };
                EntryKind::File {
                    size: e.size,
                    content,
                    sha1: e.sha1,
                }
            }
        };
        tree.insert(TreeEntry {
            path: e.path.clone(),
            kind,
            mode: e.mode & 0o7777,
            uid: u32::try_from(e.uid).unwrap_or(u32::MAX),
            gid: u32::try_from(e.gid).unwrap_or(u32::MAX),
            xattrs: e.xattrs.clone(),
            link_group: None,
        })
    })?;
    Ok(BuiltPackage {
        pkginfo,
        control_files,
        tree,
    })
}

/// The `.PKGINFO` of every package of `plan` that is in `built` (by name), as the SCA over
/// the built packages gives it. A package of the plan missing from `built` counts as empty
/// (its siblings' SCA cannot see its files). Main package first, then subpackages in plan
/// order.
///
/// # Errors
/// Metadata of the plan that cannot go into a `.PKGINFO`.
pub fn rescan(
    plan: &Plan,
    built: &BTreeMap<String, BuiltPackage>,
    env: &BuildEnvironment,
) -> Result<Vec<PkgInfo>> {
    let packages = crate::all_packages(plan);
    let empty = PackageTree::new();
    let trees: Vec<(&str, &PackageTree)> = packages
        .iter()
        .map(|p| {
            let tree = built.get(&p.name).map_or(&empty, |b| &b.tree);
            (p.name.as_str(), tree)
        })
        .collect();
    let build = sca::BuildTrees::new(trees);
    let (reports, warnings) = sca::analyze(&build, &packages, env);
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let mut out = Vec::new();
    for (p, report) in packages.iter().zip(&reports) {
        let Some(b) = built.get(&p.name) else {
            continue;
        };
        let mut req = crate::PackageRequest::new(plan, "");
        req.namespace = b.pkginfo.maintainer.clone();
        req.source_date_epoch = b.pkginfo.build_date;
        let mut info = crate::pkginfo(plan, p, report, &req)?;
        info.size = b.pkginfo.size;
        info.datahash = b.pkginfo.datahash.clone();
        out.push(info);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use melange2_apk::{ControlFiles, WriteOptions, write_package};

    fn bytes_of(e: &TreeEntry) -> Vec<u8> {
        match &e.kind {
            EntryKind::File {
                content: Content::Memory(b),
                ..
            } => b.to_vec(),
            EntryKind::File {
                content: Content::Disk(p),
                ..
            } => std::fs::read(p).unwrap(),
            other => panic!("{}: not a file read back: {other:?}", e.path),
        }
    }

    /// Every kind of entry the SCA looks at comes back as written: directories, small and
    /// spooled files, symlinks, hard links, modes, owners and xattrs.
    #[test]
    fn a_written_package_reads_back_into_the_same_tree() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = PackageTree::new();
        t.add_dir("usr", 0o755).unwrap();
        t.add_dir("usr/lib", 0o755).unwrap();
        t.add_file("usr/lib/small", 0o644, b"small\n".to_vec())
            .unwrap()
            .xattrs
            .insert("user.note".into(), b"x".to_vec());
        let big: Vec<u8> = (0..(3 << 20)).map(|i| (i % 251) as u8).collect();
        t.add_file("usr/lib/big", 0o600, big.clone()).unwrap().gid = 5;
        t.add_symlink("usr/lib/link", "small").unwrap();
        t.add_hardlink("usr/lib/hard", "usr/lib/small").unwrap();
        let info = PkgInfo::new("p", "1-r0", "x86_64");
        let apk = dir.path().join("p-1-r0.apk");
        let control = ControlFiles {
            melange_yaml: Some(b"{}".to_vec()),
            ..Default::default()
        };
        write_package(&t, &info, &control, None, &WriteOptions::default(), &apk).unwrap();

        let spool = tempfile::tempdir().unwrap();
        let b = read_built(&apk, spool.path()).unwrap();
        assert_eq!(b.pkginfo.name, "p");
        assert_eq!(b.control_files[".melange.yaml"], b"{}");
        let get = |p: &str| b.tree.get(p).unwrap_or_else(|| panic!("{p} missing"));
        let small = get("usr/lib/small");
        assert_eq!((small.mode, bytes_of(small)), (0o644, b"small\n".to_vec()));
        assert_eq!(small.xattrs["user.note"], b"x");
        let bigr = get("usr/lib/big");
        assert!(matches!(
            bigr.kind,
            EntryKind::File {
                content: Content::Disk(_),
                ..
            }
        ));
        assert_eq!((bigr.mode, bigr.gid), (0o600, 5));
        assert!(bytes_of(bigr) == big, "spooled content differs");
        assert!(matches!(&get("usr/lib/link").kind, EntryKind::Symlink(t) if t == "small"));
        let hard = get("usr/lib/hard");
        assert!(hard.link_group.is_some() && hard.link_group == get("usr/lib/small").link_group);
        assert!(matches!(get("usr").kind, EntryKind::Directory));
    }

    #[test]
    fn a_damaged_package_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let apk = dir.path().join("bad.apk");
        std::fs::write(&apk, b"not a package").unwrap();
        let e = read_built(&apk, dir.path()).unwrap_err().to_string();
        assert!(e.contains("bad.apk"), "{e}");
    }
}
