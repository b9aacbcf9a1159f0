//! One rebuild per origin: check that every input the package records is still available,
//! run the same build on BuildKit, and compare what it wrote with the given packages.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use melange2_build::{BuildContext, BuildOptions, NodeInputs};
use melange2_buildkit::Client;
use melange2_buildkit::progress::Progress;
use melange2_config::plan::{Plan, Step};

use crate::original::{self, Group, Recorded, RecordedEnv};
use crate::{OriginResult, PackageResult, RebuildError, RebuildOptions, Report};

/// Rebuild every given package from what it carries and compare it with the rebuild.
///
/// Every package is read and its record checked before anything is built; each origin's
/// missing inputs are reported together ([`RebuildError::Missing`]).
///
/// # Errors
/// Unreadable packages, packages without a melange2 record, missing or changed inputs,
/// a failed build, an unreachable daemon. Differences are not errors: they are in the
/// [`Report`].
pub async fn rebuild(opts: &RebuildOptions) -> Result<Report, RebuildError> {
    let groups = original::groups(&opts.packages)?;
    let mut prepared = Vec::new();
    for g in groups {
        refuse_overwrite(opts, &g)?;
        prepared.push(prepare(opts, g).await?);
    }
    let explicit = opts
        .buildkit_addr
        .clone()
        .or_else(|| std::env::var(melange2_buildkit::BUILDKIT_HOST_ENV).ok());
    let (client, _) =
        melange2_buildkit::local::connect_or_start(explicit.as_deref(), &opts.tls).await?;
    let mut report = Report::default();
    for p in prepared {
        report
            .origins
            .push(build_and_compare(&client, opts, p).await?);
    }
    Ok(report)
}

/// The rebuild writes `<out_dir>/<arch>/<file>`: never over the packages it compares with.
fn refuse_overwrite(opts: &RebuildOptions, g: &Group) -> Result<(), RebuildError> {
    for a in &g.packages {
        let Some(file) = a.path.file_name() else {
            continue;
        };
        let target = opts.out_dir.join(&a.pkginfo.arch).join(file);
        let same = match (a.path.canonicalize(), target.canonicalize()) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        };
        if same {
            return Err(RebuildError::Package {
                path: a.path.clone(),
                message: format!(
                    "the rebuild would overwrite it: choose an output directory other than {}",
                    opts.out_dir.display()
                ),
            });
        }
    }
    Ok(())
}

/// An origin ready to build: its context and inputs, with everything it needs checked.
struct Prepared {
    group: Group,
    ctx: BuildContext,
    inputs: NodeInputs,
    notes: Vec<String>,
}

/// Check the inputs the package cannot carry, then resolve the environment (pinned to the
/// lock unless updating).
async fn prepare(opts: &RebuildOptions, group: Group) -> Result<Prepared, RebuildError> {
    let rec = &group.recorded;
    let origin = rec.plan.package.name.clone();
    let mut missing = Vec::new();
    let source_dir = check_source_dir(opts, rec, &mut missing);
    check_rootfs(opts, rec, &mut missing);
    let mut plan = rec.plan.clone();
    restore_env_files(opts, &mut plan, &mut missing);
    let ctx =
        BuildContext::new(build_options(opts, rec)).map_err(|source| RebuildError::Build {
            origin: origin.clone(),
            source,
        })?;
    if !opts.update_environment {
        check_pin(&ctx, rec, &mut missing).await;
    }
    if !missing.is_empty() {
        return Err(RebuildError::Missing { origin, missing });
    }
    let inputs = ctx
        .inputs(plan, source_dir, &BTreeSet::new())
        .await
        .map_err(|source| RebuildError::Build {
            origin: origin.clone(),
            source,
        })?;
    let mut notes = Vec::new();
    let version = env!("CARGO_PKG_VERSION");
    if rec.settings.melange2 != version {
        notes.push(format!(
            "built by melange2 {}, rebuilt by melange2 {version}",
            rec.settings.melange2
        ));
    }
    Ok(Prepared {
        group,
        ctx,
        inputs,
        notes,
    })
}

