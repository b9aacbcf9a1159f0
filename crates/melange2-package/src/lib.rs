//! Packaging after a melange2 build: from the build output
//! (`/home/build/melange-out`, as BuildKit's tar export or as a directory)
//! and the compiled [`Plan`] to signed `.apk` files and a merged, signed
//! `APKINDEX.tar.gz`.
//!
//! Contract:
//! * One APK per package of the plan (main package first, then every
//!   subpackage in plan order), `<out_dir>/<arch>/<name>-<version>-r<epoch>.apk`
//!   with `arch = plan.arch`. A package without an output directory gets an
//!   empty data section.
//! * `.PKGINFO` from the plan as melange writes it: name, `<version>-r<epoch>`,
//!   arch, size, origin (main package), description, url, commit,
//!   maintainer (the namespace), builddate (= `source_date_epoch`, omitted
//!   when 0), one `license` per copyright entry (subpackages carry the main
//!   package's), depends and provides (declared + SCA, sorted), replaces,
//!   `# vendored` lines, priorities, triggers; control files `.melange.yaml`
//!   (main package only) and the scriptlets.
//! * SCA ([`sca`]): `so:`/`so-ver:` from ELF files, `cmd:` from
//!   executables in bin directories and shebangs, `pc:` from pkg-config
//!   files, `-doc`, perl, python, ruby and kernel generators; options
//!   `no-provides`, `no-depends`, `no-commands`, `no-versioned-shlib-deps`
//!   honoured; `so:` depends nothing provides (with
//!   [`BuildEnvironment::repositories`]) are warnings; every entry's origin
//!   is kept in a [`ScaReport`] per package.
//! * An SPDX 2.3 SBOM ([`sbom`]) inside every package at
//!   `var/lib/db/sbom/<name>-<version>-r<epoch>.spdx.json`; with
//!   [`PackageRequest::provenance`], an in-toto/SLSA statement
//!   ([`provenance`]) next to every APK.
//! * Signed with the given key (`RSA256`), the index merged (records with the
//!   same name, version and arch replaced, others kept) and signed.
//! * All or nothing: everything is written into a staging directory inside
//!   `out_dir` and renamed into place at the end (packages, then the index);
//!   on any error `out_dir` is left as it was.
//! * Concurrent runs into one `out_dir` (threads or processes) keep every
//!   record: reading the existing index, merging, writing it and the commit
//!   run under the per-arch lock ([`lock_arch`], the file
//!   `<out_dir>/<arch>/.melange2.lock`); ingest, SCA and compressing the
//!   packages run before it, in parallel. Staging directories left by
//!   interrupted runs are removed by the next run (each staging directory
//!   holds a lock of its own while its run lives).
//! * Reproducible: the same plan, output and options give the same bytes.
//! * [`rescan`]: the SCA again over packages already built (`.apk` files read back with
//!   [`read_built`]), giving the `.PKGINFO` a build would write now (`melange2 scan`,
//!   `docs/rebuild.md`).

pub mod error;
mod ingest;
mod lint;
mod outdir;
pub mod provenance;
pub mod rescan;
pub mod sbom;
pub mod sca;
mod staging;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use melange2_apk::{
    ApkIndex, ControlFiles, PackageTree, PkgInfo, Scriptlet, SigningKey, WriteOptions,
};
use melange2_config::plan::{PackageInfo, Plan};

pub use error::{PackageError, Result};
pub use melange2_apk::index::LOCK_FILE_NAME;
pub use outdir::{ArchLock, lock_arch, write_atomic};
pub use provenance::Provenance;
pub use rescan::{BuiltPackage, read_built, rescan};
pub use sbom::BuildConfig;
pub use sca::{
    BuildEnvironment, DroppedEntry, FindingKind, InstalledPackage, ProvidedLookup, ScaFinding,
    ScaReport,
};

use crate::staging::Staging;

/// File name of the repository index inside `<out_dir>/<arch>/`.
pub const INDEX_FILE_NAME: &str = "APKINDEX.tar.gz";

