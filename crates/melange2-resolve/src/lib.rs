//! APK repositories, keyrings, a verified download cache and the dependency
//! resolver that turns a build environment's `contents` into an ordered list
//! of verified `.apk` files (spec parts D and E).
//!
//! Contract:
//! * [`resolve`] (or [`Repositories::load`] + [`Repositories::resolve`])
//!   takes repositories (`https://…`, `http://…`, `file://…`, directories,
//!   `@tag …` pinned ones), a keyring (files, directories or URLs) and
//!   package constraints, and returns a [`Resolution`]: every chosen package
//!   in install order (each after all of its dependencies, ties by name;
//!   cycles ordered by name), downloaded into the cache and verified.
//! * Indexes must carry a signature by a keyring key, packages must match
//!   their index checksum (`C:`) and carry a valid signature by a keyring
//!   key, unless [`Options::ignore_signatures`] is set (then only checksums
//!   and data hashes are checked, and a warning is logged for every index).
//! * The same indexes and request always give the same [`Lock`]; the
//!   resolver ([`solver`]) is pure and deterministic.
//! * Errors name the URL and HTTP status, the file, the package, or the
//!   dependency chain (`build-base → gcc → so:libisl.so.23: no provider`).
//! * Nothing half-written is ever visible in the cache: downloads go to a
//!   temporary file that is renamed into place once verified.
//! * Every HTTP request is bounded in time ([`HttpLimits`]: connect, first
//!   byte, idle; transient failures retried with backoff) and in size (the
//!   index size limit, a package's declared `S:` size); an index or package
//!   that does not start with the gzip magic is refused at its first bytes.
//!   At most [`Options::parallel_downloads`] requests run at once.

pub mod cache;
pub mod dep;
pub mod error;
mod http;
pub mod lock;
pub mod repository;
pub mod solver;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use melange2_apk::{ApkIndex, IndexEntry, Keyring, PkgInfo};

pub use cache::{Cache, default_cache_dir, package_file_name};
pub use dep::{Dependency, Op, Provide};
pub use error::{Error, Result, Unsatisfiable};
pub use http::{
    DEFAULT_ATTEMPTS, DEFAULT_CONNECT_TIMEOUT, DEFAULT_FIRST_BYTE_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_INDEX_SIZE, DEFAULT_RETRY_BACKOFF, FetchStats, HttpLimits, MAX_KEY_SIZE,
    MIN_PROGRESS_BYTES,
};
pub use lock::{Lock, LockedPackage, PinError, Unavailable};
pub use repository::{Location, Repository, Source, parse_repositories};
pub use solver::{Candidate, Solution, Universe};

use crate::error::rename_context;
use crate::http::{Counters, Expect, Fetched, Fetcher, Validators};

/// Default bound on concurrent package downloads.
pub const DEFAULT_PARALLEL_DOWNLOADS: usize = 8;

/// Where packages come from and how they are trusted.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Target architecture (APK name like `x86_64`; Go names such as `amd64` are accepted).
    pub arch: String,
    /// Repository lines (`URL`, `@tag URL`, `file://…`, a directory), in priority order.
    pub repositories: Vec<String>,
    /// Trusted public keys: files, directories of key files, `file://` or `http(s)://` URLs.
    pub keyring: Vec<String>,
    /// Accept unsigned indexes and packages (checksums are still checked). Logged loudly.
    pub ignore_signatures: bool,
    /// Repository lines (as in `repositories`) whose index and packages are accepted without
    /// a signature: the build's own unsigned output directory. Checksums are still checked.
    pub trust_unsigned: Vec<String>,
    /// Download cache; `None` = [`default_cache_dir`].
    pub cache_dir: Option<PathBuf>,
    /// Concurrent downloads (indexes, keys and packages alike); 0 =
    /// [`DEFAULT_PARALLEL_DOWNLOADS`].
    pub parallel_downloads: usize,
}

/// One package chosen for an environment, downloaded and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedPackage {
    /// The APKINDEX entry (name, version, arch, `C:` checksum, deps, provides, …).
    /// `replaces`/`replaces_priority`, which indexes do not carry, are filled
    /// from the package's `.PKGINFO`.
    pub entry: IndexEntry,
    /// The repository it came from, as configured (with `@tag` if pinned).
    pub repository: String,
    /// Absolute path of the verified `.apk` in the download cache.
    pub file: PathBuf,
}

