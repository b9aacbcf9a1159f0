//! Is a build up to date? The inputs of one recipe's build for one architecture, their
//! fingerprint, the record stored with the packages, and the reasons a build is needed.
//!
//! Contract (see `docs/tree.md`, "Up to date"):
//! * [`Inputs`] lists everything that changes the bytes of a recipe's packages: the compiled
//!   plan (one component per top-level step, per subpackage and per other plan field), the
//!   environment lock (every package's checksum), the bootstrap root filesystem's content
//!   digest, the source folder (one digest per file), the flags that change package bytes and
//!   the melange2 version. [`Inputs::fingerprint`] is the SHA-256 of their canonical JSON.
//! * A [`Record`] is written next to the packages (`<out-dir>/<arch>/.melange2-records/`)
//!   after they are committed; it names each package file with its index checksum and size.
//! * [`check`] compares a stored record with fresh inputs and the out-dir's index: up to date
//!   only when the fingerprints match and every recorded package is still there, unchanged.
//!   Otherwise it says why, naming the input that changed ([`Reason`]).
//! * Everything is deterministic: sorted maps, no timestamps.

mod digest;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use melange2_config::plan::{Plan, Step};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use digest::{digest_path, digest_source_dir};

/// Directory of the records inside `<out-dir>/<arch>/`.
pub const RECORDS_DIR: &str = ".melange2-records";

/// Errors reading or hashing inputs.
#[derive(Debug, thiserror::Error)]
pub enum FingerprintError {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A `.melangeignore` pattern is invalid.
    #[error("{path}: invalid pattern {pattern:?}: {message}")]
    Pattern {
        /// The ignore file.
        path: PathBuf,
        /// The pattern.
        pattern: String,
        /// Why.
        message: String,
    },
}

impl FingerprintError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        FingerprintError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Everything that makes a build's packages what they are.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inputs {
    /// melange2's version.
    pub version: String,
    /// Plan components: label → SHA-256 of its JSON.
    pub plan: BTreeMap<String, String>,
    /// Environment lock: package name → `version checksum`.
    pub environment: BTreeMap<String, String>,
    /// Content digest of the bootstrap root filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<String>,
    /// Source folder: relative path → digest.
    pub source: BTreeMap<String, String>,
    /// Flags that change package bytes: name → value.
    pub flags: BTreeMap<String, String>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn json_digest<T: Serialize>(v: &T) -> String {
    // Serializing plan data (strings, maps, numbers) cannot fail.
    sha256_hex(&serde_json::to_vec(v).unwrap_or_default())
}

/// How a step is named in reasons: its name, `uses: X`, or `run: <first line>`.
fn step_label(step: &Step) -> String {
    if let Some(n) = step.display_name() {
        return n;
    }
    let first = step
        .runs
        .as_deref()
        .unwrap_or("")
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let mut s: String = first.chars().take(60).collect();
    if first.chars().count() > 60 {
        s.push_str("...");
    }
    format!("run: {s}")
}

/// The plan as components: one per top-level step of the main pipeline (`step 3 (uses:
/// fetch)`), one per subpackage (`subpackage foo-dev`) and one per other top-level field.
pub fn plan_components(plan: &Plan) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let value = serde_json::to_value(plan).unwrap_or_default();
    if let serde_json::Value::Object(map) = &value {
        for (k, v) in map {
            if k != "pipeline" && k != "subpackages" {
                out.insert(k.clone(), json_digest(v));
            }
        }
    }
    for (i, step) in plan.pipeline.iter().enumerate() {
        out.insert(
            format!("step {:03} ({})", i + 1, step_label(step)),
            json_digest(step),
        );
    }
    for sp in &plan.subpackages {
        out.insert(format!("subpackage {}", sp.package.name), json_digest(sp));
    }
    out
}

impl Inputs {
    /// The fingerprint: SHA-256 of the canonical JSON of all inputs.
    pub fn fingerprint(&self) -> String {
        json_digest(self)
    }
}

/// One package of a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedPackage {
    /// Package name.
    pub name: String,
    /// Full version.
    pub version: String,
    /// File name inside `<out-dir>/<arch>/`.
    pub file: String,
    /// Index checksum (`Q1…`).
    pub checksum: String,
    /// File size.
    pub size: u64,
}

/// What a finished build leaves next to its packages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// [`Inputs::fingerprint`] of `inputs`.
    pub fingerprint: String,
    /// Recipe (main package) name.
    pub recipe: String,
    /// Architecture.
    pub arch: String,
    /// The inputs (kept to explain the next rebuild).
    pub inputs: Inputs,
    /// The packages written.
    pub packages: Vec<RecordedPackage>,
}

impl Record {
    /// Path of a recipe's record.
    pub fn path(out_dir: &Path, arch: &str, recipe: &str) -> PathBuf {
        out_dir
            .join(arch)
            .join(RECORDS_DIR)
            .join(format!("{recipe}.json"))
    }

    /// Read a recipe's record; `None` when there is none or it cannot be read (a damaged
    /// record only means a rebuild).
    pub fn read(out_dir: &Path, arch: &str, recipe: &str) -> Option<Record> {
        let bytes = std::fs::read(Self::path(out_dir, arch, recipe)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The record as pretty JSON with a final newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }
}

/// What changed in one input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// New since the last build.
    Added,
    /// Gone since the last build.
    Removed,
    /// Different content.
    Changed,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
        })
    }
}

