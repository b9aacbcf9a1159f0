//! The compiled build plan: the public contract between this crate, the BuildKit build
//! (issue 6), the packager and `melange2 test` (issue 7).
//!
//! A [`Plan`] describes one build file for one architecture with every substitution done,
//! every `uses:` expanded, every `if:` decided and every default applied. All maps are
//! `BTreeMap`s and all lists have a defined order, so `serde_json` output is stable.
//!
//! Execution contract for a [`Step`] (melange semantics):
//! * a step whose `runs` is set executes `/bin/sh -c` [`Step::script`] with working
//!   directory [`Step::workdir`] and exactly the environment [`Step::env`], plus
//!   `SOURCE_DATE_EPOCH` added by the builder;
//! * then its children ([`Step::pipeline`]) run in order; steps whose `if:` was false are
//!   already removed from the plan;
//! * any failure aborts the build. The main pipeline runs first, then every subpackage
//!   pipeline in order, in the same workspace (`/home/build`); outputs land in
//!   `/home/build/melange-out/<package>/`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{
    Capability, Checks, Copyright, Group, PackageOption, Resources, Retry, Scriptlets, User,
};

/// Build workspace inside the build container.
pub const WORKSPACE: &str = "/home/build";
/// `PATH` forced for every step (a step's own `environment` may still override it).
pub const STEP_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/bin:/usr/sbin:/sbin:/bin";

/// A build file compiled for one architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The build file this plan was compiled from.
    pub file: String,
    /// APK architecture name (`x86_64`, `aarch64`, …).
    pub arch: String,
    /// Go/OCI architecture name (`amd64`, `arm64`, …).
    pub goarch: String,
    /// False when `package.target-architecture` excludes `arch`: the build must be skipped.
    pub enabled: bool,
    /// `--build-option` names applied, sorted.
    pub build_options: Vec<String>,
    /// The origin (main) package.
    pub package: PackageInfo,
    /// The build environment (packages include every active step's `needs.packages`).
    pub environment: Environment,
    /// The main package's steps.
    pub pipeline: Vec<Step>,
    /// Subpackages whose `if:` is true, in file order (ranges expanded).
    pub subpackages: Vec<SubpackagePlan>,
    /// Test of the main package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<TestPlan>,
    /// Linux capabilities for the build and test containers.
    pub capabilities: CapabilitySet,
    /// Build timeout in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    /// Scheduling hints for the build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Scheduling hints for tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_resources: Option<Resources>,
}

/// Metadata of one output package (main or subpackage): everything `.PKGINFO`, the SBOM
/// and the SCA need from the build file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageInfo {
    pub name: String,
    /// `package.version` (without release).
    pub version: String,
    /// `package.epoch` (the release number).
    pub epoch: u64,
    /// `{version}-r{epoch}`.
    pub full_version: String,
    /// Name of the main package (`origin` in `.PKGINFO`).
    pub origin: String,
    pub description: String,
    pub url: String,
    /// VCS commit of the recipe (subpackages default to the package's).
    pub commit: String,
    /// Copyright entries (subpackages inherit the main package's).
    pub copyright: Vec<Copyright>,
    /// Licences joined with ` AND ` (empty when there is no copyright entry).
    pub license: String,
    pub dependencies: Dependencies,
    /// SCA switches.
    pub options: PackageOption,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scriptlets: Option<Scriptlets>,
    pub checks: Checks,
    /// CPE 2.3 string when `package.cpe` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpe: Option<String>,
    /// File capabilities to set (only the main package's are applied by melange).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setcap: Vec<Capability>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// `package.target-architecture` as written (main package only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_architecture: Vec<String>,
}

/// Declared relationships, fully substituted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependencies {
    /// `depend` entries (E.1 syntax).
    pub runtime: Vec<String>,
    /// `provides` entries.
    pub provides: Vec<String>,
    /// `replaces` entries.
    pub replaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_priority: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces_priority: Option<i64>,
}

