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

/// What `melange2 scan` takes.
#[derive(Clone, Debug, Default)]
pub struct ScanOptions {
    /// The packages to scan.
    pub packages: Vec<PathBuf>,
    /// Repositories holding the build's environment packages (`-r`), read only for a build
    /// with versioned shlib depends (the provides of its environment packages).
    pub repository_append: Vec<String>,
    /// Keys trusting them (`-k`).
    pub keyring_append: Vec<String>,
    /// Accept unsigned repositories.
    pub ignore_signatures: bool,
    /// Download cache of the resolver.
    pub apk_cache_dir: Option<PathBuf>,
}

/// Run the SCA again over the given packages, in the order given.
///
/// # Errors
/// Unreadable packages, a build whose origin package (with its `.melange.yaml`) is neither
/// given nor next to its subpackages, plan metadata that cannot go into a `.PKGINFO`.
pub async fn scan(opts: &ScanOptions) -> Result<Vec<Scanned>, RebuildError> {
    let packages = &opts.packages;
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
        let (build, record_path, rec) = complete(&origin, &version, build, spool.path())?;
        let env = environment(opts, &rec, &record_path).await;
        for s in rescan(build, &record_path, &rec, &env)? {
            out.insert(s.path.clone(), s);
        }
    }
    Ok(packages.iter().filter_map(|p| out.remove(p)).collect())
}

/// One build's record (from the origin package, given or beside) and the siblings found
/// next to the given packages.
fn complete(
    origin: &str,
    version: &str,
    mut build: Build,
    spool: &Path,
) -> Result<(Build, PathBuf, Recorded), RebuildError> {
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
    Ok((build, record_path, rec))
}

/// Run the SCA over one build and pair each given package with its result.
fn rescan(
    build: Build,
    record_path: &Path,
    rec: &Recorded,
    env: &BuildEnvironment,
) -> Result<Vec<Scanned>, RebuildError> {
    let infos = melange2_package::rescan(&rec.plan, &build.built, env)
        .map_err(|e| package_error(record_path, e))?;
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

/// What the SCA knows of the build environment: the locked packages and the
/// versioned-shlib switch; `so:` depends are not checked against repositories (that only
/// warns during a build). For a build with versioned shlib depends, the provides of the
/// locked packages are read from the repositories (by name and checksum); the ones that
/// cannot be found are named in a warning.
async fn environment(opts: &ScanOptions, rec: &Recorded, record_path: &Path) -> BuildEnvironment {
    let lock = match &rec.env {
        RecordedEnv::Packages(l) => l,
        RecordedEnv::Rootfs { added, .. } => added,
    };
    let versioned = rec.settings.versioned_shlib_deps;
    let provides = if versioned && !lock.packages.is_empty() {
        locked_provides(opts, rec, lock, record_path).await
    } else {
        BTreeMap::new()
    };
    BuildEnvironment {
        installed: lock
            .packages
            .iter()
            .map(|p| InstalledPackage {
                name: p.name.clone(),
                version: p.version.clone(),
                provides: provides.get(&p.name).cloned().unwrap_or_default(),
            })
            .collect(),
        repositories: None,
        versioned_shlib_deps: versioned,
    }
}

/// The provides of every locked package the repositories (the plan's and `-r`) still hold.
async fn locked_provides(
    opts: &ScanOptions,
    rec: &Recorded,
    lock: &melange2_resolve::Lock,
    record_path: &Path,
) -> BTreeMap<String, Vec<String>> {
    let env = &rec.plan.environment;
    let mut repositories = env.repositories.clone();
    repositories.extend(env.build_repositories.iter().cloned());
    repositories.extend(opts.repository_append.iter().cloned());
    let mut keyring = env.keyring.clone();
    keyring.extend(opts.keyring_append.iter().cloned());
    let loaded = melange2_resolve::Repositories::load(&melange2_resolve::Options {
        arch: rec.plan.arch.clone(),
        repositories,
        keyring,
        ignore_signatures: opts.ignore_signatures,
        cache_dir: opts.apk_cache_dir.clone(),
        ..Default::default()
    })
    .await;
    let mut found = BTreeMap::new();
    match loaded {
        Ok(repos) => {
            for c in repos.universe().packages() {
                let locked = lock
                    .packages
                    .iter()
                    .any(|p| p.name == c.entry.name && p.checksum == c.entry.checksum);
                if locked {
                    found.insert(c.entry.name.clone(), c.entry.provides.clone());
                }
            }
        }
        Err(e) => tracing::warn!("{}: the repositories: {e}", record_path.display()),
    }
    let missing: Vec<&str> = lock
        .packages
        .iter()
        .filter(|p| !found.contains_key(&p.name))
        .map(|p| p.name.as_str())
        .collect();
    if !missing.is_empty() {
        tracing::warn!(
            "{}: built with versioned shlib depends, but the provides of environment packages \
             {} are not in the repositories (give them with -r/-k): so-ver: depends on them \
             are left out",
            record_path.display(),
            missing.join(", ")
        );
    }
    found
}
