//! Bootstrap builds and tests (`--bootstrap-rootfs`, `docs/build.md`, `docs/test.md`): the environment is a given root
//! filesystem, with the recipe's packages (`environment.contents.packages`, every step's
//! `needs`, `--package-append`) resolved from the configured repositories and layered over it.
//! Packages its apk database lists count as present; the build user and group are merged into
//! its account files as in resolved builds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use melange2_config::plan::{Plan, Step};
use melange2_environment::{Base, EnvironmentRequest, PackageFile, assemble};
use melange2_llb::{CopyOptions, FileActions, LocalSource, OpOptions, State};
use melange2_rootfs::Scan;

use crate::BuildError;
use crate::context::BuildContext;
use crate::support::{accounts, local_layer};

/// A bootstrap root filesystem as read once per run.
#[derive(Clone)]
pub struct Rootfs {
    /// Absolute path.
    pub path: PathBuf,
    /// Content digest (`sha256:…`).
    pub digest: String,
    /// What the client read from it (entries, apk database, accounts).
    pub scan: Arc<Scan>,
}

/// Canonicalize, hash and read a bootstrap root filesystem.
pub fn read_rootfs(path: &Path) -> Result<Rootfs, String> {
    let abs = std::fs::canonicalize(path)
        .map_err(|e| format!("bootstrap rootfs {}: {e}", path.display()))?;
    let digest =
        melange2_fingerprint::digest_path(&abs).map_err(|e| format!("bootstrap rootfs: {e}"))?;
    let scan = melange2_rootfs::scan(&abs).map_err(|e| e.to_string())?;
    Ok(Rootfs {
        path: abs,
        digest,
        scan: Arc::new(scan),
    })
}

/// Every package a recipe's build environment asks for, with who asked: a step's `needs`,
/// the recipe's `environment.contents.packages`, or `--package-append`.
pub fn request(plan: &Plan, append: &[String]) -> BTreeMap<String, String> {
    fn needs(steps: &[Step], out: &mut BTreeMap<String, String>) {
        for s in steps {
            let name = s.display_name().unwrap_or_else(|| "a step".into());
            for n in &s.needs {
                out.entry(n.clone())
                    .or_insert_with(|| format!("needs of step {name:?}"));
            }
            needs(&s.pipeline, out);
        }
    }
    let mut from_steps = BTreeMap::new();
    needs(&plan.pipeline, &mut from_steps);
    for sp in &plan.subpackages {
        needs(&sp.pipeline, &mut from_steps);
    }
    let mut out = BTreeMap::new();
    for p in &plan.environment.packages {
        let who = from_steps
            .get(p)
            .cloned()
            .unwrap_or_else(|| "environment.contents.packages".into());
        out.insert(p.clone(), who);
    }
    for p in append {
        out.entry(p.clone())
            .or_insert_with(|| "--package-append".into());
    }
    out
}

/// The lock of the packages to add over the rootfs. When the repositories cannot serve the
/// request, every package that is neither in the rootfs nor in a repository is listed with
/// who asked for it.
pub fn lock(
    repos: &melange2_resolve::Repositories,
    request: &BTreeMap<String, String>,
    who: &str,
) -> Result<melange2_resolve::Lock, BuildError> {
    let names: Vec<&String> = request.keys().collect();
    let err = match repos.lock(&names) {
        Ok(l) => return Ok(l),
        Err(e) => e,
    };
    // Each package on its own: what cannot be had at all, and why when it is not simply
    // absent (a version the rootfs's installed package rules out, a broken dependency).
    let missing: Vec<String> = request
        .iter()
        .filter_map(|(p, who)| {
            let e = repos.solve(&[p.as_str()]).err()?;
            Some(match e {
                melange2_resolve::Error::Unsatisfiable(u)
                    if u.chain.is_empty() && u.problem == "no provider" =>
                {
                    format!("{p} ({who})")
                }
                melange2_resolve::Error::Unsatisfiable(u) => format!("{p} ({who}: {u})"),
                other => format!("{p} ({who}: {other})"),
            })
        })
        .collect();
    if missing.is_empty() {
        return Err(BuildError::Resolve(format!(
            "{who} over the bootstrap rootfs: {err}"
        )));
    }
    let served = if repos.repositories().is_empty() {
        "no repository is configured (-r, environment.contents.repositories)".to_string()
    } else {
        let list: Vec<&str> = repos
            .repositories()
            .iter()
            .map(|r| r.spec.as_str())
            .collect();
        format!("no configured repository serves them ({})", list.join(", "))
    };
    Err(BuildError::Resolve(format!(
        "{who} needs {} package(s) the bootstrap rootfs does not have, and {served}: {}",
        missing.len(),
        missing.join(", ")
    )))
}