/// An environment (build or test) to assemble with the APK solver.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    /// Package constraints, sorted and de-duplicated.
    pub packages: Vec<String>,
    pub repositories: Vec<String>,
    /// Repositories used only while resolving the build environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build_repositories: Vec<String>,
    pub keyring: Vec<String>,
    /// Base environment variables (steps carry their complete environment themselves).
    pub env: BTreeMap<String, String>,
    pub accounts: Accounts,
}

/// Users and groups of an environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accounts {
    /// `accounts.run-as` as written (empty: root).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run_as: String,
    pub users: Vec<User>,
    pub groups: Vec<Group>,
}

/// `capabilities:`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilitySet {
    pub add: Vec<String>,
    pub drop: Vec<String>,
}

/// A subpackage to build after the main pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubpackagePlan {
    pub package: PackageInfo,
    pub pipeline: Vec<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<TestPlan>,
}

/// A compiled `test:` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestPlan {
    /// Fresh environment: test packages + step needs + the package under test (sorted).
    pub environment: Environment,
    pub pipeline: Vec<Step>,
}

/// One compiled step. Nested steps (from `pipeline:` or an expanded `uses:`) are children.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The step's `name:` (kept from the build file even when `uses:` is expanded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The reusable pipeline this step expanded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<String>,
    /// Where the expanded pipeline came from (`builtin:pipelines/X.yaml` or a path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses_origin: Option<String>,
    /// Resolved value of every declared input of `uses` (defaults included).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub with: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Shell text with every `${{…}}` substituted; `None` when the step only groups children.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<String>,
    /// Absolute working directory (created if missing).
    pub workdir: String,
    /// Complete environment of the step: environment variables of the build (or test)
    /// environment, `PATH`, then the `environment:` of the step and its ancestors.
    pub env: BTreeMap<String, String>,
    /// Packages this step added to the environment (`needs.packages`, substituted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    /// `assertions.required-steps` (already verified against the active children).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_steps: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    /// Child steps, run after this step's own `runs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pipeline: Vec<Step>,
}

impl Step {
    /// Display name: `name`, else `uses: X`, else the label.
    pub fn display_name(&self) -> Option<String> {
        self.name
            .clone()
            .or_else(|| self.uses.as_ref().map(|u| format!("uses: {u}")))
            .or_else(|| self.label.clone())
    }

    /// The script passed to `/bin/sh -c` (melange's wrapper); `debug` adds `set -x`.
    pub fn script(&self, debug: bool) -> String {
        let wd = shell_single_quote(&self.workdir);
        format!(
            "set -e{}\n[ -d {wd} ] || mkdir -p {wd}\ncd {wd}\n{}\nexit 0",
            if debug { "x" } else { "" },
            self.runs.as_deref().unwrap_or("")
        )
    }
}

/// A step that executes something, with its position in the tree.
#[derive(Debug, Clone, Copy)]
pub struct ExecStep<'a> {
    /// The step.
    pub step: &'a Step,
    /// Nesting depth (0 for a top-level step).
    pub depth: usize,
}

/// Every step with a `runs` script, depth first in execution order.
pub fn exec_steps(steps: &[Step]) -> Vec<ExecStep<'_>> {
    fn walk<'a>(steps: &'a [Step], depth: usize, out: &mut Vec<ExecStep<'a>>) {
        for s in steps {
            if s.runs.as_deref().is_some_and(|r| !r.trim().is_empty()) {
                out.push(ExecStep { step: s, depth });
            }
            walk(&s.pipeline, depth + 1, out);
        }
    }
    let mut out = Vec::new();
    walk(steps, 0, &mut out);
    out
}

/// POSIX single quoting.
pub fn shell_single_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

impl Plan {
    /// Stable, pretty JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain structs and string maps cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Names of every package this build produces (main first).
    pub fn package_names(&self) -> Vec<&str> {
        std::iter::once(self.package.name.as_str())
            .chain(self.subpackages.iter().map(|s| s.package.name.as_str()))
            .collect()
    }
}