/// What to package and where.
#[derive(Debug, Clone)]
pub struct PackageRequest<'a> {
    /// The compiled build plan.
    pub plan: &'a Plan,
    /// Packages go to `<out_dir>/<arch>/` (`arch = plan.arch`).
    pub out_dir: PathBuf,
    /// Key signing packages and the index (`None`: unsigned).
    pub signing_key: Option<&'a SigningKey>,
    /// Every mtime and `builddate`.
    pub source_date_epoch: u64,
    /// Content of the main package's `.melange.yaml` control file (empty:
    /// no such file).
    pub melange_yaml: String,
    /// Merge the packages into `<out_dir>/<arch>/APKINDEX.tar.gz` and sign it.
    pub generate_index: bool,
    /// `maintainer` of every package (melange's `--namespace`; default
    /// `unknown`).
    pub namespace: String,
    /// Write the SPDX SBOM into every package (default on).
    pub generate_sbom: bool,
    /// The build file as the SBOM's build-configuration package names it.
    pub build_config: BuildConfig,
    /// Directory the `copyright[].license-path` files are read from (the
    /// source directory) for the SBOM.
    pub license_dir: Option<PathBuf>,
    /// Installed packages and repositories of the build, for the SCA.
    pub environment: BuildEnvironment,
    /// Write `<name>-<version>-r<epoch>.attest.tar.gz` next to every APK.
    pub provenance: Option<Provenance>,
    /// Linters made required (`--lint-require`), one by one over melange's
    /// defaults (crate `melange2-lint`).
    pub lint_require: Vec<String>,
    /// Linters that only warn (`--lint-warn`).
    pub lint_warn: Vec<String>,
}

impl<'a> PackageRequest<'a> {
    /// Request with melange's defaults: no key, epoch 0, no `.melange.yaml`,
    /// index generated, namespace `unknown`, SBOM written (build file named
    /// by the base name of `plan.file`), no repositories, no provenance.
    pub fn new(plan: &'a Plan, out_dir: impl Into<PathBuf>) -> Self {
        let config_name = Path::new(&plan.file)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| plan.file.clone());
        PackageRequest {
            plan,
            out_dir: out_dir.into(),
            signing_key: None,
            source_date_epoch: 0,
            melange_yaml: String::new(),
            generate_index: true,
            namespace: "unknown".to_string(),
            generate_sbom: true,
            build_config: BuildConfig::new(config_name),
            license_dir: None,
            environment: BuildEnvironment::default(),
            provenance: None,
            lint_require: Vec::new(),
            lint_warn: Vec::new(),
        }
    }
}

/// Result of a packaging run.
#[derive(Debug, Clone)]
pub struct PackagedOutput {
    /// Every package written, main package first.
    pub packages: Vec<PackagedFile>,
    /// The index written (when requested).
    pub index: Option<PathBuf>,
    /// Non-fatal problems (unknown output directories, trigger scripts
    /// without paths, …), also logged.
    pub warnings: Vec<String>,
    /// Where the time went.
    pub timings: Timings,
}

/// Wall time of each phase of a packaging run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    /// Reading the build output (tar stream or directory).
    pub ingest: Duration,
    /// SCA of every package.
    pub sca: Duration,
    /// The linters (also counted in `sca`).
    pub lint: Duration,
    /// Writing (compressing, signing) the packages.
    pub write: Duration,
    /// Waiting for the out-dir's per-arch lock (other runs committing).
    pub lock: Duration,
    /// Merging and signing the index.
    pub index: Duration,
    /// Moving everything into place.
    pub commit: Duration,
}

/// One package written.
#[derive(Debug, Clone)]
pub struct PackagedFile {
    /// Package name.
    pub name: String,
    /// Full version `<version>-r<epoch>`.
    pub version: String,
    /// Final path of the `.apk`.
    pub path: PathBuf,
    /// Final `depend` lines.
    pub depends: Vec<String>,
    /// Final `provides` lines.
    pub provides: Vec<String>,
    /// Index checksum (`Q1…`, SHA-1 of the control member).
    pub checksum: String,
    /// Size of the `.apk` file.
    pub file_size: u64,
    /// Installed size (`.PKGINFO size`).
    pub installed_size: u64,
    /// What the SCA found and why (for `--dependency-log`).
    pub sca: ScaReport,
    /// Path of the SBOM inside the package (when written).
    pub sbom: Option<String>,
    /// Final path of the provenance archive (when requested).
    pub provenance: Option<PathBuf>,
}

