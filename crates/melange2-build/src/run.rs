//! One recipe's build on a daemon: resolve → assemble → solve (export streamed to the
//! packager) → record.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard_buildkit_proto::moby::buildkit::v1::StatusResponse;
use melange2_buildkit::progress::ProgressMode;
use melange2_buildkit::{Client, Exporter, SolveOptions};
use melange2_environment::{EnvironmentRequest, PackageFile, assemble};
use melange2_llb::{LocalSource, OpOptions, Platform, State};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::BuildError;
use crate::context::{BuildContext, EnvSource, NodeInputs};
use crate::graph::{GraphOptions, build_graph};
use crate::pack_progress::PackagingStep;
use crate::support::{accounts, short_hash, source_layer};

/// Everything `melange2 build` takes.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// APK architectures (empty: the host's).
    pub archs: Vec<String>,
    /// Output directory; packages go to `<out_dir>/<arch>/`.
    pub out_dir: PathBuf,
    /// Signing key (None: `melange.rsa` if it exists, else unsigned).
    pub signing_key: Option<PathBuf>,
    /// Extra repositories (`-r`).
    pub repository_append: Vec<String>,
    /// Extra keys (`-k`).
    pub keyring_append: Vec<String>,
    /// Extra packages for the build environment.
    pub package_append: Vec<String>,
    /// Source directory (None: `./<package name>/` if it exists).
    pub source_dir: Option<PathBuf>,
    /// Seed of the `/var/cache/melange` cache mount.
    pub cache_dir: Option<PathBuf>,
    /// Download cache of the resolver.
    pub apk_cache_dir: Option<PathBuf>,
    /// Also unpack the package trees into `<dir>/<arch>/melange-out/` (for inspection).
    pub workspace_dir: Option<PathBuf>,
    /// `--env-file`s.
    pub env_files: Vec<PathBuf>,
    /// `--secret`s with their values: mounted at `/run/secrets/<id>` in every step, never
    /// written anywhere, masked in step output.
    pub secrets: Vec<melange2_secrets::Secret>,
    /// `--vars-file`.
    pub vars_file: Option<PathBuf>,
    /// `--build-option`s.
    pub build_options: Vec<String>,
    /// `--pipeline-dir`s.
    pub pipeline_dirs: Vec<PathBuf>,
    /// Merge the packages into the signed APKINDEX.
    pub generate_index: bool,
    /// `set -x` in steps and live logs.
    pub debug: bool,
    /// Progress style.
    pub progress: ProgressMode,
    /// SOURCE_DATE_EPOCH (None: `$SOURCE_DATE_EPOCH`, else 0).
    pub source_date_epoch: Option<u64>,
    /// Limit for the whole build of one architecture.
    pub timeout: Option<Duration>,
    /// Accept unsigned repositories.
    pub ignore_signatures: bool,
    /// Toolchain cache mounts (go, cargo, pip, uv, npm, ccache).
    pub cache_mounts: bool,
    /// Use this root filesystem (a directory or a tar, optionally compressed) instead of
    /// resolving packages.
    pub bootstrap_rootfs: Option<PathBuf>,
    /// Namespace of the packages (their `maintainer`; melange's `--namespace`).
    pub namespace: Option<String>,
    /// Write `<name>-<version>.attest.tar.gz` (in-toto/SLSA provenance) next to every APK.
    pub generate_provenance: bool,
    /// Write the SCA results of every package as JSON to `<file>.<arch>` (melange's
    /// `--dependency-log`).
    pub dependency_log: Option<PathBuf>,
    /// Add `so-ver:` depends (melange's `MELANGE_VERSIONED_SHLIB_DEPENDS`).
    pub versioned_shlib_deps: bool,
    /// Repository of the build file for the SBOM (melange's `--git-repo-url`).
    pub git_repo_url: Option<String>,
    /// Commit of the build file for the SBOM (default: the package's `commit`).
    pub git_commit: Option<String>,
    /// Licence of the build file for the SBOM (default `NOASSERTION`).
    pub license: Option<String>,
    /// Linters that fail the build (`--lint-require`), one by one over melange's defaults.
    pub lint_require: Vec<String>,
    /// Linters that only warn (`--lint-warn`).
    pub lint_warn: Vec<String>,
    /// `--cache-to`: where the daemon exports each recipe's build cache (the `ref` tag gets
    /// `-<recipe>-<arch>` appended, see [`recipe_cache`]).
    pub cache_to: Vec<melange2_buildkit::CacheOption>,
    /// `--cache-from`: where the daemon looks for cache (tags derived the same way).
    pub cache_from: Vec<melange2_buildkit::CacheOption>,
    /// Resolve the environment to exactly these packages (by name and checksum), as
    /// `melange2 rebuild` does; a package the repositories no longer offer is an error.
    pub environment_pin: Option<melange2_resolve::Lock>,
    /// When a step fails: a shell in its container (`--interactive`) or its root filesystem
    /// written out (`--export-on-failure`); the build then fails with that step's failure
    /// (docs/debug.md).
    pub on_failure: Option<melange2_buildkit::debug::OnFailure>,
}

