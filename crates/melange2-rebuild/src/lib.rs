//! `melange2 rebuild` and `melange2 scan`: reproduce packages from what they carry and say
//! how the result differs; run the SCA again on built packages (see `docs/rebuild.md`).
//!
//! Contract:
//! * [`rebuild`] reads each given `.apk` and the `.melange.yaml` of its origin (the compiled
//!   plan, the environment lock and the build settings: build date, namespace, SBOM origin,
//!   versioned shlib depends, cache mounts, debug, linters, whether a source directory was
//!   copied in). The
//!   packages of one origin are rebuilt by one build, for the recorded architecture.
//! * The environment is pinned to the lock, by name and control checksum (whichever
//!   repository has the package now); a locked package that is gone or whose content
//!   changed, a bootstrap rootfs whose digest differs, or a rootfs or source directory that
//!   is not given, stops the rebuild before anything runs, naming every such input. A
//!   source directory's content is not recorded: another source shows in the comparison.
//!   [`RebuildOptions::update_environment`] resolves the environment anew instead and reports
//!   what changed in it.
//! * Each given package is compared with its rebuild: `.PKGINFO` fields, other control files
//!   (which top-level keys of `.melange.yaml`), and every data entry (type, mode, owner,
//!   size, mtime, link target, SHA-256, xattrs). Signatures are not compared (they depend on
//!   the key). The rebuilt packages stay in [`RebuildOptions::out_dir`].
//! * [`scan::scan`] runs the packager's SCA over built packages (all packages of a build
//!   together, siblings read from beside the given ones) and gives the `.PKGINFO` it would
//!   write, or its unified difference from the package's own. Repositories are read only
//!   for a build with versioned shlib depends (the provides of its locked environment).

mod compare;
mod original;
mod run;
pub mod scan;

use std::path::PathBuf;

use melange2_buildkit::TlsFiles;
use melange2_buildkit::progress::ProgressMode;

pub use compare::Difference;
pub use run::rebuild;

/// Everything `melange2 rebuild` takes.
#[derive(Clone, Debug, Default)]
pub struct RebuildOptions {
    /// The packages to rebuild and compare.
    pub packages: Vec<PathBuf>,
    /// Where the rebuilt packages go (`<out_dir>/<arch>/`).
    pub out_dir: PathBuf,
    /// Key signing the rebuilt packages (None: `melange.rsa` if it exists, else unsigned).
    pub signing_key: Option<PathBuf>,
    /// Repositories holding the locked packages (`-r`).
    pub repository_append: Vec<String>,
    /// Keys trusting them (`-k`).
    pub keyring_append: Vec<String>,
    /// The source directory the packages were built with.
    pub source_dir: Option<PathBuf>,
    /// The bootstrap root filesystem the packages were built on.
    pub bootstrap_rootfs: Option<PathBuf>,
    /// `--env-file`s of the original build (their values are hidden in `.melange.yaml`).
    pub env_files: Vec<PathBuf>,
    /// Download cache of the resolver.
    pub apk_cache_dir: Option<PathBuf>,
    /// Accept unsigned repositories.
    pub ignore_signatures: bool,
    /// Resolve the environment anew instead of pinning the lock, and report its changes.
    pub update_environment: bool,
    /// Progress style.
    pub progress: ProgressMode,
    /// Daemon address (None: BUILDKIT_HOST, the default socket, or a local daemon).
    pub buildkit_addr: Option<String>,
    /// TLS for tcp:// addresses.
    pub tls: TlsFiles,
}

/// Errors that stop a rebuild (a difference is not an error: it is in the [`Report`]).
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// A given package cannot be read or rebuilt from what it carries.
    #[error("{}: {message}", .path.display())]
    Package {
        /// The package file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Inputs of the original build are no longer available.
    #[error("cannot rebuild {origin}, inputs of its build are missing or changed:\n  - {}", .missing.join("\n  - "))]
    Missing {
        /// The origin package.
        origin: String,
        /// One line per missing or changed input.
        missing: Vec<String>,
    },
    /// The build failed.
    #[error("rebuilding {origin}: {source}")]
    Build {
        /// The origin package.
        origin: String,
        /// Why.
        source: melange2_build::BuildError,
    },
    /// Connecting to BuildKit failed.
    #[error(transparent)]
    Buildkit(#[from] melange2_buildkit::BuildkitError),
}

/// The comparison of one given package with its rebuild.
#[derive(Clone, Debug)]
pub struct PackageResult {
    /// The original file.
    pub original: PathBuf,
    /// The rebuilt file.
    pub rebuilt: PathBuf,
    /// Everything that differs (empty: identical apart from signatures).
    pub differences: Vec<Difference>,
    /// The two files are byte-identical (same signatures too).
    pub same_bytes: bool,
    /// Key names of the original's and the rebuild's signatures, when they differ.
    pub signers: Option<(Vec<String>, Vec<String>)>,
}

/// One origin's rebuild.
#[derive(Clone, Debug)]
pub struct OriginResult {
    /// The origin package.
    pub origin: String,
    /// Architecture.
    pub arch: String,
    /// With [`RebuildOptions::update_environment`]: what changed in the environment.
    pub environment_changes: Vec<String>,
    /// Notes (melange2 version differs, …).
    pub notes: Vec<String>,
    /// One result per given package of this origin.
    pub packages: Vec<PackageResult>,
}

/// The outcome of a rebuild.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// One entry per origin, in the order the packages were given.
    pub origins: Vec<OriginResult>,
}

impl Report {
    /// Packages that differ from their rebuild.
    pub fn differing(&self) -> Vec<&PackageResult> {
        self.origins
            .iter()
            .flat_map(|o| &o.packages)
            .filter(|p| !p.differences.is_empty())
            .collect()
    }

    /// Number of packages compared.
    pub fn compared(&self) -> usize {
        self.origins.iter().map(|o| o.packages.len()).sum()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for o in &self.origins {
            for n in &o.notes {
                writeln!(f, "{} ({}): note: {n}", o.origin, o.arch)?;
            }
            for c in &o.environment_changes {
                writeln!(f, "{} ({}): environment: {c}", o.origin, o.arch)?;
            }
            for p in &o.packages {
                let name = p.original.display();
                if p.differences.is_empty() {
                    let how = if p.same_bytes {
                        "identical (byte for byte)"
                    } else {
                        "identical (signatures aside)"
                    };
                    writeln!(f, "{name}: {how}; rebuilt as {}", p.rebuilt.display())?;
                } else {
                    writeln!(
                        f,
                        "{name}: DIFFERS from its rebuild {} ({} differences)",
                        p.rebuilt.display(),
                        p.differences.len()
                    )?;
                    for d in &p.differences {
                        writeln!(f, "  {d}")?;
                    }
                }
                if let Some((a, b)) = &p.signers {
                    writeln!(
                        f,
                        "  signed by {} (original) and {} (rebuild)",
                        list_or_none(a),
                        list_or_none(b)
                    )?;
                }
            }
        }
        Ok(())
    }
}

fn list_or_none(l: &[String]) -> String {
    if l.is_empty() {
        "nobody".to_string()
    } else {
        l.join(", ")
    }
}