/// The environment of a bootstrap build: the rootfs layer, the added packages' layers
/// (downloaded now) and the metadata layer with the accounts.
pub async fn environment(
    ctx: &BuildContext,
    plan: &Plan,
    rootfs: &Rootfs,
    repos: &melange2_resolve::Repositories,
    packages: &[String],
    local_dirs: &mut BTreeMap<String, PathBuf>,
    sca_env: &mut melange2_package::BuildEnvironment,
) -> Result<State, BuildError> {
    let base = rootfs_layer(&rootfs.path, &rootfs.digest, local_dirs)?;
    let resolution = match packages.is_empty() {
        true => None,
        false => Some(
            repos
                .resolve(packages)
                .await
                .map_err(|e| BuildError::Resolve(e.to_string()))?,
        ),
    };
    let added = resolution.as_ref().map_or(&[][..], |r| &r.packages[..]);
    sca_env.installed = rootfs
        .scan
        .installed
        .iter()
        .map(|e| (e.name.clone(), e.version.clone(), e.provides.clone()))
        .chain(added.iter().map(|p| {
            let e = &p.entry;
            (e.name.clone(), e.version.clone(), e.provides.clone())
        }))
        .map(
            |(name, version, provides)| melange2_package::InstalledPackage {
                name,
                version,
                provides,
            },
        )
        .collect();
    // What the rootfs provides outside apk is unknown: `so:` depends are not checked.
    sca_env.repositories = None;
    let (users, groups) = accounts(&plan.environment.accounts);
    let (repositories, keys) = match &resolution {
        Some(r) => crate::run::environment_sources(ctx, r),
        None => (vec![], vec![]),
    };
    let request = EnvironmentRequest {
        base: Some(Base {
            rootfs: base,
            scan: Arc::clone(&rootfs.scan),
        }),
        packages: added
            .iter()
            .map(|p| PackageFile {
                entry: p.entry.clone(),
                file: p.file.clone(),
            })
            .collect(),
        world: resolution
            .as_ref()
            .map(|r| r.world.clone())
            .unwrap_or_default(),
        repositories,
        keys,
        users,
        groups,
        arch: plan.arch.clone(),
        source_date_epoch: ctx.sde as i64,
    };
    let assembled = assemble(&request).map_err(|e| BuildError::Environment(e.to_string()))?;
    local_dirs.extend(assembled.local_dirs);
    Ok(assembled.rootfs)
}

/// The bootstrap rootfs as a layer, named by its content digest: the same tree at another
/// path is the same layer.
pub fn rootfs_layer(
    path: &Path,
    digest: &str,
    local_dirs: &mut BTreeMap<String, PathBuf>,
) -> Result<State, BuildError> {
    let name = format!("rootfs-{}", &digest.trim_start_matches("sha256:")[..16]);
    if path.is_dir() {
        local_dirs.insert(name.clone(), path.to_path_buf());
        return local_layer(&name, digest, vec![], "bootstrap rootfs");
    }
    // A tar (optionally compressed): sent as one file, unpacked inside BuildKit.
    let (dir, file) = match (path.parent(), path.file_name()) {
        (Some(d), Some(f)) => (d.to_path_buf(), f.to_string_lossy().into_owned()),
        _ => {
            return Err(BuildError::Input(format!(
                "bootstrap rootfs {} is neither a directory nor a file",
                path.display()
            )));
        }
    };
    local_dirs.insert(name.clone(), dir);
    let src = LocalSource::new(&name)
        .unique(format!("melange2:{digest}"))
        .shared_key_hint(&name)
        .include(vec![file.clone()])
        .options(OpOptions::named("send bootstrap rootfs"))
        .build();
    Ok(State::scratch().file(
        FileActions::new().copy(
            &src,
            &format!("/{file}"),
            "/",
            CopyOptions {
                unpack: true,
                ..Default::default()
            },
        ),
        OpOptions::named("unpack bootstrap rootfs"),
    )?)
}