/// One recipe's cache reference: the tag of `ref` (default `melange2`) followed by the
/// recipe and the architecture, so one recipe's export never overwrites another's and an
/// import finds what the same recipe exported. Options without a `ref` stay as they are.
pub fn recipe_cache(
    c: &melange2_buildkit::CacheOption,
    recipe: &str,
    arch: &str,
) -> melange2_buildkit::CacheOption {
    let Some(r) = c.reference() else {
        return c.clone();
    };
    let name = r.rsplit('/').next().unwrap_or(r);
    let base = name
        .split('@')
        .next()
        .and_then(|n| n.split_once(':'))
        .map_or("melange2", |(_, t)| t);
    c.with_tag(&format!("{base}-{recipe}-{arch}"))
}

/// Reads the export stream on a blocking thread. At the end of the stream it waits for the
/// solve's outcome: a failed build turns the end into an error, so nothing gets packaged.
struct BlockingReader {
    handle: tokio::runtime::Handle,
    inner: tokio::io::DuplexStream,
    outcome: tokio::sync::watch::Receiver<Option<bool>>,
}

/// The packager may stop at the tar end-of-archive blocks; whatever the daemon still sends is
/// read here so its writer never sees a closed pipe.
impl Drop for BlockingReader {
    fn drop(&mut self) {
        let _ = std::io::copy(self, &mut std::io::sink());
    }
}

impl Read for BlockingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.handle.block_on(self.inner.read(buf))?;
        if n > 0 || buf.is_empty() {
            return Ok(n);
        }
        let ok = self.handle.block_on(async {
            let r = self.outcome.wait_for(|o| o.is_some()).await;
            matches!(r.as_deref(), Ok(Some(true)))
        });
        if ok {
            Ok(0)
        } else {
            Err(std::io::Error::other(
                "the build failed; nothing is packaged",
            ))
        }
    }
}

/// A lookup answering which names the repositories' packages provide (by package name or
/// provides entry), in one pass over the loaded indexes.
fn provided_lookup(repos: melange2_resolve::Repositories) -> melange2_package::ProvidedLookup {
    std::sync::Arc::new(move |names: &std::collections::BTreeSet<String>| {
        let mut found = std::collections::BTreeSet::new();
        for c in repos.universe().packages() {
            if names.contains(&c.entry.name) {
                found.insert(c.entry.name.clone());
            }
            for p in &c.entry.provides {
                let n = p
                    .split_once(['=', '<', '>', '~'])
                    .map_or(p.as_str(), |(n, _)| n);
                if names.contains(n) {
                    found.insert(n.to_string());
                }
            }
        }
        found
    })
}