/// Package BuildKit's tar export of `/home/build/melange-out`: top-level
/// directories are package names (the main package and every subpackage; a
/// package with no directory gets an empty data section; other top-level
/// entries are skipped with a warning).
///
/// # Errors
/// Malformed stream, invalid metadata, I/O or signing failures — in every
/// case `out_dir` is left as it was.
pub fn package_tar<R: Read>(req: &PackageRequest, tar: R) -> Result<PackagedOutput> {
    run(req, |staging, names| {
        ingest::split_tar(tar, names, &staging.spool_dir())
    })
}

/// Package an extracted `melange-out` directory (one subdirectory per
/// package). Ownership, modes and xattrs are taken from the files on disk.
///
/// # Errors
/// As [`package_tar`].
pub fn package_dir(req: &PackageRequest, dir: &Path) -> Result<PackagedOutput> {
    run(req, |_, names| ingest::from_dir(dir, names))
}

fn all_packages(plan: &Plan) -> Vec<&PackageInfo> {
    std::iter::once(&plan.package)
        .chain(plan.subpackages.iter().map(|s| &s.package))
        .collect()
}

fn run<F>(req: &PackageRequest, ingest_fn: F) -> Result<PackagedOutput>
where
    F: FnOnce(&Staging, &[&str]) -> Result<ingest::Ingested>,
{
    let plan = req.plan;
    if !outdir::valid_arch(&plan.arch) {
        return Err(PackageError::invalid(
            &plan.package.name,
            format!("invalid architecture {:?}", plan.arch),
        ));
    }
    let packages = all_packages(plan);
    let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
    let mut seen = std::collections::BTreeSet::new();
    for n in &names {
        if !seen.insert(*n) {
            return Err(PackageError::invalid(
                *n,
                "package name used twice in the plan",
            ));
        }
    }
    // metadata problems are reported before any file is written
    let mut warnings = Vec::new();
    let mut controls = Vec::new();
    for (i, p) in packages.iter().enumerate() {
        controls.push(control_files(p, i == 0, &req.melange_yaml, &mut warnings)?);
    }

    let lint_policy = melange2_lint::Policy::with_overrides(&req.lint_require, &req.lint_warn)?;
    let mut timings = Timings::default();
    let mut t = Instant::now();
    let mut lap = |slot: &mut Duration| {
        *slot = t.elapsed();
        t = Instant::now();
    };
    let mut staging = Staging::begin(&req.out_dir, &plan.arch)?;
    let mut ingested = ingest_fn(&staging, &names)?;
    lap(&mut timings.ingest);
    warnings.extend(ingested.warnings.iter().cloned());
    let mut owned: Vec<PackageTree> = names
        .iter()
        .map(|n| ingested.trees.remove(*n).unwrap_or_default())
        .collect();

    // the SBOM is part of each package's data (written before the SCA, as melange does)
    let mut sbom_paths: Vec<Option<String>> = vec![None; owned.len()];
    if req.generate_sbom {
        let ctx = sbom::SbomContext {
            plan,
            namespace: &req.namespace,
            source_date_epoch: req.source_date_epoch,
            build_config: &req.build_config,
            license_dir: req.license_dir.as_deref(),
        };
        let mut sbom_warnings = Vec::new();
        for (i, p) in packages.iter().enumerate() {
            let sub = (i > 0).then(|| plan.subpackages[i - 1].pipeline.as_slice());
            let bytes = sbom::document(&ctx, p, sub, &mut sbom_warnings);
            let path = sbom::sbom_path(p);
            owned[i]
                .add_file(&path, 0o644, bytes)
                .map_err(|e| e.within(format!("package {}: SBOM", p.name)))?;
            sbom_paths[i] = Some(path);
        }
        sbom_warnings.dedup();
        warnings.extend(sbom_warnings);
    }
    let trees: Vec<(&str, &PackageTree)> = names.iter().copied().zip(owned.iter()).collect();

    // the linters: a required one that fires fails here, before anything is written
    let lint_start = Instant::now();
    lint::lint_trees(plan, &trees, &lint_policy, &mut warnings)?;
    timings.lint = lint_start.elapsed();

    // SCA for every package (needs every tree), then the merge
    let build = sca::BuildTrees::new(trees.clone());
    let (reports, sca_warnings) = sca::analyze(&build, &packages, &req.environment);
    warnings.extend(sca_warnings);
    lap(&mut timings.sca);

    let opts = write_options(req, staging.spool_dir());
    let mut written = Vec::new();
    for ((p, (_, tree)), (report, control)) in packages
        .iter()
        .zip(&trees)
        .zip(reports.into_iter().zip(&controls))
    {
        let info = pkginfo(plan, p, &report, req)?;
        let file_name = info.file_name();
        let staged = staging.out_path(&file_name);
        let w = melange2_apk::write_package(tree, &info, control, req.signing_key, &opts, &staged)
            .map_err(|e| e.within(format!("package {}", p.name)))?;
        staging.stage(&file_name);
        tracing::info!(package = %p.name, file = %file_name, size = w.file_size, "package written");
        let attest = match &req.provenance {
            Some(prov) => {
                let apk = std::fs::read(&staged)
                    .map_err(|e| PackageError::io_path("reading", &staged, e))?;
                let stem = format!("{}-{}", p.name, p.full_version);
                let statement = provenance::statement(
                    prov,
                    &provenance::Subject {
                        apk_file_name: &file_name,
                        apk_sha256: &sbom::sha256_hex(&apk),
                        package: &p.name,
                        version: &p.full_version,
                        arch: &plan.arch,
                        namespace: &req.namespace,
                        source_date_epoch: req.source_date_epoch,
                    },
                );
                let bytes = provenance::archive(
                    &statement,
                    &format!("{stem}.attestation"),
                    req.signing_key,
                    req.source_date_epoch,
                )?;
                let name = format!("{stem}.attest.tar.gz");
                let path = staging.out_path(&name);
                std::fs::write(&path, bytes)
                    .map_err(|e| PackageError::io_path("writing", &path, e))?;
                staging.stage(&name);
                Some(staging.arch_dir().join(&name))
            }
            None => None,
        };
        written.push((w, report, staging.arch_dir().join(&file_name), attest));
    }

    lap(&mut timings.write);
    // from here to the end of the commit: under the out-dir's lock, so the
    // index read below is still the current one when ours replaces it
    staging.lock_arch()?;
    lap(&mut timings.lock);
    let mut index_path = None;
    if req.generate_index {
        let existing = staging.arch_dir().join(INDEX_FILE_NAME);
        let mut index = if existing.exists() {
            ApkIndex::read(&existing)?
        } else {
            ApkIndex::new()
        };
        index.merge(written.iter().map(|(w, ..)| w.index_entry()));
        let bytes = index.to_bytes(
            req.signing_key,
            &[melange2_apk::SignatureAlgorithm::RsaSha256],
        )?;
        let staged = staging.out_path(INDEX_FILE_NAME);
        std::fs::write(&staged, bytes).map_err(|e| PackageError::io_path("writing", &staged, e))?;
        staging.stage(INDEX_FILE_NAME);
        index_path = Some(existing);
    }
    lap(&mut timings.index);
    staging.commit()?;
    lap(&mut timings.commit);
    tracing::debug!(?timings, "packaging phases");
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let packages = written
        .into_iter()
        .zip(sbom_paths)
        .map(|((w, report, path, attest), sbom)| PackagedFile {
            name: w.info.name.clone(),
            version: w.info.version.clone(),
            path,
            depends: w.info.depends.clone(),
            provides: w.info.provides.clone(),
            checksum: w.checksum.clone(),
            file_size: w.file_size,
            installed_size: w.info.size,
            sca: report,
            sbom,
            provenance: attest,
        })
        .collect();
    Ok(PackagedOutput {
        packages,
        index: index_path,
        warnings,
        timings,
    })
}