/// The result of resolving a request, in install order: every package after
/// all of its dependencies (ties broken by name), deterministic for the same
/// indexes and request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// Chosen packages, in install order.
    pub packages: Vec<ResolvedPackage>,
    /// Repository lines as configured (for `/etc/apk/repositories`).
    pub repositories: Vec<String>,
    /// Keyring key files; each goes to `/etc/apk/keys/<file name>`.
    pub keys: Vec<PathBuf>,
    /// Target architecture (APK name, for `/etc/apk/arch`).
    pub arch: String,
    /// The request, trimmed, sorted and de-duplicated (for `/etc/apk/world`).
    pub world: Vec<String>,
    /// Transfers made so far by the [`Repositories`] that produced this.
    pub stats: FetchStats,
}

impl Resolution {
    /// The lock: name, version, arch, checksum and repository per package.
    pub fn lock(&self) -> Lock {
        Lock {
            arch: self.arch.clone(),
            packages: self
                .packages
                .iter()
                .map(|p| LockedPackage {
                    name: p.entry.name.clone(),
                    version: p.entry.version.clone(),
                    arch: p.entry.arch.clone(),
                    checksum: p.entry.checksum.clone(),
                    repository: p.repository.clone(),
                })
                .collect(),
        }
    }
}

/// May `newcomer` overwrite a file owned by `owner` (spec E.3)? True when
/// `newcomer` replaces `owner` (`replaces` entry matching its name and
/// version) or both share the same non-empty origin.
pub fn replaces(newcomer: &IndexEntry, owner: &IndexEntry) -> bool {
    if !owner.origin.is_empty() && owner.origin == newcomer.origin {
        return true;
    }
    newcomer.replaces.iter().any(|r| {
        Dependency::parse(r, "replaces").is_ok_and(|d| {
            !d.conflict
                && d.name == owner.name
                && d.version_matches(Some(&owner.version), &owner.checksum)
        })
    })
}

/// APK architecture name for an APK or Go spelling (`amd64` → `x86_64`).
///
/// # Errors
/// [`Error::Config`] for an empty or malformed name.
pub fn normalize_arch(arch: &str) -> Result<String> {
    let a = arch.trim();
    let apk = match a {
        "amd64" => "x86_64",
        "arm64" | "arm64/v8" => "aarch64",
        "386" | "i386" | "i686" => "x86",
        "arm/v6" | "armv6" => "armhf",
        "arm/v7" | "arm" => "armv7",
        "loong64" => "loongarch64",
        other => other,
    };
    if apk.is_empty()
        || !apk
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(Error::config(
            "architecture",
            format!("invalid architecture {arch:?}"),
        ));
    }
    Ok(apk.to_string())
}

struct Inner {
    arch: String,
    repositories: Vec<Repository>,
    keys: Vec<PathBuf>,
    keyring: Arc<Keyring>,
    /// Per repository: accepted without signatures.
    unsigned: Vec<bool>,
    cache: Cache,
    fetcher: Fetcher,
    parallel: usize,
}

/// Repositories with their verified indexes loaded, ready to resolve any
/// number of requests.
#[derive(Clone)]
pub struct Repositories {
    inner: Arc<Inner>,
    /// The packages resolution chooses from (all of the indexes', or a pinned subset).
    universe: Arc<Universe>,
    /// Packages already installed under the environment (see [`Repositories::over`]).
    installed: Arc<Vec<IndexEntry>>,
}

impl std::fmt::Debug for Repositories {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repositories")
            .field("arch", &self.inner.arch)
            .field("repositories", &self.inner.repositories)
            .field("packages", &self.universe.len())
            .finish_non_exhaustive()
    }
}

async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::config(what, format!("worker failed: {e}")))?
}

fn read_validators(path: &Path) -> Option<Validators> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

fn save_validators(path: &Path, v: &Validators) -> Result<()> {
    let text =
        serde_json::to_string(v).map_err(|e| Error::config("cache metadata", e.to_string()))?;
    cache::write_atomic(path, text.as_bytes())
}

/// Read and (unless `keyring` is `None`) verify an index, naming `what` in errors.
fn read_index_file(path: &Path, what: &str, keyring: Option<&Keyring>) -> Result<ApkIndex> {
    let f = File::open(path).map_err(|e| Error::io(what, e))?;
    let (idx, _) = melange2_apk::index::read_index_from(
        BufReader::with_capacity(256 * 1024, f),
        what,
        keyring,
    )?;
    Ok(idx)
}

