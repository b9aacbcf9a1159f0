//! `melange2 scan`: the SCA run again over built packages. The packages of one build are
//! scanned together (a subpackage's shared libraries answer its siblings' depends), with
//! the siblings found next to the given files; the plan and the build settings come from
//! the origin's `.melange.yaml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use melange2_package::{BuildEnvironment, BuiltPackage, InstalledPackage};

use crate::RebuildError;
use crate::original::{Recorded, RecordedEnv, recorded_in};

/// One scanned package: its own `.PKGINFO` and the one the SCA gives now.
#[derive(Clone, Debug)]
pub struct Scanned {
    /// The package file.
    pub path: PathBuf,
    /// Its `.PKGINFO` as it is.
    pub current: String,
    /// The `.PKGINFO` a build would write now.
    pub scanned: String,
}

impl Scanned {
    /// The two `.PKGINFO`s agree.
    pub fn unchanged(&self) -> bool {
        self.current == self.scanned
    }

    /// Unified difference from the package's `.PKGINFO` to the scanned one (empty when
    /// they agree).
    pub fn diff(&self) -> String {
        if self.unchanged() {
            return String::new();
        }
        let name = self.path.display().to_string();
        similar::TextDiff::from_lines(&self.current, &self.scanned)
            .unified_diff()
            .header(&format!("{name} (.PKGINFO)"), &format!("{name} (scanned)"))
            .to_string()
    }
}

fn package_error(path: &Path, e: impl std::fmt::Display) -> RebuildError {
    RebuildError::Package {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// The given packages of one build (origin, version, architecture), and its siblings.
struct Build {
    given: Vec<(PathBuf, String)>,
    built: BTreeMap<String, BuiltPackage>,
    record: Option<(PathBuf, Recorded)>,
    dir: PathBuf,
}

/// Run the SCA again over `packages`, in the order given.
///
/// # Errors
/// Unreadable packages, a build whose origin package (with its `.melange.yaml`) is neither
/// given nor next to its subpackages, plan metadata that cannot go into a `.PKGINFO`.
pub fn scan(packages: &[PathBuf]) -> Result<Vec<Scanned>, RebuildError> {
    let spool = tempfile::tempdir().map_err(|e| package_error(Path::new("spool"), e))?;
    let mut builds: Vec<((String, String, String), Build)> = Vec::new();
    for path in packages {
        let b =
            melange2_package::read_built(path, spool.path()).map_err(|e| package_error(path, e))?;
        let i = &b.pkginfo;
        let key = (i.origin.clone(), i.version.clone(), i.arch.clone());
        let name = i.name.clone();
        let pos = match builds.iter().position(|(k, _)| *k == key) {
            Some(p) => p,
            None => {
                let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
                let build = Build {
                    given: Vec::new(),
                    built: BTreeMap::new(),
                    record: None,
                    dir,
                };
                builds.push((key.clone(), build));
                builds.len() - 1
            }
        };
        let build = &mut builds[pos].1;
        if name == key.0 {
            build.record = Some((path.clone(), recorded_in(path, &b.control_files)?));
        }
        build.given.push((path.clone(), name.clone()));
        build.built.insert(name, b);
    }
    let mut out = BTreeMap::new();
    for ((origin, version, _), build) in builds {
        for s in scan_build(&origin, &version, build, spool.path())? {
            out.insert(s.path.clone(), s);
        }
    }
    Ok(packages.iter().filter_map(|p| out.remove(p)).collect())
}

/// Scan one build: read its record and its siblings, then run the SCA.
fn scan_build(
    origin: &str,
    version: &str,
    mut build: Build,
    spool: &Path,
) -> Result<Vec<Scanned>, RebuildError> {
    let file_of = |name: &str| build.dir.join(format!("{name}-{version}.apk"));
    let (record_path, rec) = match build.record.take() {
        Some(r) => r,
        None => {
            let path = file_of(origin);
            let first = build
                .given
                .first()
                .map(|(p, _)| p.clone())
                .unwrap_or_default();
            if !path.is_file() {
                return Err(RebuildError::Package {
                    path: first,
                    message: format!(
                        "a subpackage of {origin}: its plan is in {origin}-{version}.apk, which is neither given nor at {}",
                        path.display()
                    ),
                });
            }
            let b =
                melange2_package::read_built(&path, spool).map_err(|e| package_error(&path, e))?;
            let rec = recorded_in(&path, &b.control_files)?;
            build.built.insert(origin.to_string(), b);
            (path, rec)
        }
    };
    for name in rec.plan.package_names() {
        let path = file_of(name);
        if !build.built.contains_key(name) && path.is_file() {
            let b =
                melange2_package::read_built(&path, spool).map_err(|e| package_error(&path, e))?;
            build.built.insert(name.to_string(), b);
        }
    }
    let env = environment(&rec);
    if env.versioned_shlib_deps && !env.installed.is_empty() {
        tracing::warn!(
            "{}: built with versioned shlib depends; the provides of its environment packages \
             are not recorded, so so-ver: depends on them are left out of the scan",
            record_path.display()
        );
    }
    let infos = melange2_package::rescan(&rec.plan, &build.built, &env)
        .map_err(|e| package_error(&record_path, e))?;
    let mut out = Vec::new();
    for (path, name) in &build.given {
        let (Some(b), Some(info)) = (
            build.built.get(name),
            infos.iter().find(|i| &i.name == name),
        ) else {
            return Err(package_error(
                path,
                format!(
                    "the plan recorded in {} builds no package {name}",
                    record_path.display()
                ),
            ));
        };
        out.push(Scanned {
            path: path.clone(),
            current: b.pkginfo.render(),
            scanned: info.render(),
        });
    }
    Ok(out)
}

/// What the SCA knows of the build environment: the locked packages (their provides are
/// not recorded) and the versioned-shlib switch; `so:` depends are not checked against
/// repositories (that only warns during a build).
fn environment(rec: &Recorded) -> BuildEnvironment {
    let lock = match &rec.env {
        RecordedEnv::Packages(l) => l,
        RecordedEnv::Rootfs { added, .. } => added,
    };
    BuildEnvironment {
        installed: lock
            .packages
            .iter()
            .map(|p| InstalledPackage {
                name: p.name.clone(),
                version: p.version.clone(),
                provides: Vec::new(),
            })
            .collect(),
        repositories: None,
        versioned_shlib_deps: rec.settings.versioned_shlib_deps,
    }
}
