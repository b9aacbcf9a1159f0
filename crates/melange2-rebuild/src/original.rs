//! The packages given to `rebuild`: what each carries (`.PKGINFO`, control files, every data
//! entry with its digest) and what the build recorded in its origin's `.melange.yaml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use melange2_apk::{EntryType, PackageReader, PkgInfo};
use melange2_build::BuildSettings;
use melange2_config::plan::Plan;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::RebuildError;

/// One data entry as the comparison sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMeta {
    /// `file`, `dir`, `symlink`, `hardlink`, `char`, `block`, `fifo`.
    pub kind: &'static str,
    /// Permission bits.
    pub mode: u32,
    /// `uid:gid` (names when the archive has them).
    pub owner: String,
    /// Size in bytes (regular files).
    pub size: u64,
    /// Modification time.
    pub mtime: u64,
    /// Link target (symlinks, hard links).
    pub link: String,
    /// SHA-256 of the content (regular files).
    pub sha256: String,
    /// Extended attributes: name → SHA-256 of the value.
    pub xattrs: BTreeMap<String, String>,
}

/// A package file read in full.
#[derive(Clone, Debug)]
pub struct Apk {
    /// Where it is.
    pub path: PathBuf,
    /// Its `.PKGINFO`.
    pub pkginfo: PkgInfo,
    /// Other control files by name.
    pub control: BTreeMap<String, Vec<u8>>,
    /// Data entries by path.
    pub files: BTreeMap<String, FileMeta>,
    /// Names of the keys that signed it.
    pub signers: Vec<String>,
    /// SHA-256 of the whole file.
    pub sha256: String,
}