async fn load_keys(
    entries: &[String],
    cache: &Cache,
    fetcher: &Fetcher,
) -> Result<(Keyring, Vec<PathBuf>)> {
    let mut files: Vec<PathBuf> = Vec::new();
    for raw in entries {
        let entry = raw.trim();
        if entry.is_empty() {
            continue;
        }
        let ctx = format!("keyring entry {entry:?}");
        let lower = entry.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            let url = url::Url::parse(entry)
                .map_err(|e| Error::config(&ctx, format!("invalid URL: {e}")))?;
            let name = url
                .path_segments()
                .and_then(|mut s| s.next_back())
                .filter(|n| !n.is_empty() && *n != "." && *n != "..")
                .ok_or_else(|| Error::config(&ctx, "the URL does not end with a key file name"))?
                .to_string();
            let dir = cache.url_dir("keys", entry)?;
            let dest = dir.join(&name);
            let meta = dir.join("meta.json");
            let cond = if dest.is_file() {
                read_validators(&meta)
            } else {
                None
            };
            let expect = Expect {
                max_size: Some((MAX_KEY_SIZE, "the key size limit")),
                gzip: false,
            };
            let got = match fetcher.get(entry, &dir, cond.as_ref(), expect).await {
                Ok(g) => g,
                Err(e @ Error::Network { .. }) if dest.is_file() => {
                    tracing::warn!("{e}; using the cached copy of the key");
                    Fetched::NotModified
                }
                Err(e) => return Err(e),
            };
            if let Fetched::Body { file, validators } = got {
                let pem = std::fs::read_to_string(file.path())
                    .map_err(|e| Error::io(format!("{entry}: not a text key file"), e))?;
                Keyring::new()
                    .add_pem(&name, &pem)
                    .map_err(|e| rename_context(e, &name, entry))?;
                file.persist(&dest)
                    .map_err(|e| Error::io(dest.display().to_string(), e.error))?;
                save_validators(&meta, &validators)?;
            }
            files.push(dest);
            continue;
        }
        let Location::Dir(path) = repository::parse_location(entry, &ctx)? else {
            return Err(Error::config(ctx, "unsupported key location"));
        };
        if path.is_dir() {
            let rd = std::fs::read_dir(&path).map_err(|e| Error::io(&ctx, e))?;
            let mut found: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            found.sort();
            files.extend(found);
        } else if path.is_file() {
            files.push(path);
        } else {
            return Err(Error::config(
                ctx,
                format!("{} does not exist", path.display()),
            ));
        }
    }
    let mut keyring = Keyring::new();
    let mut by_name: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut out = Vec::new();
    for f in files {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
            .ok_or_else(|| Error::config(f.display().to_string(), "key file name is not UTF-8"))?;
        if let Some(prev) = by_name.get(&name) {
            if std::fs::read(prev).ok() != std::fs::read(&f).ok() {
                tracing::warn!(
                    "keyring: {} and {} have the same name {name} but differ; using the first",
                    prev.display(),
                    f.display()
                );
            }
            continue;
        }
        keyring.add_file(&f)?;
        by_name.insert(name, f.clone());
        out.push(f);
    }
    Ok((keyring, out))
}

