//! melange's package linters (spec F.5) for melange2.
//!
//! Contract:
//! * Input is neutral: a package's entries with types, modes, owners, link
//!   targets and sizes plus random access to file contents
//!   ([`PackageFiles`]); it is built from the packager's in-memory
//!   [`melange2_apk::PackageTree`] ([`PackageFiles::from_tree`]) or from an
//!   `.apk` on disk ([`read_apk`]).
//! * Every linter of the spec ([`LINTERS`]) with melange's default severity:
//!   required ones fail the build, warnings are reported, ignored ones do not
//!   run. [`Policy::with_overrides`] applies `--lint-require` /
//!   `--lint-warn` one linter at a time; per package, `checks.disabled` turns
//!   a required linter into a warning and `checks.enabled` runs an ignored
//!   one as a warning ([`Policy::for_package`]).
//! * Each [`Finding`] names the linter, the package and every offending path.
//!   `pkgconf` and `lddcheck` need the package's test pipeline
//!   ([`LintTarget::test_uses`]); when it is unknown they are skipped with a
//!   note instead of guessing.
//! * Deterministic: findings in registry order, paths in package order.
//!   Contents are read lazily with positional reads (ELF headers and section
//!   tables only), so large packages cost little I/O.

pub mod apk;
mod elf;
pub mod error;
pub mod input;
pub mod linters;
pub mod policy;
pub mod report;

use std::collections::BTreeSet;

use melange2_config::model::Checks;
use melange2_config::plan::{Plan, Step};

pub use apk::{ApkPackage, lint_apks, read_apk};
pub use error::LintError;
pub use input::{ContentSource, FileEntry, FileType, PackageFiles};
pub use linters::{LINTERS, LinterInfo, linter};
pub use policy::{Policy, Severity, parse_linter_name};
pub use report::{Finding, LintReport, Offender, render_failures};

/// Which package is linted, with what it needs from the build file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LintTarget {
    /// Package name (the `-compat`, `-dev`, `-static` and `-doc` suffixes
    /// matter to some linters).
    pub package: String,
    /// The package's `checks:`.
    pub checks: Checks,
    /// `uses:` of every step of the package's test, nested steps included
    /// (`None`: unknown, so `pkgconf` and `lddcheck` are skipped).
    pub test_uses: Option<BTreeSet<String>>,
}

impl LintTarget {
    /// A package about which nothing else is known.
    pub fn new(package: impl Into<String>) -> Self {
        LintTarget {
            package: package.into(),
            ..Default::default()
        }
    }

    /// The main package or a subpackage of a compiled plan (`None` when the
    /// plan has no such package). A package without `test:` has an empty
    /// (known) test pipeline.
    pub fn from_plan(plan: &Plan, package: &str) -> Option<Self> {
        let (info, test) = if plan.package.name == package {
            (&plan.package, plan.test.as_ref())
        } else {
            let s = plan
                .subpackages
                .iter()
                .find(|s| s.package.name == package)?;
            (&s.package, s.test.as_ref())
        };
        let mut uses = BTreeSet::new();
        if let Some(t) = test {
            collect_uses(&t.pipeline, &mut uses);
        }
        Some(LintTarget {
            package: package.to_string(),
            checks: info.checks.clone(),
            test_uses: Some(uses),
        })
    }
}

fn collect_uses(steps: &[Step], out: &mut BTreeSet<String>) {
    for s in steps {
        if let Some(u) = &s.uses {
            out.insert(u.clone());
        }
        collect_uses(&s.pipeline, out);
    }
}

/// Lint one package: the package's `checks:` are applied to `policy`, every
/// linter that is not ignored runs.
pub fn lint_package(files: &PackageFiles, target: &LintTarget, policy: &Policy) -> LintReport {
    let (policy, mut notes) = policy.for_package(&target.checks);
    let ctx = linters::Ctx::new(files, &target.package, target.test_uses.as_ref());
    let mut findings = Vec::new();
    for l in LINTERS {
        let severity = policy.severity(l.name);
        if severity == Severity::Ignored {
            continue;
        }
        if let Some(offenders) = linters::check(l.name, &ctx) {
            findings.push(Finding {
                linter: l.name.to_string(),
                package: target.package.clone(),
                severity,
                message: l.description.to_string(),
                hint: l.explain.to_string(),
                offenders,
                disabled: target.checks.disabled.iter().any(|d| d.trim() == l.name),
            });
        }
    }
    notes.extend(ctx.notes.take());
    notes.dedup();
    tracing::debug!(package = %target.package, findings = findings.len(), "linted");
    LintReport {
        package: target.package.clone(),
        findings,
        notes,
    }
}