/// What a finished build wrote.
#[derive(Clone, Debug)]
pub struct NodeOutput {
    /// Packages written (main package first).
    pub packages: Vec<melange2_package::PackagedFile>,
    /// Provenance archives written (`--generate-provenance`).
    pub attestations: Vec<PathBuf>,
    /// The index, when generated.
    pub index: Option<PathBuf>,
}

/// The graph's inputs that the solve serves or mounts.
struct Prepared {
    graph_output: State,
    local_dirs: BTreeMap<String, PathBuf>,
    sca_env: melange2_package::BuildEnvironment,
}

/// The repositories and keys an environment lists in `/etc/apk`. The out-dir is a path on
/// this machine, meaningless inside the build and different on every machine, so it is never
/// listed (a recipe's steps stay cached across machines and out-dirs); its key only when a
/// package came from it.
pub(crate) fn environment_sources(
    ctx: &BuildContext,
    resolution: &melange2_resolve::Resolution,
) -> (Vec<String>, Vec<PathBuf>) {
    let out_repo = ctx.out_repo();
    let repositories = resolution
        .repositories
        .iter()
        .filter(|r| **r != out_repo)
        .cloned()
        .collect();
    if resolution.packages.iter().any(|p| p.repository == out_repo) {
        return (repositories, resolution.keys.clone());
    }
    let keys = resolution
        .keys
        .iter()
        .filter(|k| Some(k.as_path()) != ctx.out_key())
        .cloned()
        .collect();
    (repositories, keys)
}

/// Resolve (download) and assemble the environment, then build the LLB graph.
async fn prepare(
    ctx: &BuildContext,
    n: &NodeInputs,
    name_prefix: &str,
) -> Result<Prepared, BuildError> {
    let opts = &ctx.opts;
    let plan = &n.plan;
    let platform = Platform::from_apk_arch(&plan.arch)?;
    let mut local_dirs = BTreeMap::new();
    let mut sca_env = melange2_package::BuildEnvironment {
        versioned_shlib_deps: opts.versioned_shlib_deps,
        ..Default::default()
    };
    let env_state = match &n.env {
        EnvSource::Bootstrap {
            rootfs,
            repos,
            packages,
            ..
        } => {
            let (l, s) = (&mut local_dirs, &mut sca_env);
            crate::bootstrap::environment(ctx, plan, rootfs, repos, packages, l, s).await?
        }
        EnvSource::Resolved { repos, packages } => {
            let resolution = repos
                .resolve(packages)
                .await
                .map_err(|e| BuildError::Resolve(e.to_string()))?;
            sca_env.installed = resolution
                .packages
                .iter()
                .map(|p| melange2_package::InstalledPackage {
                    name: p.entry.name.clone(),
                    version: p.entry.version.clone(),
                    provides: p.entry.provides.clone(),
                })
                .collect();
            sca_env.repositories = Some(provided_lookup(repos.clone()));
            let (users, groups) = accounts(&plan.environment.accounts);
            let (repositories, keys) = environment_sources(ctx, &resolution);
            let request = EnvironmentRequest {
                base: None,
                packages: resolution
                    .packages
                    .iter()
                    .map(|p| PackageFile {
                        entry: p.entry.clone(),
                        file: p.file.clone(),
                    })
                    .collect(),
                world: resolution.world.clone(),
                repositories,
                keys,
                users,
                groups,
                arch: plan.arch.clone(),
                source_date_epoch: ctx.sde as i64,
            };
            let assembled =
                assemble(&request).map_err(|e| BuildError::Environment(e.to_string()))?;
            local_dirs.extend(assembled.local_dirs.clone());
            assembled.rootfs
        }
    };
    let source = match &n.source_dir {
        Some(d) => {
            let (name, abs, state) = source_layer(d, "source")?;
            local_dirs.insert(name, abs);
            Some(state)
        }
        None => None,
    };
    let cache_dir = match &opts.cache_dir {
        Some(d) => {
            let abs = std::fs::canonicalize(d)
                .map_err(|e| BuildError::Input(format!("cache dir {}: {e}", d.display())))?;
            let key = short_hash(&abs.display().to_string());
            let name = format!("cache-{key}");
            local_dirs.insert(name.clone(), abs.clone());
            // Mounted as the seed of the cache mount: no copy into a layer of its own.
            let src = LocalSource::new(&name)
                .unique(format!("melange2:{}", abs.display()))
                .shared_key_hint(&name)
                .options(OpOptions::named("send cache directory"))
                .build();
            Some((key, src))
        }
        None => None,
    };
    let graph = build_graph(
        plan,
        &env_state,
        &GraphOptions {
            platform,
            source_date_epoch: ctx.sde,
            source,
            cache_dir,
            cache_mounts: opts.cache_mounts,
            debug: opts.debug,
            name_prefix: name_prefix.to_string(),
            secrets: ctx
                .secrets
                .secrets
                .iter()
                .map(|s| (s.id.clone(), s.as_env.clone()))
                .collect(),
        },
    )?;
    Ok(Prepared {
        graph_output: graph.output,
        local_dirs,
        sca_env,
    })
}