async fn load_index(
    repo: Repository,
    arch: String,
    keyring: Option<Arc<Keyring>>,
    cache: Cache,
    fetcher: &Fetcher,
) -> Result<ApkIndex> {
    match repo.index(&arch) {
        Source::File(p) => {
            if !p.is_file() {
                let Location::Dir(base) = &repo.location else {
                    return Err(Error::config(&repo.spec, "not a local repository"));
                };
                if base.is_dir() && !p.exists() {
                    // a local output directory that has no package for this
                    // architecture yet (e.g. `-r ./packages` on a first build)
                    tracing::warn!(
                        "repository {:?} has no {arch}/APKINDEX.tar.gz; treating it as empty",
                        repo.spec
                    );
                    return Ok(ApkIndex::new());
                }
                return Err(Error::config(
                    format!("repository {:?}", repo.spec),
                    format!(
                        "{} not found (expected <repository>/{arch}/APKINDEX.tar.gz)",
                        p.display()
                    ),
                ));
            }
            blocking("index", move || {
                read_index_file(&p, &p.display().to_string(), keyring.as_deref())
            })
            .await
        }
        Source::Url(url) => {
            let dir = cache.url_dir("indexes", &url)?;
            let dest = dir.join("APKINDEX.tar.gz");
            let meta = dir.join("meta.json");
            let cond = if dest.is_file() {
                read_validators(&meta)
            } else {
                None
            };
            let expect = Expect {
                max_size: Some((fetcher.limits().max_index_size, "the index size limit")),
                gzip: true,
            };
            let got = match fetcher.get(&url, &dir, cond.as_ref(), expect).await {
                Ok(g) => g,
                Err(e @ Error::Network { .. }) if dest.is_file() => {
                    tracing::warn!("{e}; using the cached index");
                    Fetched::NotModified
                }
                Err(e) => return Err(e),
            };
            match got {
                Fetched::NotModified => {
                    let d = dest.clone();
                    let u = url.clone();
                    let r = blocking("index", move || read_index_file(&d, &u, keyring.as_deref()))
                        .await;
                    if r.is_err() {
                        // do not trust this copy again without a full download
                        let _ = std::fs::remove_file(&meta);
                    }
                    r
                }
                Fetched::Body { file, validators } => {
                    let u = url.clone();
                    let (idx, file) = blocking("index", move || {
                        let idx = read_index_file(file.path(), &u, keyring.as_deref())?;
                        Ok((idx, file))
                    })
                    .await?;
                    file.persist(&dest)
                        .map_err(|e| Error::io(dest.display().to_string(), e.error))?;
                    save_validators(&meta, &validators)?;
                    Ok(idx)
                }
            }
        }
    }
}

/// Verify a downloaded package against its index record (and the keyring
/// unless signatures are ignored); returns its `.PKGINFO`.
fn verify_download(
    path: &Path,
    e: &IndexEntry,
    keyring: Option<&Keyring>,
) -> melange2_apk::Result<PkgInfo> {
    let ctx = path.display().to_string();
    let Some(k) = keyring else {
        return Ok(melange2_apk::verify_package_from_index(path, e)?.pkginfo);
    };
    let c = melange2_apk::verify_package(path, k, Some(&e.checksum))?;
    if c.pkginfo.name != e.name || c.pkginfo.version != e.version {
        return Err(melange2_apk::Error::verification(
            ctx,
            format!(
                "package is {}-{}, the index record is {}-{}",
                c.pkginfo.name, c.pkginfo.version, e.name, e.version
            ),
        ));
    }
    if e.size != 0 && c.file_size != e.size {
        return Err(melange2_apk::Error::verification(
            ctx,
            format!(
                "file size {} does not match the index size {}",
                c.file_size, e.size
            ),
        ));
    }
    Ok(c.pkginfo)
}

fn with_pkginfo(mut entry: IndexEntry, info: &PkgInfo) -> IndexEntry {
    if entry.replaces.is_empty() {
        entry.replaces.clone_from(&info.replaces);
    }
    if entry.replaces_priority.is_none() {
        entry.replaces_priority = info.replaces_priority;
    }
    entry
}

/// A package must be gzip and no larger than the size its index record
/// declares (`S:`, when given).
fn package_expect(e: &IndexEntry) -> Expect {
    Expect {
        max_size: (e.size != 0).then_some((e.size, "the size the index declares")),
        gzip: true,
    }
}

