//! Linting `.apk` files on disk (`melange2 lint`).
//!
//! The data section is read once; file contents are spooled into one
//! anonymous temporary file, so memory stays small for large packages. The
//! build configuration comes from the `.melange.yaml` control file: melange2
//! writes `{"plan": …}` (the compiled plan), melange writes the build file
//! itself; both are understood. Subpackages carry no `.melange.yaml`: when
//! their main package (`origin`) is linted in the same run, its
//! configuration is used.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use melange2_apk::{EntryType, PackageReader, PkgInfo};
use melange2_config::model::Checks;
use melange2_config::plan::Plan;
use serde_json::Value;

use crate::input::{FileEntry, FileType, PackageFiles, SpoolContents};
use crate::{LintError, LintReport, LintTarget, Policy, lint_package};

/// An `.apk` read for linting.
#[derive(Debug)]
pub struct ApkPackage {
    /// The file.
    pub path: PathBuf,
    /// Its `.PKGINFO`.
    pub pkginfo: PkgInfo,
    /// The `.melange.yaml` control file, parsed (JSON or YAML), when present.
    pub config: Option<Value>,
    /// Entries and contents.
    pub files: PackageFiles<'static>,
}

/// Read an `.apk` (signatures are not checked; checksums of the data are).
///
/// # Errors
/// Unreadable or malformed packages, I/O errors of the spool file.
pub fn read_apk(path: &Path) -> Result<ApkPackage, LintError> {
    let ctx = path.display().to_string();
    let reader = PackageReader::open(path)?;
    let pkginfo = reader.pkginfo().clone();
    let config = reader
        .control_files()
        .get(".melange.yaml")
        .and_then(|b| parse_config(b));
    let spool = tempfile::tempfile().map_err(|e| LintError::Io {
        context: format!("{ctx}: creating a spool file"),
        source: e,
    })?;
    let mut entries = Vec::new();
    let mut ranges: Vec<Option<(u64, u64)>> = Vec::new();
    // path -> (index of the regular file)
    let mut by_path: HashMap<String, usize> = HashMap::new();
    let mut link_groups: HashMap<usize, u64> = HashMap::new();
    let mut spool_len = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    reader
        .read_data(|e, r| {
            let (file_type, range, link_target, sha1, group) = match e.kind {
                EntryType::Directory => (FileType::Directory, None, None, None, None),
                EntryType::File => {
                    let start = spool_len;
                    loop {
                        let n = r.read(&mut buf).map_err(|err| {
                            melange2_apk::Error::io(format!("{ctx}: {}", e.path), err)
                        })?;
                        if n == 0 {
                            break;
                        }
                        spool.write_all_at(&buf[..n], spool_len).map_err(|err| {
                            melange2_apk::Error::io(format!("{ctx}: spool file"), err)
                        })?;
                        spool_len += n as u64;
                    }
                    by_path.insert(e.path.clone(), entries.len());
                    (
                        FileType::Regular,
                        Some((start, spool_len - start)),
                        None,
                        e.sha1,
                        None,
                    )
                }
                EntryType::HardLink => {
                    let Some(&target) = by_path.get(&e.link) else {
                        return Err(melange2_apk::Error::malformed(
                            format!("{ctx}: {}", e.path),
                            format!("hard link to {:?}, which is not an earlier file", e.link),
                        ));
                    };
                    by_path.insert(e.path.clone(), target);
                    let next = link_groups.len() as u64;
                    let g = *link_groups.entry(target).or_insert(next);
                    if let Some(t) = entries.get_mut(target) {
                        let t: &mut FileEntry = t;
                        t.link_group = Some(g);
                    }
                    let (range, sha1) = (
                        ranges.get(target).copied().flatten(),
                        entries.get(target).and_then(|t: &FileEntry| t.sha1),
                    );
                    (FileType::Regular, range, None, sha1, Some(g))
                }
                EntryType::Symlink => (FileType::Symlink, None, Some(e.link.clone()), None, None),
                EntryType::CharDevice => (FileType::CharDevice, None, None, None, None),
                EntryType::BlockDevice => (FileType::BlockDevice, None, None, None, None),
                EntryType::Fifo => (FileType::Fifo, None, None, None, None),
            };
            entries.push(FileEntry {
                path: e.path.clone(),
                file_type,
                mode: e.mode & 0o7777,
                uid: u32::try_from(e.uid).unwrap_or(u32::MAX),
                gid: u32::try_from(e.gid).unwrap_or(u32::MAX),
                size: range.map_or(0, |(_, s)| s),
                link_target,
                sha1,
                link_group: group,
            });
            ranges.push(range);
            Ok(())
        })
        .map_err(|e| e.within(&ctx))?;
    Ok(ApkPackage {
        path: path.to_path_buf(),
        pkginfo,
        config,
        files: PackageFiles::new(
            entries,
            SpoolContents {
                file: spool,
                ranges,
            },
        ),
    })
}