fn kind_name(k: EntryType) -> &'static str {
    match k {
        EntryType::File => "file",
        EntryType::Directory => "dir",
        EntryType::Symlink => "symlink",
        EntryType::HardLink => "hardlink",
        EntryType::CharDevice => "char",
        EntryType::BlockDevice => "block",
        EntryType::Fifo => "fifo",
    }
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Read a package: integrity checked (checksums, data hash), not its signature.
pub fn read_apk(path: &Path) -> Result<Apk, RebuildError> {
    let bad = |e: melange2_apk::Error| RebuildError::Package {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let bytes = std::fs::read(path).map_err(|e| RebuildError::Package {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let reader = PackageReader::new(&bytes[..], &path.display().to_string()).map_err(bad)?;
    let pkginfo = reader.pkginfo().clone();
    let control = reader.control_files().clone();
    let signers = reader
        .signatures()
        .iter()
        .map(|s| s.key_name.clone())
        .collect();
    let mut files = BTreeMap::new();
    let mut buf = vec![0u8; 64 * 1024];
    reader
        .read_data(|e, content| {
            let mut h = Sha256::new();
            loop {
                let n = content
                    .read(&mut buf)
                    .map_err(|err| melange2_apk::Error::io(&e.path, err))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            let meta = FileMeta {
                kind: kind_name(e.kind),
                mode: e.mode & 0o7777,
                owner: owner(e),
                size: e.size,
                mtime: e.mtime,
                link: e.link.clone(),
                sha256: if e.kind == EntryType::File {
                    hex::encode(h.finalize())
                } else {
                    String::new()
                },
                xattrs: e
                    .xattrs
                    .iter()
                    .map(|(k, v)| (k.clone(), sha256_hex(v)))
                    .collect(),
            };
            files.insert(e.path.clone(), meta);
            Ok(())
        })
        .map_err(bad)?;
    Ok(Apk {
        path: path.to_path_buf(),
        pkginfo,
        control,
        files,
        signers,
        sha256: sha256_hex(&bytes),
    })
}

fn owner(e: &melange2_apk::DataEntry) -> String {
    let u = if e.uname.is_empty() {
        e.uid.to_string()
    } else {
        e.uname.clone()
    };
    let g = if e.gname.is_empty() {
        e.gid.to_string()
    } else {
        e.gname.clone()
    };
    format!("{u}:{g}")
}

/// The environment lock as the package records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordedEnv {
    /// Packages resolved from repositories.
    Packages(melange2_resolve::Lock),
    /// A bootstrap root filesystem, and the packages resolved over it.
    Rootfs {
        /// Its content digest (`sha256:…`).
        digest: String,
        /// The packages added from repositories (often none).
        added: melange2_resolve::Lock,
    },
}

/// The packages of a recorded environment lock (`packages`; none when absent, as over a
/// bootstrap root filesystem that needs nothing more).
pub fn lock_of(
    value: &serde_json::Value,
    arch: &str,
) -> Result<melange2_resolve::Lock, serde_json::Error> {
    let packages = match value.get("packages") {
        Some(p) => serde_json::from_value(p.clone())?,
        None => Vec::new(),
    };
    Ok(melange2_resolve::Lock {
        arch: arch.to_string(),
        packages,
    })
}

/// What the origin's `.melange.yaml` holds.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The compiled plan.
    pub plan: Plan,
    /// The environment.
    pub env: RecordedEnv,
    /// The build's settings.
    pub settings: BuildSettings,
}

#[derive(Deserialize)]
struct MelangeYaml {
    plan: Option<Plan>,
    #[serde(rename = "environment-lock")]
    environment_lock: Option<serde_json::Value>,
    build: Option<BuildSettings>,
}

/// Parse the `.melange.yaml` of an origin package.
pub fn recorded(apk: &Apk) -> Result<Recorded, RebuildError> {
    recorded_in(&apk.path, &apk.control)
}

/// Parse the `.melange.yaml` among the control files of the package at `path`.
pub fn recorded_in(
    path: &Path,
    control: &BTreeMap<String, Vec<u8>>,
) -> Result<Recorded, RebuildError> {
    let missing = |what: &str| RebuildError::Package {
        path: path.to_path_buf(),
        message: format!(
            "{what}; only packages built by melange2 with this version's .melange.yaml can be rebuilt"
        ),
    };
    let Some(bytes) = control.get(".melange.yaml") else {
        return Err(missing("no .melange.yaml control file"));
    };
    let y: MelangeYaml = serde_json::from_slice(bytes).map_err(|e| RebuildError::Package {
        path: path.to_path_buf(),
        message: format!(".melange.yaml: {e} (built by melange, not melange2?)"),
    })?;
    let plan = y.plan.ok_or_else(|| missing(".melange.yaml has no plan"))?;
    let settings = y
        .build
        .ok_or_else(|| missing(".melange.yaml has no build settings"))?;
    let lock = y
        .environment_lock
        .ok_or_else(|| missing(".melange.yaml has no environment-lock"))?;
    let added = lock_of(&lock, &plan.arch).map_err(|e| RebuildError::Package {
        path: path.to_path_buf(),
        message: format!(".melange.yaml environment-lock: {e}"),
    })?;
    let env = match lock.get("bootstrap-rootfs").and_then(|v| v.as_str()) {
        Some(d) => RecordedEnv::Rootfs {
            digest: d.to_string(),
            added,
        },
        None => RecordedEnv::Packages(added),
    };
    Ok(Recorded {
        plan,
        env,
        settings,
    })
}

/// Packages of one build (same origin, version and architecture) and the origin's record.
#[derive(Debug)]
pub struct Group {
    /// The given packages, in the order given.
    pub packages: Vec<Apk>,
    /// The origin's `.melange.yaml`.
    pub recorded: Recorded,
}

/// Read the given packages and group them by build. A subpackage's origin is read from the
/// same directory when it was not given (`<origin>-<version>.apk`).
pub fn groups(paths: &[PathBuf]) -> Result<Vec<Group>, RebuildError> {
    let mut by_build: BTreeMap<(String, String, String), Vec<Apk>> = BTreeMap::new();
    let mut order = Vec::new();
    for p in paths {
        let apk = read_apk(p)?;
        let i = &apk.pkginfo;
        let key = (i.origin.clone(), i.version.clone(), i.arch.clone());
        if !by_build.contains_key(&key) {
            order.push(key.clone());
        }
        let list = by_build.entry(key).or_default();
        if !list.iter().any(|a| a.pkginfo.name == apk.pkginfo.name) {
            list.push(apk);
        }
    }
    let mut out = Vec::new();
    for key in order {
        let packages = by_build.remove(&key).unwrap_or_default();
        let recorded = match packages.iter().find(|a| a.pkginfo.name == key.0) {
            Some(main) => recorded(main)?,
            None => recorded(&origin_beside(&packages, &key)?)?,
        };
        check_plan(&recorded.plan, &packages)?;
        out.push(Group { packages, recorded });
    }
    Ok(out)
}

/// The origin package next to a subpackage.
fn origin_beside(packages: &[Apk], key: &(String, String, String)) -> Result<Apk, RebuildError> {
    let sub = &packages[0];
    let dir = sub.path.parent().unwrap_or(Path::new("."));
    let file = dir.join(format!("{}-{}.apk", key.0, key.1));
    if !file.is_file() {
        return Err(RebuildError::Package {
            path: sub.path.clone(),
            message: format!(
                "a subpackage of {}: its build is recorded in {}, which is neither given nor at {}",
                key.0,
                format_args!("{}-{}.apk", key.0, key.1),
                file.display()
            ),
        });
    }
    read_apk(&file)
}

/// Every given package is one of the plan's, with the plan's version and architecture.
fn check_plan(plan: &Plan, packages: &[Apk]) -> Result<(), RebuildError> {
    let names = plan.package_names();
    for a in packages {
        let i = &a.pkginfo;
        let problem = if !names.contains(&i.name.as_str()) {
            Some(format!("the recorded plan builds no package {}", i.name))
        } else if i.version != plan.package.full_version || i.arch != plan.arch {
            Some(format!(
                "the recorded plan builds {} for {}, the package is {} for {}",
                plan.package.full_version, plan.arch, i.version, i.arch
            ))
        } else {
            None
        };
        if let Some(message) = problem {
            return Err(RebuildError::Package {
                path: a.path.clone(),
                message,
            });
        }
    }
    Ok(())
}