async fn fetch_package(inner: Arc<Inner>, cand: Candidate) -> Result<ResolvedPackage> {
    let entry = cand.entry.clone();
    let repo = &inner.repositories[cand.repository];
    let dest = inner.cache.package_path(&entry)?;
    if dest.is_file() {
        let d = dest.clone();
        let want = entry.checksum.clone();
        let cached = blocking("cache", move || {
            let r = melange2_apk::PackageReader::open(&d)?;
            Ok((r.checksum() == want).then(|| r.pkginfo().clone()))
        })
        .await;
        match cached {
            Ok(Some(info)) => {
                Counters::add(&inner.fetcher.counters.packages_cached, 1);
                return Ok(ResolvedPackage {
                    entry: with_pkginfo(entry, &info),
                    repository: repo.spec.clone(),
                    file: dest,
                });
            }
            other => {
                let why = match other {
                    Err(e) => e.to_string(),
                    _ => "checksum differs".to_string(),
                };
                tracing::warn!(
                    "cached {} is damaged ({why}); fetching it again",
                    dest.display()
                );
                let _ = std::fs::remove_file(&dest);
            }
        }
    }
    let source = repo.file(&inner.arch, &entry.file_name());
    let dir = inner.cache.packages_dir();
    let tmp = match &source {
        Source::Url(u) => match inner
            .fetcher
            .get(u, &dir, None, package_expect(&entry))
            .await?
        {
            Fetched::Body { file, .. } => file,
            Fetched::NotModified => {
                return Err(Error::Network {
                    url: u.clone(),
                    message: "unexpected 304 answer to an unconditional request".into(),
                });
            }
        },
        Source::File(p) => {
            let p = p.clone();
            let dir = dir.clone();
            blocking("copy", move || {
                let tmp = tempfile::Builder::new()
                    .prefix(".download-")
                    .tempfile_in(&dir)
                    .map_err(|e| Error::io(dir.display().to_string(), e))?;
                std::fs::copy(&p, tmp.path()).map_err(|e| Error::io(p.display().to_string(), e))?;
                Ok(tmp)
            })
            .await?
        }
    };
    let unsigned = inner
        .unsigned
        .get(cand.repository)
        .copied()
        .unwrap_or(false);
    let keyring = (!unsigned).then(|| Arc::clone(&inner.keyring));
    let e2 = entry.clone();
    let what = source.to_string();
    let (info, tmp) = blocking("verify", move || {
        let tmp_name = tmp.path().display().to_string();
        match verify_download(tmp.path(), &e2, keyring.as_deref()) {
            Ok(info) => Ok((info, tmp)),
            Err(e) => Err(Error::Apk(rename_context(e, &tmp_name, &what))),
        }
    })
    .await?;
    tmp.persist(&dest)
        .map_err(|e| Error::io(dest.display().to_string(), e.error))?;
    Counters::add(&inner.fetcher.counters.packages_fetched, 1);
    tracing::debug!(package = %entry.file_name(), from = %source, "fetched and verified");
    Ok(ResolvedPackage {
        entry: with_pkginfo(entry, &info),
        repository: repo.spec.clone(),
        file: dest,
    })
}

impl Repositories {
    /// Load the keyring and every repository's index for the architecture
    /// (in parallel), verifying each index.
    ///
    /// # Errors
    /// Configuration, network, HTTP status and verification errors, naming
    /// the repository, URL or file.
    pub async fn load(opts: &Options) -> Result<Repositories> {
        Repositories::load_with(opts, HttpLimits::default()).await
    }

    /// [`Repositories::load`] with other HTTP limits (timeouts, attempts,
    /// index size); they apply to every later download of these repositories.
    ///
    /// # Errors
    /// As [`Repositories::load`].
    pub async fn load_with(opts: &Options, limits: HttpLimits) -> Result<Repositories> {
        let arch = normalize_arch(&opts.arch)?;
        let repositories = parse_repositories(&opts.repositories)?;
        let cache_dir = match &opts.cache_dir {
            Some(d) => d.clone(),
            None => default_cache_dir()?,
        };
        let cache = Cache::open(&cache_dir)?;
        let parallel = if opts.parallel_downloads == 0 {
            DEFAULT_PARALLEL_DOWNLOADS
        } else {
            opts.parallel_downloads
        };
        // one bound for every request: indexes, keys and packages
        let fetcher = Fetcher::new(limits, parallel)?;
        let (keyring, keys) = load_keys(&opts.keyring, &cache, &fetcher).await?;
        if opts.ignore_signatures {
            tracing::warn!(
                "SIGNATURE CHECKS ARE DISABLED (--ignore-signatures): indexes and packages are \
                 accepted without a trusted signature; only their checksums are verified"
            );
        } else if keyring.is_empty()
            && repositories
                .iter()
                .any(|r| !opts.trust_unsigned.contains(&r.spec))
        {
            return Err(Error::config(
                "keyring",
                "no keys configured, so no repository index can be verified \
                 (add a key with --keyring-append/-k, or pass --ignore-signatures)",
            ));
        }
        let keyring = Arc::new(keyring);
        let unsigned: Vec<bool> = repositories
            .iter()
            .map(|r| opts.ignore_signatures || opts.trust_unsigned.contains(&r.spec))
            .collect();
        let loads = repositories.iter().zip(&unsigned).map(|(r, &u)| {
            load_index(
                r.clone(),
                arch.clone(),
                (!u).then(|| Arc::clone(&keyring)),
                cache.clone(),
                &fetcher,
            )
        });
        let indexes = futures::future::join_all(loads).await;
        let mut candidates = Vec::new();
        for (i, (repo, idx)) in repositories.iter().zip(indexes).enumerate() {
            let idx = idx?;
            if opts.ignore_signatures {
                tracing::warn!(
                    "repository {:?}: index NOT verified (signatures ignored)",
                    repo.spec
                );
            }
            let mut skipped = 0usize;
            for e in idx.entries {
                if e.arch == arch || e.arch == "noarch" || e.arch.is_empty() {
                    candidates.push(Candidate {
                        entry: e,
                        repository: i,
                        tag: repo.tag.clone(),
                    });
                } else {
                    skipped += 1;
                }
            }
            if skipped > 0 {
                tracing::debug!(repository = %repo.spec, skipped, "records of other architectures ignored");
            }
        }
        let universe = Arc::new(Universe::new(candidates));
        Ok(Repositories {
            universe,
            installed: Arc::default(),
            inner: Arc::new(Inner {
                arch,
                repositories,
                keys,
                keyring,
                unsigned,
                cache,
                fetcher,
                parallel,
            }),
        })
    }