/// The build options of the original build, as far as the package records them.
fn build_options(opts: &RebuildOptions, rec: &Recorded) -> BuildOptions {
    let s = &rec.settings;
    let pin = match (&rec.env, opts.update_environment) {
        (_, true) => None,
        (RecordedEnv::Packages(lock), false) => Some(lock.clone()),
        (RecordedEnv::Rootfs { added, .. }, false) => Some(added.clone()),
    };
    BuildOptions {
        archs: vec![rec.plan.arch.clone()],
        out_dir: opts.out_dir.clone(),
        signing_key: opts.signing_key.clone(),
        repository_append: opts.repository_append.clone(),
        keyring_append: opts.keyring_append.clone(),
        apk_cache_dir: opts.apk_cache_dir.clone(),
        env_files: opts.env_files.clone(),
        progress: opts.progress,
        source_date_epoch: Some(s.source_date_epoch),
        ignore_signatures: opts.ignore_signatures,
        cache_mounts: s.cache_mounts,
        bootstrap_rootfs: match rec.env {
            RecordedEnv::Rootfs { .. } => opts.bootstrap_rootfs.clone(),
            RecordedEnv::Packages(_) => None,
        },
        namespace: s.namespace.clone(),
        versioned_shlib_deps: s.versioned_shlib_deps,
        git_repo_url: s.git_repo_url.clone(),
        git_commit: s.git_commit.clone(),
        license: s.license.clone(),
        debug: s.debug,
        lint_require: s.lint_require.clone(),
        lint_warn: s.lint_warn.clone(),
        environment_pin: pin,
        ..Default::default()
    }
}

/// The source directory: required when the build had one. Its content is not recorded (see
/// `BuildSettings::source_dir`): another source shows as the files of the rebuild that differ.
fn check_source_dir(
    opts: &RebuildOptions,
    rec: &Recorded,
    missing: &mut Vec<String>,
) -> Option<PathBuf> {
    if !rec.settings.source_dir {
        return None;
    }
    let Some(dir) = &opts.source_dir else {
        missing.push(
            "the build had a source directory, which is not given: pass it with --source-dir"
                .to_string(),
        );
        return None;
    };
    // Only that it is a directory: the build reads (and digests) its content once.
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => missing.push(format!(
            "source directory {}: not a directory",
            dir.display()
        )),
        Err(e) => missing.push(format!("source directory {}: {e}", dir.display())),
    }
    Some(dir.clone())
}

/// The bootstrap root filesystem: required when the build had one, with the same digest.
fn check_rootfs(opts: &RebuildOptions, rec: &Recorded, missing: &mut Vec<String>) {
    let RecordedEnv::Rootfs { digest, .. } = &rec.env else {
        return;
    };
    let Some(path) = &opts.bootstrap_rootfs else {
        missing.push(format!(
            "the bootstrap root filesystem (content {digest}) is not given: pass it with --bootstrap-rootfs"
        ));
        return;
    };
    // As the build reads it: the canonical path (a symlink to the rootfs is the rootfs).
    let digest_of = |p: &Path| {
        let abs = std::fs::canonicalize(p).map_err(|e| e.to_string())?;
        melange2_fingerprint::digest_path(&abs).map_err(|e| e.to_string())
    };
    match digest_of(path) {
        Ok(got) if &got == digest => {}
        Ok(got) => missing.push(format!(
            "bootstrap root filesystem {} has content {got}, the package was built on {digest}",
            path.display()
        )),
        Err(e) => missing.push(format!("bootstrap root filesystem {}: {e}", path.display())),
    }
}

/// Every locked package must still be in the repositories, with the same content.
async fn check_pin(ctx: &BuildContext, rec: &Recorded, missing: &mut Vec<String>) {
    let lock = match &rec.env {
        RecordedEnv::Packages(lock) => lock,
        RecordedEnv::Rootfs { added, .. } => added,
    };
    if lock.packages.is_empty() {
        return;
    }
    let repos = match ctx.repositories(&rec.plan, false).await {
        Ok(r) => r,
        Err(e) => {
            missing.push(format!("the repositories: {e}"));
            return;
        }
    };
    if let Err(e) = repos.pinned(lock) {
        for u in e.unavailable {
            missing.push(format!("environment package {u}"));
        }
    }
}