/// Build one recipe for one architecture on `client`: resolve and assemble its environment,
/// solve, package into the out-dir (index merged under the out-dir lock) and write the record
/// that makes the next run skip it. Status messages go to `status`; step names start with
/// `name_prefix`.
pub async fn execute(
    ctx: &BuildContext,
    client: &Client,
    n: &NodeInputs,
    name_prefix: &str,
    status: &(dyn Fn(StatusResponse) + Send + Sync),
) -> Result<NodeOutput, BuildError> {
    let p = prepare(ctx, n, name_prefix).await?;
    let out = solve_and_package(ctx, client, p, n, status).await?;
    ctx.write_record(n, &out.packages)?;
    Ok(out)
}

/// Solve one architecture's graph, streaming the export into the packager. The packager only
/// sees a clean end of stream when the solve succeeded; otherwise it fails and leaves the
/// output directory untouched.
async fn solve_and_package(
    ctx: &BuildContext,
    client: &Client,
    p: Prepared,
    n: &NodeInputs,
    status: &(dyn Fn(StatusResponse) + Send + Sync),
) -> Result<NodeOutput, BuildError> {
    let opts = &ctx.opts;
    let sde = ctx.sde;
    let def = p.graph_output.marshal()?;
    let (writer, reader) = tokio::io::duplex(1 << 20);
    let (outcome_tx, outcome_rx) = tokio::sync::watch::channel::<Option<bool>>(None);
    let reader = BlockingReader {
        handle: tokio::runtime::Handle::current(),
        inner: reader,
        outcome: outcome_rx,
    };
    let (mut packaging, reader) = PackagingStep::new(&n.plan.package.name, &n.plan.arch, reader);
    let plan = n.plan.clone();
    let out_dir = opts.out_dir.clone();
    let key = ctx.signing_key.clone();
    let melange_yaml = melange_yaml(ctx, n)?;
    let generate_index = opts.generate_index;
    let namespace = opts.namespace.clone().unwrap_or_else(|| "unknown".into());
    let mut build_config = melange2_package::BuildConfig::new(sbom_config_path(&plan.file));
    if let Some(u) = &opts.git_repo_url {
        build_config.repository_url = u.clone();
    }
    if let Some(c) = &opts.git_commit {
        build_config.commit = c.clone();
    }
    if let Some(l) = &opts.license {
        build_config.license = l.clone();
    }
    let provenance = if opts.generate_provenance {
        let bytes = std::fs::read(&plan.file)
            .map_err(|e| BuildError::Input(format!("build file {}: {e}", plan.file)))?;
        let daemon = client.daemon();
        Some(melange2_package::Provenance {
            build_file: build_config.path.clone(),
            build_file_sha256: hex::encode(Sha256::digest(&bytes)),
            environment_lock: n.lock.clone(),
            buildkit_package: daemon.package.clone(),
            buildkit_version: daemon.version.clone(),
            buildkit_revision: daemon.revision.clone(),
            llb_digest: def.result.clone(),
        })
    } else {
        None
    };
    let sca_env = p.sca_env.clone();
    let license_dir = n.source_dir.clone();
    let (lint_require, lint_warn) = (opts.lint_require.clone(), opts.lint_warn.clone());
    let pack = tokio::task::spawn_blocking(move || {
        let mut req = melange2_package::PackageRequest::new(&plan, out_dir);
        req.signing_key = key.as_ref();
        req.source_date_epoch = sde;
        req.melange_yaml = melange_yaml;
        req.generate_index = generate_index;
        req.namespace = namespace;
        req.build_config = build_config;
        req.license_dir = license_dir;
        req.environment = sca_env;
        req.provenance = provenance;
        req.lint_require = lint_require;
        req.lint_warn = lint_warn;
        melange2_package::package_tar(&req, reader)
    });
    let mut exporters = vec![Exporter::tar(Box::new(writer)).source_date_epoch(sde)];
    // --workspace-dir: the same trees through a second exporter, unpacked next to the final
    // place and swapped in only when the build succeeded.
    let workspace = match &opts.workspace_dir {
        Some(ws) => {
            let target = ws.join(&n.plan.arch).join("melange-out");
            let parent = ws.join(&n.plan.arch);
            std::fs::create_dir_all(&parent).map_err(|e| {
                BuildError::Input(format!("workspace dir {}: {e}", parent.display()))
            })?;
            let staging = tempfile::Builder::new()
                .prefix(".melange-out.")
                .tempdir_in(&parent)
                .map_err(|e| {
                    BuildError::Input(format!("workspace dir {}: {e}", parent.display()))
                })?;
            let (w, r) = tokio::io::duplex(1 << 20);
            exporters.push(Exporter::tar(Box::new(w)).source_date_epoch(sde));
            let reader = BlockingReader {
                handle: tokio::runtime::Handle::current(),
                inner: r,
                outcome: outcome_tx.subscribe(),
            };
            let dir = staging.path().to_path_buf();
            let task = tokio::task::spawn_blocking(move || {
                let mut ar = tar::Archive::new(reader);
                ar.set_preserve_permissions(true);
                ar.set_overwrite(true);
                ar.unpack(&dir)
            });
            Some((task, staging, target))
        }
        None => None,
    };
    let mut forward = |s: &StatusResponse| status(s.clone());
    let solve = client.solve(
        &def,
        SolveOptions {
            local_dirs: p.local_dirs.clone(),
            secrets: ctx
                .secrets
                .secrets
                .iter()
                .map(|s| (s.id.clone(), s.value().to_vec()))
                .collect(),
            redact: ctx.secrets.redactor.clone(),
            exporters,
            cache_exports: opts
                .cache_to
                .iter()
                .map(|c| recipe_cache(c, n.recipe(), n.arch()))
                .collect(),
            cache_imports: opts
                .cache_from
                .iter()
                .map(|c| recipe_cache(c, n.recipe(), n.arch()))
                .collect(),
            on_failure: opts.on_failure.clone().map(|action| {
                let label = format!("{}/{}", n.recipe(), n.arch());
                melange2_buildkit::debug::failure_hook(action, label)
            }),
            ..Default::default()
        },
        &mut forward,
    );
    let solve = packaging.during(solve, status);
    let solved = match opts.timeout {
        Some(t) => match tokio::time::timeout(t, solve).await {
            Ok(r) => r.map_err(BuildError::from),
            Err(_) => Err(BuildError::Timeout(t)),
        },
        None => solve.await.map_err(BuildError::from),
    };
    let _ = outcome_tx.send(Some(solved.is_ok()));
    let packaged = packaging
        .during(pack, status)
        .await
        .map_err(|e| BuildError::Package(format!("packager thread: {e}")))?;
    let result = match (solved, packaged) {
        (Ok(r), Ok(out)) => {
            let bytes = r.local_bytes_sent;
            let (recipe, arch) = (n.recipe(), n.arch());
            tracing::debug!(recipe, arch, bytes, "local files sent to the daemon");
            Ok(out)
        }
        // The packager stopped reading: its error explains the failed export.
        (Err(BuildError::Buildkit(melange2_buildkit::BuildkitError::Export(_))), Err(pe)) => {
            Err(BuildError::Package(pe.to_string()))
        }
        (Err(e), _) => Err(e),
        (Ok(_), Err(pe)) => Err(BuildError::Package(pe.to_string())),
    };
    let error = result.as_ref().err().map(ToString::to_string);
    packaging.finish(
        result.as_ref().map_err(|_| error.as_deref().unwrap_or("")),
        status,
    );
    let out = result?;
    if let Some((task, staging, target)) = workspace {
        task.await
            .map_err(|e| BuildError::Package(format!("workspace thread: {e}")))?
            .map_err(|e| BuildError::Input(format!("unpacking into {}: {e}", target.display())))?;
        if target.exists() {
            std::fs::remove_dir_all(&target)
                .map_err(|e| BuildError::Input(format!("{}: {e}", target.display())))?;
        }
        let staged = staging.keep();
        std::fs::rename(&staged, &target)
            .map_err(|e| BuildError::Input(format!("{}: {e}", target.display())))?;
    }
    if let Some(log) = &opts.dependency_log {
        write_dependency_log(log, &n.plan.arch, &out)?;
    }
    let attestations = out
        .packages
        .iter()
        .filter_map(|f| f.provenance.clone())
        .collect();
    Ok(NodeOutput {
        packages: out.packages,
        attestations,
        index: out.index,
    })
}