fn write_options(req: &PackageRequest, temp_dir: PathBuf) -> WriteOptions {
    let accounts = &req.plan.environment.accounts;
    let build_uid = accounts
        .users
        .iter()
        .find(|u| u.username == "build")
        .and_then(|u| u.uid)
        .unwrap_or(1000);
    let build_gid = accounts
        .groups
        .iter()
        .find(|g| g.groupname == "build")
        .map_or(1000, |g| g.gid);
    let mut users: BTreeMap<u32, String> = BTreeMap::new();
    for u in &accounts.users {
        if let Some(uid) = u.uid
            && !u.username.is_empty()
        {
            users.entry(uid).or_insert_with(|| u.username.clone());
        }
    }
    let mut groups: BTreeMap<u32, String> = BTreeMap::new();
    for g in &accounts.groups {
        if !g.groupname.is_empty() {
            groups.entry(g.gid).or_insert_with(|| g.groupname.clone());
        }
    }
    users.insert(0, "root".to_string());
    groups.insert(0, "root".to_string());
    WriteOptions {
        source_date_epoch: req.source_date_epoch,
        build_uid: Some(build_uid),
        build_gid: Some(build_gid),
        users,
        groups,
        temp_dir: Some(temp_dir),
        ..WriteOptions::default()
    }
}