/// Values of `--env-file`s show as `***` in the recorded plan: put the given files' values
/// back, and name the variables no given file holds.
fn restore_env_files(opts: &RebuildOptions, plan: &mut Plan, missing: &mut Vec<String>) {
    let values: BTreeMap<String, String> = match melange2_config::env_file_values(&opts.env_files) {
        Ok(v) => v.into_iter().collect(),
        Err(e) => {
            missing.push(format!("--env-file: {e}"));
            return;
        }
    };
    let mut unknown = BTreeSet::new();
    let mut fix = |env: &mut BTreeMap<String, String>| {
        for (k, v) in env.iter_mut() {
            if v == MASK {
                match values.get(k) {
                    Some(real) => v.clone_from(real),
                    None => {
                        unknown.insert(k.clone());
                    }
                }
            }
        }
    };
    fix(&mut plan.environment.env);
    for_steps(&mut plan.pipeline, &mut fix);
    for sp in &mut plan.subpackages {
        for_steps(&mut sp.pipeline, &mut fix);
    }
    if !unknown.is_empty() {
        missing.push(format!(
            "variables {} were set from an --env-file (hidden in the package): pass the same --env-file",
            unknown.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
}

/// How `.melange.yaml` shows a value of an `--env-file`.
const MASK: &str = "***";

fn for_steps(steps: &mut [Step], fix: &mut impl FnMut(&mut BTreeMap<String, String>)) {
    for s in steps {
        fix(&mut s.env);
        for_steps(&mut s.pipeline, fix);
    }
}

/// Run the build and compare each given package with its rebuild.
async fn build_and_compare(
    client: &Client,
    opts: &RebuildOptions,
    p: Prepared,
) -> Result<OriginResult, RebuildError> {
    let origin = p.inputs.plan.package.name.clone();
    let arch = p.inputs.plan.arch.clone();
    let failed = |source| RebuildError::Build {
        origin: origin.clone(),
        source,
    };
    melange2_build::support::check_platforms(client, std::slice::from_ref(&arch))
        .await
        .map_err(failed)?;
    let progress = Mutex::new(Progress::new(opts.progress, false));
    let status = |s: bollard_buildkit_proto::moby::buildkit::v1::StatusResponse| {
        progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .handle(&s);
    };
    let out = melange2_build::execute(&p.ctx, client, &p.inputs, "", &status).await;
    progress.lock().unwrap_or_else(|e| e.into_inner()).finish();
    let out = out.map_err(failed)?;
    let environment_changes = environment_changes(&p.group.recorded, &p.inputs);
    let mut packages = Vec::new();
    for a in &p.group.packages {
        let rebuilt = out
            .packages
            .iter()
            .find(|f| f.name == a.pkginfo.name)
            .map(|f| f.path.clone())
            .ok_or_else(|| RebuildError::Package {
                path: a.path.clone(),
                message: format!(
                    "the rebuild of {origin} wrote no package {}",
                    a.pkginfo.name
                ),
            })?;
        packages.push(compare_one(a, &rebuilt)?);
    }
    Ok(OriginResult {
        origin,
        arch,
        environment_changes,
        notes: p.notes,
        packages,
    })
}

/// What the rebuild's environment lock has that the recorded one has not (and back).
fn environment_changes(rec: &Recorded, n: &NodeInputs) -> Vec<String> {
    let before = match &rec.env {
        RecordedEnv::Packages(l) => l.clone(),
        RecordedEnv::Rootfs { added, .. } => added.clone(),
    };
    let Ok(after) = original::lock_of(&n.lock, &n.plan.arch) else {
        return vec!["the rebuild's environment lock cannot be read".to_string()];
    };
    crate::compare::environment_changes(&before, &after)
}

fn compare_one(a: &original::Apk, rebuilt: &Path) -> Result<PackageResult, RebuildError> {
    let b = original::read_apk(rebuilt)?;
    let signers = (a.signers != b.signers).then(|| (a.signers.clone(), b.signers.clone()));
    Ok(PackageResult {
        original: a.path.clone(),
        rebuilt: rebuilt.to_path_buf(),
        differences: crate::compare::compare(a, &b),
        same_bytes: a.sha256 == b.sha256,
        signers,
    })
}