/// Why a build is needed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// No record of an earlier build in the out-dir.
    NoPreviousBuild,
    /// `--force`.
    Forced,
    /// Another melange2 version built the packages.
    Version {
        /// Version recorded.
        old: String,
        /// This version.
        new: String,
    },
    /// A part of the compiled plan.
    Plan {
        /// Component label (`step 002 (uses: fetch)`, `subpackage foo-dev`, `environment`).
        component: String,
        /// What happened to it.
        change: Change,
    },
    /// A package of the build environment.
    Dependency {
        /// Package name.
        name: String,
        /// Old `version checksum` (None: added).
        old: Option<String>,
        /// New `version checksum` (None: removed).
        new: Option<String>,
    },
    /// A dependency in the graph is rebuilt first (its new bytes are not known yet).
    DependencyRebuilt {
        /// The dependency's recipe name.
        recipe: String,
    },
    /// The bootstrap root filesystem.
    Rootfs,
    /// A file of the source folder.
    Source {
        /// Path relative to the source folder.
        path: String,
        /// What happened to it.
        change: Change,
    },
    /// A flag that changes package bytes.
    Flag {
        /// Flag name.
        name: String,
        /// Recorded value.
        old: Option<String>,
        /// Value now.
        new: Option<String>,
    },
    /// A recorded package is missing or differs from what the record says.
    Output {
        /// File name.
        file: String,
        /// What is wrong with it.
        problem: String,
    },
}

fn opt(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("unset")
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NoPreviousBuild => f.write_str("no previous build"),
            Reason::Forced => f.write_str("--force"),
            Reason::Version { old, new } => write!(f, "melange2 version changed ({old} → {new})"),
            Reason::Plan { component, change } => write!(f, "recipe {component} {change}"),
            Reason::Dependency {
                name,
                old: Some(o),
                new: Some(n),
            } => {
                let short = |s: &str| s.chars().take(40).collect::<String>();
                write!(
                    f,
                    "dependency {name} has new bytes ({} → {})",
                    short(o),
                    short(n)
                )
            }
            Reason::Dependency {
                name, old: None, ..
            } => {
                write!(f, "dependency {name} added to the environment")
            }
            Reason::Dependency { name, .. } => {
                write!(f, "dependency {name} removed from the environment")
            }
            Reason::DependencyRebuilt { recipe } => write!(f, "dependency {recipe} is rebuilt"),
            Reason::Rootfs => f.write_str("bootstrap rootfs content changed"),
            Reason::Source { path, change } => write!(f, "source file {path} {change}"),
            Reason::Flag { name, old, new } => {
                write!(f, "flag {name} changed ({} → {})", opt(old), opt(new))
            }
            Reason::Output { file, problem } => write!(f, "package {file} {problem}"),
        }
    }
}

fn diff_maps(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
    mut push: impl FnMut(&str, Change),
) {
    for (k, v) in new {
        match old.get(k) {
            None => push(k, Change::Added),
            Some(o) if o != v => push(k, Change::Changed),
            _ => {}
        }
    }
    for k in old.keys() {
        if !new.contains_key(k) {
            push(k, Change::Removed);
        }
    }
}

/// Every difference between recorded and fresh inputs, in a fixed order: version, plan,
/// environment, rootfs, source, flags.
pub fn diff(old: &Inputs, new: &Inputs) -> Vec<Reason> {
    let mut out = Vec::new();
    if old.version != new.version {
        out.push(Reason::Version {
            old: old.version.clone(),
            new: new.version.clone(),
        });
    }
    diff_maps(&old.plan, &new.plan, |k, change| {
        out.push(Reason::Plan {
            component: k.to_string(),
            change,
        })
    });
    diff_maps(&old.environment, &new.environment, |k, _| {
        out.push(Reason::Dependency {
            name: k.to_string(),
            old: old.environment.get(k).cloned(),
            new: new.environment.get(k).cloned(),
        })
    });
    if old.rootfs != new.rootfs {
        out.push(Reason::Rootfs);
    }
    diff_maps(&old.source, &new.source, |k, change| {
        out.push(Reason::Source {
            path: k.to_string(),
            change,
        })
    });
    diff_maps(&old.flags, &new.flags, |k, _| {
        out.push(Reason::Flag {
            name: k.to_string(),
            old: old.flags.get(k).cloned(),
            new: new.flags.get(k).cloned(),
        })
    });
    out
}

/// What the out-dir's index says about a package file: its checksum, if listed.
pub trait OutDirView {
    /// Index checksum of `<name>-<version>` in the out-dir's index, if listed.
    fn checksum(&self, name: &str, version: &str) -> Option<String>;
    /// Size of a file in `<out-dir>/<arch>/`, if it exists.
    fn file_size(&self, file: &str) -> Option<u64>;
}

/// Is the recorded build up to date with `inputs`? `Ok(())` when it is, else every reason.
pub fn check(
    record: Option<&Record>,
    inputs: &Inputs,
    out: &dyn OutDirView,
) -> Result<(), Vec<Reason>> {
    let Some(record) = record else {
        return Err(vec![Reason::NoPreviousBuild]);
    };
    if record.fingerprint != inputs.fingerprint() || record.inputs != *inputs {
        let mut reasons = diff(&record.inputs, inputs);
        if reasons.is_empty() {
            reasons.push(Reason::NoPreviousBuild);
        }
        return Err(reasons);
    }
    let mut reasons = Vec::new();
    for p in &record.packages {
        let problem = match (out.file_size(&p.file), out.checksum(&p.name, &p.version)) {
            (None, _) => Some("is missing".to_string()),
            (Some(s), _) if s != p.size => {
                Some(format!("has changed ({s} bytes, recorded {})", p.size))
            }
            (_, None) => Some("is not in the index".to_string()),
            (_, Some(c)) if c != p.checksum => Some("differs from the index".to_string()),
            _ => None,
        };
        if let Some(problem) = problem {
            reasons.push(Reason::Output {
                file: p.file.clone(),
                problem,
            });
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

#[cfg(test)]
mod tests;