/// The main package's `.melange.yaml`: the plan, the environment lock and the settings that
/// change package bytes (what `melange2 rebuild` needs).
fn melange_yaml(ctx: &BuildContext, n: &NodeInputs) -> Result<String, BuildError> {
    serde_json::to_string_pretty(&serde_json::json!({
        "plan": ctx.secrets.public_plan(&n.plan),
        "environment-lock": &n.lock,
        "build": crate::settings::BuildSettings::of(ctx, n),
    }))
    .map_err(|e| BuildError::Environment(e.to_string()))
}

/// The build file's path as the SBOM records it: relative paths as given (without `./`),
/// absolute ones by their file name (a machine's directories are not part of a package).
fn sbom_config_path(file: &str) -> String {
    let p = Path::new(file);
    if p.is_absolute() {
        return p
            .file_name()
            .map_or_else(|| file.to_string(), |n| n.to_string_lossy().into_owned());
    }
    file.trim_start_matches("./").to_string()
}

/// `--dependency-log FILE`: the SCA report of every package as JSON in `FILE.<arch>`
/// (written to a temporary file, then renamed).
fn write_dependency_log(
    log: &Path,
    arch: &str,
    out: &melange2_package::PackagedOutput,
) -> Result<(), BuildError> {
    let mut name = log.as_os_str().to_os_string();
    name.push(format!(".{arch}"));
    let target = PathBuf::from(name);
    let reports: Vec<&melange2_package::ScaReport> = out.packages.iter().map(|p| &p.sca).collect();
    let mut json = serde_json::to_vec_pretty(&reports)
        .map_err(|e| BuildError::Package(format!("dependency log: {e}")))?;
    json.push(b'\n');
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let fail =
        |e: std::io::Error| BuildError::Input(format!("dependency log {}: {e}", target.display()));
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(fail)?;
    std::io::Write::write_all(&mut tmp, &json).map_err(fail)?;
    tmp.persist(&target).map_err(|e| fail(e.error))?;
    Ok(())
}