    /// Target architecture (APK name).
    pub fn arch(&self) -> &str {
        &self.inner.arch
    }

    /// Configured repositories, in order.
    pub fn repositories(&self) -> &[Repository] {
        &self.inner.repositories
    }

    /// Keyring key files (each goes to `/etc/apk/keys/<file name>`).
    pub fn keys(&self) -> &[PathBuf] {
        &self.inner.keys
    }

    /// The trusted keys.
    pub fn keyring(&self) -> &Keyring {
        &self.inner.keyring
    }

    /// All packages of the loaded indexes for the architecture.
    pub fn universe(&self) -> &Universe {
        &self.universe
    }

    /// The download cache.
    pub fn cache(&self) -> &Cache {
        &self.inner.cache
    }

    /// Transfers so far.
    pub fn stats(&self) -> FetchStats {
        self.inner.fetcher.counters.snapshot()
    }

    /// Resolve without downloading anything.
    ///
    /// # Errors
    /// Malformed constraints, unsatisfiable requests.
    pub fn solve<S: AsRef<str>>(&self, packages: &[S]) -> Result<Solution> {
        self.universe.solve_over(packages, &self.installed)
    }

    /// The same repositories resolving over packages that are already installed (a
    /// bootstrap root filesystem's apk database): those answer the dependencies they satisfy
    /// and are never fetched; solutions, locks and resolutions hold only the packages to add
    /// ([`Universe::solve_over`]).
    pub fn over(&self, installed: Vec<IndexEntry>) -> Repositories {
        Repositories {
            inner: Arc::clone(&self.inner),
            universe: Arc::clone(&self.universe),
            installed: Arc::new(installed),
        }
    }

    /// The lock of a request, without downloading anything.
    ///
    /// # Errors
    /// As [`Repositories::solve`].
    pub fn lock<S: AsRef<str>>(&self, packages: &[S]) -> Result<Lock> {
        let s = self.solve(packages)?;
        Ok(Lock {
            arch: self.inner.arch.clone(),
            packages: s
                .order
                .iter()
                .map(|&p| {
                    let c = &self.universe.packages()[p];
                    LockedPackage {
                        name: c.entry.name.clone(),
                        version: c.entry.version.clone(),
                        arch: c.entry.arch.clone(),
                        checksum: c.entry.checksum.clone(),
                        repository: self.inner.repositories[c.repository].spec.clone(),
                    }
                })
                .collect(),
        })
    }

