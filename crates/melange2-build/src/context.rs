//! What every build of a run shares (flags, signing key, loaded repositories, the out-dir as a
//! repository) and the inputs of one recipe's build, computed without contacting BuildKit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use melange2_config::plan::Plan;
use melange2_fingerprint::{Inputs, OutDirView, Reason, Record};
use sha2::{Digest, Sha256};

use crate::BuildError;
use crate::run::BuildOptions;
use crate::secrets::BuildSecrets;
use crate::support::source_date_epoch_env;

/// The environment of one build: resolved from repositories, or a given root filesystem.
#[derive(Clone)]
pub enum EnvSource {
    /// Packages resolved from these repositories.
    Resolved {
        /// The loaded repositories (the out-dir included).
        repos: melange2_resolve::Repositories,
        /// The request (environment packages, pipelines' needs, `--package-append`).
        packages: Vec<String>,
    },
    /// `--bootstrap-rootfs`: a directory or a tar, with the packages to add over it.
    Bootstrap {
        /// Absolute path.
        path: PathBuf,
        /// Content digest (`sha256:…`).
        digest: String,
        /// The rootfs as read on the client (entries, apk database, accounts).
        rootfs: crate::bootstrap::Rootfs,
        /// The loaded repositories, resolving over the rootfs's installed packages.
        repos: melange2_resolve::Repositories,
        /// The packages to add (environment packages, pipelines' needs,
        /// `--package-append`); empty when the rootfs has them all.
        packages: Vec<String>,
    },
}

/// Everything one recipe's build for one architecture depends on.
#[derive(Clone)]
pub struct NodeInputs {
    /// The compiled plan.
    pub plan: Plan,
    /// The source folder (copied into the workspace), if any.
    pub source_dir: Option<PathBuf>,
    /// Where the environment comes from.
    pub env: EnvSource,
    /// The environment lock as JSON (recorded in `.melange.yaml` and provenance).
    pub lock: serde_json::Value,
    /// The fingerprinted inputs.
    pub inputs: Inputs,
    /// The out-dir's index when the inputs were taken (for the up-to-date check).
    out_index: OutIndex,
}

impl NodeInputs {
    /// Recipe (main package) name.
    pub fn recipe(&self) -> &str {
        &self.plan.package.name
    }

    /// Architecture.
    pub fn arch(&self) -> &str {
        &self.plan.arch
    }
}

/// How the environment lock names packages that came from the out-dir.
pub const OUT_DIR_REPOSITORY: &str = "out-dir";

/// Key of a loaded set of repositories: the options and the out-dir index's state.
type RepoKey = (String, Vec<String>, Vec<String>, Option<String>);

/// The out-dir's index of one architecture, as last read.
#[derive(Clone, Default)]
pub(crate) struct OutIndex {
    stamp: Option<String>,
    checksums: Arc<BTreeMap<(String, String), String>>,
}

/// What all builds of one run share.
pub struct BuildContext {
    /// The flags.
    pub opts: BuildOptions,
    /// SOURCE_DATE_EPOCH.
    pub sde: u64,
    /// The signing key.
    pub signing_key: Option<melange2_apk::SigningKey>,
    /// Public half of the signing key as a key file (trusts the out-dir repository).
    out_key: Option<PathBuf>,
    repos: tokio::sync::Mutex<BTreeMap<RepoKey, melange2_resolve::Repositories>>,
    out_index: Mutex<BTreeMap<String, OutIndex>>,
    rootfs: OnceLock<Result<crate::bootstrap::Rootfs, String>>,
    /// `--secret` and `--env-file` values, kept out of what the build writes.
    pub secrets: BuildSecrets,
}

fn load_signing_key(opts: &BuildOptions) -> Result<Option<melange2_apk::SigningKey>, BuildError> {
    let path = match &opts.signing_key {
        Some(k) => k.clone(),
        None if Path::new("melange.rsa").is_file() => PathBuf::from("melange.rsa"),
        None => return Ok(None),
    };
    melange2_apk::SigningKey::load(&path)
        .map(Some)
        .map_err(|e| BuildError::Input(format!("signing key {}: {e}", path.display())))
}