/// `.melange.yaml` as a JSON value (melange2 writes JSON, melange YAML).
fn parse_config(bytes: &[u8]) -> Option<Value> {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .or_else(|| serde_norway::from_slice::<Value>(bytes).ok())
        .filter(Value::is_object)
}

/// What a configuration says about `package` (`None`: not in it).
pub fn target_from_config(config: &Value, package: &str) -> Option<LintTarget> {
    // melange2: the compiled plan
    if let Some(plan) = config.get("plan")
        && let Ok(plan) = serde_json::from_value::<Plan>(plan.clone())
    {
        return LintTarget::from_plan(&plan, package);
    }
    // melange: the build file
    let main = config.get("package")?;
    let (pkg, test) = if main.get("name").and_then(Value::as_str) == Some(package) {
        (main, config.get("test"))
    } else {
        let sp = config
            .get("subpackages")?
            .as_array()?
            .iter()
            .find(|s| s.get("name").and_then(Value::as_str) == Some(package))?;
        (sp, sp.get("test"))
    };
    let checks = pkg
        .get("checks")
        .filter(|c| !c.is_null())
        .and_then(|c| serde_json::from_value::<Checks>(c.clone()).ok())
        .unwrap_or_default();
    let mut uses = BTreeSet::new();
    if let Some(steps) = test.and_then(|t| t.get("pipeline")) {
        collect_uses(steps, &mut uses);
    }
    Some(LintTarget {
        package: package.to_string(),
        checks,
        test_uses: Some(uses),
    })
}

fn collect_uses(steps: &Value, out: &mut BTreeSet<String>) {
    for s in steps.as_array().into_iter().flatten() {
        if let Some(u) = s.get("uses").and_then(Value::as_str) {
            out.insert(u.to_string());
        }
        if let Some(p) = s.get("pipeline") {
            collect_uses(p, out);
        }
    }
}

/// Read and lint `.apk` files. Each package's configuration is its own
/// `.melange.yaml`, else that of its `origin` package when that is among
/// `paths`; without one, only `checks:`-free defaults apply and `pkgconf` /
/// `lddcheck` are skipped with a note. Reports come in the order of `paths`.
///
/// # Errors
/// The first package that cannot be read.
pub fn lint_apks(
    paths: &[PathBuf],
    policy: &Policy,
) -> Result<Vec<(PathBuf, LintReport)>, LintError> {
    let mut pkgs = Vec::with_capacity(paths.len());
    for p in paths {
        pkgs.push(read_apk(p)?);
    }
    let configs: BTreeMap<&str, &Value> = pkgs
        .iter()
        .filter_map(|p| p.config.as_ref().map(|c| (p.pkginfo.name.as_str(), c)))
        .collect();
    let mut out = Vec::with_capacity(pkgs.len());
    for p in &pkgs {
        let name = &p.pkginfo.name;
        let config = p
            .config
            .as_ref()
            .or_else(|| configs.get(p.pkginfo.origin.as_str()).copied());
        let target = config
            .and_then(|c| target_from_config(c, name))
            .unwrap_or_else(|| LintTarget::new(name.clone()));
        out.push((p.path.clone(), lint_package(&p.files, &target, policy)));
    }
    Ok(out)
}