    /// The same repositories restricted to the packages of `lock` (matched by name and
    /// control checksum, in whichever repository they are now): resolving the request that
    /// produced the lock gives the same packages again. Every locked package that cannot be
    /// found is reported, with the versions of that name the repositories do have.
    ///
    /// # Errors
    /// [`PinError`] listing every locked package that is gone or whose content changed.
    pub fn pinned(&self, lock: &Lock) -> std::result::Result<Repositories, PinError> {
        let all = self.universe.packages();
        let mut keep = Vec::new();
        let mut unavailable = Vec::new();
        for want in &lock.packages {
            let same = |c: &&Candidate| c.entry.name == want.name;
            match all
                .iter()
                .find(|c| same(c) && c.entry.checksum == want.checksum)
            {
                Some(c) => keep.push(c.clone()),
                None => unavailable.push(Unavailable {
                    package: want.clone(),
                    found: all
                        .iter()
                        .filter(same)
                        .map(|c| LockedPackage {
                            name: c.entry.name.clone(),
                            version: c.entry.version.clone(),
                            arch: c.entry.arch.clone(),
                            checksum: c.entry.checksum.clone(),
                            repository: self.inner.repositories[c.repository].spec.clone(),
                        })
                        .collect(),
                }),
            }
        }
        if !unavailable.is_empty() {
            return Err(PinError { unavailable });
        }
        Ok(Repositories {
            inner: Arc::clone(&self.inner),
            universe: Arc::new(Universe::new(keep)),
            installed: Arc::clone(&self.installed),
        })
    }

    /// Resolve a request and fetch (or reuse from the cache) and verify
    /// every chosen package, at most [`Options::parallel_downloads`] at once.
    ///
    /// # Errors
    /// Resolution errors; download, HTTP and verification errors naming the
    /// URL or file (when several downloads fail, the first in install order
    /// is reported).
    pub async fn resolve<S: AsRef<str>>(&self, packages: &[S]) -> Result<Resolution> {
        let solution = self.solve(packages)?;
        let sem = Arc::new(tokio::sync::Semaphore::new(self.inner.parallel));
        let mut set = tokio::task::JoinSet::new();
        for (i, &pos) in solution.order.iter().enumerate() {
            let inner = Arc::clone(&self.inner);
            let cand = self.universe.packages()[pos].clone();
            let sem = Arc::clone(&sem);
            set.spawn(async move {
                let _permit = sem.acquire_owned().await;
                (i, fetch_package(inner, cand).await)
            });
        }
        let mut results: Vec<Option<Result<ResolvedPackage>>> =
            (0..solution.order.len()).map(|_| None).collect();
        while let Some(joined) = set.join_next().await {
            let (i, r) =
                joined.map_err(|e| Error::config("download", format!("task failed: {e}")))?;
            results[i] = Some(r);
        }
        let mut out = Vec::with_capacity(results.len());
        for r in results {
            match r {
                Some(Ok(p)) => out.push(p),
                Some(Err(e)) => return Err(e),
                None => return Err(Error::config("download", "a download task did not report")),
            }
        }
        let mut world: Vec<String> = packages
            .iter()
            .map(|p| p.as_ref().trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        world.sort();
        world.dedup();
        Ok(Resolution {
            packages: out,
            repositories: self
                .inner
                .repositories
                .iter()
                .map(|r| r.spec.clone())
                .collect(),
            keys: self.inner.keys.clone(),
            arch: self.inner.arch.clone(),
            world,
            stats: self.stats(),
        })
    }
}

/// Load the repositories and resolve `packages` (see [`Repositories`]).
///
/// # Errors
/// As [`Repositories::load`] and [`Repositories::resolve`].
pub async fn resolve<S: AsRef<str>>(opts: &Options, packages: &[S]) -> Result<Resolution> {
    Repositories::load(opts).await?.resolve(packages).await
}

/// [`resolve`] with other HTTP limits (see [`Repositories::load_with`]).
///
/// # Errors
/// As [`resolve`].
pub async fn resolve_with<S: AsRef<str>>(
    opts: &Options,
    limits: HttpLimits,
    packages: &[S],
) -> Result<Resolution> {
    Repositories::load_with(opts, limits)
        .await?
        .resolve(packages)
        .await
}

/// [`resolve`] on a private Tokio runtime, for synchronous callers.
///
/// # Errors
/// As [`resolve`]; also refused when called from inside an async runtime
/// (use `resolve(..).await` there).
pub fn resolve_blocking<S: AsRef<str>>(opts: &Options, packages: &[S]) -> Result<Resolution> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::config(
            "resolve_blocking",
            "called from inside an async runtime; use resolve(..).await instead",
        ));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the download runtime", e))?;
    rt.block_on(resolve(opts, packages))
}