/// Write the public half of `key` where the resolver can read it as a key file named as apk
/// expects (`<key>.rsa.pub`); the path depends only on the key.
fn public_key_file(
    key: &melange2_apk::SigningKey,
    cache: Option<&Path>,
) -> Result<PathBuf, BuildError> {
    let pem = key
        .public_key_pem()
        .map_err(|e| BuildError::Input(format!("signing key: {e}")))?;
    let base = match cache {
        Some(c) => c.to_path_buf(),
        None => melange2_resolve::default_cache_dir()
            .map_err(|e| BuildError::Input(format!("cache directory: {e}")))?,
    };
    let dir = base
        .join("out-keys")
        .join(&hex::encode(Sha256::digest(pem.as_bytes()))[..16]);
    let file = dir.join(key.public_key_name());
    if std::fs::read_to_string(&file).ok().as_deref() == Some(pem.as_str()) {
        return Ok(file);
    }
    let fail = |e: std::io::Error| BuildError::Input(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(&dir).map_err(fail)?;
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(fail)?;
    std::io::Write::write_all(&mut tmp, pem.as_bytes()).map_err(fail)?;
    tmp.persist(&file).map_err(|e| fail(e.error))?;
    Ok(file)
}

impl BuildContext {
    /// Check the flags, load the signing key and prepare the out-dir's trust.
    pub fn new(opts: BuildOptions) -> Result<BuildContext, BuildError> {
        let sde = match opts.source_date_epoch {
            Some(s) => s,
            None => source_date_epoch_env()?,
        };
        let signing_key = load_signing_key(&opts)?;
        let secrets =
            BuildSecrets::new(&opts.secrets, &opts.env_files)?.keyed(signing_key.as_ref())?;
        let out_key = match &signing_key {
            Some(k) => Some(public_key_file(k, opts.apk_cache_dir.as_deref())?),
            None => None,
        };
        Ok(BuildContext {
            opts,
            sde,
            signing_key,
            out_key,
            repos: tokio::sync::Mutex::new(BTreeMap::new()),
            out_index: Mutex::new(BTreeMap::new()),
            rootfs: OnceLock::new(),
            secrets,
        })
    }

    /// The out-dir as a repository line (absolute, so the lock is the same from any cwd).
    pub(crate) fn out_repo(&self) -> String {
        std::path::absolute(&self.opts.out_dir)
            .unwrap_or_else(|_| self.opts.out_dir.clone())
            .display()
            .to_string()
    }

    /// The key file that trusts the out-dir (the signing key's public half).
    pub(crate) fn out_key(&self) -> Option<&Path> {
        self.out_key.as_deref()
    }

    /// The flags that change package bytes, by name.
    fn flags(&self) -> BTreeMap<String, String> {
        let o = &self.opts;
        let mut f = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            f.insert(k.to_string(), v);
        };
        put("build-date", self.sde.to_string());
        put("namespace", o.namespace.clone().unwrap_or_default());
        put("lint-require", o.lint_require.join(","));
        put("lint-warn", o.lint_warn.join(","));
        put("debug", o.debug.to_string());
        put("cache-mounts", o.cache_mounts.to_string());
        put("generate-provenance", o.generate_provenance.to_string());
        put("versioned-shlib-deps", o.versioned_shlib_deps.to_string());
        put("git-repo-url", o.git_repo_url.clone().unwrap_or_default());
        put("git-commit", o.git_commit.clone().unwrap_or_default());
        put("license", o.license.clone().unwrap_or_default());
        if let Some(d) = &o.cache_dir {
            put("cache-dir", d.display().to_string());
        }
        let key = match &self.signing_key {
            Some(k) => {
                let pem = k.public_key_pem().unwrap_or_default();
                format!(
                    "{} {}",
                    k.public_key_name(),
                    &hex::encode(Sha256::digest(pem.as_bytes()))[..16]
                )
            }
            None => "unsigned".to_string(),
        };
        put("signing-key", key);
        f.extend(self.secrets.flags());
        f
    }

    /// Repositories of a plan's environment plus `-r` and (with `out_dir`) the out-dir, loaded
    /// once per run (again only when the out-dir's index changed).
    pub async fn repositories(
        &self,
        plan: &Plan,
        out_dir: bool,
    ) -> Result<melange2_resolve::Repositories, BuildError> {
        let stamp = if out_dir {
            self.out_index(&plan.arch).stamp
        } else {
            None
        };
        self.load_repositories(plan, stamp).await
    }

    /// [`BuildContext::repositories`], with the out-dir when its index has `out_stamp`.
    async fn load_repositories(
        &self,
        plan: &Plan,
        out_stamp: Option<String>,
    ) -> Result<melange2_resolve::Repositories, BuildError> {
        let env = &plan.environment;
        let mut repositories = env.repositories.clone();
        repositories.extend(env.build_repositories.iter().cloned());
        repositories.extend(self.opts.repository_append.iter().cloned());
        let out_repo = self.out_repo();
        if out_stamp.is_some() && !repositories.contains(&out_repo) {
            repositories.push(out_repo.clone());
        }
        let mut keyring = env.keyring.clone();
        keyring.extend(self.opts.keyring_append.iter().cloned());
        if let Some(k) = &self.out_key {
            keyring.push(k.display().to_string());
        }
        let key: RepoKey = (
            plan.arch.clone(),
            repositories.clone(),
            keyring.clone(),
            out_stamp.clone(),
        );
        let mut cache = self.repos.lock().await;
        if let Some(r) = cache.get(&key) {
            return Ok(r.clone());
        }
        let trust_unsigned = if self.signing_key.is_none() {
            vec![out_repo]
        } else {
            vec![]
        };
        let repos = melange2_resolve::Repositories::load(&melange2_resolve::Options {
            arch: plan.arch.clone(),
            repositories,
            keyring,
            ignore_signatures: self.opts.ignore_signatures,
            trust_unsigned,
            cache_dir: self.opts.apk_cache_dir.clone(),
            parallel_downloads: 0,
        })
        .await
        .map_err(|e| BuildError::Resolve(e.to_string()))?;
        cache.retain(|k, _| k.0 != plan.arch || k.3 == out_stamp);
        cache.insert(key, repos.clone());
        Ok(repos)
    }

    /// The bootstrap rootfs (absolute path, content digest, what it holds), read once per
    /// run.
    fn rootfs(&self, path: &Path) -> Result<crate::bootstrap::Rootfs, BuildError> {
        self.rootfs
            .get_or_init(|| crate::bootstrap::read_rootfs(path))
            .clone()
            .map_err(BuildError::Input)
    }

    /// A bootstrap build's environment: the rootfs, and the packages it lacks resolved from
    /// the repositories (an error listing every package nothing can serve).
    async fn bootstrap_env(
        &self,
        plan: &Plan,
        path: &Path,
        out_stamp: Option<String>,
        inputs: &mut Inputs,
        cycle_broken: &BTreeSet<String>,
    ) -> Result<(EnvSource, serde_json::Value), BuildError> {
        let rootfs = self.rootfs(path)?;
        inputs.rootfs = Some(rootfs.digest.clone());
        let mut repos = self
            .load_repositories(plan, out_stamp)
            .await?
            .over(rootfs.scan.installed.clone());
        if let Some(pin) = &self.opts.environment_pin {
            repos = repos
                .pinned(pin)
                .map_err(|e| BuildError::Resolve(e.to_string()))?;
        }
        let request = crate::bootstrap::request(plan, &self.opts.package_append);
        let who = format!("recipe {} ({})", plan.package.name, plan.file);
        let lock = crate::bootstrap::lock(&repos, &request, &who)?;
        let mut value = serde_json::json!({ "bootstrap-rootfs": rootfs.digest });
        if !lock.packages.is_empty() {
            value["packages"] = self.record_lock(lock, inputs, cycle_broken)?["packages"].take();
        }
        let env = EnvSource::Bootstrap {
            path: rootfs.path.clone(),
            digest: rootfs.digest.clone(),
            rootfs,
            repos,
            packages: request.into_keys().collect(),
        };
        Ok((env, value))
    }

    /// Put a lock's packages into the inputs and turn it into the JSON that packages and
    /// provenance carry (the out-dir named as such, not by its path).
    fn record_lock(
        &self,
        mut lock: melange2_resolve::Lock,
        inputs: &mut Inputs,
        cycle_broken: &BTreeSet<String>,
    ) -> Result<serde_json::Value, BuildError> {
        for p in &lock.packages {
            let v = if cycle_broken.contains(&p.name) {
                "any (breaks a cycle)".to_string()
            } else {
                format!("{} {}", p.version, p.checksum)
            };
            inputs.environment.insert(p.name.clone(), v);
        }
        let out_repo = self.out_repo();
        for p in &mut lock.packages {
            if p.repository == out_repo {
                // Packages and provenance carry no path of this machine.
                p.repository = OUT_DIR_REPOSITORY.to_string();
            }
        }
        serde_json::to_value(&lock).map_err(|e| BuildError::Environment(e.to_string()))
    }

    /// The inputs of one recipe's build: resolves the environment lock (nothing is downloaded)
    /// and hashes the source folder. Packages named in `cycle_broken` (taken from the
    /// repositories to break a dependency cycle) count by name only, so a new build of them
    /// does not make this recipe stale and the cycle settles.
    pub async fn inputs(
        &self,
        plan: Plan,
        source_dir: Option<PathBuf>,
        cycle_broken: &BTreeSet<String>,
    ) -> Result<NodeInputs, BuildError> {
        let mut inputs = Inputs {
            version: env!("CARGO_PKG_VERSION").to_string(),
            plan: melange2_fingerprint::plan_components(&self.secrets.public_plan(&plan)),
            flags: self.flags(),
            ..Default::default()
        };
        let out_index = self.out_index(&plan.arch);
        let (env, lock) = match &self.opts.bootstrap_rootfs {
            Some(p) => {
                let stamp = out_index.stamp.clone();
                self.bootstrap_env(&plan, p, stamp, &mut inputs, cycle_broken)
                    .await?
            }
            None => {
                let mut repos = self
                    .load_repositories(&plan, out_index.stamp.clone())
                    .await?;
                if let Some(pin) = &self.opts.environment_pin {
                    repos = repos
                        .pinned(pin)
                        .map_err(|e| BuildError::Resolve(e.to_string()))?;
                }
                let mut packages = plan.environment.packages.clone();
                packages.extend(self.opts.package_append.iter().cloned());
                let lock = repos
                    .lock(&packages)
                    .map_err(|e| BuildError::Resolve(e.to_string()))?;
                let lock = self.record_lock(lock, &mut inputs, cycle_broken)?;
                (EnvSource::Resolved { repos, packages }, lock)
            }
        };
        if let Some(d) = &source_dir {
            if !d.is_dir() {
                return Err(BuildError::Input(format!(
                    "source directory {} does not exist",
                    d.display()
                )));
            }
            inputs.source = melange2_fingerprint::digest_source_dir(d)
                .map_err(|e| BuildError::Input(format!("source directory: {e}")))?;
        }
        Ok(NodeInputs {
            plan,
            source_dir,
            env,
            lock,
            inputs,
            out_index,
        })
    }

    /// The out-dir's index of an architecture: its content digest and (name, version) →
    /// checksum. The file is read once per call; it is parsed again only when it changed.
    fn out_index(&self, arch: &str) -> OutIndex {
        let path = self
            .opts
            .out_dir
            .join(arch)
            .join(melange2_package::INDEX_FILE_NAME);
        let Ok(bytes) = std::fs::read(&path) else {
            return OutIndex::default();
        };
        let stamp = Some(hex::encode(Sha256::digest(&bytes)));
        let mut cache = self.out_index.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cache.get(arch)
            && c.stamp == stamp
        {
            return c.clone();
        }
        let context = path.display().to_string();
        let checksums = melange2_apk::index::read_index_from(&bytes[..], &context, None)
            .map(|(i, _)| {
                i.entries
                    .into_iter()
                    .map(|e| ((e.name, e.version), e.checksum))
                    .collect()
            })
            .unwrap_or_default();
        let index = OutIndex {
            stamp,
            checksums: Arc::new(checksums),
        };
        cache.insert(arch.to_string(), index.clone());
        index
    }

    /// Is the out-dir's build of this node up to date? `Err` lists why not.
    pub fn up_to_date(&self, n: &NodeInputs) -> Result<(), Vec<Reason>> {
        let record = Record::read(&self.opts.out_dir, n.arch(), n.recipe());
        let view = View {
            dir: self.opts.out_dir.join(n.arch()),
            index: Arc::clone(&n.out_index.checksums),
        };
        melange2_fingerprint::check(record.as_ref(), &n.inputs, &view)
    }

    /// Write the record of a finished build next to its packages (under the out-dir lock).
    pub fn write_record(
        &self,
        n: &NodeInputs,
        packages: &[melange2_package::PackagedFile],
    ) -> Result<(), BuildError> {
        let record = Record {
            fingerprint: n.inputs.fingerprint(),
            recipe: n.recipe().to_string(),
            arch: n.arch().to_string(),
            inputs: n.inputs.clone(),
            packages: packages
                .iter()
                .map(|p| melange2_fingerprint::RecordedPackage {
                    name: p.name.clone(),
                    version: p.version.clone(),
                    file: p
                        .path
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    checksum: p.checksum.clone(),
                    size: p.file_size,
                })
                .collect(),
        };
        let path = Record::path(&self.opts.out_dir, n.arch(), n.recipe());
        let dir = path.parent().unwrap_or(Path::new("."));
        let fail = |e: String| BuildError::Package(format!("record {}: {e}", path.display()));
        let _lock = melange2_package::lock_arch(&self.opts.out_dir, n.arch())
            .map_err(|e| fail(e.to_string()))?;
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
        let name = format!("{}.json", n.recipe());
        melange2_package::write_atomic(dir, &name, &record.to_bytes())
            .map_err(|e| fail(e.to_string()))?;
        Ok(())
    }
}

struct View {
    dir: PathBuf,
    index: Arc<BTreeMap<(String, String), String>>,
}

impl OutDirView for View {
    fn checksum(&self, name: &str, version: &str) -> Option<String> {
        self.index
            .get(&(name.to_string(), version.to_string()))
            .cloned()
    }

    fn file_size(&self, file: &str) -> Option<u64> {
        std::fs::metadata(self.dir.join(file)).ok().map(|m| m.len())
    }
}