fn priority(pkg: &str, field: &str, v: Option<i64>) -> Result<Option<u64>> {
    match v {
        None => Ok(None),
        Some(n) => u64::try_from(n).map(Some).map_err(|_| {
            PackageError::invalid(pkg, format!("{field} must not be negative (got {n})"))
        }),
    }
}

/// `.PKGINFO` for one package.
fn pkginfo(
    plan: &Plan,
    p: &PackageInfo,
    report: &ScaReport,
    req: &PackageRequest,
) -> Result<PkgInfo> {
    let mut info = PkgInfo::new(&p.name, &p.full_version, &plan.arch);
    info.origin = plan.package.name.clone();
    info.description = p.description.clone();
    info.url = p.url.clone();
    info.commit = p.commit.clone();
    info.maintainer = req.namespace.clone();
    info.build_date = req.source_date_epoch;
    let copyright = if p.copyright.is_empty() {
        &plan.package.copyright
    } else {
        &p.copyright
    };
    info.licenses = copyright
        .iter()
        .map(|c| c.license.clone())
        .filter(|l| !l.is_empty())
        .collect();
    info.depends = report.depends.clone();
    info.provides = report.provides.clone();
    info.vendored = report.vendored.clone();
    info.replaces = p.dependencies.replaces.clone();
    info.provider_priority = priority(
        &p.name,
        "provider-priority",
        p.dependencies.provider_priority,
    )?;
    info.replaces_priority = priority(
        &p.name,
        "replaces-priority",
        p.dependencies.replaces_priority,
    )?;
    if let Some(s) = &p.scriptlets {
        info.triggers = s.trigger.paths.clone();
    }
    info.validate()
        .map_err(|e| PackageError::invalid(&p.name, e.to_string()))?;
    Ok(info)
}

/// Scriptlets and `.melange.yaml` for one package.
fn control_files(
    p: &PackageInfo,
    is_main: bool,
    melange_yaml: &str,
    warnings: &mut Vec<String>,
) -> Result<ControlFiles> {
    let mut control = ControlFiles::default();
    if is_main && !melange_yaml.is_empty() {
        control.melange_yaml = Some(melange_yaml.as_bytes().to_vec());
    }
    let Some(s) = &p.scriptlets else {
        return Ok(control);
    };
    let scripts = [
        (Scriptlet::PreInstall, "pre-install", &s.pre_install),
        (Scriptlet::PostInstall, "post-install", &s.post_install),
        (Scriptlet::PreDeinstall, "pre-deinstall", &s.pre_deinstall),
        (
            Scriptlet::PostDeinstall,
            "post-deinstall",
            &s.post_deinstall,
        ),
        (Scriptlet::PreUpgrade, "pre-upgrade", &s.pre_upgrade),
        (Scriptlet::PostUpgrade, "post-upgrade", &s.post_upgrade),
        (Scriptlet::Trigger, "trigger.script", &s.trigger.script),
    ];
    for (kind, field, text) in scripts {
        if text.is_empty() {
            continue;
        }
        if !text.starts_with("#!") {
            return Err(PackageError::invalid(
                &p.name,
                format!(
                    "scriptlets.{field} does not start with a `#!` line (apk executes scriptlets directly)"
                ),
            ));
        }
        control.scripts.insert(kind, text.as_bytes().to_vec());
    }
    for path in &s.trigger.paths {
        if path.is_empty() || path.contains(char::is_whitespace) {
            return Err(PackageError::invalid(
                &p.name,
                format!("scriptlets.trigger.paths: invalid path {path:?} (no spaces allowed)"),
            ));
        }
    }
    if s.trigger.script.is_empty() && !s.trigger.paths.is_empty() {
        warnings.push(format!(
            "package {}: scriptlets.trigger has paths but no script",
            p.name
        ));
    }
    if !s.trigger.script.is_empty() && s.trigger.paths.is_empty() {
        warnings.push(format!(
            "package {}: scriptlets.trigger has a script but no paths; apk will never run it",
            p.name
        ));
    }
    Ok(control)
}
